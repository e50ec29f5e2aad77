variable "name_prefix" {
  description = "Prefix for every resource name, for example \"eventlake-poc\"."
  type        = string
}

variable "teams" {
  description = "Teams on the platform. The subscriptions document may name only these."
  type        = list(string)
}

variable "subscriptions_json" {
  description = "The subscriptions document (crates/bus/src/subscriptions.rs): which team receives which producing team's events, and which teams want a notification per batch. Stored in an SSM parameter that the fan-out reads; each receiving team gets a queue."
  type        = string
}

variable "ledger_table_name" {
  description = "Name of the DynamoDB ledger table: one item per accepted batch, written by ingest; its stream is the bus's outbox."
  type        = string
}

variable "fanout_function_name" {
  description = "Name of the fan-out Lambda function on the ledger's stream."
  type        = string
}

variable "bridge_function_name" {
  description = "Name of the queue-to-Kafka bridge Lambda function (created only with Kafka)."
  type        = string
}

variable "package_path" {
  description = "Path of the bus-lambda zip (bootstrap built from crates/bus/src/lambda_main.rs for provided.al2023 on arm64)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the data KMS key: encrypts the ledger table, the queues, the notification topic, the subscriptions parameter and the functions' environment."
  type        = string
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket: the fan-out reads raw objects from it and keeps what it could not deliver under _bus/failed/."
  type        = string
}

variable "lake_url" {
  description = "The lake as s3://bucket[/prefix], as the functions open it."
  type        = string
}

variable "fanout_log_group_name" {
  description = "CloudWatch log group of the fan-out function (created by the logging module)."
  type        = string
}

variable "bridge_log_group_name" {
  description = "CloudWatch log group of the bridge function (created by the logging module)."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic that receives the bus's alarms (queue age, DLQ depth, fan-out errors and iterator age)."
  type        = string
}

variable "stream_batch_size" {
  description = "Stream records per fan-out invocation."
  type        = number
  default     = 100
}

variable "stream_batching_window_seconds" {
  description = "How long the mapping gathers stream records before it invokes the fan-out (0 for the lowest latency)."
  type        = number
  default     = 0
}

variable "stream_maximum_retry_attempts" {
  description = "Retries of a failing stream record (after bisecting) before it goes to the on-failure destination."
  type        = number
  default     = 10
}

variable "stream_maximum_record_age_seconds" {
  description = "Oldest stream record the mapping still retries; older ones go to the on-failure destination. Keep it well under the stream's 24 h retention."
  type        = number
  default     = 3600

  validation {
    condition     = var.stream_maximum_record_age_seconds >= 60 && var.stream_maximum_record_age_seconds <= 86400
    error_message = "stream_maximum_record_age_seconds must be between 60 and 86400."
  }
}

variable "queue_max_receive_count" {
  description = "Receives of a team queue's message without a delete before it moves to the team's DLQ."
  type        = number
  default     = 5
}

variable "queue_age_alarm_seconds" {
  description = "Alarm when the oldest message of a team's queue is older than this: its consumers are not keeping up."
  type        = number
  default     = 900
}

variable "notification_emails" {
  description = "Per team, e-mail addresses that receive the team's batch notifications (teams listed under notify in the subscriptions document). Each subscription filters on the team, so an address sees its team's notifications only."
  type        = map(list(string))
  default     = {}
}

variable "team_principal_arns" {
  description = "Per team, the principals allowed to assume that team's bus consumer role. Teams not listed get the account root."
  type        = map(list(string))
  default     = {}
}

variable "kafka_bootstrap_servers" {
  description = "Bootstrap servers of an existing Kafka cluster (host:port,...) for the teams' topics. Empty: no Kafka (the bus serves every team from its SQS queue), unless create_msk_serverless is set."
  type        = string
  default     = ""
}

variable "kafka_security_protocol" {
  description = "librdkafka security.protocol for kafka_bootstrap_servers: SSL for a TLS listener (MSK's TLS port), PLAINTEXT otherwise. An MSK Serverless cluster uses SASL_SSL with IAM."
  type        = string
  default     = "SSL"
}

variable "kafka_topic_prefix" {
  description = "A team's topic is <prefix><team>."
  type        = string
  default     = "eventlake."
}

variable "create_msk_serverless" {
  description = "Create an MSK Serverless cluster for the teams' topics (about 0.75 USD per cluster-hour, about 550 USD a month before partitions and data: several times a team's budget). Needs kafka_subnet_ids and kafka_security_group_ids."
  type        = bool
  default     = false
}

variable "kafka_subnet_ids" {
  description = "Subnets of the Kafka cluster's network: the bridge runs in them (and an MSK Serverless cluster is created in them)."
  type        = list(string)
  default     = []
}

variable "kafka_security_group_ids" {
  description = "Security groups of the bridge (and of an MSK Serverless cluster), allowing it to reach the brokers."
  type        = list(string)
  default     = []
}

variable "fanout_reserved_concurrency" {
  description = "Reserved concurrent executions of the fan-out (one per stream shard is enough; a few allow retries beside new records)."
  type        = number
  default     = 5
}

variable "bridge_reserved_concurrency" {
  description = "Reserved concurrent executions of the bridge, shared by every team's queue."
  type        = number
  default     = 5
}

variable "lake_team_kms_keys" {
  description = "Teams whose objects in the lake are written under a KMS key of their own (team_kms_key_teams), to that key's ARN (the shared-services output lake_team_kms_keys; EVENTLAKE_TEAM_KMS_KEYS). Other teams' objects keep the bucket's default, the data key."
  type        = map(string)
  default     = {}
}

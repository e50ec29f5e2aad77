variable "name_prefix" {
  description = "Prefix for resource names, for example \"eventlake-poc\"."
  type        = string
}

variable "function_name" {
  description = "Name of the ingest Lambda function."
  type        = string
}

variable "dlq_name" {
  description = "Name of the SQS dead-letter queue that takes batches while S3 is unavailable."
  type        = string
}

variable "package_path" {
  description = "Path of the ingest deployment zip (a `bootstrap` executable for provided.al2023 on arm64, as built by `terraform/artifacts/build.sh ingest`)."
  type        = string
}

variable "role_arn" {
  description = "ARN of the ingest execution role (iam module)."
  type        = string
}

variable "log_group_name" {
  description = "Name of the function's log group (logging module)."
  type        = string
}

variable "access_log_group_arn" {
  description = "ARN of the log group that receives the HTTP API access logs (logging module)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the data KMS key: encrypts the dead-letter queue, the tokens parameter and the function's environment variables."
  type        = string
}

variable "lake_url" {
  description = "The lake location (EVENTLAKE_LAKE), s3://<lake bucket>: batches go under raw/, idempotency markers under _ingest/."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.lake_url))
    error_message = "lake_url must be an s3://bucket[/prefix] URL."
  }
}

variable "ledger_table_name" {
  description = "Name of the bus's DynamoDB ledger table: the function claims and records every batch there (EVENTLAKE_LEDGER_TABLE) instead of in idempotency objects in the lake."
  type        = string
}

variable "ledger_retention" {
  description = "How long a ledger item is kept before its TTL removes it (EVENTLAKE_LEDGER_RETENTION, for example \"7d\"): an idempotency key can be reused after it."
  type        = string
  default     = "7d"
}

variable "tokens_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the SHA-256 hashes of the team tokens, for example \"/eventlake-poc/ingest/tokens\". Created with an empty list; operators write its value."
  type        = string
}

variable "alarm_topic_arn" {
  description = "ARN of the SNS topic that receives alarm notifications."
  type        = string
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU scales with it)."
  type        = number
  default     = 256
}

variable "timeout" {
  description = "Function timeout in seconds. Keep it below the 30 s HTTP API integration timeout."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 29
    error_message = "timeout must be between 1 and 29 seconds (the HTTP API integration limit is 30 s)."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for (and capping) the function. Accounts still on the default quota of 10 must raise it first."
  type        = number
  default     = 25
}

variable "tracing_mode" {
  description = "X-Ray tracing mode of the function: Active or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "rate_events_per_sec" {
  description = "Events per second the ingest function admits before answering 429 (EVENTLAKE_RATE_EVENTS_PER_SEC). API Gateway request throttling (events_rate_limit) applies on top."
  type        = number
  default     = 2000

  validation {
    condition     = var.rate_events_per_sec > 0
    error_message = "rate_events_per_sec must be positive."
  }
}

variable "events_rate_limit" {
  description = "Steady-state requests per second allowed on POST /v1/events (all teams together)."
  type        = number
  default     = 50
}

variable "events_burst_limit" {
  description = "Burst of requests allowed on POST /v1/events."
  type        = number
  default     = 100
}

variable "healthz_rate_limit" {
  description = "Steady-state requests per second allowed on GET /healthz."
  type        = number
  default     = 5
}

variable "healthz_burst_limit" {
  description = "Burst of requests allowed on GET /healthz."
  type        = number
  default     = 10
}

variable "default_rate_limit" {
  description = "Requests per second allowed on any other route of the stage (there are none; this bounds mistakes)."
  type        = number
  default     = 10
}

variable "default_burst_limit" {
  description = "Burst allowed on any other route of the stage."
  type        = number
  default     = 20
}

variable "detailed_metrics_enabled" {
  description = "Publish per-route API metrics. They are billed as CloudWatch custom metrics (about 0.30 USD each a month, six per route); the stage-level metrics the alarms use are free."
  type        = bool
  default     = false
}

variable "dlq_message_retention_seconds" {
  description = "How long a batch waits in the dead-letter queue for replay (maximum 14 days)."
  type        = number
  default     = 1209600
}

variable "api_5xx_threshold" {
  description = "Alarm when the API returns more than this many 5xx responses in 5 minutes."
  type        = number
  default     = 5
}

variable "lambda_errors_threshold" {
  description = "Alarm when the function reports more than this many errors in 5 minutes."
  type        = number
  default     = 5
}

variable "teams" {
  description = "Teams on the platform: each gets a latency alarm and a rate alarm on its own requests."
  type        = list(string)
  default     = []
}

variable "latency_p99_alarm_ms" {
  description = "Alarm when a team's p99 request latency stays above this for 15 minutes."
  type        = number
  default     = 200
}

variable "default_team_events_per_sec" {
  description = "Events per second a team may send before its rate alarm fires, unless team_events_per_sec names it."
  type        = number
  default     = 200
}

variable "team_events_per_sec" {
  description = "Per team, the events per second it may send before its rate alarm fires."
  type        = map(number)
  default     = {}
}

variable "lake_team_kms_keys" {
  description = "Teams whose objects in the lake are written under a KMS key of their own (team_kms_key_teams), to that key's ARN (the shared-services output lake_team_kms_keys; EVENTLAKE_TEAM_KMS_KEYS). Other teams' objects keep the bucket's default, the data key."
  type        = map(string)
  default     = {}
}

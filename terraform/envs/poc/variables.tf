variable "region" {
  description = "AWS region of the platform (for example eu-west-1)."
  type        = string
}

variable "project" {
  description = "Project name, first part of every resource name."
  type        = string
  default     = "eventlake"
}

variable "environment" {
  description = "Environment name, second part of every resource name."
  type        = string
  default     = "poc"
}

variable "teams" {
  description = "Teams on the platform. Each gets an analyst role, an Athena workgroup and its own prefixes; its ingest tokens are issued with `ingest token create` (see the ingest module README)."
  type        = list(string)
  default     = ["checkout", "search", "growth"]
}

variable "analyst_principal_arns" {
  description = "Per team, the principals allowed to assume that team's analyst role (for example SSO permission-set roles). Teams not listed get the account root."
  type        = map(list(string))
  default     = {}
}

variable "analyst_require_mfa" {
  description = "Require MFA to assume an analyst role. Set false when analysts come through SSO roles."
  type        = bool
  default     = true
}

variable "ingest_redrive_principal_arns" {
  description = "Principals (operators' roles) allowed to assume the ingest redrive role, which runs `ingest redrive` to drain the dead-letter queue into raw. Empty: the account root."
  type        = list(string)
  default     = []
}

variable "ingest_redrive_require_mfa" {
  description = "Require MFA to assume the ingest redrive role. Set false when operators come through SSO roles."
  type        = bool
  default     = true
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic."
  type        = list(string)
  default     = []
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Per-query Athena scan cutoff of each team workgroup, in bytes (10 GiB by default: 0.05 USD per query at most)."
  type        = number
  default     = 10737418240
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group, in days."
  type        = number
  default     = 365
}

variable "raw_expiration_days" {
  description = "Days raw objects are kept: the furthest back `etl backfill` can rebuild curated data from."
  type        = number
  default     = 400
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "team_networks" {
  description = "Give each team a VPC of its own (no NAT by default; gateway endpoints for S3 and DynamoDB) where the Fargate tasks that compact its partitions run. Off: every team's tasks run in the environment's VPC."
  type        = bool
  default     = true
}

variable "team_vpc_supernet" {
  description = "Address range the teams' VPCs are carved from: a /20 per team, in the order of `teams` (a /14 holds 64 teams). Keep it apart from vpc_cidr and from the other environments' ranges."
  type        = string
  default     = "10.44.0.0/14"

  validation {
    condition     = can(cidrhost(var.team_vpc_supernet, 0)) && tonumber(split("/", var.team_vpc_supernet)[1]) <= 20
    error_message = "team_vpc_supernet must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "availability_zone_suffixes" {
  description = "Availability zones of the VPC, as letters after the region name (at least 2)."
  type        = list(string)
  default     = ["a", "b"]
}

variable "enable_flow_logs" {
  description = "Deliver VPC flow logs to the log archive bucket."
  type        = bool
  default     = true
}

variable "etl_tasks_in_private_subnets" {
  description = "Run the etl Fargate tasks in the private subnets, reached through interface endpoints for ECR, CloudWatch Logs, Glue and CloudWatch metrics (5 endpoints per AZ, about 73 USD a month for 2 AZs). When false (POC default) they run in public subnets with a public IP and no inbound rule."
  type        = bool
  default     = false
}

variable "enable_nat_gateway" {
  description = "Give the private subnets a NAT gateway (about 33 USD a month plus data). Off for the POC."
  type        = bool
  default     = false
}

variable "ingest_package_path" {
  description = "Path of the ingest Lambda zip, relative to this directory or absolute."
  type        = string
  default     = "../../../target/lambda/ingest/bootstrap.zip"
}

variable "etl_package_path" {
  description = "Path of the etl Lambda zip, relative to this directory or absolute."
  type        = string
  default     = "../../../target/lambda/etl/bootstrap.zip"
}

variable "bus_package_path" {
  description = "Path of the bus-lambda zip (the fan-out and the Kafka bridge), relative to this directory or absolute."
  type        = string
  default     = "../../../target/lambda/bus/bootstrap.zip"
}

variable "subscriptions_path" {
  description = "The bus's subscriptions document (which team receives which events), relative to this directory or absolute."
  type        = string
  default     = "subscriptions.json"
}

variable "bus_notification_emails" {
  description = "Per team, e-mail addresses that get the team's batch notifications (teams listed under notify in the subscriptions)."
  type        = map(list(string))
  default     = {}
}

variable "bus_team_principal_arns" {
  description = "Per team, the principals allowed to assume that team's bus consumer role. Teams not listed get the account root."
  type        = map(list(string))
  default     = {}
}

variable "kafka_bootstrap_servers" {
  description = "Bootstrap servers of an existing Kafka cluster for the teams' topics; empty for SQS alone (the default: MSK costs several times a team's budget)."
  type        = string
  default     = ""
}

variable "create_msk_serverless" {
  description = "Create an MSK Serverless cluster for the teams' topics (about 550 USD a month before data). Needs kafka_subnet_ids and kafka_security_group_ids."
  type        = bool
  default     = false
}

variable "kafka_subnet_ids" {
  description = "Subnets where the Kafka bridge runs (the cluster's network)."
  type        = list(string)
  default     = []
}

variable "kafka_security_group_ids" {
  description = "Security groups of the Kafka bridge, allowing it to reach the brokers."
  type        = list(string)
  default     = []
}

variable "etl_image_tag" {
  description = "Tag of the etl image in ECR used by the Fargate task (immutable tags: one per release)."
  type        = string
  default     = "0.1.0"
}

variable "ingest_rate_events_per_sec" {
  description = "Events per second the ingest function admits before answering 429 (EVENTLAKE_RATE_EVENTS_PER_SEC)."
  type        = number
  default     = 2000
}

variable "events_rate_limit" {
  description = "Steady-state requests per second on POST /v1/events, all teams together."
  type        = number
  default     = 50
}

variable "events_burst_limit" {
  description = "Burst of requests on POST /v1/events."
  type        = number
  default     = 100
}

variable "map_max_concurrency" {
  description = "Partitions compacted at the same time by one workflow run."
  type        = number
  default     = 4
}

variable "enable_guardduty" {
  description = "Create the GuardDuty detector (false when the organisation already manages GuardDuty for this account)."
  type        = bool
  default     = true
}

variable "manage_glue_catalog_encryption" {
  description = "Set the region's Glue Data Catalog encryption to SSE-KMS with the data key (only in an account dedicated to eventlake)."
  type        = bool
  default     = true
}

variable "team_kms_key_teams" {
  description = "Teams that get a KMS key of their own for their objects in the lake, their Athena results and their topic (1 USD a month each); the others use the data key."
  type        = list(string)
  default     = []
}

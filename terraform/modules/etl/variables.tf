variable "name_prefix" {
  description = "Prefix for resource names, for example \"eventlake-poc\"."
  type        = string
}

# --- Names (shared with the iam module, which scopes the roles to them) ------------------------

variable "function_name" {
  description = "Name of the etl Lambda function."
  type        = string
}

variable "ecs_cluster_name" {
  description = "Name of the ECS cluster for large partitions."
  type        = string
}

variable "ecs_task_family" {
  description = "Family of the etl Fargate task definition."
  type        = string
}

variable "ecr_repository_name" {
  description = "Name of the ECR repository for the etl image."
  type        = string
}

variable "state_machine_name" {
  description = "Name of the compaction state machine."
  type        = string
}

variable "alert_topic_name" {
  description = "Name of the SNS alert topic."
  type        = string
}

# --- Roles (iam module) -----------------------------------------------------------------------

variable "lambda_role_arn" {
  description = "ARN of the etl Lambda execution role."
  type        = string
}

variable "task_role_arn" {
  description = "ARN of the etl Fargate task role."
  type        = string
}

variable "task_execution_role_arn" {
  description = "ARN of the etl Fargate task execution role."
  type        = string
}

variable "step_functions_role_arn" {
  description = "ARN of the state machine role."
  type        = string
}

variable "scheduler_role_arn" {
  description = "ARN of the EventBridge Scheduler role."
  type        = string
}

# --- Logs (logging module) --------------------------------------------------------------------

variable "lambda_log_group_name" {
  description = "Name of the etl Lambda log group."
  type        = string
}

variable "task_log_group_name" {
  description = "Name of the etl Fargate task log group."
  type        = string
}

variable "state_machine_log_group_arn" {
  description = "ARN of the state machine log group (a name under /aws/vendedlogs/ keeps the log resource policy small)."
  type        = string
}

# --- Data (shared-services module) ------------------------------------------------------------

variable "kms_key_arn" {
  description = "ARN of the data KMS key: encrypts the alert topic, the ECR repository, the schedules and the Lambda environment."
  type        = string
}

variable "lake_url" {
  description = "The lake location the job reads and writes, s3://<lake bucket> (EVENTLAKE_LAKE): raw/, curated/ and quarantine/ are prefixes under it."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.lake_url))
    error_message = "lake_url must be an s3://bucket[/prefix] URL."
  }
}

variable "glue_database_name" {
  description = "Name of the Glue database."
  type        = string
}

variable "glue_table_name" {
  description = "Name of the curated events table."
  type        = string
}

variable "athena_workgroup_name" {
  description = "Athena workgroup the P95 check runs the saved queries in (EVENTLAKE_ATHENA_WORKGROUP): the job's own workgroup."
  type        = string
}

variable "athena_output_location" {
  description = "S3 location for the P95 check's query results (EVENTLAKE_ATHENA_OUTPUT). Null leaves it to the workgroup's enforced setting."
  type        = string
  default     = null
}

variable "athena_workgroup_names" {
  description = "Athena workgroup name per team; each gets a daily scan alarm (athena_daily_scan_alarm_bytes)."
  type        = map(string)
}

# --- Network (vpc module) ---------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC of the Fargate tasks."
  type        = string
}

variable "task_subnet_ids" {
  description = "Subnets the Fargate tasks run in."
  type        = list(string)
}

variable "team_networks" {
  description = "A network of its own per team (from the vpc module): the Fargate tasks that compact the team's partitions run in these subnets, with a security group of the team's; the other teams' tasks run in task_subnet_ids."
  type = map(object({
    vpc_id     = string
    subnet_ids = list(string)
  }))
  default = {}
}

variable "task_assign_public_ip" {
  description = "Give Fargate tasks a public IP. Needed when task_subnet_ids are public subnets (no NAT gateway and no interface endpoints); the security group still allows no inbound traffic."
  type        = bool
  default     = false
}

# --- Job settings -----------------------------------------------------------------------------

variable "asl_path" {
  description = "Path of the Amazon States Language template of the compaction workflow, rendered with templatefile (see the module README for the variables it receives). A leading \"$${path.root}\" is replaced by the root module's directory, so the default resolves to jobs/compact.asl.json at the repository root when applied from terraform/envs/<env>."
  type        = string
  # Variable defaults must be literals, so the placeholder is escaped here and expanded in main.tf.
  default = "$${path.root}/../../../jobs/compact.asl.json"
}

variable "package_path" {
  description = "Path of the etl Lambda deployment zip: the etl binary as `bootstrap` (provided.al2023, arm64; it serves the job's payloads when started without arguments) and the saved queries under `sql/`."
  type        = string
}

variable "image_tag" {
  description = "Tag of the etl image in the ECR repository used by the Fargate task definition (tags are immutable: push a new tag per release)."
  type        = string
}

variable "lambda_memory_size" {
  description = "Memory of the etl Lambda in MB."
  type        = number
  default     = 2048
}

variable "lambda_timeout" {
  description = "Timeout of the etl Lambda in seconds (a partition that needs longer must go to Fargate: the plan chooses the runner per partition)."
  type        = number
  default     = 900
}

variable "lambda_ephemeral_storage_mb" {
  description = "Size of the etl Lambda /tmp in MB."
  type        = number
  default     = 2048
}

variable "lambda_reserved_concurrency" {
  description = "Concurrency reserved for (and capping) the etl Lambda. Must be at least map_max_concurrency."
  type        = number
  default     = 10
}

variable "lambda_max_raw_mb" {
  description = "Raw data of a partition, in MiB, above which the plan gives it to the Fargate task instead of the Lambda (EVENTLAKE_LAMBDA_MAX_RAW_MB)."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_max_raw_mb >= 1 && floor(var.lambda_max_raw_mb) == var.lambda_max_raw_mb
    error_message = "lambda_max_raw_mb must be a whole number of MiB, at least 1."
  }
}

variable "task_cpu" {
  description = "CPU units of the Fargate task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "task_memory" {
  description = "Memory of the Fargate task in MiB."
  type        = number
  default     = 8192
}

variable "task_ephemeral_storage_gib" {
  description = "Ephemeral storage of the Fargate task in GiB (21-200)."
  type        = number
  default     = 50

  validation {
    condition     = var.task_ephemeral_storage_gib >= 21 && var.task_ephemeral_storage_gib <= 200
    error_message = "task_ephemeral_storage_gib must be between 21 and 200."
  }
}

variable "map_max_concurrency" {
  description = "Partitions compacted at the same time by one run (the Map state's concurrency, passed to the workflow template)."
  type        = number
  default     = 4

  validation {
    condition     = var.map_max_concurrency >= 1 && floor(var.map_max_concurrency) == var.map_max_concurrency
    error_message = "map_max_concurrency must be a whole number of at least 1 (0 would mean unbounded)."
  }
}

variable "plan_inline_max" {
  description = "The most partitions a plan hands the workflow inline (EVENTLAKE_PLAN_INLINE_MAX). A larger plan (a backfill of months or of many teams) is written to the lake under _workflow/plans/ and fans out with a Distributed Map, each partition a child execution: the inline Map's 256 KiB state and 25,000 history events no longer bound it."
  type        = number
  default     = 200

  validation {
    condition     = var.plan_inline_max >= 1 && var.plan_inline_max <= 1000 && floor(var.plan_inline_max) == var.plan_inline_max
    error_message = "plan_inline_max must be a whole number from 1 to 1000 (past that an inline plan nears the 256 KiB state limit)."
  }
}

variable "map_run_max_concurrency" {
  description = "Partitions compacted at the same time by a Distributed Map run (large plans). Must stay within lambda_reserved_concurrency."
  type        = number
  default     = 8

  validation {
    condition     = var.map_run_max_concurrency >= 1 && var.map_run_max_concurrency <= 10000 && floor(var.map_run_max_concurrency) == var.map_run_max_concurrency
    error_message = "map_run_max_concurrency must be a whole number from 1 to 10000."
  }
}

variable "map_run_tolerated_failures" {
  description = "Failed partitions a Distributed Map run tolerates before it stops as a whole (a systematic fault: bad credentials, a broken build). Below it the other partitions carry on and the alert names the failed ones."
  type        = number
  default     = 10

  validation {
    condition     = var.map_run_tolerated_failures >= 0 && floor(var.map_run_tolerated_failures) == var.map_run_tolerated_failures
    error_message = "map_run_tolerated_failures must be a whole number, 0 or more."
  }
}

variable "frequent_schedule_expression" {
  description = "Schedule of the frequent run (today's partitions). The cadence is the cost knob: without incremental_compaction every run re-reads all of the day's raw objects so far, and each raw object is read about N/2 + 1 times for N runs a day (7 times every two hours, 49 every 15 minutes; docs/operations.md, section 4); with it, about twice. Curated data is up to one interval old (two hours by default); raw data is durable within the RPO whatever the cadence."
  type        = string
  default     = "rate(2 hours)"
}

variable "nightly_schedule_expression" {
  description = "Schedule of the nightly run (yesterday's partitions, final compaction)."
  type        = string
  default     = "cron(30 1 * * ? *)"
}

variable "p95_check_on_frequent_runs" {
  description = "Also run the P95 check of the saved queries (each query `runs` times on Athena) in the frequent runs, not only in the nightly one. Off by default: a check every frequent run (12 a day at the default cadence) costs Athena scans and Lambda time for a budget that changes slowly."
  type        = bool
  default     = false
}

variable "schedule_timezone" {
  description = "Time zone of the schedule expressions. Partitions are UTC days, so keep UTC unless the nightly run must follow local time."
  type        = string
  default     = "UTC"
}

variable "tracing_mode" {
  description = "X-Ray tracing mode of the etl Lambda: Active or PassThrough."
  type        = string
  default     = "Active"
}

variable "log_level" {
  description = "Log filter of the job (ETL_LOG, tracing env-filter syntax)."
  type        = string
  default     = "info"
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "athena_daily_scan_alarm_bytes" {
  description = "Alarm when one team's workgroup scans more than this many bytes in 24 hours (20 GiB is 0.10 USD a day). The per-query cutoff stops runaway queries; this catches many ordinary ones adding up. 0 disables the alarms."
  type        = number
  default     = 21474836480
}

variable "ecr_keep_images" {
  description = "Number of images the ECR lifecycle policy keeps."
  type        = number
  default     = 10
}

variable "teams" {
  description = "Teams on the platform: each gets its alarms on quarantine share and commit lag, and a dashboard."
  type        = list(string)
  default     = []
}

variable "freshness_alarm_hours" {
  description = "Alarm when no compaction run succeeded for this many hours, or a commit took in raw data this old (three frequent intervals by default)."
  type        = number
  default     = 6

  validation {
    condition     = var.freshness_alarm_hours >= 1 && var.freshness_alarm_hours <= 24 && floor(var.freshness_alarm_hours) == var.freshness_alarm_hours
    error_message = "freshness_alarm_hours must be a whole number from 1 to 24 (a CloudWatch alarm looks back at most a day)."
  }
}

variable "quarantine_share_alarm_percent" {
  description = "Alarm when more than this share of a team's partition lines is quarantined in two of four hours."
  type        = number
  default     = 5
}

variable "incremental_compaction" {
  description = "Frequent runs read only the raw objects added since a partition's committed version and append their rows (EVENTLAKE_INCREMENTAL), falling back to a full compaction when that would differ; a partition past 16 files is compacted in full. With it, a 15-minute frequent_schedule_expression stays within budget (docs/operations.md, section 4)."
  type        = bool
  default     = false
}

variable "lake_team_kms_keys" {
  description = "Teams whose objects in the lake are written under a KMS key of their own (team_kms_key_teams), to that key's ARN (the shared-services output lake_team_kms_keys; EVENTLAKE_TEAM_KMS_KEYS). Other teams' objects keep the bucket's default, the data key."
  type        = map(string)
  default     = {}
}

variable "name_prefix" {
  description = "Prefix for every role name, for example \"eventlake-poc\"."
  type        = string
}

variable "teams" {
  description = "Teams; each gets an analyst role."
  type        = list(string)
}

# --- Resources the roles act on. Names of resources created by other modules are passed in (and
# --- turned into ARNs here) so that roles and policies can exist before those resources do.

variable "data_kms_key_arn" {
  description = "ARN of the lake data KMS key (buckets, queue, tokens parameter, topic, schedules, Glue catalog)."
  type        = string
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket (raw/, curated/, quarantine/ and _ingest/ are prefixes in it; every policy here is scoped to the prefixes a role needs)."
  type        = string
}

variable "athena_results_bucket_arn" {
  description = "ARN of the Athena results bucket."
  type        = string
}

variable "glue_database_name" {
  description = "Name of the Glue database."
  type        = string
}

variable "glue_table_name" {
  description = "Name of the curated events table."
  type        = string
  default     = "events"
}

variable "athena_workgroup_names" {
  description = "Athena workgroup name per team (the analyst roles)."
  type        = map(string)
}

variable "job_athena_workgroup_name" {
  description = "Name of the etl job's Athena workgroup, where the P95 check runs the saved queries."
  type        = string
}

variable "job_athena_results_prefix" {
  description = "Prefix of the job's query results in the Athena results bucket (the job workgroup's output location)."
  type        = string
  default     = "etl/"
}

variable "ingest_function_name" {
  description = "Name of the ingest Lambda function (used only in descriptions and tags)."
  type        = string
}

variable "ledger_table_name" {
  description = "Name of the bus's DynamoDB ledger table, where ingest records every accepted batch (its commit point)."
  type        = string
}

variable "ingest_dlq_name" {
  description = "Name of the ingest SQS dead-letter queue."
  type        = string
}

variable "ingest_tokens_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the team token hashes (created by the ingest module)."
  type        = string
}

variable "ingest_log_group_arn" {
  description = "ARN of the ingest function's log group."
  type        = string
}

variable "etl_function_name" {
  description = "Name of the etl Lambda function."
  type        = string
}

variable "etl_log_group_arn" {
  description = "ARN of the etl function's log group."
  type        = string
}

variable "etl_task_log_group_arn" {
  description = "ARN of the log group of the etl Fargate task."
  type        = string
}

variable "ecs_cluster_name" {
  description = "Name of the ECS cluster that runs the etl Fargate task."
  type        = string
}

variable "ecs_task_family" {
  description = "Family of the etl Fargate task definition."
  type        = string
}

variable "ecr_repository_name" {
  description = "Name of the ECR repository holding the etl image."
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

variable "cloudtrail_log_group_name" {
  description = "Name of the log group that receives the CloudTrail trail (created by the security module)."
  type        = string
}

# --- Who may assume the per-team and operator roles.

variable "analyst_principal_arns" {
  description = "Per team, the IAM principals (roles, users, or SSO permission-set roles) allowed to assume that team's analyst role. A team not listed gets the account root, which lets any principal of this account whose own policy allows sts:AssumeRole on the role."
  type        = map(list(string))
  default     = {}
}

variable "analyst_require_mfa" {
  description = "Require aws:MultiFactorAuthPresent when assuming an analyst role. Turn off when the principals are federated (SSO) roles, whose sessions do not carry that key."
  type        = bool
  default     = true
}

variable "ingest_redrive_principal_arns" {
  description = "IAM principals (operators' roles or users) allowed to assume the ingest redrive role, which drains the dead-letter queue into raw/ of the lake bucket. Empty: the account root, which lets any principal of this account whose own policy allows sts:AssumeRole on the role."
  type        = list(string)
  default     = []
}

variable "ingest_redrive_require_mfa" {
  description = "Require aws:MultiFactorAuthPresent when assuming the ingest redrive role. Turn off when the principals are federated (SSO) roles."
  type        = bool
  default     = true
}

variable "team_kms_key_arns" {
  description = "Per team, the KMS key of its Athena results (the shared-services output team_kms_key_arns); a team not named uses the data key."
  type        = map(string)
  default     = {}
}

variable "lake_team_kms_keys" {
  description = "Teams whose objects in the lake are written under a KMS key of their own (team_kms_key_teams), to that key's ARN (the shared-services output lake_team_kms_keys; EVENTLAKE_TEAM_KMS_KEYS). Other teams' objects keep the bucket's default, the data key."
  type        = map(string)
  default     = {}
}

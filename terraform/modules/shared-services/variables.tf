variable "name_prefix" {
  description = "Prefix for every resource name, for example \"eventlake-poc\". Lower case letters, digits and hyphens."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name_prefix))
    error_message = "name_prefix must be 3-31 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "teams" {
  description = "Teams that send events and query them. Each gets an Athena workgroup and a results prefix. Names follow the event contract: [a-z][a-z0-9_-]{0,31}."
  type        = list(string)

  validation {
    condition     = length(var.teams) > 0 && alltrue([for t in var.teams : can(regex("^[a-z][a-z0-9_-]{0,31}$", t))])
    error_message = "teams must be a non-empty list of names matching [a-z][a-z0-9_-]{0,31}."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before a scheduled KMS key deletion takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "force_destroy" {
  description = "Allow Terraform to delete non-empty buckets. Keep false outside throw-away test accounts."
  type        = bool
  default     = false
}

variable "raw_standard_ia_after_days" {
  description = "Days after which raw objects of 128 KiB or more move to STANDARD_IA."
  type        = number
  default     = 30
}

variable "raw_glacier_ir_after_days" {
  description = "Days after which raw objects of 128 KiB or more move to GLACIER_IR (still readable at once by a backfill)."
  type        = number
  default     = 90
}

variable "raw_expiration_days" {
  description = "Days after which raw objects (and the ingest idempotency markers under _ingest/) expire. This is also the furthest back a backfill can rebuild curated data from."
  type        = number
  default     = 400
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent (overwritten or deleted) object versions expire under raw/, _ingest/ and quarantine/ of the lake bucket."
  type        = number
  default     = 30
}

variable "curated_noncurrent_version_expiration_days" {
  description = "Days after which curated versions removed by `etl gc` (noncurrent objects under curated/ of the lake bucket) expire. Short on purpose: today's partition is rewritten by every frequent run (every two hours by default), and curated data can always be rebuilt from raw."
  type        = number
  default     = 3
}

variable "quarantine_expiration_days" {
  description = "Days after which quarantined lines (quarantine/ of the lake bucket) expire."
  type        = number
  default     = 180
}

variable "athena_results_expiration_days" {
  description = "Days after which Athena query results expire."
  type        = number
  default     = 30
}

variable "access_logs_expiration_days" {
  description = "Days after which S3 server access log objects expire."
  type        = number
  default     = 365
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Per-query scan limit of each team workgroup and of the job workgroup, in bytes (Athena minimum is 10 MB). A query that would scan more is cancelled."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.bytes_scanned_cutoff_per_query >= 10485760
    error_message = "bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB)."
  }
}

variable "glue_database_name" {
  description = "Name of the Glue Data Catalog database. Defaults to name_prefix with '-' replaced by '_'."
  type        = string
  default     = null
}

variable "manage_glue_catalog_encryption" {
  description = "Set the account-and-region-wide Glue Data Catalog encryption settings to SSE-KMS with the data key. Only enable in an account dedicated to this platform: the setting is shared by every catalog user of the region."
  type        = bool
  default     = true
}

variable "create_probe_queries" {
  description = "Create one saved (named) Athena query per team in its workgroup: a latency probe over today's partition that analysts can run or copy. The P95 check of the etl job runs the saved queries of sql/ in the job workgroup, not these."
  type        = bool
  default     = true
}

variable "default_team_monthly_budget_usd" {
  description = "Monthly AWS Budgets limit, in USD, of a team not named in team_monthly_budget_usd (the platform's target is 10-15 EUR per team)."
  type        = number
  default     = 16
}

variable "team_monthly_budget_usd" {
  description = "Per team, its monthly AWS Budgets limit in USD; alerts at 80% of actual and 100% of forecast cost go to the team's topic."
  type        = map(number)
  default     = {}
}

variable "team_alert_emails" {
  description = "Per team, e-mail addresses subscribed to the team's topic (budget alerts); each must confirm."
  type        = map(list(string))
  default     = {}
}

variable "team_kms_key_teams" {
  description = "Teams that get a KMS key of their own, for their objects in the lake, their Athena query results and their topic (1 USD a month each); the others use the data key."
  type        = list(string)
  default     = []
}

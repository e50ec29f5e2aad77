variable "name_prefix" {
  description = "Prefix for resource names, for example \"eventlake-poc\"."
  type        = string
}

variable "trail_name" {
  description = "Name of the CloudTrail trail (must match the name the logging module allows into the archive bucket)."
  type        = string
}

variable "archive_bucket_name" {
  description = "Name of the log archive bucket that receives the trail's log files (logging module)."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the logs KMS key that encrypts the trail's log files and its log group (its policy must allow cloudtrail.amazonaws.com and CloudWatch Logs)."
  type        = string
}

variable "cloudwatch_log_group_name" {
  description = "Name of the CloudWatch log group created here that also receives the trail (for metric filters and quick searches). The iam module's CloudTrail role is scoped to this name."
  type        = string
}

variable "cloudwatch_log_retention_in_days" {
  description = "Retention of the trail's log group, in days (the archive bucket keeps the log files longer)."
  type        = number
  default     = 365
}

variable "cloudwatch_logs_role_arn" {
  description = "ARN of the role CloudTrail assumes to write into the log group (iam module)."
  type        = string
}

variable "s3_data_event_bucket_arns" {
  description = "Buckets whose object-level API calls (data events) the trail records. Empty by default: at POC volume each bucket adds about 0.10 USD per 100,000 requests."
  type        = list(string)
  default     = []
}

variable "enable_guardduty" {
  description = "Create and enable a GuardDuty detector in this region. Set false when the organisation already manages GuardDuty for the account (a region holds one detector)."
  type        = bool
  default     = true
}

variable "guardduty_finding_publishing_frequency" {
  description = "How often GuardDuty publishes updated findings to EventBridge: FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS."
  type        = string
  default     = "FIFTEEN_MINUTES"

  validation {
    condition     = contains(["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"], var.guardduty_finding_publishing_frequency)
    error_message = "guardduty_finding_publishing_frequency must be FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS."
  }
}

variable "guardduty_features" {
  description = "GuardDuty protection plans and their status. The defaults watch what this platform runs (S3 data events, Lambda network activity) and leave off plans for services it does not use."
  type        = map(string)
  default = {
    S3_DATA_EVENTS         = "ENABLED"
    LAMBDA_NETWORK_LOGS    = "ENABLED"
    EBS_MALWARE_PROTECTION = "DISABLED"
    EKS_AUDIT_LOGS         = "DISABLED"
    RDS_LOGIN_EVENTS       = "DISABLED"
    RUNTIME_MONITORING     = "DISABLED"
  }

  validation {
    condition     = alltrue([for s in values(var.guardduty_features) : contains(["ENABLED", "DISABLED"], s)])
    error_message = "Each guardduty_features value must be ENABLED or DISABLED."
  }
}

variable "enable_finding_alerts" {
  description = "Forward GuardDuty findings of severity 7 or more (HIGH and CRITICAL) to alert_topic_arn."
  type        = bool
  default     = true
}

variable "alert_topic_arn" {
  description = "SNS topic that receives HIGH and CRITICAL GuardDuty findings (its policy must let events.amazonaws.com publish). Required when enable_finding_alerts is true."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix for every resource name, for example \"eventlake-poc\"."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the log groups and the archive bucket (its key policy must allow CloudWatch Logs, CloudTrail and log delivery)."
  type        = string
}

variable "log_groups" {
  description = "CloudWatch log groups to create: map of a short key (used in outputs) to the full log group name."
  type        = map(string)
}

variable "retention_in_days" {
  description = "Retention of every log group, in days. Must be one of the values CloudWatch Logs accepts."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.retention_in_days)
    error_message = "retention_in_days must be a retention period that CloudWatch Logs accepts."
  }
}

variable "access_logs_bucket_name" {
  description = "Name of the S3 server access log bucket that receives the archive bucket's access logs."
  type        = string
}

variable "cloudtrail_name" {
  description = "Name of the CloudTrail trail allowed to write into the archive bucket (the trail itself lives in the security module)."
  type        = string
}

variable "archive_standard_ia_after_days" {
  description = "Days after which archived log objects of 128 KiB or more move to STANDARD_IA."
  type        = number
  default     = 30
}

variable "archive_glacier_ir_after_days" {
  description = "Days after which archived log objects of 128 KiB or more move to GLACIER_IR."
  type        = number
  default     = 90
}

variable "archive_expiration_days" {
  description = "Days after which archived log objects (CloudTrail, VPC flow logs) expire."
  type        = number
  default     = 400
}

variable "force_destroy" {
  description = "Allow Terraform to delete the archive bucket when it is not empty."
  type        = bool
  default     = false
}

variable "archived_log_groups" {
  description = "Keys of log_groups whose events are also copied into the log archive bucket (under logs/, through one Firehose stream), where the archive lifecycle keeps them after the groups' own retention. Empty creates no stream."
  type        = list(string)
  default     = []
}

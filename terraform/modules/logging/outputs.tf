output "log_group_names" {
  description = "Log group names, by the keys of var.log_groups."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}

output "log_group_arns" {
  description = "Log group ARNs (without the trailing \":*\"), by the keys of var.log_groups."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.arn }
}

# Both bucket outputs wait for the bucket policy and encryption settings, so that a trail or flow
# log created from them finds a bucket it is allowed to write into.
output "archive_bucket_name" {
  description = "Name of the log archive bucket (CloudTrail and VPC flow logs)."
  value       = aws_s3_bucket.archive.id

  depends_on = [
    aws_s3_bucket_policy.archive,
    aws_s3_bucket_server_side_encryption_configuration.archive,
  ]
}

output "archive_bucket_arn" {
  description = "ARN of the log archive bucket."
  value       = aws_s3_bucket.archive.arn

  depends_on = [
    aws_s3_bucket_policy.archive,
    aws_s3_bucket_server_side_encryption_configuration.archive,
  ]
}

output "log_archive_stream_name" {
  description = "Name of the Firehose stream that copies the archived log groups into the archive bucket (null when archived_log_groups is empty)."
  value       = local.archive_enabled ? aws_kinesis_firehose_delivery_stream.archive[0].name : null
}

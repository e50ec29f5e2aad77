output "data_kms_key_arn" {
  description = "ARN of the KMS key for lake data (buckets, queue, topic, images, schedules, Athena results, Glue catalog)."
  value       = aws_kms_key.data.arn
}

output "logs_kms_key_arn" {
  description = "ARN of the KMS key for CloudWatch Logs, CloudTrail and the log archive bucket."
  value       = aws_kms_key.logs.arn
}

output "bucket_names" {
  description = "Data bucket names by role: raw, curated, quarantine, athena-results."
  value       = { for k, b in aws_s3_bucket.data : k => b.id }
}

output "bucket_arns" {
  description = "Data bucket ARNs by role: raw, curated, quarantine, athena-results."
  value       = { for k, b in aws_s3_bucket.data : k => b.arn }
}

output "raw_bucket_name" {
  description = "Name of the raw landing bucket (keys raw/team=<team>/dt=<date>/hour=<HH>/<batch_id>.ndjson.gz)."
  value       = aws_s3_bucket.data["raw"].id
}

output "raw_bucket_arn" {
  description = "ARN of the raw landing bucket."
  value       = aws_s3_bucket.data["raw"].arn
}

output "curated_bucket_name" {
  description = "Name of the curated bucket (keys curated/events/team=<team>/dt=<date>/v=<run>/part-*.parquet)."
  value       = aws_s3_bucket.data["curated"].id
}

output "curated_bucket_arn" {
  description = "ARN of the curated bucket."
  value       = aws_s3_bucket.data["curated"].arn
}

output "quarantine_bucket_name" {
  description = "Name of the quarantine bucket (keys quarantine/events/team=<team>/dt=<date>/v=<run>/quarantine.ndjson)."
  value       = aws_s3_bucket.data["quarantine"].id
}

output "quarantine_bucket_arn" {
  description = "ARN of the quarantine bucket."
  value       = aws_s3_bucket.data["quarantine"].arn
}

output "athena_results_bucket_name" {
  description = "Name of the Athena results bucket (one team=<team>/ prefix per workgroup)."
  value       = aws_s3_bucket.data["athena-results"].id
}

output "athena_results_bucket_arn" {
  description = "ARN of the Athena results bucket."
  value       = aws_s3_bucket.data["athena-results"].arn
}

output "access_logs_bucket_name" {
  description = "Name of the S3 server access log bucket."
  value       = aws_s3_bucket.access_logs.id
}

output "access_logs_bucket_arn" {
  description = "ARN of the S3 server access log bucket."
  value       = aws_s3_bucket.access_logs.arn
}

output "glue_catalog_arn" {
  description = "ARN of the account's Glue Data Catalog in this region."
  value       = "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog"
}

output "glue_database_name" {
  description = "Name of the Glue database."
  value       = aws_glue_catalog_database.this.name
}

output "glue_database_arn" {
  description = "ARN of the Glue database."
  value       = aws_glue_catalog_database.this.arn
}

output "glue_table_name" {
  description = "Name of the curated events table."
  value       = aws_glue_catalog_table.events.name
}

output "glue_table_arn" {
  description = "ARN of the curated events table."
  value       = aws_glue_catalog_table.events.arn
}

output "athena_workgroup_names" {
  description = "Athena workgroup name per team."
  value       = { for t, wg in aws_athena_workgroup.team : t => wg.name }
}

output "athena_workgroup_arns" {
  description = "Athena workgroup ARN per team."
  value       = { for t, wg in aws_athena_workgroup.team : t => wg.arn }
}

output "athena_probe_query_ids" {
  description = "Id of the saved P95 probe query per team (empty when create_probe_queries is false)."
  value       = { for t, q in aws_athena_named_query.probe : t => q.id }
}

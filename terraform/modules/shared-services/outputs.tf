output "data_kms_key_arn" {
  description = "ARN of the KMS key for lake data (buckets, queue, topic, images, schedules, Athena results, Glue catalog)."
  value       = aws_kms_key.data.arn
}

output "logs_kms_key_arn" {
  description = "ARN of the KMS key for CloudWatch Logs, CloudTrail and the log archive bucket."
  value       = aws_kms_key.logs.arn
}

output "bucket_names" {
  description = "Data bucket names by role: lake, athena-results."
  value       = { for k, b in aws_s3_bucket.data : k => b.id }
}

output "bucket_arns" {
  description = "Data bucket ARNs by role: lake, athena-results."
  value       = { for k, b in aws_s3_bucket.data : k => b.arn }
}

output "lake_bucket_name" {
  description = "Name of the lake bucket: raw/team=<team>/dt=<date>/hour=<HH>/<batch_id>.ndjson.gz, curated/events/team=<team>/dt=<date>/v=<run>/, quarantine/events/team=<team>/dt=<date>/v=<run>/, _ingest/ (idempotency markers)."
  value       = aws_s3_bucket.data["lake"].id
}

output "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.data["lake"].arn
}

output "lake_url" {
  description = "The lake location every component is configured with (EVENTLAKE_LAKE): s3://<lake bucket>."
  value       = local.lake_url
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

output "job_athena_workgroup_name" {
  description = "Name of the etl job's Athena workgroup (the P95 check runs there)."
  value       = aws_athena_workgroup.job.name
}

output "job_athena_workgroup_arn" {
  description = "ARN of the etl job's Athena workgroup."
  value       = aws_athena_workgroup.job.arn
}

output "job_athena_output_location" {
  description = "S3 location of the etl job's Athena results (enforced by its workgroup)."
  value       = "s3://${aws_s3_bucket.data["athena-results"].id}/${local.job_results_root}"
}

output "team_topic_arns" {
  description = "Per team, the ARN of its notification topic (budget alerts)."
  value       = { for t, topic in aws_sns_topic.team : t => topic.arn }
}

output "team_budget_names" {
  description = "Per team, the name of its AWS Budgets budget."
  value       = { for t, b in aws_budgets_budget.team : t => b.name }
}

output "team_kms_key_arns" {
  description = "Per team, the KMS key of its Athena results and topic: its own key when listed in team_kms_key_teams, else the data key."
  value       = local.team_key_arns
}

output "lake_team_kms_keys" {
  description = "The teams of team_kms_key_teams, each to its own key: the writers put the team's objects in the lake under it (EVENTLAKE_TEAM_KMS_KEYS)."
  value       = { for t in local.team_key_teams : t => aws_kms_key.team[t].arn }
}

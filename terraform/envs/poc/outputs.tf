output "region" {
  description = "Region the platform runs in."
  value       = var.region
}

output "ingest_endpoint" {
  description = "Base URL of the ingest API: POST <url>/v1/events (Authorization: Bearer <team token>), GET <url>/healthz."
  value       = module.ingest.api_endpoint
}

output "ingest_tokens_parameter_name" {
  description = "SSM SecureString parameter holding the SHA-256 hashes of the team tokens (write it with the output of `ingest token create`)."
  value       = module.ingest.tokens_parameter_name
}

output "ingest_redrive_role_arn" {
  description = "Role an operator assumes to run `ingest redrive` (drain the ingest dead-letter queue into raw)."
  value       = module.iam.ingest_redrive_role_arn
}

output "analyst_role_arns" {
  description = "Per team, the role to assume for querying in Athena."
  value       = module.iam.analyst_role_arns
}

output "athena_workgroups" {
  description = "Per team, the Athena workgroup analysts must use."
  value       = module.shared.athena_workgroup_names
}

output "glue_database" {
  description = "Glue database holding the events table."
  value       = module.shared.glue_database_name
}

output "glue_table" {
  description = "Name of the curated events table."
  value       = module.shared.glue_table_name
}

output "lake_url" {
  description = "The lake location (EVENTLAKE_LAKE) for `etl` and `ingest` commands run by operators: s3://<lake bucket>."
  value       = module.shared.lake_url
}

output "buckets" {
  description = "Buckets by role: lake (raw/, curated/, quarantine/, _ingest/), athena-results, access-logs and log-archive."
  value = merge(module.shared.bucket_names, {
    access-logs = module.shared.access_logs_bucket_name
    log-archive = module.logging.archive_bucket_name
  })
}

output "ingest_dlq_url" {
  description = "URL of the ingest dead-letter queue (replay source when S3 writes failed)."
  value       = module.ingest.dlq_url
}

output "state_machine_arn" {
  description = "ARN of the compaction state machine (start it by hand for a backfill run)."
  value       = module.etl.state_machine_arn
}

output "etl_function_name" {
  description = "Name of the etl Lambda function."
  value       = module.etl.function_name
}

output "etl_ecr_repository_url" {
  description = "ECR repository for the etl Fargate image."
  value       = module.etl.ecr_repository_url
}

output "alert_topic_arn" {
  description = "SNS topic that receives every alarm, workflow alert and high-severity GuardDuty finding."
  value       = module.etl.alert_topic_arn
}

output "data_kms_key_arn" {
  description = "KMS key of the lake data."
  value       = module.shared.data_kms_key_arn
}

output "logs_kms_key_arn" {
  description = "KMS key of logs and the audit trail."
  value       = module.shared.logs_kms_key_arn
}

output "vpc_id" {
  description = "VPC of the Fargate tasks."
  value       = module.vpc.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets, one per AZ."
  value       = module.vpc.private_subnet_ids
}

output "cloudtrail_arn" {
  description = "ARN of the multi-region trail."
  value       = module.security.trail_arn
}

output "ledger_table_name" {
  description = "The bus's ledger table (ingest's commit point; its stream feeds the fan-out)."
  value       = module.bus.ledger_table_name
}

output "bus_queue_prefix" {
  description = "A receiving team's queue is <prefix><team>.fifo: EVENTLAKE_BUS_QUEUE_PREFIX for `bus consume`."
  value       = module.bus.queue_prefix
}

output "bus_team_role_arns" {
  description = "Per receiving team, the role its consumers assume to read its queue and topic."
  value       = module.bus.team_role_arns
}

output "bus_notification_topic_arn" {
  description = "SNS topic of the per-batch notifications."
  value       = module.bus.notification_topic_arn
}

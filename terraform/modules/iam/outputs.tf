# Role ARN outputs wait for the role's policies: a Lambda, state machine or schedule created from
# them can act (and pass the service's own permission checks) from its first second.

output "ingest_role_arn" {
  description = "ARN of the ingest Lambda execution role."
  value       = aws_iam_role.ingest.arn
  depends_on  = [aws_iam_role_policy.ingest, aws_iam_role_policy.raw_batches, aws_iam_role_policy.lambda_runtime]
}

output "etl_job_role_arn" {
  description = "ARN of the etl Lambda execution role."
  value       = aws_iam_role.etl_job.arn
  depends_on  = [aws_iam_role_policy.etl_job_data, aws_iam_role_policy.lake_data_key, aws_iam_role_policy.lambda_runtime]
}

output "etl_task_role_arn" {
  description = "ARN of the etl Fargate task role."
  value       = aws_iam_role.etl_task.arn
  depends_on  = [aws_iam_role_policy.etl_task_data, aws_iam_role_policy.lake_data_key]
}

output "etl_task_execution_role_arn" {
  description = "ARN of the etl Fargate task execution role."
  value       = aws_iam_role.etl_task_execution.arn
  depends_on  = [aws_iam_role_policy.etl_task_execution]
}

output "step_functions_role_arn" {
  description = "ARN of the compaction state machine role."
  value       = aws_iam_role.step_functions.arn
  depends_on  = [aws_iam_role_policy.step_functions]
}

output "scheduler_role_arn" {
  description = "ARN of the EventBridge Scheduler role."
  value       = aws_iam_role.scheduler.arn
  depends_on  = [aws_iam_role_policy.scheduler]
}

output "cloudtrail_logs_role_arn" {
  description = "ARN of the role CloudTrail uses to write into CloudWatch Logs."
  value       = aws_iam_role.cloudtrail_logs.arn
  depends_on  = [aws_iam_role_policy.cloudtrail_logs]
}

output "analyst_role_arns" {
  description = "Analyst role ARN per team."
  value       = { for t, r in aws_iam_role.analyst : t => r.arn }
  depends_on  = [aws_iam_role_policy.analyst, aws_iam_role_policy.lake_data_key]
}

output "ingest_redrive_role_arn" {
  description = "ARN of the operator role that runs `ingest redrive` (drains the ingest dead-letter queue into raw)."
  value       = aws_iam_role.ingest_redrive.arn
  depends_on  = [aws_iam_role_policy.ingest_redrive, aws_iam_role_policy.raw_batches]
}

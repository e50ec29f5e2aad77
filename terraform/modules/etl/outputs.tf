output "function_name" {
  description = "Name of the etl Lambda function."
  value       = aws_lambda_function.etl.function_name
}

output "function_arn" {
  description = "ARN of the etl Lambda function."
  value       = aws_lambda_function.etl.arn
}

output "ecr_repository_url" {
  description = "URL of the ECR repository for the etl image (push <url>:<image_tag>)."
  value       = aws_ecr_repository.etl.repository_url
}

output "ecs_cluster_arn" {
  description = "ARN of the ECS cluster for large partitions."
  value       = aws_ecs_cluster.this.arn
}

output "ecs_task_definition_arn" {
  description = "ARN (with revision) of the etl Fargate task definition."
  value       = aws_ecs_task_definition.etl.arn
}

output "task_security_group_id" {
  description = "Security group of the etl Fargate tasks."
  value       = aws_security_group.task.id
}

output "state_machine_arn" {
  description = "ARN of the compaction state machine."
  value       = aws_sfn_state_machine.compact.arn
}

output "alert_topic_arn" {
  description = "ARN of the SNS alert topic (also used by the ingest alarms)."
  value       = aws_sns_topic.alerts.arn
}

output "schedule_arns" {
  description = "ARNs of the frequent and nightly schedules."
  value = {
    frequent = aws_scheduler_schedule.frequent.arn
    nightly  = aws_scheduler_schedule.nightly.arn
  }
}

output "alarm_arns" {
  description = "ARNs of the workflow alarms."
  value = {
    executions_failed    = aws_cloudwatch_metric_alarm.executions_failed.arn
    executions_timed_out = aws_cloudwatch_metric_alarm.executions_timed_out.arn
  }
}

output "athena_scan_alarm_arns" {
  description = "ARNs of the per-team Athena daily scan alarms."
  value       = { for t, a in aws_cloudwatch_metric_alarm.athena_daily_scan : t => a.arn }
}

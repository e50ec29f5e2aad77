output "ledger_table_name" {
  description = "Name of the ledger table (ingest's EVENTLAKE_LEDGER_TABLE)."
  value       = aws_dynamodb_table.ledger.name
}

output "ledger_table_arn" {
  description = "ARN of the ledger table."
  value       = aws_dynamodb_table.ledger.arn
}

output "ledger_stream_arn" {
  description = "ARN of the ledger's stream (the bus's outbox)."
  value       = aws_dynamodb_table.ledger.stream_arn
}

output "queue_prefix" {
  description = "A receiving team's queue is <queue_prefix><team>.fifo (EVENTLAKE_BUS_QUEUE_PREFIX)."
  value       = local.queue_prefix
}

output "team_queue_urls" {
  description = "Per receiving team, the URL of its queue."
  value       = { for t, q in aws_sqs_queue.team : t => q.url }
}

output "team_dlq_urls" {
  description = "Per receiving team, the URL of its DLQ."
  value       = { for t, q in aws_sqs_queue.team_dlq : t => q.url }
}

output "team_role_arns" {
  description = "Per receiving team, the consumer role that reads its queue and topic."
  value       = { for t, r in aws_iam_role.team : t => r.arn }
}

output "notification_topic_arn" {
  description = "SNS topic of the batch notifications (filter on the \"to\" message attribute)."
  value       = aws_sns_topic.notifications.arn
}

output "kafka_bootstrap_servers" {
  description = "Bootstrap servers of the teams' topics (empty without Kafka)."
  value       = local.kafka_bootstrap
}

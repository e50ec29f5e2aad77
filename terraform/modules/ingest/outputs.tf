output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the HTTP API (POST <endpoint>/v1/events, GET <endpoint>/healthz)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_execution_arn" {
  description = "Execution ARN of the HTTP API (source of the Lambda invoke permission)."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "function_name" {
  description = "Name of the ingest Lambda function."
  value       = aws_lambda_function.ingest.function_name
}

output "function_arn" {
  description = "ARN of the ingest Lambda function."
  value       = aws_lambda_function.ingest.arn
}

output "dlq_arn" {
  description = "ARN of the ingest dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the ingest dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "tokens_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the team token hashes (operators write its value)."
  value       = aws_ssm_parameter.tokens.name
}

output "tokens_parameter_arn" {
  description = "ARN of the SSM parameter holding the team token hashes."
  value       = aws_ssm_parameter.tokens.arn
}

output "alarm_arns" {
  description = "ARNs of the ingest alarms (api_5xx, dlq_depth, lambda_errors)."
  value = {
    api_5xx       = aws_cloudwatch_metric_alarm.api_5xx.arn
    dlq_depth     = aws_cloudwatch_metric_alarm.dlq_depth.arn
    lambda_errors = aws_cloudwatch_metric_alarm.lambda_errors.arn
  }
}

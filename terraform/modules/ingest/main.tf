locals {
  post_events_route = "POST /v1/events"
  healthz_route     = "GET /healthz"
}

# ---------------------------------------------------------------------------------------------
# Dead-letter queue: a batch that cannot be written to S3 is sent here before the client gets
# its 2xx, so an accepted batch is always durable in one of the two.
# ---------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "dlq" {
  name                              = var.dlq_name
  message_retention_seconds         = var.dlq_message_retention_seconds
  visibility_timeout_seconds        = 300
  max_message_size                  = 262144
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # Every SQS action is denied over plain HTTP: a wildcard is the point of this statement.
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# ---------------------------------------------------------------------------------------------
# Team tokens: SHA-256 hashes of the per-team bearer tokens, one SecureString per deployment.
# Terraform creates the parameter with an empty list and never touches its value again: operators
# write the real hashes (the output of `ingest token create`), and a later apply keeps them.
# ---------------------------------------------------------------------------------------------

resource "aws_ssm_parameter" "tokens" {
  name        = var.tokens_parameter_name
  description = "SHA-256 hashes of the per-team ingest bearer tokens (written by operators, not by Terraform)"
  type        = "SecureString"
  tier        = "Standard" # up to 4 KB of value (a few dozen token entries), no charge
  key_id      = var.kms_key_arn
  value       = jsonencode({ tokens = [] })

  lifecycle {
    ignore_changes = [value]
  }
}

# ---------------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a Lambda async DLQ would never receive anything. Failed S3 writes go to the batch DLQ, written by the function itself.
  #checkov:skip=CKV_AWS_117:Runs outside the VPC on purpose: it must reach SQS when S3 is unavailable and SSM for the token hashes, and from the private subnets that needs SQS and SSM interface endpoints (about 30 USD a month for 2 AZs) or a NAT gateway, which the POC budget does not carry. It reaches only AWS APIs, over TLS.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and signed artifacts from CI, which the POC build does not produce yet; the zip comes from the project's own CI.
  function_name = var.function_name
  description   = "Validates team events and lands them as gzip NDJSON under raw/ of the lake bucket"
  role          = var.role_arn

  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  filename      = var.package_path
  # The zip is built outside Terraform; when it is missing (plan before the first build) the
  # hash is left to the provider.
  source_code_hash = fileexists(var.package_path) ? filebase64sha256(var.package_path) : null

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  # The function writes batches under raw/ of the lake root, claims and records each batch in the
  # ledger table, reads the token hashes from the parameter and parks batches in the DLQ when S3
  # fails.
  environment {
    variables = {
      EVENTLAKE_LAKE                = var.lake_url
      EVENTLAKE_TEAM_KMS_KEYS       = jsonencode(var.lake_team_kms_keys)
      EVENTLAKE_TOKENS_PARAMETER    = aws_ssm_parameter.tokens.name
      EVENTLAKE_LEDGER_TABLE        = var.ledger_table_name
      EVENTLAKE_LEDGER_RETENTION    = var.ledger_retention
      EVENTLAKE_DLQ_URL             = aws_sqs_queue.dlq.url
      EVENTLAKE_RATE_EVENTS_PER_SEC = tostring(var.rate_events_per_sec)
      EVENTLAKE_REQUEST_DEADLINE    = "${max(1, floor(var.timeout / 2))}s"
      EVENTLAKE_LOG_FORMAT          = "json"
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = var.log_group_name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = var.tracing_mode
  }
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowHttpApiInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.ingest.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}

# ---------------------------------------------------------------------------------------------
# HTTP API
# ---------------------------------------------------------------------------------------------

resource "aws_apigatewayv2_api" "this" {
  name          = "${var.name_prefix}-ingest"
  description   = "eventlake event ingestion"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_integration" "lambda" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.ingest.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = (var.timeout + 1) * 1000
}

resource "aws_apigatewayv2_route" "post_events" {
  #checkov:skip=CKV_AWS_309:The ingest function authenticates every request with a per-team bearer token (compared in constant time against the SHA-256 hashes in the tokens parameter), as the event contract requires; the token decides the team. API Gateway throttling still applies to the route.
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = local.post_events_route
  authorization_type = "NONE"
  target             = "integrations/${aws_apigatewayv2_integration.lambda.id}"
}

resource "aws_apigatewayv2_route" "healthz" {
  #checkov:skip=CKV_AWS_309:Liveness probe for uptime checks and load tests; it returns a static body, touches no data and is throttled to healthz_rate_limit.
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = local.healthz_route
  authorization_type = "NONE"
  target             = "integrations/${aws_apigatewayv2_integration.lambda.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    detailed_metrics_enabled = var.detailed_metrics_enabled
    throttling_rate_limit    = var.default_rate_limit
    throttling_burst_limit   = var.default_burst_limit
  }

  route_settings {
    route_key                = local.post_events_route
    detailed_metrics_enabled = var.detailed_metrics_enabled
    throttling_rate_limit    = var.events_rate_limit
    throttling_burst_limit   = var.events_burst_limit
  }

  route_settings {
    route_key              = local.healthz_route
    throttling_rate_limit  = var.healthz_rate_limit
    throttling_burst_limit = var.healthz_burst_limit
  }

  access_log_settings {
    destination_arn = var.access_log_group_arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      latencyMs          = "$context.responseLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integration.error"
      errorMessage       = "$context.error.message"
      sourceIp           = "$context.identity.sourceIp"
    })
  }

  depends_on = [
    aws_apigatewayv2_route.post_events,
    aws_apigatewayv2_route.healthz,
  ]
}

# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name_prefix}-ingest-api-5xx"
  alarm_description   = "The ingest API returned 5xx responses: clients may be retrying or losing events."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.api_5xx_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    ApiId = aws_apigatewayv2_api.this.id
    Stage = aws_apigatewayv2_stage.default.name
  }
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name_prefix}-ingest-dlq-depth"
  alarm_description   = "Batches are waiting in the ingest dead-letter queue (S3 writes failed). Replay them into raw before the queue's retention ends; see docs/operations.md."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    QueueName = aws_sqs_queue.dlq.name
  }
}

resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name          = "${var.name_prefix}-ingest-lambda-errors"
  alarm_description   = "The ingest function failed invocations (crashes or timeouts)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.lambda_errors_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    FunctionName = aws_lambda_function.ingest.function_name
  }
}

# The fan-out: a Lambda on the ledger's stream. The mapping bisects a failing batch, retries a
# bounded number of times and for a bounded age, takes partial batch responses, and hands what
# still fails to the lake bucket (an S3 on-failure destination keeps the records themselves, not
# only their sequence numbers). The function keeps poison records under _bus/failed/ itself.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fanout" {
  name                 = "${var.name_prefix}-bus-fanout"
  description          = "Execution role of the ${var.fanout_function_name} Lambda"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "fanout" {
  statement {
    sid    = "ReadLedgerStream"
    effect = "Allow"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:ListStreams",
    ]
    resources = [local.stream_arn]
  }

  statement {
    sid       = "ReadRawObjects"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.lake_bucket_arn}/raw/*"]
  }

  statement {
    sid     = "KeepWhatFailed"
    effect  = "Allow"
    actions = ["s3:PutObject"]
    # _bus/failed/: poison records the function keeps; aws/lambda/: the mapping's on-failure
    # destination.
    resources = ["${var.lake_bucket_arn}/_bus/failed/*", "${var.lake_bucket_arn}/aws/lambda/*"]
  }

  statement {
    sid       = "SendToTeamQueues"
    effect    = "Allow"
    actions   = ["sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = values(local.queue_arn)
  }

  statement {
    sid       = "NotifyTeams"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [local.notify_topic_arn]
  }

  statement {
    sid       = "ReadSubscriptions"
    effect    = "Allow"
    actions   = ["ssm:GetParameter"]
    resources = [local.subscriptions_parameter_arn]
  }

  # The table, the queues, the topic, the parameter and the lake are encrypted with the data key.
  statement {
    sid       = "UseDataKeyThroughServices"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3, local.via_sqs, local.via_sns, local.via_ssm, local.via_dynamodb]
    }
  }

  # A team with a key of its own has its raw batches under that key.
  statement {
    sid       = "UseTeamLakeKeysThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = concat([var.kms_key_arn], values(var.lake_team_kms_keys))

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3]
    }
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.arn_tail}:log-group:${var.fanout_log_group_name}:*"]
  }

  statement {
    sid    = "WriteTraces"
    effect = "Allow"
    actions = [
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    # X-Ray trace submission does not support resource-level permissions; "*" is required.
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "fanout" {
  name   = "bus-fanout"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout.json
}

resource "aws_lambda_function" "fanout" {
  #checkov:skip=CKV_AWS_116:Invoked by the stream's event source mapping only, never asynchronously; what fails goes to the mapping's on-failure destination (the lake bucket) or under _bus/failed/.
  #checkov:skip=CKV_AWS_117:Runs outside the VPC on purpose: it reaches only AWS APIs (DynamoDB Streams, S3, SQS, SNS, SSM) over TLS, and from private subnets that needs interface endpoints or a NAT gateway the budget does not carry.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and signed artifacts from CI, which the build does not produce yet; the zip comes from the project's own build.
  function_name = var.fanout_function_name
  description   = "Fans each batch the ledger's stream announces out to the subscribing teams' queues"
  role          = aws_iam_role.fanout.arn

  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "fanout"
  filename         = var.package_path
  source_code_hash = local.package_hash

  memory_size                    = 256
  timeout                        = 60
  reserved_concurrent_executions = var.fanout_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = {
      EVENTLAKE_LAKE                    = var.lake_url
      EVENTLAKE_TEAM_KMS_KEYS           = jsonencode(var.lake_team_kms_keys)
      EVENTLAKE_SUBSCRIPTIONS_PARAMETER = aws_ssm_parameter.subscriptions.name
      EVENTLAKE_BUS_QUEUE_PREFIX        = local.queue_prefix
      EVENTLAKE_BUS_NOTIFY_TOPIC        = aws_sns_topic.notifications.arn
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = var.fanout_log_group_name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_iam_role_policy.fanout, aws_sqs_queue.team]
}

resource "aws_lambda_event_source_mapping" "fanout" {
  event_source_arn  = aws_dynamodb_table.ledger.stream_arn
  function_name     = aws_lambda_function.fanout.arn
  starting_position = "TRIM_HORIZON"

  batch_size                         = var.stream_batch_size
  maximum_batching_window_in_seconds = var.stream_batching_window_seconds
  # One invocation per shard at a time: a shard's batches are delivered in order.
  parallelization_factor         = 1
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = var.stream_maximum_retry_attempts
  maximum_record_age_in_seconds  = var.stream_maximum_record_age_seconds
  function_response_types        = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = var.lake_bucket_arn
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "fanout_errors" {
  alarm_name          = "${var.fanout_function_name}-errors"
  alarm_description   = "The bus fan-out failed: stream records are being retried, and may reach the on-failure destination."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    FunctionName = aws_lambda_function.fanout.function_name
  }
}

# How far behind the stream the fan-out is: the events' delay to every subscriber.
resource "aws_cloudwatch_metric_alarm" "fanout_iterator_age" {
  alarm_name          = "${var.fanout_function_name}-iterator-age"
  alarm_description   = "Batches wait more than a minute on the ledger's stream before the fan-out delivers them."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 60000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    FunctionName = aws_lambda_function.fanout.function_name
  }
}

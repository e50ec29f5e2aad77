# Kafka, optional and off by default: MSK costs several times a team's budget. Either an
# existing cluster (kafka_bootstrap_servers) or an MSK Serverless cluster (create_msk_serverless,
# IAM access control). The bridge reads each team's queue (an event source mapping per queue,
# partial batch responses) and produces to the team's topic with an idempotent producer; a
# message the broker did not acknowledge is reported, stays in the queue and, after
# queue_max_receive_count receives, moves to the team's DLQ.

resource "aws_msk_serverless_cluster" "this" {
  count = var.create_msk_serverless ? 1 : 0

  cluster_name = local.msk_cluster_name

  vpc_config {
    subnet_ids         = var.kafka_subnet_ids
    security_group_ids = var.kafka_security_group_ids
  }

  client_authentication {
    sasl {
      iam {
        enabled = true
      }
    }
  }

  lifecycle {
    precondition {
      condition     = length(var.kafka_subnet_ids) >= 2 && length(var.kafka_security_group_ids) >= 1
      error_message = "An MSK Serverless cluster needs at least two kafka_subnet_ids and one kafka_security_group_ids."
    }
  }
}

resource "aws_iam_role" "bridge" {
  count = local.kafka_enabled ? 1 : 0

  name                 = "${var.name_prefix}-bus-bridge"
  description          = "Execution role of the ${var.bridge_function_name} Lambda"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "bridge" {
  statement {
    sid    = "ReadTeamQueues"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = values(local.queue_arn)
  }

  statement {
    sid       = "DecryptQueueMessages"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_sqs]
    }
  }

  # MSK's IAM access control (an MSK Serverless cluster): write each team's topic.
  statement {
    sid       = "ConnectToCluster"
    effect    = "Allow"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"]
    resources = [local.msk_cluster_arn]
  }

  statement {
    sid    = "WriteTeamTopics"
    effect = "Allow"
    actions = [
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:WriteData",
    ]
    resources = values(local.msk_topic_arn)
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.arn_tail}:log-group:${var.bridge_log_group_name}:*"]
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

resource "aws_iam_role_policy" "bridge" {
  count = local.kafka_enabled ? 1 : 0

  name   = "bus-bridge"
  role   = aws_iam_role.bridge[0].id
  policy = data.aws_iam_policy_document.bridge.json
}

# The function runs in the cluster's subnets: AWS's managed policy for a function's own network
# interfaces (those EC2 actions have no resource-level permissions).
resource "aws_iam_role_policy_attachment" "bridge_vpc" {
  count = local.kafka_enabled ? 1 : 0

  role       = aws_iam_role.bridge[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_lambda_function" "bridge" {
  #checkov:skip=CKV_AWS_116:Invoked by the queues' event source mappings only, never asynchronously; what it cannot deliver stays in the team's queue and moves to the team's DLQ.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and signed artifacts from CI, which the build does not produce yet; the zip comes from the project's own build.
  count = local.kafka_enabled ? 1 : 0

  function_name = var.bridge_function_name
  description   = "Moves each team's queue into the team's Kafka topic"
  role          = aws_iam_role.bridge[0].arn

  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "bridge"
  filename         = var.package_path
  source_code_hash = local.package_hash

  memory_size                    = 256
  timeout                        = 30
  reserved_concurrent_executions = var.bridge_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  vpc_config {
    subnet_ids         = var.kafka_subnet_ids
    security_group_ids = var.kafka_security_group_ids
  }

  environment {
    variables = {
      EVENTLAKE_KAFKA_BROKERS           = local.kafka_bootstrap
      EVENTLAKE_KAFKA_TOPIC_PREFIX      = var.kafka_topic_prefix
      EVENTLAKE_KAFKA_SECURITY_PROTOCOL = var.create_msk_serverless ? "SASL_SSL" : var.kafka_security_protocol
      EVENTLAKE_KAFKA_AUTH              = var.create_msk_serverless ? "aws-msk-iam" : "none"
      EVENTLAKE_BUS_QUEUE_PREFIX        = local.queue_prefix
    }
  }

  logging_config {
    log_format            = "JSON"
    log_group             = var.bridge_log_group_name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_iam_role_policy.bridge, aws_iam_role_policy_attachment.bridge_vpc]
}

resource "aws_lambda_event_source_mapping" "bridge" {
  for_each = local.kafka_enabled ? local.receiving_teams : toset([])

  event_source_arn        = aws_sqs_queue.team[each.key].arn
  function_name           = aws_lambda_function.bridge[0].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}

resource "aws_cloudwatch_metric_alarm" "bridge_errors" {
  count = local.kafka_enabled ? 1 : 0

  alarm_name          = "${var.bridge_function_name}-errors"
  alarm_description   = "The Kafka bridge failed: events wait in the teams' queues (and move to their DLQs after ${var.queue_max_receive_count} receives)."
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
    FunctionName = aws_lambda_function.bridge[0].function_name
  }
}

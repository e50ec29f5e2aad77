# ---------------------------------------------------------------------------------------------
# Application logs into the log archive bucket
#
# The log groups named in archived_log_groups (the functions, the Fargate task, the state machine)
# are copied, as CloudWatch Logs writes them, into the archive bucket under logs/, where its
# lifecycle moves them to STANDARD_IA, then GLACIER_IR, and expires them. The mechanism is a
# subscription filter per group into one Firehose stream: the cheapest that needs no code and no
# schedule (Firehose bills 0.029 USD per GB ingested; a CloudWatch Logs export task is free but
# needs a scheduler and a function to compute each day's range, and only one runs per account at
# a time). The records stay as CloudWatch Logs sends them: gzip'd JSON batches of log events.
# ---------------------------------------------------------------------------------------------

locals {
  archived_groups = { for k in var.archived_log_groups : k => var.log_groups[k] if contains(keys(var.log_groups), k) }
  archive_enabled = length(local.archived_groups) > 0
  log_stream_name = "${var.name_prefix}-log-archive"
  log_stream_arn  = "arn:${local.partition}:firehose:${local.region}:${local.account_id}:deliverystream/${local.log_stream_name}"
}

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    sid     = "FirehoseAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  count = local.archive_enabled ? 1 : 0

  name               = "${var.name_prefix}-log-archive-firehose"
  description        = "Firehose writes archived application logs under logs/ of the log archive bucket"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid    = "WriteLogsPrefix"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:PutObject",
    ]
    resources = [
      aws_s3_bucket.archive.arn,
      "${aws_s3_bucket.archive.arn}/logs/*",
      "${aws_s3_bucket.archive.arn}/logs-errors/*",
    ]
  }

  statement {
    sid       = "UseLogsKeyThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "firehose" {
  count = local.archive_enabled ? 1 : 0

  name   = "write-log-archive"
  role   = aws_iam_role.firehose[0].id
  policy = data.aws_iam_policy_document.firehose.json
}

resource "aws_kinesis_firehose_delivery_stream" "archive" {
  count = local.archive_enabled ? 1 : 0

  name        = local.log_stream_name
  destination = "extended_s3"

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose[0].arn
    bucket_arn          = aws_s3_bucket.archive.arn
    kms_key_arn         = var.kms_key_arn
    prefix              = "logs/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"
    error_output_prefix = "logs-errors/!{firehose:error-output-type}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"
    # Few, large objects: the lifecycle's cheaper classes bill at least 128 KiB per object.
    buffering_size     = 64
    buffering_interval = 900
    # CloudWatch Logs sends gzip'd batches already.
    compression_format = "UNCOMPRESSED"
  }

  depends_on = [aws_iam_role_policy.firehose]
}

data "aws_iam_policy_document" "logs_assume" {
  statement {
    sid     = "CloudWatchLogsAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "aws:SourceArn"
      values   = [local.log_delivery_arn]
    }
  }
}

resource "aws_iam_role" "logs_to_firehose" {
  count = local.archive_enabled ? 1 : 0

  name               = "${var.name_prefix}-log-archive-subscription"
  description        = "CloudWatch Logs sends the archived log groups to the log archive stream"
  assume_role_policy = data.aws_iam_policy_document.logs_assume.json
}

data "aws_iam_policy_document" "logs_to_firehose" {
  statement {
    sid       = "PutIntoArchiveStream"
    effect    = "Allow"
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [local.log_stream_arn]
  }
}

resource "aws_iam_role_policy" "logs_to_firehose" {
  count = local.archive_enabled ? 1 : 0

  name   = "put-into-log-archive"
  role   = aws_iam_role.logs_to_firehose[0].id
  policy = data.aws_iam_policy_document.logs_to_firehose.json
}

resource "aws_cloudwatch_log_subscription_filter" "archive" {
  for_each = local.archived_groups

  name            = "archive"
  log_group_name  = aws_cloudwatch_log_group.this[each.key].name
  filter_pattern  = ""
  destination_arn = aws_kinesis_firehose_delivery_stream.archive[0].arn
  role_arn        = aws_iam_role.logs_to_firehose[0].arn
  distribution    = "ByLogStream"

  depends_on = [aws_iam_role_policy.logs_to_firehose]
}

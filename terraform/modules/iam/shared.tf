# Grants that several roles hold in exactly the same form. Each is written once, as its own policy
# document, and attached as a separate inline policy to every role that holds it; the roles' own
# documents keep only what is theirs. (Documents are not merged with source_policy_documents so
# that every statement stays a literal block that tests/infra/check_terraform.py reads.)

# Bucket locations and the data key through S3/Glue: etl-job, etl-task and every analyst role.
data "aws_iam_policy_document" "lake_data_key" {
  statement {
    sid       = "BucketLocations"
    effect    = "Allow"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.lake_bucket_arn, var.athena_results_bucket_arn]
  }

  statement {
    sid       = "UseDataKeyThroughS3AndGlue"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3, local.via_glue]
    }
  }
}

# Raw batches and idempotency markers under raw/ and _ingest/, with the data key through S3/SQS:
# the ingest function and the redrive operator role.
data "aws_iam_policy_document" "raw_batches" {
  statement {
    sid     = "WriteRawBatchesAndIdempotencyMarkers"
    effect  = "Allow"
    actions = ["s3:GetObject", "s3:PutObject"]
    resources = [
      "${var.lake_bucket_arn}/${local.raw_root}*",
      "${var.lake_bucket_arn}/${local.ingest_root}*",
    ]
  }

  # A team with a key of its own has its raw batches under that key.
  statement {
    sid       = "UseDataKeyThroughS3AndSqs"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = concat([var.data_kms_key_arn], values(var.lake_team_kms_keys))

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3, local.via_sqs]
    }
  }
}

# A Lambda function's own log group and X-Ray: the ingest and etl-job roles, each with the log
# group of its function.
data "aws_iam_policy_document" "lambda_runtime" {
  for_each = {
    ingest  = var.ingest_log_group_arn
    etl_job = var.etl_log_group_arn
  }

  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${each.value}:*"]
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

# --- the roles that hold each shared grant ---------------------------------------------------

resource "aws_iam_role_policy" "lake_data_key" {
  for_each = merge(
    { etl_job = aws_iam_role.etl_job.id, etl_task = aws_iam_role.etl_task.id },
    { for team, role in aws_iam_role.analyst : "analyst-${team}" => role.id },
  )

  name   = "lake-data-key"
  role   = each.value
  policy = data.aws_iam_policy_document.lake_data_key.json
}

resource "aws_iam_role_policy" "raw_batches" {
  for_each = { ingest = aws_iam_role.ingest.id, ingest_redrive = aws_iam_role.ingest_redrive.id }

  name   = "raw-batches"
  role   = each.value
  policy = data.aws_iam_policy_document.raw_batches.json
}

resource "aws_iam_role_policy" "lambda_runtime" {
  for_each = { ingest = aws_iam_role.ingest.id, etl_job = aws_iam_role.etl_job.id }

  name   = "lambda-runtime"
  role   = each.value
  policy = data.aws_iam_policy_document.lambda_runtime[each.key].json
}

# Role of the ingest Lambda: read the team token hashes, write raw batches (create-if-absent is a
# conditional PutObject, no extra permission), claim and record each batch in the ledger table
# (conditional writes: the commit point, and the bus's outbox), fall back to the dead-letter
# queue, write its own logs and traces. Nothing here lets it read the queue back: draining it is
# the operator's job, with the redrive role below.

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

resource "aws_iam_role" "ingest" {
  name                 = "${var.name_prefix}-ingest"
  description          = "Execution role of the ${var.ingest_function_name} Lambda"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "ReadTokenHashes"
    effect    = "Allow"
    actions   = ["ssm:GetParameter"]
    resources = [local.ingest_tokens_parameter_arn]
  }

  # SSM decrypts a SecureString with the caller's permission on the key, and names the parameter
  # in the encryption context.
  statement {
    sid       = "DecryptTokenHashesThroughSsm"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_ssm]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [local.ingest_tokens_parameter_arn]
    }
  }

  statement {
    sid    = "ClaimAndRecordBatchesInLedger"
    effect = "Allow"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
    ]
    resources = [local.ledger_table_arn]
  }

  # The ledger table is encrypted with the data key.
  statement {
    sid       = "UseDataKeyThroughDynamoDb"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "FallBackToDeadLetterQueue"
    effect    = "Allow"
    actions   = ["sqs:GetQueueUrl", "sqs:SendMessage"]
    resources = [local.ingest_dlq_arn]
  }
}

resource "aws_iam_role_policy" "ingest" {
  name   = "ingest"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}

# ---------------------------------------------------------------------------------------------
# Redrive: an operator assumes this role to run `ingest redrive`, which moves the batches parked
# in the dead-letter queue into raw/ of the lake bucket (create-if-absent) and deletes each message once
# its batch is stored. Kept apart from the function's role so that the function can only send to
# the queue and an operator can do nothing else with this role.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ingest_redrive_assume" {
  statement {
    sid     = "OperatorsAssume"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = length(var.ingest_redrive_principal_arns) > 0 ? var.ingest_redrive_principal_arns : [local.account_root_arn]
    }

    dynamic "condition" {
      for_each = var.ingest_redrive_require_mfa ? [1] : []

      content {
        test     = "Bool"
        variable = "aws:MultiFactorAuthPresent"
        values   = ["true"]
      }
    }
  }
}

resource "aws_iam_role" "ingest_redrive" {
  name                 = "${var.name_prefix}-ingest-redrive"
  description          = "Replays batches from the ${var.ingest_dlq_name} queue into raw/ of the lake bucket (ingest redrive)"
  assume_role_policy   = data.aws_iam_policy_document.ingest_redrive_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ingest_redrive" {
  statement {
    sid    = "DrainDeadLetterQueue"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = [local.ingest_dlq_arn]
  }

  # A redriven batch is noted in the ledger, whose stream announces it to the bus.
  statement {
    sid       = "NoteRedrivenBatchesInLedger"
    effect    = "Allow"
    actions   = ["dynamodb:UpdateItem"]
    resources = [local.ledger_table_arn]
  }

  statement {
    sid       = "UseDataKeyThroughDynamoDb"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "ingest_redrive" {
  name   = "ingest-redrive"
  role   = aws_iam_role.ingest_redrive.id
  policy = data.aws_iam_policy_document.ingest_redrive.json
}

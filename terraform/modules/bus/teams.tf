# One consumer role per receiving team: read (and delete from) its own queue and DLQ, read its
# own Kafka topic in its own consumer group, and nothing of another team's. The statements name
# each resource; tests/infra/bus_policies.py evaluates them for every team against the actions
# and ARNs each role needs and must not have.

data "aws_iam_policy_document" "team_assume" {
  for_each = local.receiving_teams

  statement {
    sid     = "TeamAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = lookup(var.team_principal_arns, each.key, [local.account_root_arn])
    }
  }
}

resource "aws_iam_role" "team" {
  for_each = local.receiving_teams

  name                 = "${var.name_prefix}-bus-${each.key}"
  description          = "Bus consumer of team ${each.key}: its own queue and topic only"
  assume_role_policy   = data.aws_iam_policy_document.team_assume[each.key].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "team" {
  for_each = local.receiving_teams

  statement {
    sid    = "ReadOwnQueue"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = [local.queue_arn[each.key], local.dlq_arn[each.key]]
  }

  statement {
    sid       = "DecryptOwnMessages"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_sqs]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sqs:arn"
      values   = [local.queue_arn[each.key], local.dlq_arn[each.key]]
    }
  }

  statement {
    sid       = "ConnectToCluster"
    effect    = "Allow"
    actions   = ["kafka-cluster:Connect"]
    resources = [local.msk_cluster_arn]
  }

  statement {
    sid       = "ReadOwnTopic"
    effect    = "Allow"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [local.msk_topic_arn[each.key]]
  }

  statement {
    sid       = "UseOwnConsumerGroup"
    effect    = "Allow"
    actions   = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    resources = [local.msk_group_arn[each.key]]
  }
}

resource "aws_iam_role_policy" "team" {
  for_each = local.receiving_teams

  name   = "bus-consumer"
  role   = aws_iam_role.team[each.key].id
  policy = data.aws_iam_policy_document.team[each.key].json
}

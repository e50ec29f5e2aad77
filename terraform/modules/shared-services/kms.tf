# Two customer managed keys:
#   data - the lake buckets, the ingest dead-letter queue, the ingest tokens parameter, the alert
#          topic, the ECR repository, the scheduler schedules, Athena results and the Glue catalog.
#   logs - CloudWatch Logs groups, the CloudTrail trail and the log archive bucket.
# Keeping audit logs under their own key means a principal allowed to decrypt lake data is not
# thereby allowed to read the audit trail (and the reverse). Each key costs 1 USD a month.

locals {
  # The account root statement lists the key actions explicitly instead of "kms:*": IAM policies
  # in the account can be granted any of these, but not DisableKeyRotation. PutKeyPolicy is
  # kept so the account can always amend this policy (no lock-out).
  key_root_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]

  key_root_statement = {
    Sid       = "AccountAdministersAndDelegatesToIam"
    Effect    = "Allow"
    Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
    Action    = local.key_root_actions
    # In a key policy "Resource": "*" means "this key"; no other value is accepted.
    Resource = "*"
  }

  data_key_policy = {
    Version = "2012-10-17"
    Statement = [
      local.key_root_statement,
      {
        # CloudWatch alarms publish to the KMS-encrypted alert topic. AWS documents this
        # statement without conditions; the topic policy limits publishing to this account.
        Sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*" # this key (key policy)
      },
      {
        # EventBridge rules (GuardDuty findings) publish to the same topic.
        Sid       = "EventBridgePublishesToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*" # this key (key policy)
      },
      {
        # AWS Budgets alerts go to the teams' encrypted topics (teams.tf), for this account only.
        Sid       = "BudgetsPublishToEncryptedTeamTopics"
        Effect    = "Allow"
        Principal = { Service = "budgets.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*" # this key (key policy)
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  }

  logs_key_policy = {
    Version = "2012-10-17"
    Statement = [
      local.key_root_statement,
      {
        Sid       = "CloudWatchLogsEncryptsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action = [
          "kms:Decrypt",
          "kms:DescribeKey",
          "kms:Encrypt",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
        ]
        Resource = "*" # this key (key policy)
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        Sid       = "CloudTrailEncryptsLogFiles"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = ["kms:GenerateDataKey"]
        Resource  = "*" # this key (key policy)
        Condition = {
          StringLike = {
            "aws:SourceArn"                            = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"
            "kms:EncryptionContext:aws:cloudtrail:arn" = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"
          }
        }
      },
      {
        Sid       = "CloudTrailDescribesKey"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = ["kms:DescribeKey"]
        Resource  = "*" # this key (key policy)
        Condition = {
          StringLike = {
            "aws:SourceArn" = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*"
          }
        }
      },
      {
        # VPC flow logs delivered to the SSE-KMS log archive bucket.
        Sid       = "LogDeliveryWritesToArchive"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action = [
          "kms:Decrypt",
          "kms:Encrypt",
          "kms:GenerateDataKey",
          "kms:ReEncryptFrom",
          "kms:ReEncryptTo",
        ]
        Resource = "*" # this key (key policy)
        Condition = {
          StringEquals = {
            "aws:SourceAccount" = local.account_id
          }
          ArnLike = {
            "aws:SourceArn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:*"
          }
        }
      },
    ]
  }
}

# A key of its own for each team of team_kms_key_teams: its objects in the lake (raw batches,
# curated partitions, quarantine), its Athena query results and its topic are encrypted with it,
# so only its own analysts, the jobs that write and read every team's partitions (ingest, etl, the
# bus) and the account's key administrators can read them. The writers name the key per object
# (EVENTLAKE_TEAM_KMS_KEYS); the bucket's default stays the data key.
locals {
  team_key_teams = toset([for t in var.team_kms_key_teams : t if contains(var.teams, t)])

  team_key_policy = {
    Version = "2012-10-17"
    Statement = [
      local.key_root_statement,
      {
        # AWS Budgets alerts go to the team's encrypted topic (teams.tf), for this account only.
        Sid       = "BudgetsPublishToEncryptedTeamTopic"
        Effect    = "Allow"
        Principal = { Service = "budgets.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*" # this key (key policy)
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  }

  # The key each team's results and topic use: its own, or the data key.
  team_key_arns = { for t in var.teams : t => contains(local.team_key_teams, t) ? aws_kms_key.team[t].arn : aws_kms_key.data.arn }
}

resource "aws_kms_key" "team" {
  for_each = local.team_key_teams

  description             = "${var.name_prefix} team ${each.key}: its lake objects, its Athena results and its topic"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = jsonencode(local.team_key_policy)

  tags = {
    team = each.key
  }
}

resource "aws_kms_alias" "team" {
  for_each = local.team_key_teams

  name          = "alias/${var.name_prefix}-team-${each.key}"
  target_key_id = aws_kms_key.team[each.key].key_id
}

resource "aws_kms_key" "data" {
  description             = "${var.name_prefix} lake data: buckets, queue, topic, images, schedules, Athena results, Glue catalog"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = jsonencode(local.data_key_policy)
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name_prefix}-data"
  target_key_id = aws_kms_key.data.key_id
}

resource "aws_kms_key" "logs" {
  description             = "${var.name_prefix} logs: CloudWatch Logs, CloudTrail, log archive"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = jsonencode(local.logs_key_policy)
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${var.name_prefix}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

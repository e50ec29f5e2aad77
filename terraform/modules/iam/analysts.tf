# One analyst role per team: query the team's own curated prefix through the team's own Athena
# workgroup, nothing else. Glue metadata of the shared table is readable (IAM cannot scope Glue
# reads to partition values); the data of other teams is not.

data "aws_iam_policy_document" "analyst_assume" {
  for_each = toset(var.teams)

  statement {
    sid     = "TeamMembersAssume"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = lookup(var.analyst_principal_arns, each.key, [local.account_root_arn])
    }

    dynamic "condition" {
      for_each = var.analyst_require_mfa ? [1] : []

      content {
        test     = "Bool"
        variable = "aws:MultiFactorAuthPresent"
        values   = ["true"]
      }
    }
  }
}

resource "aws_iam_role" "analyst" {
  for_each = toset(var.teams)

  name                 = "${var.name_prefix}-analyst-${each.key}"
  description          = "Athena analyst of team ${each.key}: own workgroup, own curated prefix"
  assume_role_policy   = data.aws_iam_policy_document.analyst_assume[each.key].json
  max_session_duration = 14400
}

data "aws_iam_policy_document" "analyst" {
  for_each = toset(var.teams)

  statement {
    sid    = "UseOwnWorkgroup"
    effect = "Allow"
    actions = [
      "athena:BatchGetNamedQuery",
      "athena:BatchGetQueryExecution",
      "athena:CreateNamedQuery",
      "athena:DeleteNamedQuery",
      "athena:GetNamedQuery",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryResultsStream",
      "athena:GetQueryRuntimeStatistics",
      "athena:GetWorkGroup",
      "athena:ListNamedQueries",
      "athena:ListQueryExecutions",
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:UpdateNamedQuery",
    ]
    resources = [local.athena_workgroup_arns[each.key]]
  }

  statement {
    sid    = "BrowseCatalog"
    effect = "Allow"
    actions = [
      "athena:GetDataCatalog",
      "athena:GetDatabase",
      "athena:GetTableMetadata",
      "athena:ListDatabases",
      "athena:ListTableMetadata",
    ]
    resources = [local.athena_catalog_arn]
  }

  statement {
    sid    = "ListForConsole"
    effect = "Allow"
    actions = [
      "athena:ListDataCatalogs",
      "athena:ListEngineVersions",
      "athena:ListWorkGroups",
    ]
    # Athena list operations do not support resource-level permissions; "*" is required. They
    # return names only, no data.
    resources = ["*"]
  }

  statement {
    sid    = "ReadEventsTableMetadata"
    effect = "Allow"
    actions = [
      "glue:BatchGetPartition",
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:GetTables",
    ]
    resources = local.glue_read_arns
  }

  statement {
    sid       = "ListOwnCuratedPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "${local.curated_root}team=${each.key}/",
        "${local.curated_root}team=${each.key}/*",
      ]
    }
  }

  statement {
    sid       = "ReadOwnCuratedPrefix"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.lake_bucket_arn}/${local.curated_root}team=${each.key}/*"]
  }

  statement {
    sid       = "ListOwnResults"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.athena_results_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["team=${each.key}/", "team=${each.key}/*"]
    }
  }

  # Athena writes query results with the caller's credentials.
  statement {
    sid    = "ReadWriteOwnResults"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${var.athena_results_bucket_arn}/team=${each.key}/*"]
  }

  # The team's results key (its own, or the data key), through S3 only.
  statement {
    sid       = "UseOwnResultsKey"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [lookup(var.team_kms_key_arns, each.key, var.data_kms_key_arn)]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3]
    }
  }
}

resource "aws_iam_role_policy" "analyst" {
  for_each = aws_iam_role.analyst

  name   = "team-athena"
  role   = each.value.id
  policy = data.aws_iam_policy_document.analyst[each.key].json
}

# Per team: a notification topic of its own and an AWS Budgets budget that alerts it.
#
# The budget counts the cost of the resources tagged team=<team> (the workgroup, and whatever the
# environment tags with the team); the `team` cost allocation tag must be activated once per
# account (Billing console, Cost allocation tags) before Budgets can filter on it. Shared parts
# (keys, the trail, GuardDuty, the workflow) are in no team's budget: docs/operations.md, section 4,
# splits them evenly.

resource "aws_sns_topic" "team" {
  for_each = toset(var.teams)

  name              = "${var.name_prefix}-team-${each.key}"
  display_name      = "eventlake ${each.key}"
  kms_master_key_id = local.team_key_arns[each.key]

  tags = {
    team = each.key
  }
}

data "aws_iam_policy_document" "team_topic" {
  for_each = toset(var.teams)

  statement {
    sid     = "BudgetsPublish"
    effect  = "Allow"
    actions = ["sns:Publish"]
    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }
    resources = [aws_sns_topic.team[each.key].arn]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid     = "DenyWithoutTls"
    effect  = "Deny"
    actions = ["sns:Publish"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    resources = [aws_sns_topic.team[each.key].arn]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "team" {
  for_each = toset(var.teams)

  arn    = aws_sns_topic.team[each.key].arn
  policy = data.aws_iam_policy_document.team_topic[each.key].json
}

resource "aws_sns_topic_subscription" "team_email" {
  for_each = {
    for pair in flatten([
      for team, emails in var.team_alert_emails : [
        for email in emails : { key = "${team}/${email}", team = team, email = email }
      ]
    ]) : pair.key => pair
    if contains(var.teams, pair.team)
  }

  topic_arn = aws_sns_topic.team[each.value.team].arn
  protocol  = "email"
  endpoint  = each.value.email
}

resource "aws_budgets_budget" "team" {
  for_each = toset(var.teams)

  name         = "${var.name_prefix}-${each.key}"
  budget_type  = "COST"
  limit_amount = tostring(lookup(var.team_monthly_budget_usd, each.key, var.default_team_monthly_budget_usd))
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  cost_filter {
    name   = "TagKeyValue"
    values = ["user:team$${each.key}"]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = 80
    threshold_type            = "PERCENTAGE"
    notification_type         = "ACTUAL"
    subscriber_sns_topic_arns = [aws_sns_topic.team[each.key].arn]
  }

  notification {
    comparison_operator       = "GREATER_THAN"
    threshold                 = 100
    threshold_type            = "PERCENTAGE"
    notification_type         = "FORECASTED"
    subscriber_sns_topic_arns = [aws_sns_topic.team[each.key].arn]
  }

  depends_on = [aws_sns_topic_policy.team]
}

# Service role that lets CloudTrail deliver the trail into its CloudWatch Logs group.

data "aws_iam_policy_document" "cloudtrail_assume" {
  statement {
    sid     = "CloudTrailAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    # Only a principal of this account allowed to iam:PassRole this role can attach it to a
    # trail, and the role can only write the trail's own log group.
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cloudtrail_logs" {
  name                 = "${var.name_prefix}-cloudtrail-logs"
  description          = "Lets CloudTrail write the trail into CloudWatch Logs"
  assume_role_policy   = data.aws_iam_policy_document.cloudtrail_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "cloudtrail_logs" {
  statement {
    sid       = "WriteTrailLogStreams"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.arn_tail}:log-group:${var.cloudtrail_log_group_name}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "cloudtrail_logs" {
  name   = "write-trail-logs"
  role   = aws_iam_role.cloudtrail_logs.id
  policy = data.aws_iam_policy_document.cloudtrail_logs.json
}

# One FIFO queue per receiving team, with its DLQ. FIFO because the fan-out's deduplication id
# (sha256 of the event id and the team) makes a retried stream record cost nothing within five
# minutes, and message groups (producing team and user) keep one user's events in order. High
# throughput mode: deduplication and throughput per message group.

resource "aws_sqs_queue" "team_dlq" {
  for_each = local.receiving_teams

  name                              = "${local.queue_prefix}${each.key}-dlq.fifo"
  fifo_queue                        = true
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "team" {
  for_each = local.receiving_teams

  name                  = "${local.queue_prefix}${each.key}.fifo"
  fifo_queue            = true
  deduplication_scope   = "messageGroup"
  fifo_throughput_limit = "perMessageGroupId"
  # Six times the bridge's timeout, as Lambda asks of a queue it reads.
  visibility_timeout_seconds        = 180
  message_retention_seconds         = 345600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.team_dlq[each.key].arn
    maxReceiveCount     = var.queue_max_receive_count
  })
}

data "aws_iam_policy_document" "team_queue" {
  for_each = local.receiving_teams

  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # Every SQS action is denied over plain HTTP: a wildcard is the point of this statement.
    actions   = ["sqs:*"]
    resources = [local.queue_arn[each.key], local.dlq_arn[each.key]]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "team" {
  for_each = local.receiving_teams

  queue_url = aws_sqs_queue.team[each.key].id
  policy    = data.aws_iam_policy_document.team_queue[each.key].json
}

resource "aws_sqs_queue_policy" "team_dlq" {
  for_each = local.receiving_teams

  queue_url = aws_sqs_queue.team_dlq[each.key].id
  policy    = data.aws_iam_policy_document.team_queue[each.key].json
}

# A queue whose oldest message keeps ageing: the team's consumers (or the bridge) do not keep up.
resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = local.receiving_teams

  alarm_name          = "${local.queue_prefix}${each.key}-oldest-message"
  alarm_description   = "Events wait in team ${each.key}'s queue longer than ${var.queue_age_alarm_seconds} s: its consumers or the Kafka bridge are behind."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.queue_age_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    QueueName = aws_sqs_queue.team[each.key].name
  }
}

# Anything in a DLQ is an event a team has not received: redrive it after the fix.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = local.receiving_teams

  alarm_name          = "${local.queue_prefix}${each.key}-dlq-depth"
  alarm_description   = "Team ${each.key}'s DLQ holds events that were received ${var.queue_max_receive_count} times without being handled."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    QueueName = aws_sqs_queue.team_dlq[each.key].name
  }
}

# ---------------------------------------------------------------------------------------------
# Batch notifications: one SNS message per batch and receiving team that asked (notify in the
# subscriptions); each carries the team in its "to" attribute, and every subscription filters
# on it.
# ---------------------------------------------------------------------------------------------

resource "aws_sns_topic" "notifications" {
  name              = local.notify_topic_name
  display_name      = "eventlake batch notifications"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "team_email" {
  for_each = {
    for pair in flatten([
      for team, emails in var.notification_emails : [for e in emails : { team = team, email = e }]
      if contains(tolist(local.notify_teams), team)
    ]) : "${pair.team}/${pair.email}" => pair
  }

  topic_arn     = aws_sns_topic.notifications.arn
  protocol      = "email"
  endpoint      = each.value.email
  filter_policy = jsonencode({ to = [each.value.team] })
}

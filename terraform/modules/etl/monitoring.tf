# ---------------------------------------------------------------------------------------------
# The job's own metrics (namespace eventlake/etl, embedded-metric lines the etl binary writes:
# crates/etl/src/metrics.rs) and what each promise's alarm watches:
#   freshness    curated data is at most one frequent interval old: a run succeeds at least once
#                per freshness_alarm_hours, and no partition commits raw data older than that;
#   quarantine   a team's share of quarantined lines stays under quarantine_share_alarm_percent;
# plus one dashboard per team (ingest and compaction side by side).
# ---------------------------------------------------------------------------------------------

locals {
  metrics_namespace = "eventlake/etl"
  teams             = toset(var.teams)
}

resource "aws_cloudwatch_metric_alarm" "no_successful_run" {
  alarm_name          = "${var.name_prefix}-curated-stale"
  alarm_description   = "No compaction run succeeded in the last ${var.freshness_alarm_hours} hours: curated data is older than the schedule allows."
  namespace           = local.metrics_namespace
  metric_name         = "RunSucceeded"
  statistic           = "Sum"
  period              = var.freshness_alarm_hours * 3600
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  # No run at all is the failure this alarm exists for.
  treat_missing_data = "breaching"
  alarm_actions      = [aws_sns_topic.alerts.arn]
  ok_actions         = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "commit_lag" {
  for_each = local.teams

  alarm_name          = "${var.name_prefix}-commit-lag-${each.key}"
  alarm_description   = "Team ${each.key}: a commit took in raw data that arrived more than ${var.freshness_alarm_hours} hours earlier."
  namespace           = local.metrics_namespace
  metric_name         = "LagSeconds"
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = var.freshness_alarm_hours * 3600
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  dimensions = {
    team = each.key
  }
}

resource "aws_cloudwatch_metric_alarm" "quarantine_share" {
  for_each = local.teams

  alarm_name          = "${var.name_prefix}-quarantine-share-${each.key}"
  alarm_description   = "Team ${each.key}: more than ${var.quarantine_share_alarm_percent}% of a partition's lines were quarantined in two runs running (a producer sends what the contract refuses)."
  namespace           = local.metrics_namespace
  metric_name         = "QuarantinedShare"
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 4
  datapoints_to_alarm = 2
  threshold           = var.quarantine_share_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  dimensions = {
    team = each.key
  }
}

resource "aws_cloudwatch_dashboard" "team" {
  for_each = local.teams

  dashboard_name = "${var.name_prefix}-${each.key}"
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title   = "Ingest: events accepted and rejected per minute"
          region  = local.region
          stat    = "Sum"
          period  = 60
          metrics = [["eventlake/ingest", "EventsAccepted", "team", each.key], [".", "EventsRejected", ".", "."]]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Ingest: request latency (ms), p50 and p99 against the 200 ms promise"
          region = local.region
          period = 300
          metrics = [
            ["eventlake/ingest", "Latency", "team", each.key, { stat = "p50" }],
            ["...", { stat = "p99" }],
          ]
          annotations = { horizontal = [{ label = "promise", value = 200 }] }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title   = "Compaction: lines, rows and quarantined lines per hour"
          region  = local.region
          stat    = "Sum"
          period  = 3600
          metrics = [[local.metrics_namespace, "Lines", "team", each.key], [".", "Rows", ".", "."], [".", "Quarantined", ".", "."]]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title  = "Compaction: lag from newest raw object to commit (s), quarantined share (%)"
          region = local.region
          stat   = "Maximum"
          period = 3600
          metrics = [
            [local.metrics_namespace, "LagSeconds", "team", each.key],
            [".", "QuarantinedShare", ".", ".", { yAxis = "right" }],
          ]
        }
      },
    ]
  })
}

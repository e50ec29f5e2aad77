# Per-team alarms on the ingest function's own metrics (namespace eventlake/ingest, one
# embedded-metric line per request with dimension team: crates/ingest/src/app.rs):
#   latency  p99 of a team's requests over latency_p99_alarm_ms (the 200 ms promise);
#   rate     a team sending more events per second than team_events_per_sec allows it.

resource "aws_cloudwatch_metric_alarm" "latency_p99" {
  for_each = toset(var.teams)

  alarm_name          = "${var.name_prefix}-ingest-p99-${each.key}"
  alarm_description   = "Team ${each.key}: p99 ingest latency over ${var.latency_p99_alarm_ms} ms for 15 minutes."
  namespace           = "eventlake/ingest"
  metric_name         = "Latency"
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = var.latency_p99_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    team = each.key
  }
}

resource "aws_cloudwatch_metric_alarm" "team_rate" {
  for_each = toset(var.teams)

  alarm_name          = "${var.name_prefix}-ingest-rate-${each.key}"
  alarm_description   = "Team ${each.key}: more than ${lookup(var.team_events_per_sec, each.key, var.default_team_events_per_sec)} events/s accepted in 3 of 5 minutes."
  namespace           = "eventlake/ingest"
  metric_name         = "EventsAccepted"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 60 * lookup(var.team_events_per_sec, each.key, var.default_team_events_per_sec)
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dimensions = {
    team = each.key
  }
}

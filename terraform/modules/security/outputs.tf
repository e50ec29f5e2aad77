output "trail_arn" {
  description = "ARN of the CloudTrail trail."
  value       = aws_cloudtrail.this.arn
}

output "trail_log_group_arn" {
  description = "ARN of the CloudWatch log group that receives the trail."
  value       = aws_cloudwatch_log_group.trail.arn
}

output "guardduty_detector_id" {
  description = "Id of the GuardDuty detector (null when enable_guardduty is false)."
  value       = one(aws_guardduty_detector.this[*].id)
}

output "guardduty_alert_rule_arn" {
  description = "ARN of the EventBridge rule that forwards HIGH and CRITICAL findings (null when not created)."
  value       = one(aws_cloudwatch_event_rule.guardduty_high[*].arn)
}

# ---------------------------------------------------------------------------------------------
# CloudTrail: every management event of every region, integrity-checked, KMS-encrypted, into the
# log archive bucket and into CloudWatch Logs.
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "trail" {
  name              = var.cloudwatch_log_group_name
  retention_in_days = var.cloudwatch_log_retention_in_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudtrail" "this" {
  #checkov:skip=CKV_AWS_252:No SNS notification per delivered log file: nothing consumes them and they would flood the alert topic. Integrity comes from log file validation, delivery problems show in the trail status.
  name                          = var.trail_name
  s3_bucket_name                = var.archive_bucket_name
  kms_key_id                    = var.kms_key_arn
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  enable_logging                = true
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.trail.arn}:*"
  cloud_watch_logs_role_arn     = var.cloudwatch_logs_role_arn

  event_selector {
    read_write_type           = "All"
    include_management_events = true

    dynamic "data_resource" {
      for_each = length(var.s3_data_event_bucket_arns) > 0 ? [1] : []

      content {
        type   = "AWS::S3::Object"
        values = [for arn in var.s3_data_event_bucket_arns : "${arn}/"]
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------
# GuardDuty
# ---------------------------------------------------------------------------------------------

resource "aws_guardduty_detector" "this" {
  #checkov:skip=CKV2_AWS_3:The POC runs in a standalone account. Organisation-wide auto-enable (aws_guardduty_organization_configuration) needs an AWS Organizations delegated administrator, which belongs to the organisation's security account, not to this stack.
  count = var.enable_guardduty ? 1 : 0

  enable                       = true
  finding_publishing_frequency = var.guardduty_finding_publishing_frequency
}

resource "aws_guardduty_detector_feature" "this" {
  for_each = var.enable_guardduty ? var.guardduty_features : {}

  detector_id = aws_guardduty_detector.this[0].id
  name        = each.key
  status      = each.value
}

# HIGH and CRITICAL findings go to the alert topic.
resource "aws_cloudwatch_event_rule" "guardduty_high" {
  count = var.enable_guardduty && var.enable_finding_alerts ? 1 : 0

  name        = "${var.name_prefix}-guardduty-high"
  description = "GuardDuty findings of severity 7 or more"
  state       = "ENABLED"

  event_pattern = jsonencode({
    source        = ["aws.guardduty"]
    "detail-type" = ["GuardDuty Finding"]
    detail = {
      severity = [{ numeric = [">=", 7] }]
    }
  })
}

resource "aws_cloudwatch_event_target" "guardduty_high" {
  count = var.enable_guardduty && var.enable_finding_alerts ? 1 : 0

  rule      = aws_cloudwatch_event_rule.guardduty_high[0].name
  target_id = "alerts"
  arn       = var.alert_topic_arn
}

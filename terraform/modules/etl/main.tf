data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name

  container_name = "etl"
  image          = "${aws_ecr_repository.etl.repository_url}:${var.image_tag}"

  # Settings shared by the Lambda and the Fargate task (same binary, same configuration): the
  # job's task entry point reads exactly these (see the module README).
  job_environment = merge(
    {
      EVENTLAKE_LAKE             = var.lake_url
      EVENTLAKE_CATALOG          = "glue"
      EVENTLAKE_GLUE_DATABASE    = var.glue_database_name
      EVENTLAKE_GLUE_TABLE       = var.glue_table_name
      EVENTLAKE_ATHENA_WORKGROUP = var.athena_workgroup_name
      # The plan's threshold between the two runners.
      EVENTLAKE_LAMBDA_MAX_RAW_MB = tostring(var.lambda_max_raw_mb)
      # Past this many partitions the plan goes to S3 and the workflow's Distributed Map.
      EVENTLAKE_PLAN_INLINE_MAX = tostring(var.plan_inline_max)
      # A keyed team's objects are written under its own key.
      EVENTLAKE_TEAM_KMS_KEYS = jsonencode(var.lake_team_kms_keys)
      # Read by the etl command line (crates/etl/src/args.rs).
      EVENTLAKE_LOG_FORMAT = "json"
      ETL_LOG              = var.log_level
    },
    var.athena_output_location == null ? {} : { EVENTLAKE_ATHENA_OUTPUT = var.athena_output_location },
    # A frequent run adds only the new raw objects to today's version (crates/compaction/src/incremental.rs).
    var.incremental_compaction ? { EVENTLAKE_INCREMENTAL = "1" } : {},
    # Where each team's Fargate tasks run; the plan hands it to the workflow per partition.
    { EVENTLAKE_TASK_NETWORKS = jsonencode(local.task_networks) },
  )

  # A team with a network of its own (team_networks) runs its tasks there; "*" is every other
  # team, in the environment's VPC.
  task_networks = merge(
    {
      "*" = {
        subnets         = var.task_subnet_ids
        security_groups = [aws_security_group.task.id]
      }
    },
    {
      for team, n in var.team_networks : team => {
        subnets         = n.subnet_ids
        security_groups = [aws_security_group.team_task[team].id]
      }
    },
  )

  # The lake's bucket and root: a Distributed Map run writes its results under the root's
  # _workflow/map-runs/ (the plan writes large plans under _workflow/plans/).
  lake_location      = regex("^s3://([^/]+)/?(.*)$", var.lake_url)
  lake_root          = trimsuffix(local.lake_location[1], "/")
  map_results_prefix = local.lake_root == "" ? "_workflow/map-runs" : "${local.lake_root}/_workflow/map-runs"

  # "${path.root}" in asl_path stands for the root module's directory (see variables.tf).
  asl_file = replace(var.asl_path, "$${path.root}", path.root)

  # Everything jobs/compact.asl.json references, as strings: the template stays valid JSON with
  # every placeholder inside a JSON string. Lists are comma-joined (the template splits them with
  # States.StringSplit) and numbers are parsed by the template (States.StringToJson).
  asl_vars = {
    etl_function_arn        = aws_lambda_function.etl.arn
    ecs_cluster_arn         = aws_ecs_cluster.this.arn
    ecs_task_definition_arn = aws_ecs_task_definition.etl.arn
    ecs_container_name      = local.container_name
    ecs_assign_public_ip    = var.task_assign_public_ip ? "ENABLED" : "DISABLED"
    alert_topic_arn         = aws_sns_topic.alerts.arn
    map_max_concurrency     = tostring(var.map_max_concurrency)
    # The Distributed Map of large plans (backfills).
    map_run_max_concurrency    = tostring(var.map_run_max_concurrency)
    map_run_tolerated_failures = tostring(var.map_run_tolerated_failures)
    map_results_bucket         = local.lake_location[0]
    map_results_prefix         = local.map_results_prefix
  }
}

# ---------------------------------------------------------------------------------------------
# etl as a Lambda task (plan, compact of ordinary partitions, catalog, check)
# ---------------------------------------------------------------------------------------------

resource "aws_lambda_function" "etl" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by Step Functions, which retries and alerts; a Lambda async DLQ would never receive anything.
  #checkov:skip=CKV_AWS_117:Runs outside the VPC on purpose: it calls S3, Glue and Athena, and from the private subnets the last two need interface endpoints (about 7.3 USD a month per AZ each) or a NAT gateway, which the POC budget does not carry. It reaches only AWS APIs, over TLS.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and signed artifacts from CI, which the POC build does not produce yet; the zip comes from the project's own CI.
  function_name = var.function_name
  description   = "eventlake batch job: plan, compact, catalog and P95 check"
  role          = var.lambda_role_arn

  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  filename      = var.package_path
  # The zip is built outside Terraform; when it is missing (plan before the first build) the
  # hash is left to the provider.
  source_code_hash = fileexists(var.package_path) ? filebase64sha256(var.package_path) : null

  memory_size                    = var.lambda_memory_size
  timeout                        = var.lambda_timeout
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  ephemeral_storage {
    size = var.lambda_ephemeral_storage_mb
  }

  environment {
    variables = local.job_environment
  }

  logging_config {
    log_format            = "JSON"
    log_group             = var.lambda_log_group_name
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }

  tracing_config {
    mode = var.tracing_mode
  }

  lifecycle {
    precondition {
      condition     = var.lambda_reserved_concurrency >= var.map_max_concurrency
      error_message = "lambda_reserved_concurrency must be at least map_max_concurrency, or the Map state throttles itself."
    }
    precondition {
      condition     = var.lambda_reserved_concurrency >= var.map_run_max_concurrency
      error_message = "lambda_reserved_concurrency must be at least map_run_max_concurrency, or the Distributed Map throttles itself."
    }
  }
}

# ---------------------------------------------------------------------------------------------
# etl as a Fargate task (large partitions)
# ---------------------------------------------------------------------------------------------

resource "aws_ecr_repository" "etl" {
  name                 = var.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "etl" {
  repository = aws_ecr_repository.etl.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep the newest ${var.ecr_keep_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

resource "aws_ecs_cluster" "this" {
  name = var.ecs_cluster_name

  # Metrics are only published while tasks run, so an idle cluster costs nothing here. The
  # performance log group is created (with KMS and retention) by the logging module.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "etl" {
  family                   = var.ecs_task_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = var.task_execution_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }

  ephemeral_storage {
    size_in_gib = var.task_ephemeral_storage_gib
  }

  # Scratch space for spilling large partitions; the root file system stays read-only.
  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([
    {
      name      = local.container_name
      image     = local.image
      essential = true
      # The workflow overrides the command per partition; alone, the task only plans.
      command                = ["task", "--payload", "{\"action\":\"plan\"}"]
      readonlyRootFilesystem = true
      privileged             = false
      environment = [
        for k, v in merge(local.job_environment, { TMPDIR = "/scratch" }) : { name = k, value = v }
      ]
      mountPoints = [
        {
          sourceVolume  = "scratch"
          containerPath = "/scratch"
          readOnly      = false
        },
      ]
      linuxParameters = {
        initProcessEnabled = true
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.task_log_group_name
          awslogs-region        = local.region
          awslogs-stream-prefix = local.container_name
        }
      }
    },
  ])
}

resource "aws_security_group" "task" {
  #checkov:skip=CKV2_AWS_5:Attached at run time: Step Functions passes this group in the ecs:runTask network configuration of jobs/compact.asl.json, which Terraform cannot see as an attachment.
  name        = "${var.name_prefix}-etl-task"
  description = "etl Fargate tasks: no inbound traffic, HTTPS out to AWS APIs"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to AWS service endpoints (S3 via the gateway endpoint, the rest via public IP, NAT or interface endpoints)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = {
    Name = "${var.name_prefix}-etl-task"
  }
}

resource "aws_security_group" "team_task" {
  #checkov:skip=CKV2_AWS_5:Attached at run time: the plan gives a team's partitions this group and the workflow passes it in the ecs:runTask network configuration, which Terraform cannot see as an attachment.
  for_each    = var.team_networks
  name        = "${var.name_prefix}-etl-task-${each.key}"
  description = "etl Fargate tasks of team ${each.key}: no inbound traffic, HTTPS out to AWS APIs"
  vpc_id      = each.value.vpc_id

  egress {
    description = "HTTPS to AWS service endpoints (S3 via the gateway endpoint, the rest via public IP, NAT or interface endpoints)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = {
    Name = "${var.name_prefix}-etl-task-${each.key}"
    team = each.key
  }
}

# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------

resource "aws_sns_topic" "alerts" {
  name              = var.alert_topic_name
  display_name      = "eventlake alerts"
  kms_master_key_id = var.kms_key_arn
}

data "aws_iam_policy_document" "alerts" {
  statement {
    sid       = "CloudWatchAlarmsPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # EventBridge rules of this account (GuardDuty findings in the security module).
  statement {
    sid       = "EventBridgeRulesPublish"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish", "sns:Subscribe"]
    resources = [aws_sns_topic.alerts.arn]

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

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.key
}

# ---------------------------------------------------------------------------------------------
# Workflow: plan -> Map(compact per partition) -> check P95 -> alert
# ---------------------------------------------------------------------------------------------

resource "aws_sfn_state_machine" "compact" {
  name       = var.state_machine_name
  role_arn   = var.step_functions_role_arn
  type       = "STANDARD"
  definition = templatefile(local.asl_file, local.asl_vars)

  logging_configuration {
    log_destination        = "${var.state_machine_log_group_arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }
}

resource "aws_scheduler_schedule_group" "this" {
  name = "${var.name_prefix}-etl"
}

resource "aws_scheduler_schedule" "frequent" {
  name        = "${var.name_prefix}-compact-frequent"
  group_name  = aws_scheduler_schedule_group.this.name
  description = "Compact today's partitions"
  state       = "ENABLED"
  kms_key_arn = var.kms_key_arn

  schedule_expression          = var.frequent_schedule_expression
  schedule_expression_timezone = var.schedule_timezone

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.compact.arn
    role_arn = var.scheduler_role_arn
    input = jsonencode({
      run            = "frequent"
      scope          = "today"
      check_p95      = var.p95_check_on_frequent_runs
      scheduled_time = "<aws.scheduler.scheduled-time>"
      execution_id   = "<aws.scheduler.execution-id>"
    })

    retry_policy {
      maximum_event_age_in_seconds = 900
      maximum_retry_attempts       = 3
    }
  }
}

resource "aws_scheduler_schedule" "nightly" {
  name        = "${var.name_prefix}-compact-nightly"
  group_name  = aws_scheduler_schedule_group.this.name
  description = "Final compaction of yesterday's partitions"
  state       = "ENABLED"
  kms_key_arn = var.kms_key_arn

  schedule_expression          = var.nightly_schedule_expression
  schedule_expression_timezone = var.schedule_timezone

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.compact.arn
    role_arn = var.scheduler_role_arn
    input = jsonencode({
      run            = "nightly"
      scope          = "yesterday"
      check_p95      = true
      scheduled_time = "<aws.scheduler.scheduled-time>"
      execution_id   = "<aws.scheduler.execution-id>"
    })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 5
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  alarm_name          = "${var.name_prefix}-compact-executions-failed"
  alarm_description   = "A compaction run failed; curated data for some partitions is older than promised."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  dimensions = {
    StateMachineArn = aws_sfn_state_machine.compact.arn
  }
}

resource "aws_cloudwatch_metric_alarm" "executions_timed_out" {
  alarm_name          = "${var.name_prefix}-compact-executions-timed-out"
  alarm_description   = "A compaction run timed out."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsTimedOut"
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  dimensions = {
    StateMachineArn = aws_sfn_state_machine.compact.arn
  }
}

# One per team: Athena spend is the cost item analysts drive, so a day of heavy scanning alerts.
resource "aws_cloudwatch_metric_alarm" "athena_daily_scan" {
  for_each = var.athena_daily_scan_alarm_bytes > 0 ? var.athena_workgroup_names : {}

  alarm_name          = "${var.name_prefix}-athena-scan-${each.key}"
  alarm_description   = "Team ${each.key} scanned more than ${var.athena_daily_scan_alarm_bytes} bytes in Athena over the last 24 hours (budget guard)."
  namespace           = "AWS/Athena"
  metric_name         = "ProcessedBytes"
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = var.athena_daily_scan_alarm_bytes
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]

  dimensions = {
    WorkGroup = each.value
  }
}

# The etl binary runs either as a Lambda task or as a Fargate task; both roles get the same data
# permissions (the etl_data document here and lake_data_key in shared.tf), each has its own role
# so that the two trust policies stay single-service. The job publishes its metrics as CloudWatch
# embedded-metric log lines, so no role here needs cloudwatch:PutMetricData.

data "aws_iam_policy_document" "etl_data" {
  # One lake bucket (EVENTLAKE_LAKE = s3://<lake bucket>): listing is limited to the job's three
  # prefixes, object access to what each prefix needs.
  statement {
    sid       = "ListLakePrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        local.raw_root, "${local.raw_root}*",
        local.curated_root, "${local.curated_root}*",
        local.quarantine_root, "${local.quarantine_root}*",
      ]
    }
  }

  statement {
    sid       = "ReadRaw"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.lake_bucket_arn}/${local.raw_root}*"]
  }

  # Write new v=<run>/ folders, read manifests, and let `etl gc` delete superseded folders (the
  # bucket keeps them as noncurrent versions for the lifecycle window).
  statement {
    sid    = "WriteCurated"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = ["${var.lake_bucket_arn}/${local.curated_root}*"]
  }

  statement {
    sid    = "WriteQuarantine"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = ["${var.lake_bucket_arn}/${local.quarantine_root}*"]
  }

  # One lease object per partition (`_leases/events/team=…/dt=….json`), taken with a conditional
  # write before the work and deleted after the commit: runs never overlap on a partition.
  # A team with a key of its own has its partitions under that key: the job reads its raw batches
  # and writes its curated files, quarantine and catalog entries with it.
  statement {
    sid       = "UseTeamLakeKeysThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = concat([var.data_kms_key_arn], values(var.lake_team_kms_keys))

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3]
    }
  }

  # A large plan goes to the workflow's Distributed Map as a JSON array under _workflow/plans/;
  # the map run's result files under _workflow/map-runs/ name the partitions that failed.
  statement {
    sid       = "WriteLargePlans"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${var.lake_bucket_arn}/${local.workflow_root}plans/*"]
  }

  statement {
    sid       = "ReadMapRunResults"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.lake_bucket_arn}/${local.workflow_root}map-runs/*"]
  }

  statement {
    sid       = "DescribeMapRuns"
    effect    = "Allow"
    actions   = ["states:DescribeMapRun"]
    resources = [local.state_machine_map_runs_arn]
  }

  statement {
    sid    = "PartitionLeases"
    effect = "Allow"
    actions = [
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = ["${var.lake_bucket_arn}/${local.lease_root}*"]
  }

  statement {
    sid    = "RegisterPartitions"
    effect = "Allow"
    actions = [
      "glue:BatchCreatePartition",
      "glue:BatchGetPartition",
      "glue:BatchUpdatePartition",
      "glue:CreatePartition",
      "glue:GetDatabase",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:GetTable",
      "glue:UpdatePartition",
    ]
    resources = local.glue_read_arns
  }

  # The P95 check runs the saved queries in the job's own workgroup and reads their run times.
  statement {
    sid    = "RunSavedQueriesForP95Check"
    effect = "Allow"
    actions = [
      "athena:BatchGetNamedQuery",
      "athena:BatchGetQueryExecution",
      "athena:GetNamedQuery",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryRuntimeStatistics",
      "athena:GetWorkGroup",
      "athena:ListNamedQueries",
      "athena:ListQueryExecutions",
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
    ]
    resources = [local.job_athena_workgroup_arn]
  }

  statement {
    sid       = "ReadAthenaCatalog"
    effect    = "Allow"
    actions   = ["athena:GetDataCatalog"]
    resources = [local.athena_catalog_arn]
  }

  statement {
    sid       = "ListJobAthenaResults"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.athena_results_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.job_athena_results_prefix, "${var.job_athena_results_prefix}*"]
    }
  }

  # Athena writes query results with the caller's credentials.
  statement {
    sid    = "WriteJobAthenaResults"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${var.athena_results_bucket_arn}/${var.job_athena_results_prefix}*"]
  }

}

# --- etl as a Lambda task -------------------------------------------------------------------

resource "aws_iam_role" "etl_job" {
  name                 = "${var.name_prefix}-etl-job"
  description          = "Execution role of the ${var.etl_function_name} Lambda (plan, compact, catalog, check)"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "etl_job_data" {
  name   = "etl-data"
  role   = aws_iam_role.etl_job.id
  policy = data.aws_iam_policy_document.etl_data.json
}


# --- etl as a Fargate task ------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksAssume"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.arn_tail}:*"]
    }
  }
}

resource "aws_iam_role" "etl_task" {
  name                 = "${var.name_prefix}-etl-task"
  description          = "Task role of the etl Fargate task (large partitions)"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "etl_task_data" {
  name   = "etl-data"
  role   = aws_iam_role.etl_task.id
  policy = data.aws_iam_policy_document.etl_data.json
}

resource "aws_iam_role" "etl_task_execution" {
  name                 = "${var.name_prefix}-etl-task-execution"
  description          = "Lets ECS pull the etl image and ship the task's logs"
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "etl_task_execution" {
  statement {
    sid     = "EcrLogin"
    effect  = "Allow"
    actions = ["ecr:GetAuthorizationToken"]
    # GetAuthorizationToken is account-wide and has no resource-level permissions; "*" is required.
    resources = ["*"]
  }

  statement {
    sid    = "PullEtlImage"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [local.ecr_repository_arn]
  }

  statement {
    sid       = "ShipTaskLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.etl_task_log_group_arn}:*"]
  }
}

resource "aws_iam_role_policy" "etl_task_execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.etl_task_execution.id
  policy = data.aws_iam_policy_document.etl_task_execution.json
}

# --- Step Functions state machine -----------------------------------------------------------

data "aws_iam_policy_document" "sfn_assume" {
  statement {
    sid     = "StepFunctionsAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:states:${local.arn_tail}:stateMachine:*"]
    }
  }
}

resource "aws_iam_role" "step_functions" {
  name                 = "${var.name_prefix}-compact-sfn"
  description          = "Role of the ${var.state_machine_name} state machine"
  assume_role_policy   = data.aws_iam_policy_document.sfn_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "step_functions" {
  statement {
    sid       = "InvokeEtlLambda"
    effect    = "Allow"
    actions   = ["lambda:InvokeFunction"]
    resources = [local.etl_function_arn, "${local.etl_function_arn}:*"]
  }

  statement {
    sid       = "RunEtlTask"
    effect    = "Allow"
    actions   = ["ecs:RunTask"]
    resources = [local.ecs_task_def_arn]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.ecs_cluster_arn]
    }
  }

  statement {
    sid       = "TrackEtlTask"
    effect    = "Allow"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.ecs_tasks_arn]
  }

  statement {
    sid       = "PassTaskRoles"
    effect    = "Allow"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.etl_task.arn, aws_iam_role.etl_task_execution.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  # ecs:runTask.sync waits for the task through this Step Functions managed EventBridge rule.
  statement {
    sid       = "EcsSyncRule"
    effect    = "Allow"
    actions   = ["events:DescribeRule", "events:PutRule", "events:PutTargets"]
    resources = [local.sfn_ecs_rule_arn]
  }

  statement {
    sid       = "PublishAlerts"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [local.alert_topic_arn]
  }

  # The Distributed Map of large plans: each partition is a child execution of this same state
  # machine, its items come from the plan's file and its results go to the lake.
  statement {
    sid       = "StartMapRunChildren"
    effect    = "Allow"
    actions   = ["states:StartExecution"]
    resources = [local.state_machine_arn]
  }

  statement {
    sid       = "TrackMapRunChildren"
    effect    = "Allow"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = [local.state_machine_executions_arn]
  }

  statement {
    sid       = "ManageMapRuns"
    effect    = "Allow"
    actions   = ["states:DescribeMapRun", "states:UpdateMapRun"]
    resources = [local.state_machine_map_runs_arn]
  }

  statement {
    sid       = "ReadLargePlans"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.lake_bucket_arn}/${local.workflow_root}plans/*"]
  }

  statement {
    sid    = "WriteMapRunResults"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${var.lake_bucket_arn}/${local.workflow_root}map-runs/*"]
  }

  statement {
    sid       = "UseLakeKeyThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_s3]
    }
  }

  statement {
    sid       = "UseDataKeyThroughSns"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.data_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.via_sns]
    }
  }

  statement {
    sid    = "DeliverExecutionLogs"
    effect = "Allow"
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    # Step Functions log delivery uses the CloudWatch Logs vended-log delivery APIs, which do not
    # support resource-level permissions (AWS Step Functions developer guide, "IAM policies for
    # logging to CloudWatch Logs"); "*" is required.
    resources = ["*"]
  }

  statement {
    sid    = "WriteTraces"
    effect = "Allow"
    actions = [
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    # X-Ray trace submission and sampling do not support resource-level permissions; "*" is required.
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "step_functions" {
  name   = "compact"
  role   = aws_iam_role.step_functions.id
  policy = data.aws_iam_policy_document.step_functions.json
}

# --- EventBridge Scheduler ------------------------------------------------------------------

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    sid     = "SchedulerAssumes"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name                 = "${var.name_prefix}-compact-scheduler"
  description          = "Lets EventBridge Scheduler start the ${var.state_machine_name} state machine"
  assume_role_policy   = data.aws_iam_policy_document.scheduler_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "StartCompaction"
    effect    = "Allow"
    actions   = ["states:StartExecution"]
    resources = [local.state_machine_arn]
  }

  # The schedules are encrypted with the data key.
  statement {
    sid       = "DecryptSchedule"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.data_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "start-compaction"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

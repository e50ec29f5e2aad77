data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  arn_tail   = "${local.region}:${local.account_id}"

  account_root_arn = "arn:${local.partition}:iam::${local.account_id}:root"

  glue_catalog_arn  = "arn:${local.partition}:glue:${local.arn_tail}:catalog"
  glue_database_arn = "arn:${local.partition}:glue:${local.arn_tail}:database/${var.glue_database_name}"
  glue_table_arn    = "arn:${local.partition}:glue:${local.arn_tail}:table/${var.glue_database_name}/${var.glue_table_name}"
  glue_read_arns    = [local.glue_catalog_arn, local.glue_database_arn, local.glue_table_arn]

  athena_workgroup_arns = {
    for team, wg in var.athena_workgroup_names : team => "arn:${local.partition}:athena:${local.arn_tail}:workgroup/${wg}"
  }
  athena_catalog_arn       = "arn:${local.partition}:athena:${local.arn_tail}:datacatalog/AwsDataCatalog"
  job_athena_workgroup_arn = "arn:${local.partition}:athena:${local.arn_tail}:workgroup/${var.job_athena_workgroup_name}"

  ledger_table_arn   = "arn:${local.partition}:dynamodb:${local.arn_tail}:table/${var.ledger_table_name}"
  ingest_dlq_arn     = "arn:${local.partition}:sqs:${local.arn_tail}:${var.ingest_dlq_name}"
  etl_function_arn   = "arn:${local.partition}:lambda:${local.arn_tail}:function:${var.etl_function_name}"
  ecs_cluster_arn    = "arn:${local.partition}:ecs:${local.arn_tail}:cluster/${var.ecs_cluster_name}"
  ecs_task_def_arn   = "arn:${local.partition}:ecs:${local.arn_tail}:task-definition/${var.ecs_task_family}:*"
  ecs_tasks_arn      = "arn:${local.partition}:ecs:${local.arn_tail}:task/${var.ecs_cluster_name}/*"
  ecr_repository_arn = "arn:${local.partition}:ecr:${local.arn_tail}:repository/${var.ecr_repository_name}"
  state_machine_arn  = "arn:${local.partition}:states:${local.arn_tail}:stateMachine:${var.state_machine_name}"
  alert_topic_arn    = "arn:${local.partition}:sns:${local.arn_tail}:${var.alert_topic_name}"
  # The managed rule Step Functions creates for ecs:runTask.sync.
  sfn_ecs_rule_arn = "arn:${local.partition}:events:${local.arn_tail}:rule/StepFunctionsGetEventsForECSTaskRule"
  # A parameter ARN is "parameter" + the name, with exactly one slash between them.
  ingest_tokens_parameter_arn = "arn:${local.partition}:ssm:${local.arn_tail}:parameter/${trimprefix(var.ingest_tokens_parameter_name, "/")}"

  via_s3   = "s3.${local.region}.amazonaws.com"
  via_glue = "glue.${local.region}.amazonaws.com"
  via_sqs  = "sqs.${local.region}.amazonaws.com"
  via_sns  = "sns.${local.region}.amazonaws.com"
  via_ssm  = "ssm.${local.region}.amazonaws.com"

  # Object key roots in the lake bucket (crates/contract/src/layout.rs).
  raw_root        = "raw/"
  ingest_root     = "_ingest/"
  curated_root    = "curated/events/"
  quarantine_root = "quarantine/"
  lease_root      = "_leases/"
  # Large plans (_workflow/plans/) and Distributed Map results (_workflow/map-runs/).
  workflow_root = "_workflow/"

  # A Distributed Map's child executions and its map runs are named after the state machine.
  state_machine_executions_arn = "arn:${local.partition}:states:${local.arn_tail}:execution:${var.state_machine_name}/*"
  state_machine_map_runs_arn   = "arn:${local.partition}:states:${local.arn_tail}:mapRun:${var.state_machine_name}/*"
}

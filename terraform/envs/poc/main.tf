provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
      Repository  = "eventlake"
    }
  }
}

locals {
  name_prefix = "${var.project}-${var.environment}"

  # Names shared between modules. The iam module scopes every policy to these names, so roles
  # and policies can be created before (and independently of) the resources they govern.
  names = {
    ingest_function = "${local.name_prefix}-ingest"
    ingest_dlq      = "${local.name_prefix}-ingest-dlq"
    ingest_tokens   = "/${local.name_prefix}/ingest/tokens"
    etl_function    = "${local.name_prefix}-etl"
    ecs_cluster     = "${local.name_prefix}-etl"
    ecs_task_family = "${local.name_prefix}-etl"
    ecr_repository  = "${local.name_prefix}/etl"
    state_machine   = "${local.name_prefix}-compact"
    alert_topic     = "${local.name_prefix}-alerts"
    trail           = "${local.name_prefix}-trail"
    ledger_table    = "${local.name_prefix}-ledger"
    bus_fanout      = "${local.name_prefix}-bus-fanout"
    bus_bridge      = "${local.name_prefix}-bus-bridge"
  }

  log_groups = {
    ingest        = "/aws/lambda/${local.names.ingest_function}"
    ingest_access = "/aws/apigateway/${local.name_prefix}-ingest-access"
    etl           = "/aws/lambda/${local.names.etl_function}"
    etl_task      = "/ecs/${local.names.ecs_task_family}"
    etl_insights  = "/aws/ecs/containerinsights/${local.names.ecs_cluster}/performance"
    state_machine = "/aws/vendedlogs/states/${local.names.state_machine}"
    bus_fanout    = "/aws/lambda/${local.names.bus_fanout}"
    bus_bridge    = "/aws/lambda/${local.names.bus_bridge}"
  }

  # Created by the security module next to the trail.
  trail_log_group = "/aws/cloudtrail/${local.names.trail}"

  # Fargate tasks reach ECR, CloudWatch Logs, Glue and CloudWatch metrics either through a public
  # IP (POC) or through interface endpoints from the private subnets.
  etl_interface_endpoints = ["ecr.api", "ecr.dkr", "logs", "glue", "monitoring"]

  # Relative package paths are taken from this directory (path.root), not from wherever
  # terraform happens to run, and stay relative so the plan is the same on every machine.
  ingest_package_path = startswith(var.ingest_package_path, "/") ? var.ingest_package_path : "${path.root}/${var.ingest_package_path}"
  etl_package_path    = startswith(var.etl_package_path, "/") ? var.etl_package_path : "${path.root}/${var.etl_package_path}"
  bus_package_path    = startswith(var.bus_package_path, "/") ? var.bus_package_path : "${path.root}/${var.bus_package_path}"
  subscriptions_path  = startswith(var.subscriptions_path, "/") ? var.subscriptions_path : "${path.root}/${var.subscriptions_path}"
}

module "shared" {
  source = "../../modules/shared-services"

  name_prefix                    = local.name_prefix
  teams                          = var.teams
  bytes_scanned_cutoff_per_query = var.bytes_scanned_cutoff_per_query
  raw_expiration_days            = var.raw_expiration_days
  manage_glue_catalog_encryption = var.manage_glue_catalog_encryption
  team_kms_key_teams             = var.team_kms_key_teams
}

module "logging" {
  source = "../../modules/logging"

  name_prefix             = local.name_prefix
  kms_key_arn             = module.shared.logs_kms_key_arn
  log_groups              = local.log_groups
  retention_in_days       = var.log_retention_days
  access_logs_bucket_name = module.shared.access_logs_bucket_name
  cloudtrail_name         = local.names.trail
  # Application logs also go to the archive bucket (logs/), kept there after the groups' retention.
  archived_log_groups = ["ingest", "etl", "etl_task", "state_machine", "bus_fanout", "bus_bridge"]
}

module "vpc" {
  source = "../../modules/vpc"

  name_prefix                 = local.name_prefix
  cidr_block                  = var.vpc_cidr
  availability_zone_suffixes  = var.availability_zone_suffixes
  create_public_subnets       = !var.etl_tasks_in_private_subnets || var.enable_nat_gateway
  enable_nat_gateway          = var.enable_nat_gateway
  interface_endpoint_services = var.etl_tasks_in_private_subnets && !var.enable_nat_gateway ? local.etl_interface_endpoints : []
  enable_flow_logs            = var.enable_flow_logs
  flow_logs_destination_arn   = module.logging.archive_bucket_arn
}

# A network of its own per team: the Fargate tasks that compact the team's partitions run there.
# Same shape as the environment's VPC (no NAT by default; gateway endpoints for S3 and DynamoDB,
# which cost nothing), a /20 per team carved from team_vpc_supernet in the order of `teams`.
module "team_vpc" {
  source   = "../../modules/vpc"
  for_each = var.team_networks ? toset(var.teams) : toset([])

  name_prefix                 = "${local.name_prefix}-${each.key}"
  resource_name_prefix        = local.name_prefix
  cidr_block                  = cidrsubnet(var.team_vpc_supernet, 20 - tonumber(split("/", var.team_vpc_supernet)[1]), index(var.teams, each.key))
  availability_zone_suffixes  = var.availability_zone_suffixes
  create_public_subnets       = !var.etl_tasks_in_private_subnets || var.enable_nat_gateway
  enable_nat_gateway          = var.enable_nat_gateway
  interface_endpoint_services = var.etl_tasks_in_private_subnets && !var.enable_nat_gateway ? local.etl_interface_endpoints : []
  enable_flow_logs            = var.enable_flow_logs
  flow_logs_destination_arn   = module.logging.archive_bucket_arn
}

module "iam" {
  source = "../../modules/iam"

  name_prefix = local.name_prefix
  teams       = var.teams

  data_kms_key_arn          = module.shared.data_kms_key_arn
  team_kms_key_arns         = module.shared.team_kms_key_arns
  lake_team_kms_keys        = module.shared.lake_team_kms_keys
  lake_bucket_arn           = module.shared.lake_bucket_arn
  athena_results_bucket_arn = module.shared.athena_results_bucket_arn
  glue_database_name        = module.shared.glue_database_name
  glue_table_name           = module.shared.glue_table_name
  athena_workgroup_names    = module.shared.athena_workgroup_names
  job_athena_workgroup_name = module.shared.job_athena_workgroup_name

  ingest_function_name         = local.names.ingest_function
  ledger_table_name            = local.names.ledger_table
  ingest_dlq_name              = local.names.ingest_dlq
  ingest_tokens_parameter_name = local.names.ingest_tokens
  ingest_log_group_arn         = module.logging.log_group_arns["ingest"]
  etl_function_name            = local.names.etl_function
  etl_log_group_arn            = module.logging.log_group_arns["etl"]
  etl_task_log_group_arn       = module.logging.log_group_arns["etl_task"]
  ecs_cluster_name             = local.names.ecs_cluster
  ecs_task_family              = local.names.ecs_task_family
  ecr_repository_name          = local.names.ecr_repository
  state_machine_name           = local.names.state_machine
  alert_topic_name             = local.names.alert_topic
  cloudtrail_log_group_name    = local.trail_log_group

  analyst_principal_arns        = var.analyst_principal_arns
  analyst_require_mfa           = var.analyst_require_mfa
  ingest_redrive_principal_arns = var.ingest_redrive_principal_arns
  ingest_redrive_require_mfa    = var.ingest_redrive_require_mfa
}

module "etl" {
  source = "../../modules/etl"

  name_prefix = local.name_prefix

  function_name       = local.names.etl_function
  ecs_cluster_name    = local.names.ecs_cluster
  ecs_task_family     = local.names.ecs_task_family
  ecr_repository_name = local.names.ecr_repository
  state_machine_name  = local.names.state_machine
  alert_topic_name    = local.names.alert_topic

  lambda_role_arn         = module.iam.etl_job_role_arn
  task_role_arn           = module.iam.etl_task_role_arn
  task_execution_role_arn = module.iam.etl_task_execution_role_arn
  step_functions_role_arn = module.iam.step_functions_role_arn
  scheduler_role_arn      = module.iam.scheduler_role_arn

  lambda_log_group_name       = module.logging.log_group_names["etl"]
  task_log_group_name         = module.logging.log_group_names["etl_task"]
  state_machine_log_group_arn = module.logging.log_group_arns["state_machine"]

  kms_key_arn            = module.shared.data_kms_key_arn
  lake_url               = module.shared.lake_url
  lake_team_kms_keys     = module.shared.lake_team_kms_keys
  glue_database_name     = module.shared.glue_database_name
  glue_table_name        = module.shared.glue_table_name
  athena_workgroup_name  = module.shared.job_athena_workgroup_name
  athena_output_location = module.shared.job_athena_output_location
  athena_workgroup_names = module.shared.athena_workgroup_names

  vpc_id                = module.vpc.vpc_id
  task_subnet_ids       = var.etl_tasks_in_private_subnets ? module.vpc.private_subnet_ids : module.vpc.public_subnet_ids
  task_assign_public_ip = !var.etl_tasks_in_private_subnets
  team_networks = {
    for team, v in module.team_vpc : team => {
      vpc_id     = v.vpc_id
      subnet_ids = var.etl_tasks_in_private_subnets ? v.private_subnet_ids : v.public_subnet_ids
    }
  }

  package_path        = local.etl_package_path
  image_tag           = var.etl_image_tag
  map_max_concurrency = var.map_max_concurrency
  alert_emails        = var.alert_emails
  teams               = var.teams
  # asl_path keeps its default: jobs/compact.asl.json at the repository root.
}

module "ingest" {
  source = "../../modules/ingest"

  name_prefix   = local.name_prefix
  function_name = local.names.ingest_function
  dlq_name      = local.names.ingest_dlq
  package_path  = local.ingest_package_path

  tokens_parameter_name = local.names.ingest_tokens
  ledger_table_name     = module.bus.ledger_table_name

  role_arn             = module.iam.ingest_role_arn
  log_group_name       = module.logging.log_group_names["ingest"]
  access_log_group_arn = module.logging.log_group_arns["ingest_access"]
  kms_key_arn          = module.shared.data_kms_key_arn
  lake_url             = module.shared.lake_url
  lake_team_kms_keys   = module.shared.lake_team_kms_keys
  alarm_topic_arn      = module.etl.alert_topic_arn

  rate_events_per_sec = var.ingest_rate_events_per_sec
  events_rate_limit   = var.events_rate_limit
  events_burst_limit  = var.events_burst_limit
  teams               = var.teams
}

module "bus" {
  source = "../../modules/bus"

  name_prefix          = local.name_prefix
  teams                = var.teams
  subscriptions_json   = file(local.subscriptions_path)
  ledger_table_name    = local.names.ledger_table
  fanout_function_name = local.names.bus_fanout
  bridge_function_name = local.names.bus_bridge
  package_path         = local.bus_package_path

  kms_key_arn           = module.shared.data_kms_key_arn
  lake_bucket_arn       = module.shared.lake_bucket_arn
  lake_url              = module.shared.lake_url
  lake_team_kms_keys    = module.shared.lake_team_kms_keys
  fanout_log_group_name = module.logging.log_group_names["bus_fanout"]
  bridge_log_group_name = module.logging.log_group_names["bus_bridge"]
  alarm_topic_arn       = module.etl.alert_topic_arn

  notification_emails      = var.bus_notification_emails
  team_principal_arns      = var.bus_team_principal_arns
  kafka_bootstrap_servers  = var.kafka_bootstrap_servers
  create_msk_serverless    = var.create_msk_serverless
  kafka_subnet_ids         = var.kafka_subnet_ids
  kafka_security_group_ids = var.kafka_security_group_ids
}

module "security" {
  source = "../../modules/security"

  name_prefix                      = local.name_prefix
  trail_name                       = local.names.trail
  archive_bucket_name              = module.logging.archive_bucket_name
  kms_key_arn                      = module.shared.logs_kms_key_arn
  cloudwatch_log_group_name        = local.trail_log_group
  cloudwatch_log_retention_in_days = var.log_retention_days
  cloudwatch_logs_role_arn         = module.iam.cloudtrail_logs_role_arn
  enable_guardduty                 = var.enable_guardduty
  alert_topic_arn                  = module.etl.alert_topic_arn
}

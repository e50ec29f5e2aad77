# The event bus beside the lake: the ledger (DynamoDB, written by ingest) and its stream, the
# fan-out to one SQS FIFO queue per receiving team (each with its DLQ and alarms), batch
# notifications on SNS, optionally a bridge from each queue to the team's Kafka topic, and one
# consumer role per team that can read its own queue and topic and nothing of another team's.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  arn_tail   = "${local.region}:${local.account_id}"

  account_root_arn = "arn:${local.partition}:iam::${local.account_id}:root"

  subscriptions = jsondecode(var.subscriptions_json)
  rules         = try(local.subscriptions.subscriptions, [])
  # Every team that receives events gets a queue; only these are named in the subscriptions.
  receiving_teams = toset(distinct([for r in local.rules : r.team]))
  notify_teams    = toset(try(local.subscriptions.notify, []))
  named_teams     = toset(concat([for r in local.rules : r.team], [for r in local.rules : r.from], tolist(local.notify_teams)))

  # Queues are <queue_prefix><team>.fifo, as the fan-out and the bridge find them.
  queue_prefix = "${var.name_prefix}-bus-"

  kafka_enabled   = var.create_msk_serverless || var.kafka_bootstrap_servers != ""
  kafka_bootstrap = var.create_msk_serverless ? try(aws_msk_serverless_cluster.this[0].bootstrap_brokers_sasl_iam, "") : var.kafka_bootstrap_servers

  table_arn  = "arn:${local.partition}:dynamodb:${local.arn_tail}:table/${var.ledger_table_name}"
  stream_arn = "${local.table_arn}/stream/*"
  queue_arn  = { for t in local.receiving_teams : t => "arn:${local.partition}:sqs:${local.arn_tail}:${local.queue_prefix}${t}.fifo" }
  dlq_arn    = { for t in local.receiving_teams : t => "arn:${local.partition}:sqs:${local.arn_tail}:${local.queue_prefix}${t}-dlq.fifo" }

  subscriptions_parameter_name = "/${var.name_prefix}/bus/subscriptions"
  subscriptions_parameter_arn  = "arn:${local.partition}:ssm:${local.arn_tail}:parameter${local.subscriptions_parameter_name}"
  notify_topic_name            = "${var.name_prefix}-bus-notifications"
  notify_topic_arn             = "arn:${local.partition}:sns:${local.arn_tail}:${local.notify_topic_name}"

  # MSK resource ARNs for the IAM access control of an MSK Serverless cluster.
  msk_cluster_name = "${var.name_prefix}-bus"
  msk_cluster_arn  = "arn:${local.partition}:kafka:${local.arn_tail}:cluster/${local.msk_cluster_name}/*"
  msk_topic_arn    = { for t in local.receiving_teams : t => "arn:${local.partition}:kafka:${local.arn_tail}:topic/${local.msk_cluster_name}/*/${var.kafka_topic_prefix}${t}" }
  msk_group_arn    = { for t in local.receiving_teams : t => "arn:${local.partition}:kafka:${local.arn_tail}:group/${local.msk_cluster_name}/*/eventlake-${t}" }

  via_s3       = "s3.${local.region}.amazonaws.com"
  via_sqs      = "sqs.${local.region}.amazonaws.com"
  via_sns      = "sns.${local.region}.amazonaws.com"
  via_ssm      = "ssm.${local.region}.amazonaws.com"
  via_dynamodb = "dynamodb.${local.region}.amazonaws.com"

  package_hash = fileexists(var.package_path) ? filebase64sha256(var.package_path) : null
}

# ---------------------------------------------------------------------------------------------
# The subscriptions, as the fan-out reads them. Versioned by SSM (every change is a new
# version) and by the repository that holds the document.
# ---------------------------------------------------------------------------------------------

resource "aws_ssm_parameter" "subscriptions" {
  name        = local.subscriptions_parameter_name
  description = "Which team receives which producing team's events (the bus's subscriptions document)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  # Standard up to 4 KB; larger documents become Advanced (0.05 USD a month) on their own.
  tier  = "Intelligent-Tiering"
  value = var.subscriptions_json

  lifecycle {
    precondition {
      condition     = try(local.subscriptions.version, 0) == 1
      error_message = "The subscriptions document must have \"version\": 1."
    }
    precondition {
      condition     = length(setsubtract(local.named_teams, var.teams)) == 0
      error_message = "The subscriptions document names teams that are not in var.teams: ${join(", ", setsubtract(local.named_teams, var.teams))}."
    }
  }
}

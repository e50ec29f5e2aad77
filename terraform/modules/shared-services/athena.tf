# One workgroup per team. The workgroup settings are enforced, so an analyst cannot point results
# elsewhere, switch off encryption or lift the per-query scan cutoff.

resource "aws_athena_workgroup" "team" {
  for_each = toset(var.teams)

  name          = "${var.name_prefix}-${each.key}"
  description   = "Athena workgroup of team ${each.key}"
  state         = "ENABLED"
  force_destroy = var.force_destroy

  # Athena's scans are billed to the workgroup: the tag puts them in the team's budget.
  tags = {
    team = each.key
  }

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query
    requester_pays_enabled             = false

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${aws_s3_bucket.data["athena-results"].id}/team=${each.key}/"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = local.team_key_arns[each.key]
      }
    }
  }
}

# The job's own workgroup: the P95 check of the saved queries runs here (EVENTLAKE_ATHENA_WORKGROUP),
# with its results under etl/ of the results bucket, so neither the teams' scan metrics nor their
# results prefixes carry the job's probes.
resource "aws_athena_workgroup" "job" {
  name          = "${var.name_prefix}-etl"
  description   = "Athena workgroup of the etl job (P95 check of the saved queries)"
  state         = "ENABLED"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query
    requester_pays_enabled             = false

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${aws_s3_bucket.data["athena-results"].id}/${local.job_results_root}"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.data.arn
      }
    }
  }
}

# A saved query per team in its own workgroup: a latency probe analysts can run or copy (teams add
# their own next to it).
resource "aws_athena_named_query" "probe" {
  for_each = var.create_probe_queries ? toset(var.teams) : toset([])

  name        = "${var.name_prefix}-${each.key}-p95-probe"
  description = "Latency probe: today's events of team ${each.key} by type"
  workgroup   = aws_athena_workgroup.team[each.key].id
  database    = aws_glue_catalog_database.this.name
  query       = <<-SQL
    SELECT event_type, count(*) AS events
    FROM events
    WHERE team = '${each.key}'
      AND dt = CAST(current_date AS varchar)
    GROUP BY event_type
  SQL
}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Globally unique bucket names without hard-coding the account or region.
  bucket_suffix = "${local.account_id}-${local.region}"

  # The lake is one bucket: the job (and ingest) read a single lake URL, s3://<lake bucket>, and
  # find raw/, curated/, quarantine/ and _ingest/ under it (crates/contract/src/layout.rs).
  # Retention differs per prefix (lifecycle rules below); access is granted per prefix (iam
  # module). The Athena results bucket is the second data bucket. Both share one hardening
  # pattern (SSE-KMS with the data key, versioning, public access block, owner-enforced object
  # ownership, TLS-only policy, access logging, EventBridge notifications).
  data_buckets = {
    lake           = "${var.name_prefix}-lake-${local.bucket_suffix}"
    athena-results = "${var.name_prefix}-athena-results-${local.bucket_suffix}"
  }

  access_logs_bucket_name = "${var.name_prefix}-access-logs-${local.bucket_suffix}"

  glue_database_name = coalesce(var.glue_database_name, replace(var.name_prefix, "-", "_"))

  lake_url = "s3://${aws_s3_bucket.data["lake"].id}"

  # Object key roots inside the lake bucket (crates/contract/src/layout.rs).
  raw_root        = "raw/"
  ingest_root     = "_ingest/" # idempotency markers of the ingest function
  curated_root    = "curated/events/"
  quarantine_root = "quarantine/"
  lease_root      = "_leases/"
  workflow_root   = "_workflow/"

  # Prefix of the job's own Athena results (the P95 check) in the results bucket; the teams'
  # results sit under team=<team>/.
  job_results_root = "etl/"
}

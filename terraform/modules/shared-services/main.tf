data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Globally unique bucket names without hard-coding the account or region.
  bucket_suffix = "${local.account_id}-${local.region}"

  # The four data buckets share one hardening pattern (SSE-KMS with the data key, versioning,
  # public access block, owner-enforced object ownership, TLS-only policy, access logging,
  # EventBridge notifications). Their lifecycle rules differ and are defined one by one below.
  data_buckets = {
    raw            = "${var.name_prefix}-raw-${local.bucket_suffix}"
    curated        = "${var.name_prefix}-curated-${local.bucket_suffix}"
    quarantine     = "${var.name_prefix}-quarantine-${local.bucket_suffix}"
    athena-results = "${var.name_prefix}-athena-results-${local.bucket_suffix}"
  }

  access_logs_bucket_name = "${var.name_prefix}-access-logs-${local.bucket_suffix}"

  glue_database_name = coalesce(var.glue_database_name, replace(var.name_prefix, "-", "_"))

  # Object key roots inside each bucket (crates/contract/src/layout.rs).
  raw_root        = "raw/"
  ingest_root     = "_ingest/" # idempotency markers of the ingest function, in the raw bucket
  curated_root    = "curated/events/"
  quarantine_root = "quarantine/"
}

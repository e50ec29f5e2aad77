# ---------------------------------------------------------------------------------------------
# Data buckets: lake (raw/, curated/, quarantine/, _ingest/) and athena-results
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:Single-region POC. Cross-region replication would double storage and request cost; the RPO/RTO promises in docs/operations.md are regional.
  for_each = local.data_buckets

  bucket        = each.value
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "data" {
  for_each = local.data_buckets

  bucket = aws_s3_bucket.data[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  for_each = local.data_buckets

  bucket                  = aws_s3_bucket.data[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Versioning protects against overwrites and deletes. It is on for every data bucket; for
# athena-results (reproducible query output) noncurrent versions expire after one day.
resource "aws_s3_bucket_versioning" "data" {
  for_each = local.data_buckets

  bucket = aws_s3_bucket.data[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  for_each = local.data_buckets

  bucket = aws_s3_bucket.data[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    # S3 Bucket Keys cut KMS requests (and their cost) by orders of magnitude for the many small
    # raw objects.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "data" {
  for_each = local.data_buckets

  bucket        = aws_s3_bucket.data[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"

  target_object_key_format {
    partitioned_prefix {
      partition_date_source = "EventTime"
    }
  }
}

# Object-level events go to EventBridge (free for AWS service events on the default bus) so that
# later automation, for example an event-driven compaction, needs no bucket change.
resource "aws_s3_bucket_notification" "data" {
  for_each = local.data_buckets

  bucket      = aws_s3_bucket.data[each.key].id
  eventbridge = true
}

data "aws_iam_policy_document" "data_bucket" {
  for_each = local.data_buckets

  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # Every S3 action is denied over plain HTTP: a wildcard is the point of this statement.
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.data[each.key].arn,
      "${aws_s3_bucket.data[each.key].arn}/*",
    ]

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

  statement {
    sid       = "DenyOtherEncryptionThanSseKms"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Only when the writer names an encryption setting: objects written without one get the
    # bucket default (SSE-KMS with the data key).
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    # Only when the writer names an encryption setting: objects written without one get the
    # bucket default (SSE-KMS with the data key).
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = ["false"]
    }

    # The results bucket and the lake also take the teams' own keys (their workgroups write
    # results with them; the jobs write a keyed team's objects with them).
    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = contains(["athena-results", "lake"], each.key) ? distinct(concat([aws_kms_key.data.arn], values(local.team_key_arns))) : [aws_kms_key.data.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  for_each = local.data_buckets

  bucket = aws_s3_bucket.data[each.key].id
  policy = data.aws_iam_policy_document.data_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.data]
}

# The lake: one bucket, one lifecycle rule per prefix.
#   raw/        the source of truth for replays. Objects of 128 KiB or more move to cheaper classes
#               (smaller ones stay in STANDARD: IA and Glacier IR bill at least 128 KiB per object,
#               so moving them would cost more); everything expires after raw_expiration_days.
#   _ingest/    idempotency markers of the ingest function: kept as long as the batches they
#               stand for.
#   curated/    `etl gc` deletes superseded v=<run>/ folders; the deleted objects stay as
#               noncurrent versions (an undo window) for curated_noncurrent_version_expiration_days.
#   quarantine/ rejected lines, kept quarantine_expiration_days.
#   _leases/    one small object per partition while a run works on it, deleted after its
#               commit: the overwritten and deleted versions go after a day.
# Rules with different prefixes never overlap; the last rule only removes expired delete markers
# and incomplete uploads anywhere in the bucket.
resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket                                 = aws_s3_bucket.data["lake"].id
  transition_default_minimum_object_size = "all_storage_classes_128K"

  rule {
    id     = "raw-tiering-and-expiry"
    status = "Enabled"

    filter {
      prefix = local.raw_root
    }

    transition {
      days          = var.raw_standard_ia_after_days
      storage_class = "STANDARD_IA"
    }

    transition {
      days          = var.raw_glacier_ir_after_days
      storage_class = "GLACIER_IR"
    }

    expiration {
      days = var.raw_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "ingest-markers-expiry"
    status = "Enabled"

    filter {
      prefix = local.ingest_root
    }

    expiration {
      days = var.raw_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "curated-noncurrent-expiry"
    status = "Enabled"

    filter {
      prefix = "curated/"
    }

    noncurrent_version_expiration {
      noncurrent_days = var.curated_noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "quarantine-expiry"
    status = "Enabled"

    filter {
      prefix = local.quarantine_root
    }

    expiration {
      days = var.quarantine_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Large plans and Distributed Map results: read by the run that wrote them, kept a month for
  # the on-call engineer.
  rule {
    id     = "workflow-files-expiry"
    status = "Enabled"

    filter {
      prefix = local.workflow_root
    }

    expiration {
      days = 30
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "lease-versions-expiry"
    status = "Enabled"

    filter {
      prefix = local.lease_root
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "cleanup-delete-markers"
    status = "Enabled"

    # Whole bucket. An explicit empty prefix rather than "filter {}", which AWS provider 5.90+
    # reports as an invalid attribute combination.
    filter {
      prefix = ""
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}

resource "aws_s3_bucket_lifecycle_configuration" "athena_results" {
  bucket = aws_s3_bucket.data["athena-results"].id

  rule {
    id     = "results-expiry"
    status = "Enabled"

    # Whole bucket.
    filter {
      prefix = ""
    }

    expiration {
      days = var.athena_results_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}

# ---------------------------------------------------------------------------------------------
# S3 server access log bucket (target of the data buckets and of the log archive bucket)
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This is the server access log target; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Single-region POC; see the data buckets.
  #checkov:skip=CKV_AWS_145:The S3 user guide documents SSE-S3 (AES256) as the only default encryption supported on a server access log target bucket, so this one bucket does not use SSE-KMS. It holds request metadata, no event data.
  bucket        = local.access_logs_bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_notification" "access_logs" {
  bucket      = aws_s3_bucket.access_logs.id
  eventbridge = true
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "access-log-expiry"
    status = "Enabled"

    # Whole bucket.
    filter {
      prefix = ""
    }

    expiration {
      days = var.access_logs_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # Every S3 action is denied over plain HTTP: a wildcard is the point of this statement.
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.access_logs.arn,
      "${aws_s3_bucket.access_logs.arn}/*",
    ]

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

  statement {
    sid       = "S3ServerAccessLogDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    # Only this platform's buckets (the data buckets and the log archive bucket of the logging
    # module share the name prefix) may deliver here.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:s3:::${var.name_prefix}-*"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

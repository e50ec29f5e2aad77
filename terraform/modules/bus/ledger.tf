# The ledger: one item per accepted batch (pk = "<team>#<batch_id>"), written by ingest with
# conditional writes before it answers; the item's new image on the stream is the bus's outbox.
# On demand (no capacity to plan for bursts), point-in-time recovery (restores to within about
# 5 minutes, 35 days back), items expire by TTL on expires_at.

resource "aws_dynamodb_table" "ledger" {
  name         = var.ledger_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = true
}

# The curated table as readers see it (crates/contract/src/schema.rs): the file columns, then the
# Hive partition keys team and dt. `etl catalog` registers each partition with the location of its
# newest v=<run>/ folder.

locals {
  event_columns = [
    { name = "event_id", type = "string", comment = "Client event id, at most 128 characters" },
    { name = "event_type", type = "string", comment = "[a-z0-9_.:-]{1,64}" },
    { name = "event_time", type = "timestamp", comment = "When the event happened (client clock, UTC)" },
    { name = "received_at", type = "timestamp", comment = "When ingest accepted the event (server clock, UTC); dt is its day" },
    { name = "user_id", type = "string", comment = "" },
    { name = "session_id", type = "string", comment = "" },
    { name = "source", type = "string", comment = "" },
    { name = "schema_version", type = "int", comment = "Event contract version" },
    { name = "properties", type = "string", comment = "The properties object as JSON text" },
    { name = "context_ip", type = "string", comment = "" },
    { name = "context_user_agent", type = "string", comment = "" },
    { name = "context_locale", type = "string", comment = "" },
    { name = "context_app_version", type = "string", comment = "" },
  ]
}

resource "aws_glue_catalog_database" "this" {
  name        = local.glue_database_name
  description = "${var.name_prefix} event lake"

  # Metadata is written encrypted from the start when the module manages catalog encryption.
  depends_on = [aws_glue_data_catalog_encryption_settings.this]
}

resource "aws_glue_catalog_table" "events" {
  name          = "events"
  database_name = aws_glue_catalog_database.this.name
  description   = "Validated events, ZSTD Parquet, one folder per (team, dt) and compaction run"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL              = "TRUE"
    classification        = "parquet"
    "parquet.compression" = "ZSTD"
  }

  partition_keys {
    name    = "team"
    type    = "string"
    comment = "Owning team"
  }

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "UTC day of received_at, YYYY-MM-DD"
  }

  partition_index {
    index_name = "team_dt"
    keys       = ["team", "dt"]
  }

  storage_descriptor {
    location      = "${local.lake_url}/${local.curated_root}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    compressed    = true

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.event_columns

      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment == "" ? null : columns.value.comment
      }
    }
  }
}

# Account-and-region-wide: encrypts catalog metadata (databases, tables, partitions) with the data
# key. Every principal that reads the catalog then needs kms:Decrypt on that key through Glue,
# which the roles of the iam module have.
resource "aws_glue_data_catalog_encryption_settings" "this" {
  count = var.manage_glue_catalog_encryption ? 1 : 0

  data_catalog_encryption_settings {
    encryption_at_rest {
      catalog_encryption_mode = "SSE-KMS"
      sse_aws_kms_key_id      = aws_kms_key.data.arn
    }

    connection_password_encryption {
      return_connection_password_encrypted = true
      aws_kms_key_id                       = aws_kms_key.data.arn
    }
  }
}

//! The curated table's Arrow schema (contract section 3).

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Partition columns, in order. They live in the path (`team=<team>/dt=<dt>/`), not in the files.
pub const PARTITION_COLUMNS: [&str; 2] = ["team", "dt"];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("event_time", ts(), false),
        Field::new("received_at", ts(), false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("session_id", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, true),
        Field::new("schema_version", DataType::Int32, false),
        Field::new("properties", DataType::Utf8, true),
        Field::new("context_ip", DataType::Utf8, true),
        Field::new("context_user_agent", DataType::Utf8, true),
        Field::new("context_locale", DataType::Utf8, true),
        Field::new("context_app_version", DataType::Utf8, true),
    ]))
});

/// The columns stored in each Parquet file, in order.
pub fn file_schema() -> SchemaRef {
    Arc::clone(&FILE_SCHEMA)
}

/// The partition columns as Arrow fields (both strings).
pub fn partition_fields() -> Vec<Arc<Field>> {
    PARTITION_COLUMNS
        .iter()
        .map(|n| Arc::new(Field::new(*n, DataType::Utf8, false)))
        .collect()
}

/// The whole table as readers see it: the file columns, then `team` and `dt`.
pub fn table_schema() -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = file_schema().fields().iter().cloned().collect();
    fields.extend(partition_fields());
    Arc::new(Schema::new(fields))
}

/// The Hive type of each file column, for catalogs (Glue) and DDL.
pub fn hive_type(dt: &DataType) -> &'static str {
    match dt {
        DataType::Utf8 => "string",
        DataType::Int32 => "int",
        DataType::Timestamp(..) => "timestamp",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_partition_columns_last() {
        let t = table_schema();
        let names: Vec<_> = t.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names.len(), 15);
        assert_eq!(&names[13..], &["team", "dt"]);
        assert_eq!(hive_type(file_schema().field(2).data_type()), "timestamp");
    }
}

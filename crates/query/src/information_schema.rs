//! Athena's `information_schema`: `schemata`, `tables`, `columns` and `views` of the catalog
//! `awsdatacatalog`, with Athena's types (`varchar`, `timestamp(3)`, `integer`) where
//! DataFusion's own listed arrow's (`Utf8View`, `Timestamp(µs, "UTC")`), positions from 1,
//! each table once (DataFusion listed it under both spellings of the catalog) and the partition
//! keys marked in `extra_info`, as Glue tables show in Athena.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{CatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use eventlake_contract::schema::PARTITION_COLUMNS;

use crate::Result;

/// The schema's name, as Athena lists it.
pub const NAME: &str = "information_schema";

/// The tables this schema has.
const TABLES: [&str; 4] = ["columns", "schemata", "tables", "views"];

/// A table of text columns (NULL where a value is `None`), and `ordinal_position` a bigint.
fn table(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> Result<Arc<MemTable>> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| match *c {
            "ordinal_position" => Field::new(*c, DataType::Int64, true),
            c => Field::new(c, DataType::Utf8, true),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| -> ArrayRef {
            let values = rows.iter().map(|r| r[i].clone());
            if *c == "ordinal_position" {
                Arc::new(
                    values
                        .map(|v| v.and_then(|v| v.parse::<i64>().ok()))
                        .collect::<Int64Array>(),
                )
            } else {
                Arc::new(values.collect::<StringArray>())
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

/// Registers `information_schema` in `catalog` (named `catalog_name`), listing the tables its
/// other schemas hold now (a table of a table's partitions, `events$partitions`, is not
/// listed, as on Athena).
pub async fn register(catalog: &dyn CatalogProvider, catalog_name: &str) -> Result<()> {
    let some = |s: &str| Some(s.to_string());
    let mut schemata = Vec::new();
    let mut tables = Vec::new();
    let mut columns = Vec::new();
    let mut names = catalog.schema_names();
    names.retain(|n| n != NAME);
    names.sort();
    for schema_name in &names {
        schemata.push(vec![some(catalog_name), some(schema_name)]);
        let Some(schema) = catalog.schema(schema_name) else {
            continue;
        };
        let mut table_names = schema.table_names();
        table_names.retain(|t| !t.contains('$'));
        table_names.sort();
        for t in &table_names {
            let Some(provider) = schema.table(t).await? else {
                continue;
            };
            tables.push(vec![
                some(catalog_name),
                some(schema_name),
                some(t),
                some("BASE TABLE"),
            ]);
            for (i, f) in provider.schema().fields().iter().enumerate() {
                let key = PARTITION_COLUMNS.contains(&f.name().as_str());
                columns.push(vec![
                    some(catalog_name),
                    some(schema_name),
                    some(t),
                    some(f.name()),
                    Some((i + 1).to_string()),
                    None,
                    some("YES"),
                    Some(crate::trino::trino_type(f.data_type())),
                    None,
                    key.then(|| "partition key".to_string()),
                ]);
            }
        }
    }
    schemata.push(vec![some(catalog_name), some(NAME)]);
    for t in TABLES {
        tables.push(vec![
            some(catalog_name),
            some(NAME),
            some(t),
            some("BASE TABLE"),
        ]);
    }
    let info = MemorySchemaProvider::new();
    info.register_table(
        "schemata".into(),
        table(&["catalog_name", "schema_name"], schemata)?,
    )?;
    info.register_table(
        "tables".into(),
        table(
            &["table_catalog", "table_schema", "table_name", "table_type"],
            tables,
        )?,
    )?;
    info.register_table(
        "columns".into(),
        table(
            &[
                "table_catalog",
                "table_schema",
                "table_name",
                "column_name",
                "ordinal_position",
                "column_default",
                "is_nullable",
                "data_type",
                "comment",
                "extra_info",
            ],
            columns,
        )?,
    )?;
    info.register_table(
        "views".into(),
        table(
            &[
                "table_catalog",
                "table_schema",
                "table_name",
                "view_definition",
            ],
            Vec::new(),
        )?,
    )?;
    catalog.register_schema(NAME, Arc::new(info))?;
    Ok(())
}

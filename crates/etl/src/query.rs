//! `etl query`: DataFusion over the catalog's committed partition versions, and nothing else.
//!
//! The `events` table is a [`CommittedEvents`] provider: its files come from the catalog entries,
//! so a version that is half-written, left by a crashed run or replaced by a newer commit is
//! never read, and no listing of the lake is needed. Filters on `team` and `dt` prune whole
//! partitions before any file is opened; other filters reach the Parquet reader, which skips row
//! groups and pages by their statistics.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use eventlake_contract::schema::{PARTITION_COLUMNS, file_schema, partition_fields, table_schema};

use crate::catalog::{Catalog, PartitionEntry};
use crate::error::Result;
use crate::lake::Lake;

/// The `events` table over the committed versions of a catalog.
#[derive(Debug)]
pub struct CommittedEvents {
    schema: SchemaRef,
    partition_schema: DFSchema,
    url: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
}

impl CommittedEvents {
    pub fn new(lake: &Lake, entries: &[PartitionEntry]) -> Result<Self> {
        let mut files = Vec::new();
        for e in entries {
            for f in &e.files {
                files.push(
                    PartitionedFile::new(lake.path(&f.key).to_string(), f.size)
                        .with_partition_values(vec![
                            ScalarValue::Utf8(Some(e.partition.team.to_string())),
                            ScalarValue::Utf8(Some(e.partition.dt.to_string())),
                        ]),
                );
            }
        }
        let partition_schema =
            DFSchema::try_from(arrow::datatypes::Schema::new(partition_fields()))?;
        Ok(Self {
            schema: table_schema(),
            partition_schema,
            url: lake.object_store_url().clone(),
            files,
        })
    }
}

#[async_trait]
impl TableProvider for CommittedEvents {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if expr_applicable_for_cols(&PARTITION_COLUMNS, f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let partition_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| expr_applicable_for_cols(&PARTITION_COLUMNS, f))
            .cloned()
            .collect();
        let mut files = Vec::with_capacity(self.files.len());
        for f in &self.files {
            if let Some(f) =
                filter_partitioned_file(f.clone(), &partition_filters, &self.partition_schema)?
            {
                files.push(f);
            }
        }
        if files.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(
            TableSchema::builder(file_schema())
                .with_table_partition_cols(partition_fields())
                .build(),
        );
        let config = FileScanConfigBuilder::new(self.url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}

/// A DataFusion session with `events` registered over the catalog's committed versions.
pub async fn session(lake: &Lake, catalog: &dyn Catalog) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true);
    let ctx = SessionContext::new_with_config(config);
    crate::trino::register(&ctx);
    ctx.register_object_store(lake.object_store_url().as_ref(), Arc::clone(lake.store()));
    let entries = catalog.list().await?;
    ctx.register_table("events", Arc::new(CommittedEvents::new(lake, &entries)?))?;
    Ok(ctx)
}

/// Runs one SQL statement and collects its result.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = ctx.sql(sql).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok((schema, batches))
}

/// Output formats of `etl query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Renders a result for people (`table`) or programs (`csv`, `json`: one object per line).
pub fn render(schema: &SchemaRef, batches: &[RecordBatch], format: Format) -> Result<String> {
    Ok(match format {
        Format::Table => {
            if batches.iter().all(|b| b.num_rows() == 0) {
                let header: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                format!("{}\n(0 rows)\n", header.join(" | "))
            } else {
                format!("{}\n", arrow::util::pretty::pretty_format_batches(batches)?)
            }
        }
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    w.write(&RecordBatch::new_empty(Arc::clone(schema)))?;
                }
                for b in batches {
                    w.write(b)?;
                }
            }
            String::from_utf8(out).expect("csv is UTF-8")
        }
        Format::Json => {
            let mut out = Vec::new();
            {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            String::from_utf8(out).expect("json is UTF-8")
        }
    })
}

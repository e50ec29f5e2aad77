//! The `events` table over the catalog's committed partition versions, and nothing else.
//!
//! Its files come from the catalog entries, so a version that is half-written, left by a crashed
//! run or replaced by a newer commit is never read, and no listing of the lake is needed. Filters
//! on `team` and `dt` prune whole partitions before any file is opened; other filters reach the
//! Parquet reader, which skips row groups and pages by their statistics. The scan tells the
//! planner how many rows it reads (the catalog records each file's), so a join builds its hash
//! table on its smaller side.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, ScalarValue, Statistics};
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
use eventlake_contract::schema::{PARTITION_COLUMNS, file_schema, partition_fields, table_schema};

use eventlake_catalog::{Lake, PartitionEntry};

use crate::error::Result;

/// The `events` table over the committed versions of a catalog.
#[derive(Debug)]
pub struct CommittedEvents {
    schema: SchemaRef,
    partition_schema: DFSchema,
    url: ObjectStoreUrl,
    /// Each committed file with its number of rows.
    files: Vec<(PartitionedFile, u64)>,
}

impl CommittedEvents {
    pub fn new(lake: &Lake, entries: &[PartitionEntry]) -> Result<Self> {
        let mut files = Vec::new();
        for e in entries {
            for f in &e.files {
                files.push((
                    PartitionedFile::new(lake.path(&f.key).to_string(), f.size)
                        .with_partition_values(vec![
                            ScalarValue::Utf8View(Some(e.partition.team.to_string())),
                            ScalarValue::Utf8View(Some(e.partition.dt.to_string())),
                        ]),
                    f.rows,
                ));
            }
        }
        let partition_schema = DFSchema::try_from(arrow::datatypes::Schema::new(view_fields(
            &partition_fields(),
        )))?;
        Ok(Self {
            schema: Arc::new(arrow::datatypes::Schema::new(view_fields(
                table_schema().fields(),
            ))),
            partition_schema,
            url: ObjectStoreUrl::parse(lake.store_url())?,
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
        let (mut rows, mut bytes) = (0_u64, 0_u64);
        for (f, n) in &self.files {
            if let Some(f) =
                filter_partitioned_file(f.clone(), &partition_filters, &self.partition_schema)?
            {
                rows += n;
                bytes += f.object_meta.size;
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
            TableSchema::builder(Arc::new(arrow::datatypes::Schema::new(view_fields(
                file_schema().fields(),
            ))))
            .with_table_partition_cols(view_fields(&partition_fields()))
            .build(),
        );
        // Exact: the catalog wrote each file's rows when it committed it.
        let mut stats = Statistics::new_unknown(&self.schema);
        stats.num_rows = Precision::Exact(rows as usize);
        stats.total_byte_size = Precision::Inexact(bytes as usize);
        let config = FileScanConfigBuilder::new(self.url.clone(), source)
            .with_statistics(stats)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}

/// The fields with strings as `Utf8View`: the Parquet reader decodes strings straight into views
/// (short ones inline, no copy), and partition values as views cost 16 bytes a row.
pub(crate) fn view_fields(
    fields: &[arrow::datatypes::FieldRef],
) -> Vec<arrow::datatypes::FieldRef> {
    fields
        .iter()
        .map(|f| match f.data_type() {
            arrow::datatypes::DataType::Utf8 => Arc::new(
                f.as_ref()
                    .clone()
                    .with_data_type(arrow::datatypes::DataType::Utf8View),
            ),
            _ => Arc::clone(f),
        })
        .collect()
}

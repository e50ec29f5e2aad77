//! The `events` table over the catalog's committed partition versions, and nothing else.
//!
//! Its files come from the catalog entries, so a version that is half-written, left by a crashed
//! run or replaced by a newer commit is never read, and no listing of the lake is needed. Filters
//! on `team` and `dt` prune whole partitions before any file is opened; other filters reach the
//! Parquet reader, which skips row groups and pages by their statistics. The scan tells the
//! planner how many rows it reads (the catalog records each file's), so a join builds its hash
//! table on its smaller side; under a filter on `event_type`, the rows of the kept types (the
//! catalog counts each file's rows per type), as an estimate.

use std::collections::{BTreeMap, BTreeSet};
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

/// Athena's hidden columns of a table, which `SELECT *` leaves out: each row's data file, as a
/// URL (`s3://bucket/curated/events/team=…/dt=…/v=…/part-….parquet`), and that file's size in
/// bytes.
pub const HIDDEN_COLUMNS: [&str; 2] = ["$path", "$file_size"];

/// The `events` table over the committed versions of a catalog.
#[derive(Debug)]
pub struct CommittedEvents {
    schema: SchemaRef,
    partition_schema: DFSchema,
    /// The columns whose values each file has whole: the partition keys, and with
    /// [`HIDDEN_COLUMNS`], those.
    file_columns: Vec<arrow::datatypes::FieldRef>,
    url: ObjectStoreUrl,
    /// Each committed file with its number of rows, and its rows per event type when the
    /// catalog counted every type.
    files: Vec<(PartitionedFile, u64, Option<RowsByType>)>,
}

type RowsByType = BTreeMap<String, u64>;

/// The event types a scan's filters keep (`event_type = '…'`, `event_type IN (…)`), when they
/// name them.
fn event_types_kept(filters: &[Expr]) -> Option<BTreeSet<String>> {
    fn is_type(e: &Expr) -> bool {
        matches!(e, Expr::Column(c) if c.name == "event_type")
    }
    fn text(e: &Expr) -> Option<String> {
        match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => {
                Some(s.clone())
            }
            Expr::Cast(c) => text(&c.expr),
            _ => None,
        }
    }
    let mut kept: Option<BTreeSet<String>> = None;
    for f in filters {
        let names: Option<BTreeSet<String>> = match f {
            Expr::BinaryExpr(b) if b.op == datafusion::logical_expr::Operator::Eq => {
                if is_type(&b.left) {
                    text(&b.right).map(|t| BTreeSet::from([t]))
                } else if is_type(&b.right) {
                    text(&b.left).map(|t| BTreeSet::from([t]))
                } else {
                    None
                }
            }
            Expr::InList(l) if !l.negated && is_type(&l.expr) => l.list.iter().map(text).collect(),
            _ => None,
        };
        if let Some(names) = names {
            kept = Some(match kept {
                Some(k) => k.intersection(&names).cloned().collect(),
                None => names,
            });
        }
    }
    kept
}

impl CommittedEvents {
    pub fn new(lake: &Lake, entries: &[PartitionEntry]) -> Result<Self> {
        Self::build(lake, entries, false)
    }

    /// The table with Athena's hidden columns, `"$path"` and `"$file_size"`, after its own: the
    /// table a query that names them reads (`trino/hidden.rs`).
    pub fn with_hidden_columns(lake: &Lake, entries: &[PartitionEntry]) -> Result<Self> {
        Self::build(lake, entries, true)
    }

    fn build(lake: &Lake, entries: &[PartitionEntry], hidden: bool) -> Result<Self> {
        // `file://` + `/tmp/lake/…`, `s3://bucket` + `/curated/…`: paths have no leading `/`.
        let url = lake.store_url();
        let base = if url.ends_with("://") {
            format!("{url}/")
        } else {
            format!("{}/", url.trim_end_matches('/'))
        };
        let mut files = Vec::new();
        for e in entries {
            for f in &e.files {
                let path = lake.path(&f.key);
                let mut values = vec![
                    ScalarValue::Utf8View(Some(e.partition.team.to_string())),
                    ScalarValue::Utf8View(Some(e.partition.dt.to_string())),
                ];
                if hidden {
                    values.push(ScalarValue::Utf8View(Some(format!("{base}{path}"))));
                    values.push(ScalarValue::Int64(Some(f.size as i64)));
                }
                files.push((
                    PartitionedFile::new(path.to_string(), f.size).with_partition_values(values),
                    f.rows,
                    (f.counts_every_type() && !f.event_types.is_empty())
                        .then(|| f.event_types.clone()),
                ));
            }
        }
        let mut file_columns = view_fields(&partition_fields());
        if hidden {
            file_columns.push(Arc::new(arrow::datatypes::Field::new(
                HIDDEN_COLUMNS[0],
                arrow::datatypes::DataType::Utf8View,
                false,
            )));
            file_columns.push(Arc::new(arrow::datatypes::Field::new(
                HIDDEN_COLUMNS[1],
                arrow::datatypes::DataType::Int64,
                false,
            )));
        }
        let partition_schema =
            DFSchema::try_from(arrow::datatypes::Schema::new(file_columns.clone()))?;
        let mut columns = view_fields(table_schema().fields());
        if hidden {
            columns.extend(file_columns[PARTITION_COLUMNS.len()..].iter().cloned());
        }
        Ok(Self {
            schema: Arc::new(arrow::datatypes::Schema::new(columns)),
            partition_schema,
            file_columns,
            url: ObjectStoreUrl::parse(lake.store_url())?,
            files,
        })
    }

    /// The names of the columns whose values each file has whole.
    fn file_column_names(&self) -> Vec<&str> {
        self.file_columns
            .iter()
            .map(|f| f.name().as_str())
            .collect()
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
        let whole = self.file_column_names();
        Ok(filters
            .iter()
            .map(|f| {
                if expr_applicable_for_cols(&whole, f) {
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
        let whole = self.file_column_names();
        let partition_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| expr_applicable_for_cols(&whole, f))
            .cloned()
            .collect();
        let mut files = Vec::with_capacity(self.files.len());
        let types = event_types_kept(filters);
        let (mut rows, mut bytes, mut kept) = (0_u64, 0_u64, 0_u64);
        for (f, n, by_type) in &self.files {
            if let Some(f) =
                filter_partitioned_file(f.clone(), &partition_filters, &self.partition_schema)?
            {
                rows += n;
                bytes += f.object_meta.size;
                kept += match (&types, by_type) {
                    (Some(t), Some(by_type)) => t.iter().filter_map(|t| by_type.get(t)).sum(),
                    _ => *n,
                };
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
        let mut parquet = state.table_options().parquet.clone();
        if row_filters_pay(&self.schema, projection, filters, &whole) {
            parquet.global.pushdown_filters = true;
        }
        let format = ParquetFormat::default().with_options(parquet);
        let source = format.file_source(
            TableSchema::builder(Arc::new(arrow::datatypes::Schema::new(view_fields(
                file_schema().fields(),
            ))))
            .with_table_partition_cols(self.file_columns.clone())
            .build(),
        );
        // Exact: the catalog wrote each file's rows when it committed it. Under a filter on
        // event types, the kept types' rows: an estimate, since the filter runs in the reader.
        let mut stats = Statistics::new_unknown(&self.schema);
        if types.is_some() {
            stats.num_rows = Precision::Inexact(kept as usize);
            stats.total_byte_size =
                Precision::Inexact((bytes as f64 * kept as f64 / rows.max(1) as f64) as usize);
        } else {
            stats.num_rows = Precision::Exact(rows as usize);
            stats.total_byte_size = Precision::Inexact(bytes as usize);
        }
        let config = FileScanConfigBuilder::new(self.url.clone(), source)
            .with_statistics(stats)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}

/// Whether to evaluate the query's filters while the Parquet reader decodes (a row filter),
/// rather than in a filter over whole batches. A row filter pays when the scan reads columns the
/// filters do not use: their values are then decoded only for the rows that pass. When every
/// column read is one the filters need (`count(*) … WHERE locale IN (…)`, the key columns of a
/// join), nothing is skipped and the row filter only adds its own cost, about 1.5x on such scans;
/// the join's runtime filters then prune row groups instead of filtering rows. The session's
/// default stays off (`DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS=true` turns it on for every
/// scan).
fn row_filters_pay(
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    whole: &[&str],
) -> bool {
    let used: BTreeSet<String> = filters
        .iter()
        .filter(|f| !expr_applicable_for_cols(whole, f))
        .flat_map(|f| f.column_refs().into_iter().map(|c| c.name.clone()))
        .collect();
    if used.is_empty() {
        return false;
    }
    let read: Vec<&str> = match projection {
        Some(p) => p.iter().map(|&i| schema.field(i).name().as_str()).collect(),
        None => schema.fields().iter().map(|f| f.name().as_str()).collect(),
    };
    read.iter()
        .any(|c| !whole.contains(c) && !used.contains(*c))
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

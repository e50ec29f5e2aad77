//! Planner rules that use what the catalog knows (row counts per partition and event type, the
//! partitions that exist) to plan less work, for any query whose shape they fit. Each rule leaves
//! a plan alone unless its answer is provably the same.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::logical_expr::Expr;
use eventlake_contract::schema::{PARTITION_COLUMNS, partition_fields, table_schema};

use eventlake_catalog::PartitionEntry;

use crate::error::Result;
use crate::table::view_fields;

pub(crate) mod counts_before_unnest;
pub(crate) mod distinct_with_others;
pub(crate) mod few_groups;
pub(crate) mod first_per_key;
pub(crate) mod grouped_build;
pub(crate) mod grouping_set_keys;
pub(crate) mod grouping_sets;
pub(crate) mod newest_first;
pub(crate) mod not_in;
pub(crate) mod per_value;
pub(crate) mod semi_join;
pub(crate) mod sorted_windows;
pub(crate) mod view_eq;
pub(crate) mod whole_windows;
pub(crate) mod window_keys;
pub(crate) mod window_partitions;

/// The `events` scan under an aggregation's filters and projections of plain columns, with those
/// filters; `None` for any other shape. With `computed`, a projection may also compute
/// deterministic values per row (the common expressions DataFusion extracts from aggregate
/// arguments, such as `source = 'web' AS __common_expr_1`), as long as every partition column it
/// outputs is the column itself, passed through.
fn scan_under(
    input: &datafusion::logical_expr::LogicalPlan,
    computed: bool,
) -> Option<(&datafusion::logical_expr::TableScan, Vec<&Expr>)> {
    use datafusion::logical_expr::LogicalPlan;
    let mut filters = Vec::new();
    let mut node = input;
    loop {
        match node {
            LogicalPlan::TableScan(scan) => {
                // The lake's table, whatever name it was read by (`events`, or the Glue
                // table's name).
                let is_events = datafusion::datasource::source_as_provider(&scan.source)
                    .is_ok_and(|p| p.is::<crate::table::CommittedEvents>())
                    && scan.source.schema().fields().len() == table_schema().fields().len()
                    && scan.fetch.is_none();
                return is_events.then_some((scan, filters));
            }
            LogicalPlan::Filter(f) => {
                filters.push(&f.predicate);
                node = f.input.as_ref();
            }
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                node = p.input.as_ref();
            }
            LogicalPlan::Projection(p)
                if computed
                    && p.expr.iter().zip(p.schema.fields()).all(|(e, f)| {
                        matches!(e, Expr::Column(c) if c.name == *f.name())
                            || (!e.is_volatile() && !PARTITION_COLUMNS.contains(&f.name().as_str()))
                    }) =>
            {
                node = p.input.as_ref();
            }
            _ => return None,
        }
    }
}

/// Answers `count(*)` grouped and filtered by team, day and event type only (events per team
/// and day, the most frequent event types: the most common questions) from the catalog's row
/// counts instead of scanning: each committed file's entry has its exact row count per event
/// type, so no Parquet is read at all. Applies only when nothing else is read or filtered, and
/// to `event_type` only when every file carries its per-type counts. Aggregates that do not
/// depend on how many rows share a value (`SELECT DISTINCT dt`, `min(dt)`, `count(DISTINCT
/// team)`) are answered from the same rows, one per value.
#[derive(Debug)]
pub(crate) struct CountFromCatalog {
    /// `team`, `dt`, `event_type`, `rows` (Int64): one row per committed partition and event
    /// type (`event_type` NULL, one row per partition, when some file lacks per-type counts).
    counts: Arc<dyn TableProvider>,
    /// The columns the counts can answer for.
    columns: Vec<&'static str>,
}

impl CountFromCatalog {
    pub(crate) fn new(entries: &[PartitionEntry]) -> Result<Self> {
        use arrow::array::{Int64Array, StringViewArray};
        let by_type = entries
            .iter()
            .flat_map(|e| &e.files)
            .all(|f| f.counts_every_type());
        // (team, dt, event type, rows)
        let mut rows: Vec<(&str, String, Option<&str>, u64)> = Vec::new();
        for e in entries {
            let (team, dt) = (e.partition.team.as_str(), e.partition.dt.to_string());
            if by_type {
                let mut per_type: std::collections::BTreeMap<&str, u64> = Default::default();
                for f in &e.files {
                    for (t, n) in &f.event_types {
                        *per_type.entry(t.as_str()).or_default() += n;
                    }
                }
                // A type without rows has no group, as in a scan.
                rows.extend(
                    per_type
                        .into_iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(t, n)| (team, dt.clone(), Some(t), n)),
                );
            } else if e.rows > 0 {
                // A partition without rows has no group, as in a scan.
                rows.push((team, dt, None, e.rows));
            }
        }
        let mut fields = view_fields(&partition_fields());
        fields.push(Arc::new(arrow::datatypes::Field::new(
            "event_type",
            arrow::datatypes::DataType::Utf8View,
            true,
        )));
        fields.push(Arc::new(arrow::datatypes::Field::new(
            "rows",
            arrow::datatypes::DataType::Int64,
            false,
        )));
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        let teams: StringViewArray = rows.iter().map(|r| Some(r.0)).collect();
        let dts: StringViewArray = rows.iter().map(|r| Some(r.1.as_str())).collect();
        let types: StringViewArray = rows.iter().map(|r| r.2).collect();
        let counts = Int64Array::from_iter_values(rows.iter().map(|r| r.3 as i64));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(teams),
                Arc::new(dts),
                Arc::new(types),
                Arc::new(counts),
            ],
        )?;
        let mut columns = PARTITION_COLUMNS.to_vec();
        if by_type {
            columns.push("event_type");
        }
        Ok(Self {
            counts: Arc::new(datafusion::datasource::MemTable::try_new(
                schema,
                vec![vec![batch]],
            )?),
            columns,
        })
    }
}

impl datafusion::optimizer::OptimizerRule for CountFromCatalog {
    fn name(&self) -> &str {
        "count_from_catalog"
    }

    fn apply_order(&self) -> Option<datafusion::optimizer::ApplyOrder> {
        Some(datafusion::optimizer::ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &dyn datafusion::optimizer::OptimizerConfig,
    ) -> datafusion::error::Result<
        datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
    > {
        use datafusion::common::tree_node::Transformed;
        use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col, utils::conjunction};
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        // The scan, and filters above it that the scan could not take in full.
        let Some((scan, filters)) = scan_under(agg.input.as_ref(), false) else {
            return Ok(Transformed::no(plan));
        };
        let columns = &self.columns;
        let partition_only = scan
            .projected_schema
            .fields()
            .iter()
            .all(|f| columns.contains(&f.name().as_str()))
            && scan
                .filters
                .iter()
                .chain(filters.iter().copied())
                .all(|f| expr_applicable_for_cols(columns, f));
        // Keys of those columns (`team`, `substr(dt, 1, 7)`, `team || '/' || dt`), or grouping
        // sets of them (`ROLLUP (dt, team)`, `CUBE`, `GROUPING SETS`): the same keys over the
        // counts, whose rows hold the same values. A key must give the same value for the same
        // row each time (not `random()`) and read nothing but the row.
        let grouping_sets = matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]);
        let key = |k: &Expr| {
            !k.is_volatile()
                && !k
                    .exists(|e| {
                        Ok(matches!(
                            e,
                            Expr::ScalarSubquery(_)
                                | Expr::Exists(_)
                                | Expr::InSubquery(_)
                                | Expr::OuterReferenceColumn(..)
                                | Expr::AggregateFunction(_)
                                | Expr::WindowFunction(_)
                                | Expr::Placeholder(_)
                        ))
                    })
                    .unwrap_or(true)
        };
        let keys_read_the_row_only = agg.group_expr.iter().all(|e| match e {
            Expr::GroupingSet(sets) => sets.distinct_expr().iter().all(|k| key(k)),
            e => key(e),
        });
        let is_count = |e: &Expr| match e {
            Expr::AggregateFunction(f) => {
                f.func.name() == "count"
                    && !f.params.distinct
                    && f.params.filter.is_none()
                    && f.params
                        .args
                        .iter()
                        .all(|a| matches!(a, Expr::Literal(v, _) if !v.is_null()))
            }
            _ => false,
        };
        // The same over one row per value as over every row: an extreme, a distinct count or
        // sum, an approximate distinct count, of the row's values.
        let of_values = |e: &Expr| match e {
            Expr::AggregateFunction(f) => {
                let name = f.func.name();
                (matches!(name, "min" | "max" | "approx_distinct")
                    || (f.params.distinct && matches!(name, "count" | "sum" | "avg")))
                    && f.params.filter.is_none()
                    && f.params.order_by.is_empty()
                    && f.params.args.iter().all(key)
            }
            _ => false,
        };
        let answerable = agg.aggr_expr.iter().all(|e| match e {
            // Which set a row is of, whatever the input.
            Expr::AggregateFunction(f) if f.func.name() == "grouping" => grouping_sets,
            e => is_count(e) || of_values(e),
        });
        if !(partition_only && keys_read_the_row_only && answerable)
            // Ungrouped, an empty input must give 0 (a sum would give NULL); DataFusion answers
            // that case from statistics already.
            || (agg.group_expr.is_empty() && agg.aggr_expr.iter().any(is_count))
            || (agg.group_expr.is_empty() && agg.aggr_expr.is_empty())
        {
            return Ok(Transformed::no(plan));
        }
        let source = datafusion::datasource::provider_as_source(Arc::clone(&self.counts));
        let mut builder = LogicalPlanBuilder::scan(scan.table_name.clone(), source, None)?;
        if let Some(predicate) = conjunction(scan.filters.iter().chain(filters).cloned()) {
            builder = builder.filter(predicate)?;
        }
        let sums: Vec<Expr> = agg
            .aggr_expr
            .iter()
            .map(|e| match is_count(e) {
                true => datafusion::functions_aggregate::expr_fn::sum(col("rows"))
                    .alias(e.schema_name().to_string()),
                false => e.clone(),
            })
            .collect();
        let mut rewritten = builder.aggregate(agg.group_expr.clone(), sums)?;
        if grouping_sets {
            // The empty set's one row over no rows counts 0, where a sum gives NULL.
            let outputs: Vec<Expr> = rewritten
                .schema()
                .columns()
                .into_iter()
                .zip(agg.schema.fields())
                .map(|(c, f)| {
                    let counted = agg
                        .aggr_expr
                        .iter()
                        .any(|e| is_count(e) && e.schema_name().to_string() == *f.name());
                    match counted {
                        true => datafusion::functions::core::expr_fn::coalesce(vec![
                            Expr::Column(c),
                            datafusion::logical_expr::lit(0i64),
                        ])
                        .alias(f.name()),
                        false => Expr::Column(c),
                    }
                })
                .collect();
            rewritten = rewritten.project(outputs)?;
        }
        Ok(Transformed::yes(rewritten.build()?))
    }
}

/// Whether a rewritten plan's columns are the plan's: the same qualified names and types, in
/// order.
pub(crate) fn same_columns(rewritten: &DFSchema, plan: &DFSchema) -> bool {
    rewritten.fields().len() == plan.fields().len()
        && rewritten
            .iter()
            .zip(plan.iter())
            .all(|((q1, f1), (q2, f2))| {
                q1 == q2 && f1.name() == f2.name() && f1.data_type() == f2.data_type()
            })
}

/// At most this many partition groups are split into their own aggregations.
const MAX_SPLIT: usize = 16;

/// Aggregations grouped by partition columns only (daily active users per day, revenue per team
/// and day) are planned as one ungrouped aggregation per group, each over its own partitions,
/// their results put together: every row of a partition has the same team and day, so hashing
/// them into groups row by row is work with a known answer. Applies when the filters leave at
/// most [`MAX_SPLIT`] groups and filter on partition columns only (whole partitions reach the
/// aggregation); the catalog's partition list says which groups exist.
#[derive(Debug)]
pub(crate) struct SplitByPartition {
    /// `team`, `dt` of every committed partition that has rows.
    partitions: RecordBatch,
}

impl SplitByPartition {
    pub(crate) fn new(entries: &[PartitionEntry]) -> Result<Self> {
        use arrow::array::StringViewArray;
        let with_rows: Vec<&PartitionEntry> = entries.iter().filter(|e| e.rows > 0).collect();
        let teams: StringViewArray = with_rows
            .iter()
            .map(|e| Some(e.partition.team.to_string()))
            .collect();
        let dts: StringViewArray = with_rows
            .iter()
            .map(|e| Some(e.partition.dt.to_string()))
            .collect();
        let schema = Arc::new(arrow::datatypes::Schema::new(view_fields(
            &partition_fields(),
        )));
        Ok(Self {
            partitions: RecordBatch::try_new(schema, vec![Arc::new(teams), Arc::new(dts)])?,
        })
    }

    /// The distinct values of `columns` over the partitions the `filters` keep, or `None` when a
    /// filter cannot be evaluated here.
    fn groups(
        &self,
        table: &datafusion::common::TableReference,
        filters: &[&Expr],
        columns: &[&datafusion::common::Column],
    ) -> Option<std::collections::BTreeSet<Vec<String>>> {
        use arrow::array::{Array, AsArray};
        let schema =
            DFSchema::try_from_qualified_schema(table.clone(), &self.partitions.schema()).ok()?;
        let mut keep = vec![true; self.partitions.num_rows()];
        for f in filters {
            let expr = datafusion::physical_expr::create_physical_expr(
                f,
                &schema,
                &datafusion::execution::context::ExecutionProps::new(),
                &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
            )
            .ok()?;
            let result = expr
                .evaluate(&self.partitions)
                .ok()?
                .into_array(self.partitions.num_rows())
                .ok()?;
            let result = result.as_boolean_opt()?;
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= result.is_valid(i) && result.value(i);
            }
        }
        let values: Vec<_> = columns
            .iter()
            .map(|c| {
                self.partitions
                    .column_by_name(&c.name)
                    .map(|a| a.as_string_view())
            })
            .collect::<Option<_>>()?;
        Some(
            keep.iter()
                .enumerate()
                .filter(|(_, k)| **k)
                .map(|(i, _)| values.iter().map(|v| v.value(i).to_owned()).collect())
                .collect(),
        )
    }
}

impl datafusion::optimizer::OptimizerRule for SplitByPartition {
    fn name(&self) -> &str {
        "split_by_partition"
    }

    fn apply_order(&self) -> Option<datafusion::optimizer::ApplyOrder> {
        Some(datafusion::optimizer::ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &dyn datafusion::optimizer::OptimizerConfig,
    ) -> datafusion::error::Result<
        datafusion::common::tree_node::Transformed<datafusion::logical_expr::LogicalPlan>,
    > {
        use datafusion::common::tree_node::Transformed;
        use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, lit};
        let LogicalPlan::Aggregate(agg) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let Some((scan, filters)) = scan_under(agg.input.as_ref(), true) else {
            return Ok(Transformed::no(plan));
        };
        let group_columns: Option<Vec<&datafusion::common::Column>> = agg
            .group_expr
            .iter()
            .map(|e| match e {
                Expr::Column(c) if PARTITION_COLUMNS.contains(&c.name.as_str()) => Some(c),
                _ => None,
            })
            .collect();
        let Some(group_columns) = group_columns else {
            return Ok(Transformed::no(plan));
        };
        if group_columns.is_empty() || agg.aggr_expr.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let all_filters: Vec<&Expr> = scan.filters.iter().chain(filters).collect();
        let partition_filters: Vec<&Expr> = all_filters
            .iter()
            .copied()
            .filter(|f| expr_applicable_for_cols(&PARTITION_COLUMNS, f))
            .collect();
        // With a filter on the rows themselves (`event_type = 'purchase'`), few rows may reach
        // the aggregation, and a plan per group then costs more than the hashing it saves
        // (revenue_per_day: 15 ms grouped, 29 ms split nine ways).
        if partition_filters.len() != all_filters.len() {
            return Ok(Transformed::no(plan));
        }
        let Some(groups) = self.groups(&scan.table_name, &partition_filters, &group_columns) else {
            return Ok(Transformed::no(plan));
        };
        if groups.is_empty() || groups.len() > MAX_SPLIT {
            return Ok(Transformed::no(plan));
        }
        // Every group has rows: it comes from a partition the catalog lists with rows, and only
        // partition filters apply, so an ungrouped aggregation per group shows exactly the groups
        // the grouped one would.
        let mut branches = Vec::with_capacity(groups.len());
        for key in &groups {
            let predicate = group_columns
                .iter()
                .zip(key)
                .map(|(c, v)| {
                    Expr::Column((*c).clone()).eq(lit(ScalarValue::Utf8View(Some(v.clone()))))
                })
                .reduce(Expr::and)
                .expect("at least one group column");
            let mut outputs: Vec<Expr> = group_columns
                .iter()
                .zip(key)
                .map(|(c, v)| {
                    lit(ScalarValue::Utf8View(Some(v.clone())))
                        .alias_qualified(c.relation.clone(), c.name.clone())
                })
                .collect();
            outputs.extend(agg.aggr_expr.iter().map(|e| {
                Expr::Column(datafusion::common::Column::new_unqualified(
                    e.schema_name().to_string(),
                ))
            }));
            let branch = LogicalPlanBuilder::from(agg.input.as_ref().clone())
                .filter(predicate)?
                .aggregate(Vec::<Expr>::new(), agg.aggr_expr.clone())?
                .project(outputs)?
                .build()?;
            branches.push(branch);
        }
        let mut builder = LogicalPlanBuilder::from(branches.remove(0));
        for b in branches {
            builder = builder.union(b)?;
        }
        // A union's columns are unqualified: name them as the aggregation did.
        let rewritten = builder
            .project(plan.schema().iter().map(|(q, f)| {
                Expr::Column(datafusion::common::Column::new_unqualified(f.name()))
                    .alias_qualified(q.cloned(), f.name())
            }))?
            .build()?;
        // The rewrite must give exactly the aggregation's columns; anything else is left alone.
        if !same_columns(rewritten.schema(), plan.schema()) {
            return Ok(Transformed::no(plan));
        }
        Ok(Transformed::yes(rewritten))
    }
}

/// For the physical rules' tests: DataFusion's physical rules, with `rule` (when given) just
/// before the plan is checked, where the session puts its own last rules.
#[cfg(test)]
pub(crate) fn physical_rules_with(
    rule: Option<
        std::sync::Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>,
    >,
) -> Vec<std::sync::Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    if let Some(rule) = rule {
        let end = rules
            .iter()
            .position(|r| r.name() == "SanityCheckPlan")
            .expect("DataFusion checks its plans");
        rules.insert(end, rule);
    }
    rules
}

/// For the physical rules' tests: the rows of `sql` on `ctx` as a table, and its physical plan.
#[cfg(test)]
pub(crate) async fn rows_and_physical_plan(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> (String, String) {
    let df = ctx.sql(sql).await.unwrap();
    let plan = datafusion::physical_plan::displayable(
        df.clone().create_physical_plan().await.unwrap().as_ref(),
    )
    .indent(false)
    .to_string();
    let rows = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap())
        .unwrap()
        .to_string();
    (rows, plan)
}

/// For the rules' tests: runs `setup` (statements creating tables) then `sql` on `ctx`, and
/// gives the rows as a table and the optimized plan.
#[cfg(test)]
pub(crate) async fn rows_and_plan(
    ctx: &datafusion::prelude::SessionContext,
    setup: &[&str],
    sql: &str,
) -> (String, String) {
    for statement in setup {
        ctx.sql(statement).await.unwrap();
    }
    let df = ctx.sql(sql).await.unwrap();
    let plan = format!(
        "{}",
        df.clone().into_optimized_plan().unwrap().display_indent()
    );
    let rows = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap())
        .unwrap()
        .to_string();
    (rows, plan)
}

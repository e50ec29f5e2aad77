//! Aggregations with few groups finish on one thread.
//!
//! DataFusion aggregates in two steps: each input partition aggregates its own rows, then the
//! partial results are brought together. By default they are hash-repartitioned so that several
//! threads each finish a share of the groups, which pays for itself when there are many groups.
//! Analysts' questions mostly group by team, day or event type: a handful of groups, whose
//! partial results one thread merges in microseconds, while the repartitioning costs a hash of
//! every partial row, a channel per partition pair and a hand-off between threads.
//!
//! [`FewGroupsOnOneThread`] bounds the number of groups from what the catalog knows: the teams
//! and days of the partitions a scan reads (its files carry them) and the event types of the
//! whole table (each file's per-type counts). When every grouping column is one of those and
//! the product of their bounds is at most [`MAX_GROUPS`], the final step runs on one thread. Any
//! other grouping keeps DataFusion's plan. Either plan gives the same answer; a wrong bound could
//! only cost time.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

use eventlake_catalog::PartitionEntry;

/// The most groups whose partial results are merged on one thread.
pub const MAX_GROUPS: u64 = 10_000;

#[derive(Debug)]
pub struct FewGroupsOnOneThread {
    /// Distinct event types across the table, when every file has per-type counts.
    event_types: Option<u64>,
}

impl FewGroupsOnOneThread {
    pub fn new(entries: &[PartitionEntry]) -> Self {
        let files = || entries.iter().flat_map(|e| &e.files);
        let known = files().all(|f| f.counts_every_type());
        let types: BTreeSet<&str> = files()
            .flat_map(|f| f.event_types.keys().map(String::as_str))
            .collect();
        Self {
            event_types: known.then_some(types.len() as u64),
        }
    }

    /// At most how many groups `agg` (a partial aggregation) can make, if the catalog says.
    fn bound(&self, agg: &AggregateExec) -> Option<u64> {
        let group = agg.group_expr();
        if !group.null_expr().is_empty() {
            return None; // grouping sets
        }
        let mut product: u64 = 1;
        for (expr, _) in group.expr() {
            let column = expr.downcast_ref::<Column>()?;
            let name = column.name();
            let n = match source_column(agg.input(), name)? {
                Source::Partition(scan, idx) => distinct_partition_values(scan, idx),
                Source::File(c) if c == "event_type" => self.event_types?,
                Source::File(_) => return None,
            };
            product = product.checked_mul(n.max(1))?;
        }
        Some(product)
    }
}

/// Where a column of a plan's output comes from.
pub(crate) enum Source<'a> {
    /// A partition column (`team`, `dt`): index into each file's partition values.
    Partition(&'a FileScanConfig, usize),
    /// A column read from the files, by name.
    File(String),
}

/// How many distinct values partition column `idx` has across the scan's files.
fn distinct_partition_values(scan: &FileScanConfig, idx: usize) -> u64 {
    let values: BTreeSet<String> = scan
        .file_groups
        .iter()
        .flat_map(|g| g.iter())
        .filter_map(|f| f.partition_values.get(idx).map(|v| v.to_string()))
        .collect();
    values.len() as u64
}

/// Follows column `name` down through filters, projections that pass it on under a name, and
/// repartitioning, to the scan.
pub(crate) fn source_column<'a>(
    plan: &'a Arc<dyn ExecutionPlan>,
    name: &str,
) -> Option<Source<'a>> {
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        let e = p.expr().iter().find(|e| e.alias == name)?;
        let c = e.expr.downcast_ref::<Column>()?;
        return source_column(p.input(), c.name());
    }
    if plan.is::<FilterExec>() || plan.is::<RepartitionExec>() || plan.is::<CooperativeExec>() {
        let [child] = plan.children()[..] else {
            return None;
        };
        child.schema().field_with_name(name).ok()?;
        return source_column(child, name);
    }
    let scan = plan.downcast_ref::<DataSourceExec>()?;
    let config = scan.data_source().downcast_ref::<FileScanConfig>()?;
    scan.schema().field_with_name(name).ok()?;
    match config
        .table_partition_cols()
        .iter()
        .position(|f| f.name() == name)
    {
        Some(i) => Some(Source::Partition(config, i)),
        None => Some(Source::File(name.to_string())),
    }
}

impl PhysicalOptimizerRule for FewGroupsOnOneThread {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(fin) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if *fin.mode() != AggregateMode::FinalPartitioned {
                return Ok(Transformed::no(node));
            }
            let Some(partial) = fin.input().downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if *partial.mode() != AggregateMode::Partial
                || self.bound(partial).is_none_or(|n| n > MAX_GROUPS)
            {
                return Ok(Transformed::no(node));
            }
            let single = AggregateExec::try_new(
                AggregateMode::Final,
                fin.group_expr().clone(),
                fin.aggr_expr().to_vec(),
                fin.filter_expr().to_vec(),
                Arc::clone(fin.input()),
                fin.input_schema(),
            )?;
            Ok(Transformed::yes(Arc::new(single) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "few_groups_on_one_thread"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

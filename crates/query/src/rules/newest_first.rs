//! The files under `ORDER BY event_time DESC LIMIT n` read in the order the sort wants: the
//! latest days first (the earliest for an ascending sort).
//!
//! A sort that keeps its first rows only (a top-k) tells the scan, as it goes, the value a row
//! must beat to get in, and the scan skips the row groups whose statistics rule that out. The
//! files were read in the catalog's order, oldest day first, so for the latest events the bar
//! only rose at the last day: `SELECT * FROM events ORDER BY event_time DESC LIMIT 5` read 751,000
//! of 3 M rows. A partition's `dt` is the day its events arrived (`received_at`), and its events'
//! times are close to it, so reading the latest days first raises the bar at once. Each of the
//! scan's partitions takes the days in turn, so that every one starts with the latest. Only the
//! order in which files are read changes, never which are read: the answer is the same.

use std::cmp::Reverse;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

use crate::rules::few_groups::{Source, source_column};

/// The curated table's times that follow the partition's day.
const DAY_ORDERED: [&str; 2] = ["event_time", "received_at"];

#[derive(Debug, Default)]
pub struct NewestFirst;

impl PhysicalOptimizerRule for NewestFirst {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let first = sort.expr().first();
            let Some(column) = first.expr.downcast_ref::<Column>() else {
                return Ok(Transformed::no(node));
            };
            if sort.fetch().is_none()
                || !matches!(source_column(sort.input(), column.name()),
                    Some(Source::File(n)) if DAY_ORDERED.contains(&n.as_str()))
            {
                return Ok(Transformed::no(node));
            }
            let Some(input) = reordered(sort.input(), first.options.descending)? else {
                return Ok(Transformed::no(node));
            };
            Ok(Transformed::yes(replace_children_if_necessary(
                Arc::clone(&node),
                vec![input],
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "newest_first"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with the scan at its bottom (under nodes of one input) reading its files by `dt`,
/// latest first when `descending`; `None` when there is no such scan.
fn reordered(
    plan: &Arc<dyn ExecutionPlan>,
    descending: bool,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(None);
        };
        // A scan that says its partitions come out sorted keeps its files' order: the plan
        // above may count on it.
        if !config.output_ordering.is_empty() {
            return Ok(None);
        }
        let Some(dt) = config
            .table_partition_cols()
            .iter()
            .position(|f| f.name() == "dt")
        else {
            return Ok(None);
        };
        let groups = config.file_groups.len().max(1);
        let mut files: Vec<_> = config
            .file_groups
            .iter()
            .flat_map(|g| g.iter().cloned())
            .collect();
        let day = |f: &PartitionedFile| f.partition_values.get(dt).map(|v| v.to_string());
        // Stable: files of one day keep their order.
        if descending {
            files.sort_by_key(|f| Reverse(day(f)));
        } else {
            files.sort_by_key(day);
        }
        let mut dealt: Vec<Vec<_>> = vec![Vec::new(); groups];
        for (i, f) in files.into_iter().enumerate() {
            dealt[i % groups].push(f);
        }
        let config = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(dealt.into_iter().map(FileGroup::new).collect())
            .build();
        return Ok(Some(Arc::new(
            scan.clone().with_data_source(Arc::new(config)),
        )));
    }
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    match reordered(child, descending)? {
        Some(c) => Ok(Some(replace_children_if_necessary(
            Arc::clone(plan),
            vec![c],
        )?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::DataType;
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::ListingOptions;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::NewestFirst;

    /// Rows and plan of `sql` over `t`: four days (`dt`) of 500 events each, their
    /// `event_time` within their day.
    async fn run(rule: bool, sql: &str) -> (String, String) {
        run_over(rule, false, sql).await
    }

    /// [`run`], the table saying its files are sorted by `event_time` when `sorted`.
    async fn run_over(rule: bool, sorted: bool, sql: &str) -> (String, String) {
        let rules = crate::rules::physical_rules_with(rule.then(|| Arc::new(NewestFirst) as _));
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        let dir = tempfile::tempdir().unwrap();
        for day in 20..24 {
            let folder = dir.path().join(format!("dt=2026-11-{day}"));
            std::fs::create_dir(&folder).unwrap();
            ctx.sql(&format!(
                "COPY (SELECT to_timestamp_seconds({base} + value * 60) AS event_time, \
                 value % 10 AS v FROM generate_series(1, 500)) TO '{}' STORED AS PARQUET",
                folder.join("part.parquet").display(),
                base = 1_795_132_800 + (day - 20) * 86_400,
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        }
        let mut options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("dt".to_string(), DataType::Utf8)]);
        if sorted {
            options = options.with_file_sort_order(vec![vec![
                datafusion::prelude::col("event_time").sort(true, false),
            ]]);
        }
        ctx.register_listing_table("t", dir.path().to_str().unwrap(), options, None, None)
            .await
            .unwrap();
        crate::rules::rows_and_physical_plan(&ctx, sql).await
    }

    /// The days of the scan's files in the order the plan lists them.
    fn days(plan: &str) -> Vec<&str> {
        plan.match_indices("dt=")
            .map(|(i, _)| &plan[i + 3..i + 13])
            .collect()
    }

    #[tokio::test]
    async fn a_top_k_by_time_reads_the_days_it_wants_first_with_the_same_rows() {
        let latest = "SELECT event_time, v, dt FROM t ORDER BY event_time DESC LIMIT 3";
        let (with, plan) = run(true, latest).await;
        assert_eq!(with, run(false, latest).await.0);
        // Each of the two partitions starts with one of the two latest days.
        assert_eq!(
            days(&plan),
            ["2026-11-23", "2026-11-21", "2026-11-22", "2026-11-20"],
            "{plan}"
        );
        let earliest = "SELECT event_time, v FROM t WHERE v > 2 ORDER BY event_time LIMIT 3";
        let (with, plan) = run(true, earliest).await;
        assert_eq!(with, run(false, earliest).await.0);
        assert_eq!(
            days(&plan),
            ["2026-11-20", "2026-11-22", "2026-11-21", "2026-11-23"],
            "{plan}"
        );
        // Not a top-k, or not by time: left as it was.
        for sql in [
            "SELECT event_time FROM t ORDER BY event_time DESC",
            "SELECT v FROM t ORDER BY v DESC LIMIT 3",
        ] {
            let (_, plan) = run(true, sql).await;
            let (_, before) = run(false, sql).await;
            assert_eq!(days(&plan), days(&before), "{sql}");
        }
        // Files said to be sorted by time: the same rows, and a scan that says its partitions
        // come out sorted keeps its files' order.
        for sql in [latest, earliest] {
            let (with, plan) = run_over(true, true, sql).await;
            let (without, before) = run_over(false, true, sql).await;
            assert_eq!(with, without, "{sql}");
            if before.contains("output_ordering") {
                assert_eq!(days(&plan), days(&before), "{plan}");
            }
        }
    }
}

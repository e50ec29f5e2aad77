//! A window partitioned by keys, over input sorted by them, computed over each sorted partition
//! at once.
//!
//! DataFusion runs such a window (`lead(event_type) OVER (PARTITION BY user_id ORDER BY
//! event_time)`) as a `BoundedWindowAggExec`, which streams: for each batch it finds the window
//! partitions, keeps a state per partition key (the key as values, its rows so far, its
//! evaluator) and emits the rows whose results are known. Users and sessions are many and small,
//! so that state is made and dropped for every few rows: on the 3M-event lake the window itself
//! took more time than the sort under it. The sort holds its whole partition before it gives a
//! row anyway, so [`WholeWindows`] puts a `WindowAggExec` in its place, which takes the sorted
//! partition, finds the window partitions once and computes each over a slice of it. The rows,
//! their order and the results are the same; what the window holds at once is the sorted
//! partition, which the sort under it held already.
//!
//! Only where the input is sorted on every partition key (no sort would be added), every window
//! function is partitioned (a window over the whole input, `row_number() OVER (ORDER BY t)`,
//! streams in bounded memory and stays as it is), and the input's estimated bytes per partition
//! are no more than half what a sort takes at once (`sort_in_place_threshold_bytes`, see
//! `session.rs`): the window joins the sorted batches into one, a second copy of the partition.
//! Over larger partitions that copy costs more memory than the time it saves is worth: a `lead`
//! over users on the 10M-event lake (an estimated 28 MB a partition) took 1.70 instead of 2.04 s
//! but peaked at 1.0 instead of 0.7 GB.

use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::common::Statistics;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, InputOrderMode, StatisticsArgs, StatisticsContext,
};

#[derive(Debug, Default)]
pub struct WholeWindows;

impl PhysicalOptimizerRule for WholeWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let at_once = config.execution.sort_in_place_threshold_bytes;
        plan.transform_up(|node| {
            let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() else {
                return Ok(Transformed::no(node));
            };
            let exprs = window.window_expr();
            let partitioned = !exprs.is_empty()
                && exprs.iter().all(|e| {
                    !e.partition_by().is_empty()
                        && e.partition_by().len() == exprs[0].partition_by().len()
                });
            if !partitioned
                || window.input_order_mode != InputOrderMode::Sorted
                || window.input().boundedness().is_unbounded()
            {
                return Ok(Transformed::no(node));
            }
            let input = window.input();
            let partitions = input.output_partitioning().partition_count().max(1);
            let stats = StatisticsContext::new().compute(input.as_ref(), &StatisticsArgs::new())?;
            let small = estimated_bytes(&stats, &input.schema())
                .is_some_and(|bytes| bytes / partitions <= at_once / 2);
            if !small {
                return Ok(Transformed::no(node));
            }
            let whole = WindowAggExec::try_new(
                exprs.to_vec(),
                Arc::clone(window.input()),
                // Hash-partitioned by its keys, as the streaming window asked.
                true,
            )?;
            // Only where it asks of its input what the streaming window asked.
            if whole.required_input_ordering() != node.required_input_ordering()
                || format!("{:?}", whole.input_distribution_requirements())
                    != format!("{:?}", node.input_distribution_requirements())
                || whole.schema() != node.schema()
            {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(whole) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "whole_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The bytes of an input's rows: its statistics' estimate, or (over another window, whose
/// output has none) its rows times a width from its schema (a variable-length value counted as
/// 24 bytes).
fn estimated_bytes(stats: &Statistics, schema: &Schema) -> Option<usize> {
    if let Some(bytes) = stats.total_byte_size.get_value() {
        return Some(*bytes);
    }
    let rows = *stats.num_rows.get_value()?;
    let width: usize = schema
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(24))
        .sum();
    Some(rows.saturating_mul(width))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::WholeWindows;

    /// Rows and plan of `sql` over `t` (20,000 rows of 1,500 users, 4 partitions), with the
    /// rule or without, a sort taking `at_once` bytes at once.
    async fn run(rule: bool, at_once: usize, sql: &str) -> (String, String) {
        let rules = crate::rules::physical_rules_with(rule.then(|| Arc::new(WholeWindows) as _));
        let mut config = SessionConfig::new().with_target_partitions(4);
        config.options_mut().execution.sort_in_place_threshold_bytes = at_once;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql(
            "CREATE TABLE t AS SELECT 'u' || CAST(value % 1500 AS VARCHAR) AS user_id, \
             (value * 7919) % 100000 AS ts, CAST(value % 13 AS BIGINT) AS n, \
             CASE WHEN value % 17 = 0 THEN NULL ELSE 'e' || CAST(value % 5 AS VARCHAR) END AS kind \
             FROM generate_series(1, 20000)",
        )
        .await
        .unwrap();
        crate::rules::rows_and_physical_plan(&ctx, sql).await
    }

    #[tokio::test]
    async fn partitioned_windows_give_the_same_rows_computed_whole() {
        let sql = "SELECT user_id, ts, \
             lead(kind) OVER (PARTITION BY user_id ORDER BY ts) AS next_kind, \
             lag(ts, 2) OVER (PARTITION BY user_id ORDER BY ts) AS before, \
             row_number() OVER (PARTITION BY user_id ORDER BY ts) AS rn, \
             rank() OVER (PARTITION BY user_id ORDER BY n) AS r, \
             sum(n) OVER (PARTITION BY user_id ORDER BY ts ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) AS s, \
             count(*) OVER (PARTITION BY user_id) AS c, \
             first_value(kind) OVER (PARTITION BY user_id ORDER BY ts DESC) AS last_kind \
             FROM t ORDER BY user_id, ts";
        let (rows, plan) = run(true, 32 << 20, sql).await;
        assert!(plan.contains("WindowAggExec"), "{plan}");
        assert!(!plan.contains("BoundedWindowAggExec"), "{plan}");
        let (expected, before) = run(false, 32 << 20, sql).await;
        assert!(before.contains("BoundedWindowAggExec"), "{before}");
        assert_eq!(rows, expected);
        assert_eq!(rows.lines().count(), 20_000 + 4);
    }

    #[tokio::test]
    async fn a_window_over_everything_or_a_large_partition_keeps_streaming() {
        // No PARTITION BY: the whole input would be held.
        let (_, plan) = run(
            true,
            32 << 20,
            "SELECT max(rn) FROM (SELECT row_number() OVER (ORDER BY ts) AS rn FROM t)",
        )
        .await;
        assert!(!plan.contains(" WindowAggExec"), "{plan}");
        // Partitions estimated past half of what a sort takes at once.
        let (_, plan) = run(
            true,
            16 << 10,
            "SELECT max(rn) FROM (SELECT row_number() OVER (PARTITION BY user_id ORDER BY ts) \
             AS rn FROM t)",
        )
        .await;
        assert!(plan.contains("BoundedWindowAggExec"), "{plan}");
    }
}

//! A hash join builds its table on a grouped side rather than on a table at least as large as
//! that side's input.
//!
//! DataFusion builds a hash join's table on the side it estimates smaller. A grouped side
//! (`JOIN (SELECT user_id, min(dt) AS first_dt FROM events GROUP BY 1) f`) is estimated to have
//! as many rows as its input, since nothing says how many distinct keys there are, so against a
//! scan of the same table the two look alike and the join keeps the order of the SQL text: a
//! cohort query that joins `events e JOIN f` held 3 M events in its table (192 MB) to probe it
//! with 5,000 users. A group has at most as many rows as its input, so where the other side
//! holds at least as many rows as that input, [`GroupedSideBuilds`] builds on the grouped side.
//! The grouping may be filtered (`HAVING`), and the join may be inner, outer, semi (`IN`,
//! `EXISTS`, or an inner join the planner turned into one) or anti, as long as DataFusion can turn
//! it round (the answer is the same either way; it puts the columns back in their order). Only
//! joins whose sides are hash-partitioned are turned; one that holds a side whole was judged
//! small enough already.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};

#[derive(Debug, Default)]
pub struct GroupedSideBuilds;

/// Puts [`GroupedSideBuilds`] among DataFusion's physical rules right after it has chosen each
/// hash join's sides, before anything is placed around them.
pub(crate) fn insert(rules: &mut Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>) {
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(GroupedSideBuilds));
}

impl PhysicalOptimizerRule for GroupedSideBuilds {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let mode = *join.partition_mode();
            if !join.join_type().supports_swap()
                || join.null_aware
                || mode != PartitionMode::Partitioned
                || grouped_input(join.left()).is_some()
            {
                return Ok(Transformed::no(node));
            }
            let Some(input) = grouped_input(join.right()) else {
                return Ok(Transformed::no(node));
            };
            let stats = StatisticsContext::new();
            let rows = |p: &Arc<dyn ExecutionPlan>| {
                stats
                    .compute(p.as_ref(), &StatisticsArgs::new())
                    .ok()
                    .and_then(|s| s.num_rows.get_value().copied())
            };
            match (rows(join.left()), rows(&input)) {
                (Some(other), Some(grouped_from)) if other >= grouped_from => Ok(Transformed::yes(
                    join.swap_inputs(PartitionMode::Partitioned)?,
                )),
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "grouped_side_builds"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// When `plan` is a grouping (under projections, repartitions and filters): what it groups. A
/// grouping with grouping sets (`CUBE`, `ROLLUP`) is none: it gives a row per set for each group,
/// so it may have more rows than its input.
fn grouped_input(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(agg) = plan.downcast_ref::<AggregateExec>() {
        if agg.group_expr().is_empty() || !agg.group_expr().is_single() {
            return None;
        }
        return match agg.mode() {
            AggregateMode::Final | AggregateMode::FinalPartitioned => {
                // The final step's input is the partial step (perhaps repartitioned).
                let mut below = Arc::clone(agg.input());
                loop {
                    if let Some(partial) = below.downcast_ref::<AggregateExec>() {
                        // The sets are the partial step's; the final step groups by their id.
                        return partial
                            .group_expr()
                            .is_single()
                            .then(|| Arc::clone(partial.input()));
                    }
                    below = Arc::clone(passes_rows_through(&below)?);
                }
            }
            _ => Some(Arc::clone(agg.input())),
        };
    }
    grouped_input(passes_rows_through(plan)?)
}

/// The input of a node that hands on its input's rows, or some of them.
fn passes_rows_through(plan: &Arc<dyn ExecutionPlan>) -> Option<&Arc<dyn ExecutionPlan>> {
    if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        Some(p.input())
    } else if let Some(r) = plan.downcast_ref::<RepartitionExec>() {
        Some(r.input())
    } else if let Some(c) = plan.downcast_ref::<CoalescePartitionsExec>() {
        Some(c.input())
    } else if let Some(f) = plan.downcast_ref::<FilterExec>() {
        // Fewer rows, never more (a `HAVING`).
        Some(f.input())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The rows (sorted) and the physical plan of `sql` over `e`, 2,000 rows of 50 keys, with
    /// or without the rule; joins are hash-partitioned whatever their size.
    async fn run(rule: bool, sql: &str) -> (Vec<String>, String) {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold",
                0,
            )
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold_rows",
                0,
            );
        let mut rules = PhysicalOptimizer::new().rules;
        if rule {
            super::insert(&mut rules);
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        // A Parquet file, as the lake's: its statistics say how many rows it has, not how many
        // distinct keys.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        ctx.sql(&format!(
            "COPY (SELECT value % 50 AS k, value AS v, \
             CASE WHEN value % 7 = 0 THEN NULL ELSE value % 3 END AS w \
             FROM generate_series(1, 2000)) TO '{}' STORED AS PARQUET",
            path.display()
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        ctx.register_parquet("e", path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let (table, plan) = crate::rules::rows_and_physical_plan(&ctx, sql).await;
        let plan = plan.replace(dir.path().to_str().unwrap().trim_start_matches('/'), "dir");
        let mut rows: Vec<String> = table.lines().map(str::to_string).collect();
        rows.sort();
        (rows, plan)
    }

    /// What a hash join builds its table on: the first plan line below the join that is not a
    /// projection, a repartition or a filter.
    fn build_side(plan: &str) -> &str {
        let mut lines = plan.lines().skip_while(|l| !l.contains("HashJoinExec"));
        lines.next().expect("a hash join");
        lines
            .find(|l| {
                !["ProjectionExec", "RepartitionExec", "FilterExec"]
                    .iter()
                    .any(|n| l.contains(n))
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_grouped_side_is_built_on_and_the_answers_stay() {
        // The two sides read the same columns, so that DataFusion's estimates of them tie.
        let grouped = "SELECT e.k, e.v, g.m FROM e JOIN \
                       (SELECT k, min(v) AS m FROM e GROUP BY k) g ON e.k = g.k";
        let (with, plan) = run(true, grouped).await;
        let (without, before) = run(false, grouped).await;
        assert_eq!(with, without, "{plan}");
        assert!(build_side(&plan).contains("AggregateExec"), "{plan}");
        assert!(!build_side(&before).contains("AggregateExec"), "{before}");

        // Keyed on a nullable column, with a filter on the grouped side.
        let nullable = "SELECT e.w, e.v, g.n FROM e JOIN (SELECT w, max(v) AS n FROM e \
                        GROUP BY w) g ON e.w = g.w";
        let (with, plan) = run(true, nullable).await;
        assert_eq!(with, run(false, nullable).await.0, "{plan}");
        assert!(build_side(&plan).contains("AggregateExec"), "{plan}");

        // A filtered grouping, an outer join, a semi join and an anti join.
        for sql in [
            "SELECT e.k, e.v, g.n FROM e JOIN (SELECT k, count(*) AS n FROM e GROUP BY k \
             HAVING count(*) > 39) g ON e.k = g.k",
            "SELECT e.k, e.v, g.m FROM e LEFT JOIN (SELECT k, min(v) AS m FROM e WHERE k > 5 \
             GROUP BY k) g ON e.k = g.k",
            "SELECT e.k, e.v FROM e WHERE e.k IN (SELECT k FROM e GROUP BY k HAVING min(v) < 20)",
            "SELECT e.k, e.v FROM e WHERE NOT EXISTS (SELECT 1 FROM (SELECT k FROM e GROUP BY k \
             HAVING min(v) < 20) g WHERE g.k = e.k)",
        ] {
            let (with, plan) = run(true, sql).await;
            let (without, _) = run(false, sql).await;
            assert_eq!(with, without, "{sql}\n{plan}");
            assert!(with.len() > 10, "{sql}: {} rows", with.len());
            assert!(build_side(&plan).contains("AggregateExec"), "{sql}\n{plan}");
        }

        // Left as they were: a side estimated smaller than what is grouped, and grouping sets,
        // which may give more rows than they read.
        for sql in [
            "SELECT e.k, g.m FROM e JOIN (SELECT k, min(v) AS m FROM e GROUP BY k) g \
             ON e.k = g.k WHERE e.v < 100",
            "SELECT e.k, e.v, g.m FROM e JOIN (SELECT k, w, min(v) AS m FROM e \
             GROUP BY CUBE (k, w)) g ON e.k = g.k",
        ] {
            let (with, plan) = run(true, sql).await;
            let (without, before) = run(false, sql).await;
            assert_eq!(with, without, "{sql}");
            assert_eq!(plan, before, "{sql}");
        }
    }
}

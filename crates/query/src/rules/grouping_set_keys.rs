//! Grouping-set keys that a filter pins to one value are not constants above the sets.
//!
//! `WHERE event_type = 'purchase' GROUP BY GROUPING SETS ((event_type), (dt), ()) ORDER BY 1, 2`:
//! below the aggregation `event_type` has one value, and DataFusion carries that knowledge
//! through the aggregation's output, where `event_type` is NULL in the rows of the other sets.
//! Its sorting rules then drop `event_type` from the `ORDER BY` as a constant, and the subtotal
//! rows come out of order.
//!
//! [`GroupingSetKeysVary`] puts a [`ForgetConstantsExec`] under each such aggregation (one with
//! grouping sets, reading its input rows, whose input holds a group key constant): it passes the
//! batches on as they are and tells the planner nothing of their constants or order, so nothing
//! above takes a key of the sets for a constant. Runs before DataFusion enforces orderings.

use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    SendableRecordBatchStream, replace_children_if_necessary,
};

#[derive(Debug, Default)]
pub struct GroupingSetKeysVary;

impl PhysicalOptimizerRule for GroupingSetKeysVary {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let reads_rows = matches!(
                aggregate.mode(),
                AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
            );
            if !aggregate.group_expr().has_grouping_set() || !reads_rows {
                return Ok(Transformed::no(node));
            }
            let input = aggregate.input();
            let known = input.equivalence_properties();
            let pinned = aggregate
                .group_expr()
                .input_exprs()
                .iter()
                .any(|key| known.is_expr_constant(key).is_some());
            if !pinned {
                return Ok(Transformed::no(node));
            }
            let forget = Arc::new(ForgetConstantsExec::new(Arc::clone(input)));
            Ok(Transformed::yes(replace_children_if_necessary(
                Arc::clone(&node),
                vec![forget],
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "grouping_set_keys_vary"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Its input's batches, with nothing known of their constants or order.
#[derive(Debug)]
pub struct ForgetConstantsExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ForgetConstantsExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        Self {
            input,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for ForgetConstantsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ForgetConstantsExec")
    }
}

impl ExecutionPlan for ForgetConstantsExec {
    fn name(&self) -> &str {
        "ForgetConstantsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().expect("one child");
        Ok(Arc::new(Self::new(input)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::GroupingSetKeysVary;

    /// Rows and plan of `sql` over `t`, with the rule before DataFusion's sorting rules or
    /// without it.
    async fn run(rule: bool, sql: &str) -> (String, String) {
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        if rule {
            let at = rules
                .iter()
                .position(|r| r.name() == "EnsureRequirements")
                .expect("DataFusion enforces orderings");
            rules.insert(at, Arc::new(GroupingSetKeysVary));
        }
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(4))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql(
            "CREATE TABLE t AS SELECT CASE WHEN value % 3 = 0 THEN 'x' ELSE 'y' END AS a, \
             'd' || CAST(value % 5 AS VARCHAR) AS b, value AS v FROM generate_series(1, 2000)",
        )
        .await
        .unwrap();
        crate::rules::rows_and_physical_plan(&ctx, sql).await
    }

    #[tokio::test]
    async fn a_pinned_key_of_the_sets_stays_in_the_order() {
        let sql = "SELECT a, b, count(*) AS n FROM t WHERE a = 'x' \
                   GROUP BY GROUPING SETS ((a), (b), ()) ORDER BY 1, 2";
        let (rows, plan) = run(true, sql).await;
        assert!(plan.contains("ForgetConstantsExec"), "{plan}");
        // `a` first (NULLs last), then `b`: the subtotal of `a`, then those of `b`, then all.
        let expected = [
            "+---+----+-----+",
            "| a | b  | n   |",
            "+---+----+-----+",
            "| x |    | 666 |",
            "|   | d0 | 133 |",
            "|   | d1 | 133 |",
            "|   | d2 | 133 |",
            "|   | d3 | 134 |",
            "|   | d4 | 133 |",
            "|   |    | 666 |",
            "+---+----+-----+",
        ]
        .join("\n");
        assert_eq!(rows, expected, "{plan}");
        // Without the rule, the sort loses `a` (the reason for it).
        let (_, before) = run(false, sql).await;
        assert!(!before.contains("ForgetConstantsExec"), "{before}");
        assert!(!before.contains("SortExec: expr=[a@0"), "{before}");
        // A key that no filter pins, or a plain GROUP BY, is left as it was.
        for sql in [
            "SELECT a, b, count(*) FROM t WHERE v > 10 GROUP BY ROLLUP (a, b) ORDER BY 1, 2",
            "SELECT a, count(*) FROM t WHERE a = 'x' GROUP BY a ORDER BY 1",
        ] {
            let (_, plan) = run(true, sql).await;
            assert!(!plan.contains("ForgetConstantsExec"), "{sql}\n{plan}");
        }
    }
}

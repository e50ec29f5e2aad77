//! The filtering side of a semi or anti join (`x IN (SELECT …)`, `EXISTS`, `NOT EXISTS`) made
//! distinct on its join keys before the join.
//!
//! Such a join asks only whether a match exists, so repeats on the filtering side cannot change
//! its answer; but a hash join keeps every repeat in its table and walks all of them for each
//! probing row. `user_id IN (SELECT user_id FROM events WHERE …)` repeats each user once per
//! event: about 25 candidates a probe, and 3 s spent in the join for 3 M rows. Grouping the
//! filtering side by its keys first leaves one entry per key.
//!
//! The rule applies to joins on plain columns without an extra join filter, and leaves a side
//! that is already grouped by its keys alone. A `NOT IN` join (null-aware) keeps its meaning: a
//! NULL key is its own group.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Aggregate, Expr, JoinType, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct DistinctSemiJoinSide;

/// Is `plan` already one row per value of `keys`?
fn grouped_by(plan: &LogicalPlan, keys: &[Expr]) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => {
            a.aggr_expr.is_empty()
                && a.group_expr.len() == keys.len()
                && a.group_expr.iter().all(|g| {
                    keys.iter().any(
                    |k| matches!((g, k), (Expr::Column(x), Expr::Column(y)) if x.name == y.name),
                )
                })
        }
        LogicalPlan::Distinct(_) => plan.schema().fields().len() == keys.len(),
        LogicalPlan::Projection(p) => {
            p.expr.iter().all(|e| matches!(e, Expr::Column(_))) && grouped_by(&p.input, keys)
        }
        LogicalPlan::SubqueryAlias(s) => grouped_by(&s.input, keys),
        _ => false,
    }
}

impl OptimizerRule for DistinctSemiJoinSide {
    fn name(&self) -> &str {
        "distinct_semi_join_side"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let filtering_right = match join.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti => true,
            JoinType::RightSemi | JoinType::RightAnti => false,
            _ => return Ok(Transformed::no(plan)),
        };
        if join.filter.is_some() || join.on.is_empty() {
            return Ok(Transformed::no(plan));
        }
        let keys: Vec<Expr> = join
            .on
            .iter()
            .map(|(l, r)| {
                if filtering_right {
                    r.clone()
                } else {
                    l.clone()
                }
            })
            .collect();
        if !keys.iter().all(|k| matches!(k, Expr::Column(_))) {
            return Ok(Transformed::no(plan));
        }
        let side = if filtering_right {
            &join.right
        } else {
            &join.left
        };
        if grouped_by(side, &keys) {
            return Ok(Transformed::no(plan));
        }
        let distinct = LogicalPlan::Aggregate(Aggregate::try_new(Arc::clone(side), keys, vec![])?);
        let LogicalPlan::Join(mut join) = plan else {
            unreachable!("matched above")
        };
        if filtering_right {
            join.right = Arc::new(distinct);
        } else {
            join.left = Arc::new(distinct);
        }
        // The join's schema is the other side's columns only, so it is unchanged.
        Ok(Transformed::yes(LogicalPlan::Join(join)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    use super::DistinctSemiJoinSide;

    async fn answers(rule: bool, sql: &str) -> (String, String) {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(DistinctSemiJoinSide));
        }
        // Repeated keys on both sides, and a NULL on the filtering side of NOT IN.
        ctx.sql(
            "CREATE TABLE e AS VALUES ('a', 1), ('a', 2), ('b', 3), ('c', 4), (NULL, 5), ('b', 6)",
        )
        .await
        .unwrap();
        ctx.sql(
            "CREATE TABLE f AS VALUES ('a', 'x'), ('a', 'y'), ('b', 'x'), ('b', 'x'), ('d', 'y')",
        )
        .await
        .unwrap();
        ctx.sql("CREATE TABLE g AS VALUES ('a'), ('a'), (NULL)")
            .await
            .unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = format!(
            "{}",
            df.clone().into_optimized_plan().unwrap().display_indent()
        );
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (rows, plan)
    }

    #[tokio::test]
    async fn a_distinct_filtering_side_gives_the_same_answers() {
        for sql in [
            "SELECT column2 FROM e WHERE column1 IN (SELECT column1 FROM f) ORDER BY 1",
            "SELECT column2 FROM e WHERE column1 IN (SELECT column1 FROM f WHERE column2 = 'x') ORDER BY 1",
            "SELECT column2 FROM e WHERE EXISTS (SELECT 1 FROM f WHERE f.column1 = e.column1) ORDER BY 1",
            "SELECT column2 FROM e WHERE NOT EXISTS (SELECT 1 FROM f WHERE f.column1 = e.column1) ORDER BY 1",
            "SELECT column2 FROM e WHERE column1 NOT IN (SELECT column1 FROM f) ORDER BY 1",
            "SELECT column2 FROM e WHERE column1 NOT IN (SELECT column1 FROM g) ORDER BY 1",
            "SELECT count(*) FROM e WHERE column1 IN (SELECT column1 FROM g)",
        ] {
            let (with, plan) = answers(true, sql).await;
            let (without, _) = answers(false, sql).await;
            assert_eq!(with, without, "{sql}\n{plan}");
        }
        let (_, plan) = answers(
            true,
            "SELECT column2 FROM e WHERE column1 IN (SELECT column1 FROM f)",
        )
        .await;
        assert!(
            plan.contains("Aggregate: groupBy=[[__correlated_sq_1.column1]], aggr=[[]]"),
            "{plan}"
        );
    }
}

//! The filtering side of a semi or anti join (`x IN (SELECT …)`, `EXISTS`, `NOT EXISTS`) made
//! distinct on its join keys before the join.
//!
//! Such a join asks only whether a match exists, so repeats on the filtering side cannot change
//! its answer; but a hash join keeps every repeat in its table and walks all of them for each
//! probing row. `user_id IN (SELECT user_id FROM events WHERE …)` repeats each user once per
//! event: about 25 candidates a probe, and 3 s spent in the join for 3 M rows. Grouping the
//! filtering side by its keys first leaves one entry per key.
//!
//! The rule applies to joins on plain columns, and leaves a side that is already grouped by its
//! keys alone. A `NOT IN` join (null-aware) keeps its meaning: a NULL key is its own group.
//!
//! A join with an extra filter that compares one column of the filtering side with the other
//! side (`EXISTS (… WHERE s.user_id = p.user_id AND s.event_time < p.event_time)`, or an inner
//! join of the two that only counts the other side's rows) asks whether the smallest value of
//! that column in the key's group passes (`<`, `<=`), or the largest (`>`, `>=`): the side is
//! grouped by its keys with that one value, named as the column was, and the filter is kept.
//! NULLs in the column pass no comparison and are left out of the smallest and largest alike.
//! Only integers, decimals, dates, timestamps and strings (compared byte by byte, as `min` and
//! `max` order them) are compared so (a float's NaN orders unlike its comparisons).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, ExprSchema};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::logical_expr::{Aggregate, BinaryExpr, Expr, JoinType, LogicalPlan, Operator};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub struct DistinctSemiJoinSide;

/// Is `plan` already one row per value of `keys`?
fn grouped_by(plan: &LogicalPlan, keys: &[Expr]) -> bool {
    match plan {
        LogicalPlan::Aggregate(a) => {
            a.group_expr.len() == keys.len()
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

/// For a join filter `c OP x` (or `x OP c`), where `c` is a column of the filtering side (an
/// integer, decimal, date, timestamp or string) and `x` reads the other side only: `c`, and
/// whether its smallest value in a group decides the match (else its largest).
pub(crate) fn bound_by_one_column(
    filter: &Expr,
    filtering: &DFSchema,
    kept: &DFSchema,
) -> Option<(Column, bool)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    let ours = |e: &Expr| match e {
        Expr::Column(c) if filtering.has_column(c) && !kept.has_column(c) => Some(c.clone()),
        _ => None,
    };
    let (c, x, op) = match (ours(left), ours(right)) {
        (Some(c), None) => (c, right.as_ref(), *op),
        (None, Some(c)) => (c, left.as_ref(), op.swap()?),
        _ => return None,
    };
    let refs = x.column_refs();
    if x.is_volatile()
        || !refs
            .iter()
            .all(|r| kept.has_column(r) && !filtering.has_column(r))
    {
        return None;
    }
    let smallest = match op {
        Operator::Lt | Operator::LtEq => true,
        Operator::Gt | Operator::GtEq => false,
        _ => return None,
    };
    let comparable = matches!(
        filtering.field_from_column(&c).ok()?.data_type(),
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    );
    comparable.then_some((c, smallest))
}

/// The aggregate that keeps `c`'s smallest (or largest) value in a group, named as `c` is, so
/// that a join filter reading `c` reads it.
pub(crate) fn bound_of(c: &Column, smallest: bool) -> Expr {
    let value = Expr::Column(c.clone());
    let bound = if smallest { min(value) } else { max(value) };
    bound.alias_qualified(c.relation.clone(), c.name.clone())
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
        if join.on.is_empty() || (join.filter.is_some() && join.null_aware) {
            return Ok(Transformed::no(plan));
        }
        let (side, kept) = if filtering_right {
            (&join.right, &join.left)
        } else {
            (&join.left, &join.right)
        };
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
        let aggregates = match &join.filter {
            None => vec![],
            Some(f) => match bound_by_one_column(f, side.schema(), kept.schema()) {
                // A key is one value in its group: the grouping keeps it.
                Some((c, _)) if keys.iter().any(|k| matches!(k, Expr::Column(k) if *k == c)) => {
                    vec![]
                }
                Some((c, smallest)) => vec![bound_of(&c, smallest)],
                None => return Ok(Transformed::no(plan)),
            },
        };
        if grouped_by(side, &keys) {
            return Ok(Transformed::no(plan));
        }
        // A side this cannot group (names that would clash) is left as it is: the rule only
        // ever makes a query faster, never fails it.
        let Ok(grouped) = Aggregate::try_new(Arc::clone(side), keys, aggregates) else {
            return Ok(Transformed::no(plan));
        };
        let distinct = LogicalPlan::Aggregate(grouped);
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

    use datafusion::prelude::SessionContext;

    use super::DistinctSemiJoinSide;
    use crate::rules::rows_and_plan;

    async fn answers(rule: bool, sql: &str) -> (String, String) {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(DistinctSemiJoinSide));
        }
        let tables = [
            // Repeated keys on both sides, and a NULL on the filtering side of NOT IN.
            "CREATE TABLE e AS VALUES ('a', 1), ('a', 2), ('b', 3), ('c', 4), (NULL, 5), ('b', 6)",
            "CREATE TABLE f AS VALUES ('a', 'x'), ('a', 'y'), ('b', 'x'), ('b', 'x'), ('d', 'y')",
            "CREATE TABLE g AS VALUES ('a'), ('a'), (NULL)",
            // Values to compare, repeated keys, NULL keys and NULL values, equal values, a float.
            "CREATE TABLE h AS VALUES ('a', 1, 1.5, 'ab'), ('a', 3, 0.5, 'B'), ('b', 3, NULL, 'b'), \
             ('b', NULL, 2.0, NULL), (NULL, 0, 0.0, 'z'), ('c', NULL, 1.0, ''), \
             ('d', 7, CAST('NaN' AS DOUBLE), 'é')",
        ];
        rows_and_plan(&ctx, &tables, sql).await
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

    #[tokio::test]
    async fn a_filter_on_one_column_keeps_its_bound_and_the_same_answers() {
        let exists = |filter: &str, not: &str| {
            format!(
                "SELECT column1, column2 FROM e WHERE {not} EXISTS \
                 (SELECT 1 FROM h WHERE h.column1 = e.column1 AND {filter}) ORDER BY 1, 2"
            )
        };
        let mut queries = Vec::new();
        for filter in [
            "h.column2 < e.column2",
            "h.column2 <= e.column2",
            "h.column2 > e.column2",
            "h.column2 >= e.column2",
            "e.column2 > h.column2",
            "e.column2 <= h.column2",
            "h.column2 < e.column2 + 1",
            "h.column3 < e.column2",
            "h.column4 > e.column1",
            "h.column4 <= concat(e.column1, 'a')",
            "h.column1 > concat(e.column1, '')",
            "h.column1 < 'b'",
        ] {
            queries.push(exists(filter, ""));
            queries.push(exists(filter, "NOT"));
        }
        queries.push(
            "SELECT count(DISTINCT p.column2) FROM h s JOIN e p ON s.column1 = p.column1 \
             WHERE s.column2 < p.column2"
                .to_string(),
        );
        queries.push(
            "SELECT column2 FROM e WHERE column1 NOT IN \
             (SELECT column1 FROM h WHERE h.column2 < e.column2) ORDER BY 1"
                .to_string(),
        );
        for sql in &queries {
            let (with, plan) = answers(true, sql).await;
            let (without, _) = answers(false, sql).await;
            assert_eq!(with, without, "{sql}\n{plan}");
        }
        let (_, plan) = answers(true, &exists("h.column2 < e.column2", "")).await;
        assert!(
            plan.contains("aggr=[[min(__correlated_sq_1.column2) AS column2]]"),
            "{plan}"
        );
        let (_, plan) = answers(true, &exists("e.column2 <= h.column2", "NOT")).await;
        assert!(
            plan.contains("aggr=[[max(__correlated_sq_1.column2) AS column2]]"),
            "{plan}"
        );
        let (_, plan) = answers(true, &exists("h.column4 > e.column1", "")).await;
        assert!(
            plan.contains("aggr=[[max(__correlated_sq_1.column4) AS column4]]"),
            "{plan}"
        );
        // A float's NaN orders unlike its comparisons: that side stays as it is.
        let (_, plan) = answers(true, &exists("h.column3 < e.column2", "")).await;
        assert!(!plan.contains("min(") && !plan.contains("max("), "{plan}");
    }
}

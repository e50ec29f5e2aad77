//! A grouped `count(DISTINCT x)` beside other aggregates, grouped by `x` first.
//!
//! DataFusion keeps a set of seen values per group for a DISTINCT aggregate, updated group by
//! group: `SELECT user_id, count(DISTINCT session_id), count(*) … GROUP BY user_id` over 1.3
//! million rows of 5,000 users took 260 ms, where grouping by `(user_id, session_id)` and then
//! by `user_id` takes 40. DataFusion's own `single_distinct_aggregation_to_group_by` does this
//! when every other aggregate is a `sum`, `min` or `max`; the count beside the distinct count
//! (events and sessions per user, events and users per type) kept it from applying. This rule
//! applies when the DISTINCT aggregates share one argument and every other aggregate can be
//! built from partial results (`count`, `sum` of integers, `min`, `max`, as in
//! [`super::grouping_sets`]):
//!
//! ```text
//! Aggregate: groupBy=[user_id], aggr=[count(DISTINCT session_id), count(*)]
//!   <input>
//! -- becomes
//! Projection: user_id, d AS count(DISTINCT session_id), coalesce(n, 0) AS count(*)
//!   Aggregate: groupBy=[user_id], aggr=[count(__distinct_arg) AS d, sum(__partial_0) AS n]
//!     Aggregate: groupBy=[user_id, session_id AS __distinct_arg], aggr=[count(*) AS __partial_0]
//!       <input>
//! ```
//!
//! The DISTINCT aggregate sees each distinct value of its group once, NULL among them as a
//! group of its own that `count`, `sum`, `avg`, `min` and `max` skip as they skip NULL. An
//! aggregation without grouping keys is left alone: it has one set of values, which DataFusion
//! fills as fast as a grouping would. The plan's columns keep their names and types; a plan whose
//! types would differ is left as it was.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::grouping_sets::{Combine, combined, finished, splittable};

/// The DISTINCT aggregates this rule computes over the distinct values.
const OVER_DISTINCT_VALUES: [&str; 5] = ["count", "sum", "avg", "min", "max"];

/// The inner aggregation's name for the DISTINCT argument.
const DISTINCT_ARG: &str = "__distinct_arg";

#[derive(Debug, Default)]
pub struct DistinctWithOtherAggregates;

impl OptimizerRule for DistinctWithOtherAggregates {
    fn name(&self) -> &str {
        "distinct_with_other_aggregates"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(a) = &plan else {
            return Ok(Transformed::no(plan));
        };
        match grouped_by_distinct_arg(a)? {
            Some(p) => Ok(Transformed::yes(p)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// One aggregate of the aggregation, as the rewrite computes it.
enum Part<'a> {
    /// Over the distinct values of the shared argument.
    Distinct(&'a AggregateFunction),
    /// From partial results of the inner groups.
    Partial(&'a AggregateFunction, Combine),
}

/// The aggregate under an alias, or the expression itself.
fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => a.expr.as_ref(),
        e => e,
    }
}

/// `a` computed over its input grouped by its keys and the DISTINCT argument, when it can be.
fn grouped_by_distinct_arg(a: &Aggregate) -> Result<Option<LogicalPlan>> {
    if a.group_expr.is_empty()
        || a.group_expr
            .iter()
            .any(|k| matches!(k, Expr::GroupingSet(_)) || k.is_volatile())
    {
        return Ok(None);
    }
    let input_schema = a.input.schema();
    let mut distinct_arg: Option<&Expr> = None;
    let mut parts = Vec::with_capacity(a.aggr_expr.len());
    for e in &a.aggr_expr {
        if let Expr::AggregateFunction(f) = unaliased(e)
            && f.params.distinct
        {
            let AggregateFunctionParams {
                args,
                filter,
                order_by,
                null_treatment,
                ..
            } = &f.params;
            let [arg] = args.as_slice() else {
                return Ok(None);
            };
            if filter.is_some()
                || !order_by.is_empty()
                || null_treatment.is_some()
                || arg.is_volatile()
                || !OVER_DISTINCT_VALUES.contains(&f.func.name())
                || distinct_arg.is_some_and(|d| d != arg)
            {
                return Ok(None);
            }
            distinct_arg = Some(arg);
            parts.push(Part::Distinct(f));
        } else {
            let Some((f, combine)) = splittable(e, input_schema.as_ref()) else {
                return Ok(None);
            };
            parts.push(Part::Partial(f, combine));
        }
    }
    // With no other aggregate, DataFusion's own rule does this.
    let Some(arg) = distinct_arg else {
        return Ok(None);
    };
    if parts.iter().all(|p| matches!(p, Part::Distinct(_))) {
        return Ok(None);
    }
    let keys = a.group_expr.len();
    let mut inner_keys = a.group_expr.clone();
    inner_keys.push(arg.clone().alias(DISTINCT_ARG));
    let partial: Vec<Expr> = parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Part::Partial(f, _) => {
                Some(Expr::AggregateFunction((*f).clone()).alias(format!("__partial_{i}")))
            }
            Part::Distinct(_) => None,
        })
        .collect();
    let inner = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::clone(&a.input),
        inner_keys,
        partial,
    )?);
    let outer_keys: Vec<Expr> = (0..keys)
        .map(|i| Expr::Column(Column::from(inner.schema().qualified_field(i))))
        .collect();
    let combined: Vec<Expr> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            match p {
                // The same function over the distinct values, no longer DISTINCT.
                Part::Distinct(f) => combined(f, &Combine::Same, Column::from_name(DISTINCT_ARG)),
                Part::Partial(f, combine) => {
                    combined(f, combine, Column::from_name(format!("__partial_{i}")))
                }
            }
            .alias(format!("__combined_{i}"))
        })
        .collect();
    let outer = Aggregate::try_new(Arc::new(inner), outer_keys, combined)?;
    // The keys, then each aggregate, under the names they had.
    let mut exprs = Vec::with_capacity(a.schema.fields().len());
    for i in 0..keys {
        let (qualifier, field) = a.schema.qualified_field(i);
        let key = Expr::Column(Column::from(outer.schema.qualified_field(i)));
        exprs.push(key.alias_qualified(qualifier.cloned(), field.name()));
    }
    for (i, p) in parts.iter().enumerate() {
        let value = Expr::Column(Column::from(outer.schema.qualified_field(keys + i)));
        // A group's rows are never none, so the sum of its partial counts is never NULL; the
        // count it stands for is typed as never NULL too.
        let value = match p {
            Part::Partial(_, combine) => finished(value, combine),
            Part::Distinct(_) => value,
        };
        let (qualifier, field) = a.schema.qualified_field(keys + i);
        exprs.push(value.alias_qualified(qualifier.cloned(), field.name()));
    }
    let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(outer)))?;
    Ok(super::same_columns(&projection.schema, &a.schema)
        .then_some(LogicalPlan::Projection(projection)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::prelude::SessionContext;

    use super::DistinctWithOtherAggregates;
    use crate::rules::rows_and_plan;

    async fn answers(rule: bool, sql: &str) -> (String, String) {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(DistinctWithOtherAggregates));
        }
        let tables = [
            // Repeated keys and values, NULL keys and NULL values, an integer, a float, a text.
            "CREATE TABLE e AS VALUES ('a', 'x', 1, 1.5, 'p'), ('a', 'y', 2, 0.25, 'q'), \
             ('b', 'x', 3, NULL, NULL), ('b', 'x', NULL, 2.0, 'r'), (NULL, 'y', 5, 0.1, 's'), \
             ('c', NULL, -7, 3.0, 'p'), ('a', 'x', 10, 1.0, 't'), ('a', NULL, 1, 1.5, 'p'), \
             ('c', NULL, NULL, NULL, NULL), ('a', 'x', 1, 0.5, 'p')",
            "CREATE TABLE empty AS SELECT * FROM e WHERE false",
        ];
        rows_and_plan(&ctx, &tables, sql).await
    }

    #[tokio::test]
    async fn distinct_and_other_aggregates_give_the_same_answers() {
        let mut changed = 0;
        for (sql, splits) in [
            (
                "SELECT column1, count(DISTINCT column2), count(*) FROM e GROUP BY 1 ORDER BY 1",
                true,
            ),
            (
                "SELECT column1, count(DISTINCT column3), sum(DISTINCT column3), \
                 min(DISTINCT column3), count(column5), sum(column3), max(column5), \
                 min(column4) FROM e GROUP BY column1 ORDER BY 1",
                true,
            ),
            // `avg` reads its argument as a double: that cast is the DISTINCT argument.
            (
                "SELECT column1, avg(DISTINCT column3), count(*) FROM e GROUP BY column1 \
                 ORDER BY 1",
                true,
            ),
            // A key computed from a column, the distinct argument a key too, a HAVING on it.
            (
                "SELECT upper(column1) AS u, column2, count(DISTINCT column2) AS d, count(*) AS n \
                 FROM e GROUP BY upper(column1), column2 HAVING count(DISTINCT column2) > 0 \
                 ORDER BY 1, 2",
                true,
            ),
            (
                "SELECT column2, count(DISTINCT upper(column5)), count(column3) FROM e \
                 GROUP BY column2 ORDER BY 1",
                true,
            ),
            (
                "SELECT column1, count(DISTINCT column2), count(*) FROM empty GROUP BY 1",
                true,
            ),
            // Left as written: no grouping key, two DISTINCT arguments, a float's sum, an
            // average, a filter, and a DISTINCT aggregate alone.
            ("SELECT count(DISTINCT column2), count(*) FROM e", false),
            (
                "SELECT column1, count(DISTINCT column2), count(DISTINCT column5), count(*) \
                 FROM e GROUP BY 1 ORDER BY 1",
                false,
            ),
            (
                "SELECT column1, count(DISTINCT column2), sum(column4) FROM e GROUP BY 1 \
                 ORDER BY 1",
                false,
            ),
            (
                "SELECT column1, count(DISTINCT column2), avg(column3) FROM e GROUP BY 1 \
                 ORDER BY 1",
                false,
            ),
            (
                "SELECT column1, count(DISTINCT column2), count(*) FILTER (WHERE column3 > 1) \
                 FROM e GROUP BY 1 ORDER BY 1",
                false,
            ),
            (
                "SELECT column1, count(DISTINCT column2) FROM e GROUP BY 1 ORDER BY 1",
                false,
            ),
        ] {
            let (with, plan) = answers(true, sql).await;
            let (without, _) = answers(false, sql).await;
            assert_eq!(with, without, "{sql}\n{plan}");
            assert_eq!(plan.contains("__distinct_arg"), splits, "{sql}\n{plan}");
            changed += usize::from(splits);
        }
        assert_eq!(changed, 6);
    }
}

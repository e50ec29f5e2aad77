//! Counting the elements of arrays made from few distinct values: count the values first.
//!
//! "Which words are event types made of": `SELECT w, count(*) FROM events CROSS JOIN
//! UNNEST(split(event_type, '_')) AS t(w) GROUP BY w` splits every row's event type, expands
//! every array and counts every element, though the table holds a few dozen event types.
//! [`CountsBeforeUnnest`] counts the rows per value of the columns the arrays are made from
//! first, then builds and expands one array per value and sums the counts:
//!
//! ```text
//! Aggregate [g], [count(*)]                 Projection (the same names and types)
//!   Projection (of the unnested columns)      Aggregate [g], [sum(rows)]
//!     Unnest                         ==>        Projection (…, rows)
//!       Projection (the arrays)                   Unnest
//!         input                                     Projection (the arrays, rows)
//!                                                     Aggregate [x], [count(*) AS rows]
//!                                                       input
//! ```
//!
//! The answer is the same for any input: each row of a value stands for `rows` identical rows.
//! It pays only when the columns `x` the arrays are made from have few distinct values, so it
//! applies only when every one of them is one the catalog bounds: the partition columns (`team`,
//! `dt`) and `event_type` when every file counts its event types. The aggregate above may
//! count rows only (`count(*)`, `count(1)`), and only arrays may pass the unnest.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{
    Aggregate, Expr, LogicalPlan, LogicalPlanBuilder, Projection, SubqueryAlias, cast, lit,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use eventlake_catalog::PartitionEntry;

/// The per-value row count's column.
const ROWS: &str = "__eventlake_rows_per_value";

#[derive(Debug)]
pub(crate) struct CountsBeforeUnnest {
    /// Columns with few distinct values, as the catalog bounds them.
    few_values: BTreeSet<&'static str>,
}

impl CountsBeforeUnnest {
    #[cfg(test)]
    fn with_columns(columns: &[&'static str]) -> Self {
        Self {
            few_values: columns.iter().copied().collect(),
        }
    }

    pub(crate) fn new(entries: &[PartitionEntry]) -> Self {
        let mut few_values: BTreeSet<&'static str> = ["team", "dt"].into();
        let types: BTreeSet<&str> = entries
            .iter()
            .flat_map(|e| &e.files)
            .flat_map(|f| f.event_types.keys().map(String::as_str))
            .collect();
        let counted = entries
            .iter()
            .flat_map(|e| &e.files)
            .all(|f| f.counts_every_type());
        if counted && types.len() <= crate::rules::few_groups::MAX_GROUPS as usize {
            few_values.insert("event_type");
        }
        Self { few_values }
    }
}

/// Whether `e` is `count(*)` / `count(<non-null literal>)`, plain.
fn counts_rows(e: &Expr) -> bool {
    let Expr::AggregateFunction(f) = e else {
        return false;
    };
    f.func.name() == "count"
        && !f.params.distinct
        && f.params.filter.is_none()
        && f.params.order_by.is_empty()
        && match f.params.args.as_slice() {
            [] => true,
            [Expr::Literal(v, _)] => !v.is_null(),
            _ => false,
        }
}

impl OptimizerRule for CountsBeforeUnnest {
    fn name(&self) -> &str {
        "counts_before_unnest"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match self.try_rewrite(&plan)? {
            Some(new) => Ok(Transformed::yes(new)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

impl CountsBeforeUnnest {
    fn try_rewrite(&self, plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
        let LogicalPlan::Aggregate(agg) = plan else {
            return Ok(None);
        };
        if agg.aggr_expr.is_empty() || !agg.aggr_expr.iter().all(counts_rows) {
            return Ok(None);
        }
        if !agg.group_expr.iter().all(|e| matches!(e, Expr::Column(_))) {
            return Ok(None);
        }
        // Aliases, the projection of the unnested columns, the unnest, the arrays' projection.
        let mut aliases: Vec<&SubqueryAlias> = Vec::new();
        let mut node = agg.input.as_ref();
        while let LogicalPlan::SubqueryAlias(a) = node {
            aliases.push(a);
            node = a.input.as_ref();
        }
        let LogicalPlan::Projection(above) = node else {
            return Ok(None);
        };
        let LogicalPlan::Unnest(unnest) = above.input.as_ref() else {
            return Ok(None);
        };
        let LogicalPlan::Projection(arrays) = unnest.input.as_ref() else {
            return Ok(None);
        };
        let input = arrays.input.as_ref();
        // The columns the arrays (and whatever else passes the unnest) are made from.
        let mut from: Vec<Column> = Vec::new();
        for e in &arrays.expr {
            for c in e.column_refs() {
                if !from.contains(c) {
                    from.push(c.clone());
                }
            }
        }
        if from.is_empty()
            || !from
                .iter()
                .all(|c| self.few_values.contains(c.name.as_str()))
        {
            return Ok(None);
        }
        // Only arrays pass the unnest: a column of the counts passed through it (`team` beside
        // the words) would be unique per row of the counts, and the unnest keeps that
        // functional dependency although each value repeats once per element; the optimizer
        // would then drop the keys `team` seems to determine (ORDER BY team, w).
        if arrays
            .expr
            .iter()
            .any(|e| matches!(e.clone().unalias(), Expr::Column(_)))
        {
            return Ok(None);
        }
        if input.schema().has_column_with_unqualified_name(ROWS) {
            return Ok(None);
        }

        let counted = LogicalPlanBuilder::from(input.clone())
            .aggregate(
                from.iter().cloned().map(Expr::Column),
                vec![count(lit(1i64)).alias(ROWS)],
            )?
            .build()?;
        let rows = || Expr::Column(Column::from_name(ROWS));
        let mut array_exprs = arrays.expr.clone();
        array_exprs.push(rows());
        let arrays = LogicalPlan::Projection(Projection::try_new(array_exprs, Arc::new(counted))?);
        let unnested = LogicalPlan::Unnest(unnest.clone()).with_new_exprs(vec![], vec![arrays])?;
        let mut above_exprs = above.expr.clone();
        above_exprs.push(rows());
        let mut below =
            LogicalPlan::Projection(Projection::try_new(above_exprs, Arc::new(unnested))?);
        for a in aliases.iter().rev() {
            below = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
                Arc::new(below),
                a.alias.clone(),
            )?);
        }
        let (qualifier, _) = below.schema().qualified_field_with_unqualified_name(ROWS)?;
        let rows_col = Expr::Column(Column::new(qualifier.cloned(), ROWS));
        let sums: Vec<Expr> = (0..agg.aggr_expr.len())
            .map(|i| sum(rows_col.clone()).alias(format!("{ROWS}_{i}")))
            .collect();
        let summed = LogicalPlan::Aggregate(Aggregate::try_new(
            Arc::new(below),
            agg.group_expr.clone(),
            sums,
        )?);
        // The original aggregate's names and types.
        let groups = agg.group_expr.len();
        let out: Vec<Expr> = agg
            .schema
            .iter()
            .enumerate()
            .map(|(i, (q, f))| {
                let (sq, sf) = summed.schema().qualified_field(i);
                let value = Expr::Column(Column::new(sq.cloned(), sf.name()));
                let value = if i < groups {
                    value
                } else {
                    // count(*) is never NULL; a sum over no rows would be, but a group has rows.
                    datafusion::functions::expr_fn::coalesce(vec![
                        cast(value, f.data_type().clone()),
                        Expr::Literal(ScalarValue::Int64(Some(0)), None),
                    ])
                };
                value.alias_qualified(q.cloned(), f.name())
            })
            .collect();
        Ok(Some(LogicalPlan::Projection(Projection::try_new(
            out,
            Arc::new(summed),
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::prelude::SessionContext;

    use super::{CountsBeforeUnnest, ROWS};
    use crate::rules::rows_and_plan;

    async fn answers(rule: bool, sql: &str) -> (String, String) {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(CountsBeforeUnnest::with_columns(&[
                "event_type",
                "team",
            ])));
        }
        // Repeated values, a NULL, an empty string and a value with an empty word.
        let table = "CREATE TABLE events (event_type VARCHAR, team VARCHAR, x VARCHAR) AS VALUES \
             ('page_view', 'a', 'u1'), ('page_view', 'a', 'u2'), ('add_to_cart', 'b', 'u3'), \
             ('page_view', 'b', 'u1'), (NULL, 'a', 'u4'), ('', 'b', 'u5'), ('checkout__done', 'a', 'u6'), \
             ('add_to_cart', 'a', NULL)";
        rows_and_plan(&ctx, &[table], sql).await
    }

    #[tokio::test]
    async fn element_counts_are_the_same_from_counted_values() {
        for (sql, rewritten) in [
            (
                "SELECT w, count(*) AS n FROM (SELECT unnest(string_to_array(event_type, '_')) AS w FROM events) GROUP BY w ORDER BY w NULLS FIRST",
                true,
            ),
            (
                "SELECT w, count(1) AS n, count(*) AS m FROM (SELECT unnest(string_to_array(team || '_' || event_type, '_')) AS w FROM events) s GROUP BY w ORDER BY w NULLS FIRST",
                true,
            ),
            (
                "SELECT team, w, count(1) AS n, count(*) AS m FROM (SELECT team, unnest(string_to_array(event_type, '_')) AS w FROM events) s GROUP BY team, w ORDER BY team, w NULLS FIRST",
                false,
            ),
            // The words of each team, ordered by both keys: the counts per team must not make
            // the team look like it determines the word.
            (
                "SELECT team, w, count(*) AS n FROM (SELECT team, unnest(string_to_array(team || '-x-y', '-')) AS w FROM events) s GROUP BY 1, 2 ORDER BY 1, 2 DESC",
                false,
            ),
            // x has many values: counting them first would not pay.
            (
                "SELECT w, count(*) AS n FROM (SELECT unnest(string_to_array(x, 'u')) AS w FROM events) GROUP BY w ORDER BY w NULLS FIRST",
                false,
            ),
            // count(w) skips NULL elements: not a row count.
            (
                "SELECT w, count(w) AS n FROM (SELECT unnest(string_to_array(event_type, '_')) AS w FROM events) GROUP BY w ORDER BY w NULLS FIRST",
                false,
            ),
        ] {
            let (with, plan) = answers(true, sql).await;
            let (without, _) = answers(false, sql).await;
            assert_eq!(with, without, "{sql}");
            assert_eq!(plan.contains(ROWS), rewritten, "{sql}\n{plan}");
            assert!(with.lines().count() > 5, "{with}");
        }
    }
}

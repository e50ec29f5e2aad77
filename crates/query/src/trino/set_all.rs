//! `INTERSECT ALL` and `EXCEPT ALL` as Athena reads them: a row that the left side has `m`
//! times and the right side `n` times is in `INTERSECT ALL` `min(m, n)` times and in
//! `EXCEPT ALL` `max(m - n, 0)` times. DataFusion plans them as a semi join (every one of the
//! `m` rows when `n > 0`) and an anti join (none of them when `n > 0`).
//!
//! [`SetOperationsAll`] numbers the copies of each row on both sides (`1..m`, `1..n`) and
//! joins on the row and its number: the left's copies numbered up to `n` have a match.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    Distinct, Expr, ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder,
};
use datafusion::optimizer::AnalyzerRule;

const LEFT_COPY: &str = "__left_copy";
const RIGHT_COPY: &str = "__right_copy";

/// The plan of `INTERSECT ALL` or `EXCEPT ALL`, numbered (see the module's text).
#[derive(Debug, Default)]
pub struct SetOperationsAll;

/// `plan` with a column `name` numbering the copies of each of its rows.
fn numbered(plan: LogicalPlan, name: &str) -> Result<(LogicalPlan, Vec<Column>)> {
    let columns = plan.schema().columns();
    let copy = row_number()
        .partition_by(columns.iter().cloned().map(Expr::Column).collect())
        .build()?
        .alias(name);
    let plan = LogicalPlanBuilder::from(plan).window(vec![copy])?.build()?;
    let mut keys = columns;
    keys.push(Column::from_name(name));
    Ok((plan, keys))
}

impl SetOperationsAll {
    fn rewrite(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        // As DataFusion plans `INTERSECT ALL` (a semi join) and `EXCEPT ALL` (an anti join) of
        // two queries: on every column, NULLs equal, nothing else. Without `ALL` the left side
        // is made distinct first, and a distinct left side gives the same rows either way.
        let set_operation = matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
            && join.null_equality == NullEquality::NullEqualsNull
            && join.filter.is_none()
            && join.on.len() == join.left.schema().fields().len()
            && join.on.len() == join.right.schema().fields().len();
        if !set_operation
            || matches!(join.left.as_ref(), LogicalPlan::Distinct(Distinct::All(_)))
            || join
                .left
                .schema()
                .fields()
                .iter()
                .any(|f| f.name() == LEFT_COPY)
        {
            return Ok(Transformed::no(plan));
        }
        let LogicalPlan::Join(join) = plan else {
            unreachable!("matched above")
        };
        let outputs: Vec<Expr> = join
            .left
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        let (left, left_keys) = numbered(Arc::unwrap_or_clone(join.left), LEFT_COPY)?;
        let (right, right_keys) = numbered(Arc::unwrap_or_clone(join.right), RIGHT_COPY)?;
        let plan = LogicalPlanBuilder::from(left)
            .join_detailed(
                right,
                join.join_type,
                (left_keys, right_keys),
                None,
                NullEquality::NullEqualsNull,
            )?
            .project(outputs)?
            .build()?;
        Ok(Transformed::yes(plan))
    }
}

impl AnalyzerRule for SetOperationsAll {
    fn name(&self) -> &str {
        "set_operations_all"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(Self::rewrite)
            .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    async fn counts(sql: &str) -> String {
        let sql = format!("SELECT x, count(*) AS n FROM ({sql}) GROUP BY x ORDER BY x NULLS FIRST");
        crate::trino::table_lines(&sql).await.unwrap().join("\n")
    }

    const LEFT: &str = "SELECT x FROM (VALUES 1, 1, 1, 2, 3, NULL, NULL) t(x)";
    const RIGHT: &str = "SELECT y FROM (VALUES 1, 1, 2, 2, 4, NULL) u(y)";

    #[tokio::test]
    async fn intersect_all_keeps_the_fewer_copies() {
        assert_eq!(
            counts(&format!("{LEFT} INTERSECT ALL {RIGHT}")).await,
            "| x | n |\n| | 1 |\n| 1 | 2 |\n| 2 | 1 |"
        );
        assert_eq!(
            counts(&format!("{LEFT} INTERSECT {RIGHT}")).await,
            "| x | n |\n| | 1 |\n| 1 | 1 |\n| 2 | 1 |"
        );
    }

    #[tokio::test]
    async fn except_all_takes_away_as_many_copies_as_the_right_side_has() {
        assert_eq!(
            counts(&format!("{LEFT} EXCEPT ALL {RIGHT}")).await,
            "| x | n |\n| | 1 |\n| 1 | 1 |\n| 3 | 1 |"
        );
        assert_eq!(
            counts(&format!("{LEFT} EXCEPT {RIGHT}")).await,
            "| x | n |\n| 3 | 1 |"
        );
    }
}

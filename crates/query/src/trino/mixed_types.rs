//! Text compared with a number, a date, a time or a boolean fails, as on Athena: Trino casts
//! varchar to none of them implicitly, so `schema_version = '1'` and `event_time > '2026-11-21'`
//! are refused there ("Cannot apply operator: integer = varchar(1)"), where DataFusion casts one
//! side and answers. A query tried locally would then fail once saved for Athena. Comparisons,
//! `BETWEEN`, `IN` lists, `CASE x WHEN`, the results of `CASE` and `coalesce`, the columns of a
//! `UNION` and the keys of a join are checked before DataFusion's type coercion, on the types
//! the query gives them.

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::logical_expr::expr::{Between, Case, InList, ScalarFunction};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

use super::trino_type;

#[derive(Debug, Default)]
pub struct MixedTypes;

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// A type Athena never casts text to on its own.
fn is_other_scalar(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => is_other_scalar(v),
        DataType::Boolean
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(..)
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Interval(_)
        | DataType::Duration(_)
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView => true,
        other => other.is_numeric(),
    }
}

/// Whether Athena refuses to put values of these two types side by side.
fn clash(a: &DataType, b: &DataType) -> bool {
    (is_text(a) && is_other_scalar(b)) || (is_other_scalar(a) && is_text(b))
}

fn hint() -> &'static str {
    "Athena casts text to nothing on its own; write CAST(x AS type), or a typed literal \
     (DATE '2026-11-20', TIMESTAMP '2026-11-20 10:00:00', 1 rather than '1')"
}

fn operator_error(a: &DataType, op: &str, b: &DataType) -> DataFusionError {
    DataFusionError::Plan(format!(
        "Cannot apply operator: {} {op} {}: {}",
        trino_type(a),
        trino_type(b),
        hint()
    ))
}

fn common_error(what: &str, a: &DataType, b: &DataType) -> DataFusionError {
    DataFusionError::Plan(format!(
        "{what} must be of one type, and {} and {} have none in common: {}",
        trino_type(a),
        trino_type(b),
        hint()
    ))
}

/// The first pair of clashing types among `exprs`.
fn first_clash(exprs: &[&Expr], schema: &DFSchema) -> Option<(DataType, DataType)> {
    let types: Vec<DataType> = exprs
        .iter()
        .filter_map(|e| e.get_type(schema).ok())
        .collect();
    for (i, a) in types.iter().enumerate() {
        if let Some(b) = types[i + 1..].iter().find(|b| clash(a, b)) {
            return Some((a.clone(), b.clone()));
        }
    }
    None
}

fn check(e: &Expr, schema: &DFSchema) -> Result<()> {
    let ty = |e: &Expr| e.get_type(schema).ok();
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(
                op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::IsDistinctFrom
                    | Operator::IsNotDistinctFrom
            ) =>
        {
            if let (Some(l), Some(r)) = (ty(left), ty(right))
                && clash(&l, &r)
            {
                return Err(operator_error(&l, &op.to_string(), &r));
            }
        }
        Expr::Between(Between {
            expr, low, high, ..
        }) => {
            if let Some(x) = ty(expr) {
                for bound in [low, high] {
                    if let Some(b) = ty(bound)
                        && clash(&x, &b)
                    {
                        return Err(operator_error(&x, "BETWEEN", &b));
                    }
                }
            }
        }
        Expr::InList(InList { expr, list, .. }) => {
            if let Some(x) = ty(expr) {
                for item in list {
                    if let Some(i) = ty(item)
                        && clash(&x, &i)
                    {
                        return Err(operator_error(&x, "IN", &i));
                    }
                }
            }
        }
        Expr::Case(Case {
            expr,
            when_then_expr,
            else_expr,
        }) => {
            if let Some(operand) = expr {
                let mut whens: Vec<&Expr> = vec![operand];
                whens.extend(when_then_expr.iter().map(|(w, _)| w.as_ref()));
                if let Some((a, b)) = first_clash(&whens, schema) {
                    return Err(operator_error(&a, "=", &b));
                }
            }
            let mut results: Vec<&Expr> = when_then_expr.iter().map(|(_, t)| t.as_ref()).collect();
            results.extend(else_expr.iter().map(|e| e.as_ref()));
            if let Some((a, b)) = first_clash(&results, schema) {
                return Err(common_error("The results of a CASE", &a, &b));
            }
        }
        Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == "coalesce" => {
            let args: Vec<&Expr> = args.iter().collect();
            if let Some((a, b)) = first_clash(&args, schema) {
                return Err(common_error("The arguments of coalesce", &a, &b));
            }
        }
        _ => {}
    }
    Ok(())
}

/// What a node asks of its inputs' types: the columns of a `UNION` (and `INTERSECT`, `EXCEPT`)
/// side by side, and the key pairs of a join (`USING`).
fn check_node(p: &LogicalPlan) -> Result<()> {
    match p {
        LogicalPlan::Union(u) => {
            let width = u.schema.fields().len();
            for i in 0..width {
                let types: Vec<&DataType> = u
                    .inputs
                    .iter()
                    .filter_map(|input| input.schema().fields().get(i).map(|f| f.data_type()))
                    .collect();
                for (j, a) in types.iter().enumerate() {
                    if let Some(b) = types[j + 1..].iter().find(|b| clash(a, b)) {
                        return Err(common_error(
                            &format!("Column {} of a set operation", i + 1),
                            a,
                            b,
                        ));
                    }
                }
            }
        }
        LogicalPlan::Join(j) => {
            for (l, r) in &j.on {
                if let (Ok(a), Ok(b)) = (l.get_type(j.left.schema()), r.get_type(j.right.schema()))
                    && clash(&a, &b)
                {
                    return Err(operator_error(&a, "=", &b));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The columns the expressions of `p` read: its inputs' (both sides of a join).
fn input_schema(p: &LogicalPlan) -> DFSchema {
    let mut schema = DFSchema::empty();
    for input in p.inputs() {
        schema.merge(input.schema());
    }
    schema
}

impl AnalyzerRule for MixedTypes {
    fn name(&self) -> &str {
        "athena_mixed_types"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let mut failed = None;
        plan.apply_with_subqueries(|p| {
            if let Err(e) = check_node(p) {
                failed = Some(e);
                return Ok(TreeNodeRecursion::Stop);
            }
            if p.inputs().is_empty() {
                return Ok(TreeNodeRecursion::Continue);
            }
            let schema = input_schema(p);
            p.apply_expressions(|e| {
                e.apply(|sub| match check(sub, &schema) {
                    Ok(()) => Ok(TreeNodeRecursion::Continue),
                    Err(err) => {
                        failed = Some(err);
                        Ok(TreeNodeRecursion::Stop)
                    }
                })
            })
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(plan),
        }
    }
}

#[cfg(test)]
mod tests {
    async fn error(sql: &str) -> Option<String> {
        let ctx = crate::session::functions_session().unwrap();
        crate::session::run_sql(&ctx, sql)
            .await
            .err()
            .map(|e| e.to_string())
    }

    #[tokio::test]
    async fn text_beside_another_type_fails_as_on_athena() {
        for sql in [
            "SELECT x = '1' FROM (VALUES 1) AS t(x)",
            "SELECT '1' < x FROM (VALUES 1) AS t(x)",
            "SELECT x FROM (VALUES 1) AS t(x) WHERE x IN (1, '2')",
            "SELECT x FROM (VALUES 1) AS t(x) WHERE x BETWEEN '0' AND 2",
            "SELECT DATE '2026-11-20' = '2026-11-20'",
            "SELECT TIMESTAMP '2026-11-20 10:00:00' > '2026-11-20'",
            "SELECT CASE WHEN true THEN 1 ELSE 'a' END",
            "SELECT CASE x WHEN 'a' THEN 1 END FROM (VALUES 1) AS t(x)",
            "SELECT coalesce(x, 'none') FROM (VALUES 1) AS t(x)",
            "SELECT count(*) FROM (VALUES 1) AS t(x) WHERE EXISTS (SELECT 1 FROM (VALUES 'a') AS u(y) WHERE y = x)",
            "SELECT 1 UNION ALL SELECT 'a'",
            "SELECT x, 'b' FROM (VALUES 1) AS t(x) UNION SELECT 2, 3",
            "SELECT 1 EXCEPT SELECT 'a'",
            "SELECT * FROM (VALUES 1) AS t(k) JOIN (VALUES 'a') AS u(k) USING (k)",
            "SELECT * FROM (VALUES 1) AS t(k) JOIN (VALUES 'a') AS u(j) ON t.k = u.j",
        ] {
            let e = error(sql).await;
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("Athena casts text to nothing")),
                "{sql}: {e:?}"
            );
        }
        let e = error("SELECT x = '1' FROM (VALUES 1) AS t(x)")
            .await
            .unwrap();
        // Said as Athena says it, without the name of the rule that found it.
        assert!(
            e.starts_with("query: Error during planning: Cannot apply operator: bigint = varchar"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn same_kinds_and_nulls_pass() {
        for sql in [
            "SELECT x = 1, x = 1.5, x = CAST(1 AS double), x IN (1, 2), x BETWEEN 0 AND 2 FROM (VALUES 1) AS t(x)",
            "SELECT y = 'a', y IN ('a', 'b'), y = NULL, y > CAST(NULL AS varchar) FROM (VALUES 'a') AS t(y)",
            "SELECT DATE '2026-11-20' = DATE '2026-11-20', DATE '2026-11-20' < TIMESTAMP '2026-11-20 10:00:00'",
            "SELECT CASE WHEN true THEN 1 ELSE NULL END, CASE WHEN true THEN 1 ELSE 2.5 END, coalesce(NULL, 'a')",
            "SELECT CASE y WHEN 'a' THEN 'x' ELSE 'y' END, if(y = 'a', 1, 0) FROM (VALUES 'a') AS t(y)",
            "SELECT CAST(x AS varchar) = '1', x = CAST('1' AS bigint) FROM (VALUES 1) AS t(x)",
            "SELECT 1 UNION ALL SELECT 2.5 UNION ALL SELECT NULL",
            "SELECT 'a', NULL UNION ALL SELECT NULL, 1",
            "SELECT * FROM (VALUES 1) AS t(k) JOIN (VALUES 2) AS u(k) USING (k)",
        ] {
            assert_eq!(error(sql).await, None, "{sql}");
        }
    }
}

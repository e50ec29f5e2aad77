//! A test that fails on some rows, guarded by the test before it, as Athena evaluates `AND`
//! and `OR`: from left to right, the right side only where the left does not decide.
//!
//! `WHERE total > 0 AND purchases / total > 0.5` and `count_if(n <> 0 AND 100 / n > 5)` are
//! how a query keeps a division away from a zero. DataFusion evaluates both sides of an `AND`
//! over the whole batch (unless few rows pass the left side), and may reorder a filter's
//! conjuncts, so the division by zero failed the query.
//!
//! [`GuardedConjuncts`] rewrites a planned filter whose conjunct can fail on a row (an integer
//! or decimal division or remainder by something other than a constant, a cast of text to
//! another type) as `<the conjuncts before it> AND CASE WHEN <those again> THEN <it and those
//! after> END` (the first ones still prune a scan's row groups), once partition pruning has
//! read the conjuncts apart; [`ShortCircuitGuards`] rewrites, inside an
//! expression, `a AND b` as
//! `CASE WHEN NOT a THEN false ELSE a AND b END`, `a OR b` as `CASE WHEN a THEN true ELSE a OR b
//! END`, when `b` can fail. A `CASE` evaluates each branch only on the rows that reach it. (The
//! tests are written as numbers compared with 1 inside those `CASE`s, see [`as_int`].)
//! Where the left side is NULL, the right side is still evaluated, as on Athena.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::{conjunction, merge_schema, split_conjunction};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Filter, LogicalPlan, Operator, cast, lit, when,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::expressions::{self as phys, CastExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// See the module's text.
#[derive(Debug, Default)]
pub struct ShortCircuitGuards;

/// Whether evaluating `e` can fail on a row: an integer or decimal `/` or `%` by anything but a
/// constant other than 0, or a cast of text to a type that is not text.
fn can_fail(e: &Expr, schema: &DFSchema) -> bool {
    let mut fails = false;
    let _ = e.apply(|x| {
        fails |= match x {
            Expr::BinaryExpr(BinaryExpr {
                op: Operator::Divide | Operator::Modulo,
                right,
                ..
            }) => {
                let constant = match right.as_ref() {
                    Expr::Literal(v, _) => Some(v),
                    _ => None,
                };
                division_can_fail(constant, right.get_type(schema))
            }
            Expr::Cast(c) => cast_can_fail(c.expr.get_type(schema), c.field.data_type()),
            _ => false,
        };
        Ok(if fails {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    fails
}

/// Whether `e` can be evaluated twice, or inside a `CASE`, with the same result: no random
/// function, no subquery (which the planner reads only outside a `CASE`).
fn repeatable(e: &Expr) -> bool {
    !e.is_volatile()
        && !e
            .exists(|x| {
                Ok(matches!(
                    x,
                    Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_)
                ))
            })
            .unwrap_or(true)
}

/// A test as 1, 0 or NULL. A `CASE` of tests would be read as `AND`s and `OR`s of its parts
/// (which evaluates every part on every row); one of numbers compared with 1 is not.
fn as_int(test: Expr) -> Expr {
    cast(test, DataType::Int8)
}

/// Whether a `/` or `%` can fail on a row: its divisor (`constant`, when it is one) is an
/// integer or a decimal (a double divided by 0 is an infinity) and not a constant other than 0.
fn division_can_fail(constant: Option<&ScalarValue>, divisor: Result<DataType>) -> bool {
    let nonzero = |v: &ScalarValue| {
        !v.is_null()
            && !v
                .cast_to(&DataType::Float64)
                .is_ok_and(|f| matches!(f, ScalarValue::Float64(Some(x)) if x == 0.0))
    };
    !constant.is_some_and(nonzero)
        && divisor
            .is_ok_and(|t| t.is_integer() || matches!(t, DataType::Decimal128(..) | DataType::Null))
}

/// Whether a cast of a value of type `from` to `to` can fail on a row: text to another type.
fn cast_can_fail(from: Result<DataType>, to: &DataType) -> bool {
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8);
    from.is_ok_and(|t| is_text(&t)) && !is_text(to)
}

impl ShortCircuitGuards {
    /// `a AND b` and `a OR b` inside `e`, guarded where `b` can fail.
    fn guard_logic(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        e.transform_up(|x| match x {
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if matches!(op, Operator::And | Operator::Or)
                    && can_fail(&right, schema)
                    && repeatable(&left)
                    && repeatable(&right) =>
            {
                let a = *left;
                let both = Expr::BinaryExpr(BinaryExpr::new(Box::new(a.clone()), op, right));
                let guarded = match op {
                    Operator::And => {
                        when(Expr::Not(Box::new(a)), lit(0i8)).otherwise(as_int(both))?
                    }
                    _ => when(a, lit(1i8)).otherwise(as_int(both))?,
                };
                Ok(Transformed::yes(guarded.eq(lit(1i8))))
            }
            x => Ok(Transformed::no(x)),
        })
    }

    /// A filter's predicate: each conjunct guarded inside. Its conjuncts themselves are
    /// guarded once planned ([`GuardedConjuncts`]), after the planner has read them apart
    /// (partition pruning, pushdown into scans).
    fn guard_filter(predicate: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let conjuncts: Vec<Expr> = split_conjunction(&predicate).into_iter().cloned().collect();
        let mut changed = false;
        let mut out = Vec::with_capacity(conjuncts.len());
        for c in conjuncts {
            let inner = Self::guard_logic(c, schema)?;
            changed |= inner.transformed;
            out.push(inner.data);
        }
        if !changed {
            return Ok(Transformed::no(predicate));
        }
        Ok(Transformed::yes(conjunction(out).expect("one at least")))
    }
}

impl AnalyzerRule for ShortCircuitGuards {
    fn name(&self) -> &str {
        "short_circuit_guards"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = merge_schema(&plan.inputs());
            if plan.inputs().is_empty() {
                schema.merge(plan.schema());
            }
            if let LogicalPlan::Filter(Filter {
                predicate, input, ..
            }) = plan
            {
                return Self::guard_filter(predicate, &schema)?
                    .map_data(|p| Filter::try_new(p, input).map(LogicalPlan::Filter));
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                Self::guard_logic(expr, &schema).map(|t| t.update_data(|e| name.restore(e)))
            })?
            .map_data(|plan| plan.recompute_schema())
        })
        .map(|t| t.data)
    }
}

/// Whether evaluating the planned `e` can fail on a row (see [`can_fail`]; a fused cast of a JSON
/// value fails as the cast does).
fn can_fail_planned(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    let mut fails = false;
    let _ = e.apply(|x| {
        fails |= if let Some(b) = x.downcast_ref::<phys::BinaryExpr>() {
            matches!(b.op(), Operator::Divide | Operator::Modulo)
                && division_can_fail(
                    b.right().downcast_ref::<Literal>().map(Literal::value),
                    b.right().data_type(schema),
                )
        } else if let Some(c) = x.downcast_ref::<CastExpr>() {
            cast_can_fail(c.expr().data_type(schema), c.cast_type())
        } else if let Some(f) = x.downcast_ref::<ScalarFunctionExpr>() {
            f.name().starts_with("json_extract_scalar_as")
        } else {
            false
        };
        Ok(if fails {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    fails
}

/// Whether the planned `e` gives the same result when evaluated on fewer rows: no random
/// function.
fn repeatable_planned(e: &Arc<dyn PhysicalExpr>) -> bool {
    let mut volatile = false;
    let _ = e.apply(|x| {
        volatile |= x.downcast_ref::<ScalarFunctionExpr>().is_some_and(|f| {
            f.fun().signature().volatility == datafusion::logical_expr::Volatility::Volatile
        });
        Ok(TreeNodeRecursion::Continue)
    });
    !volatile
}

/// `conjuncts` joined by `AND`, each that can fail evaluated only where those before it hold.
fn guarded(
    conjuncts: &[Arc<dyn PhysicalExpr>],
    schema: &Schema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let and = |cs: &[Arc<dyn PhysicalExpr>]| datafusion::physical_expr::conjunction(cs.to_vec());
    let Some(at) = (1..conjuncts.len()).find(|&i| can_fail_planned(&conjuncts[i], schema)) else {
        return Ok(None);
    };
    if !conjuncts[..at].iter().all(repeatable_planned) {
        return Ok(None);
    }
    let rest = match guarded(&conjuncts[at..], schema)? {
        Some(rest) => rest,
        None => and(&conjuncts[at..]),
    };
    let then = phys::cast(rest, schema, DataType::Int8)?;
    let before = and(&conjuncts[..at]);
    let case = phys::case(None, vec![(Arc::clone(&before), then)], None)?;
    let one: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(ScalarValue::Int8(Some(1))));
    let guarded = phys::binary(case, Operator::Eq, one, schema)?;
    // The conjuncts before stay outside too: a scan prunes row groups and pages with them.
    Ok(Some(Arc::new(phys::BinaryExpr::new(
        before,
        Operator::And,
        guarded,
    ))))
}

/// Each filter whose conjunct can fail on a row evaluates it only on the rows the conjuncts
/// before it keep (see the module's text).
#[derive(Debug, Default)]
pub struct GuardedConjuncts;

impl PhysicalOptimizerRule for GuardedConjuncts {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let conjuncts: Vec<Arc<dyn PhysicalExpr>> =
                datafusion::physical_expr::split_conjunction(filter.predicate())
                    .into_iter()
                    .cloned()
                    .collect();
            let Some(predicate) = guarded(&conjuncts, &schema)? else {
                return Ok(Transformed::no(node));
            };
            let new = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "guarded_conjuncts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    /// The rows of `sql` without the header, or the error's text.
    async fn rows(sql: &str) -> std::result::Result<String, String> {
        crate::trino::table_lines(sql)
            .await
            .map(|lines| lines[1..].join("\n"))
    }

    const T: &str = "(VALUES (0, '7'), (5, 'x'), (2, '4'), (NULL, '1')) t(n, s)";

    #[tokio::test]
    async fn a_division_by_zero_the_test_before_it_excludes_does_not_fail() {
        for (sql, expected) in [
            (
                format!("SELECT n FROM {T} WHERE n <> 0 AND 10 / n > 2 ORDER BY n"),
                "| 2 |",
            ),
            (
                format!("SELECT n FROM {T} WHERE n > 1 AND s <> 'x' AND CAST(s AS integer) > 3"),
                "| 2 |",
            ),
            (
                format!("SELECT count_if(n <> 0 AND 10 / n > 2) AS c FROM {T}"),
                "| 1 |",
            ),
            (
                format!("SELECT n = 0 OR 10 / n > 2 AS b FROM {T} ORDER BY n NULLS LAST"),
                "| true |\n| true |\n| false |\n| |",
            ),
            (
                format!(
                    "SELECT n, sum(n) AS total FROM {T} GROUP BY n \
                     HAVING sum(n) > 0 AND 10 / sum(n) >= 2 ORDER BY n"
                ),
                "| 2 | 2 |\n| 5 | 5 |",
            ),
        ] {
            assert_eq!(rows(&sql).await.as_deref(), Ok(expected), "{sql}");
        }
    }

    #[tokio::test]
    async fn subqueries_stay_outside_the_guards() {
        let sql = format!(
            "SELECT n FROM {T} WHERE n IN (SELECT 2 UNION ALL SELECT 0) AND 10 / n > 2 \
             AND s <> 'x'"
        );
        // Planned, the IN outside the guard: the division may then fail on the row 0.
        match rows(&sql).await {
            Ok(r) => assert_eq!(r, "| 2 |"),
            Err(e) => assert!(e.contains("by zero"), "{e}"),
        }
        let sql = format!(
            "SELECT n FROM {T} WHERE n <> 0 AND n IN (SELECT 2 UNION ALL SELECT 0) \
             AND 10 / n > 2"
        );
        assert_eq!(rows(&sql).await.as_deref(), Ok("| 2 |"));
    }

    #[tokio::test]
    async fn a_row_the_test_before_does_not_exclude_still_fails() {
        let sql = format!("SELECT n FROM {T} WHERE n >= 0 AND 10 / n > 2");
        let error = rows(&sql).await.expect_err("a division by zero");
        assert!(
            error.contains("Divide by zero") || error.contains("Division by zero"),
            "{error}"
        );
    }
}

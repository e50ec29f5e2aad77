//! Calls whose Athena form the planner reads otherwise, renamed in the SQL before planning:
//!
//! - `array_sort(x, (a, b) -> …)`: DataFusion's `array_sort` is a scalar function, which cannot
//!   take a lambda, so the call goes to the higher-order [`SORT_WITH`]; `array_sort(x)` gets
//!   Athena's NULLs last (`array_sort(x, 'ASC', 'NULLS LAST')`).
//! - `listagg(x[, separator]) WITHIN GROUP (ORDER BY …)`: DataFusion's
//!   `string_agg(x, separator ORDER BY …)`, the separator `''` when none is given.
//!
//! A query without these names is left exactly as written.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments, Ident,
    ObjectName, Value, visit_expressions_mut,
};
use datafusion::sql::sqlparser::parser::Parser;

use crate::trino::dialect::AthenaDialect;
use crate::trino::lambda::SORT_WITH;

fn named(f: &Function, name: &str) -> bool {
    f.name.0.len() == 1
        && f.name.0[0]
            .as_ident()
            .is_some_and(|i| i.value.eq_ignore_ascii_case(name))
}

fn text(s: &str) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(
        Value::SingleQuotedString(s.to_string()).into(),
    )))
}

/// The call rewritten; false when it is not one of the forms above.
fn rewrite_call(f: &mut Function) -> bool {
    if named(f, "array_sort")
        && let FunctionArguments::List(list) = &mut f.args
    {
        let lambda = matches!(
            list.args.get(1),
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(_))))
        );
        if lambda {
            f.name = ObjectName::from(vec![Ident::new(SORT_WITH)]);
            return true;
        }
        if list.args.len() == 1 {
            list.args.extend([text("ASC"), text("NULLS LAST")]);
            return true;
        }
        return false;
    }
    if named(f, "listagg")
        && !f.within_group.is_empty()
        && let FunctionArguments::List(list) = &mut f.args
        && (1..=2).contains(&list.args.len())
    {
        if list.args.len() == 1 {
            list.args.push(text(""));
        }
        list.clauses
            .push(FunctionArgumentClause::OrderBy(std::mem::take(
                &mut f.within_group,
            )));
        f.name = ObjectName::from(vec![Ident::new("string_agg")]);
        return true;
    }
    false
}

/// `sql` with the calls above rewritten.
pub fn rewrite(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("array_sort") && !lower.contains("listagg") {
        return sql.to_string();
    }
    let Ok(mut statements) = Parser::parse_sql(&AthenaDialect, sql) else {
        return sql.to_string();
    };
    let mut changed = false;
    let _ = visit_expressions_mut(&mut statements, |e| {
        if let Expr::Function(f) = e {
            changed |= rewrite_call(f);
        }
        ControlFlow::<()>::Continue(())
    });
    if !changed {
        return sql.to_string();
    }
    statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";\n")
}

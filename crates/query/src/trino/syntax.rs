//! Calls whose Athena form the planner reads otherwise, renamed in the SQL before planning:
//!
//! - `array_sort(x, (a, b) -> …)`: DataFusion's `array_sort` is a scalar function, which cannot
//!   take a lambda, so the call goes to the higher-order [`SORT_WITH`]; `array_sort(x)` gets
//!   Athena's NULLs last (`array_sort(x, 'ASC', 'NULLS LAST')`).
//! - `regexp_replace(s, pattern, g -> …)`: the higher-order [`REPLACE_WITH`], for the same
//!   reason.
//! - `listagg(x[, separator]) WITHIN GROUP (ORDER BY …)`: DataFusion's
//!   `string_agg(x, separator ORDER BY …)`, the separator `''` when none is given.
//! - `map()`: the empty map, `map(ARRAY[], ARRAY[])` (DataFusion's `map` needs arguments).
//! - `geometric_mean(x)`: `exp(avg(ln(x)))`, its `FILTER` and `OVER` kept on the `avg`.
//! - `normalize(s, NFD)`: the normal form's keyword as a string, `normalize(s, 'NFD')`.
//! - `min(x, n)`, `max(x, n)`: `min_by(x, x, n)`, `max_by(x, x, n)`.
//! - `approx_distinct(x, e)`: `approx_distinct(x)` when `e` is a standard error Athena takes.
//! - `reduce_agg(x, init, f, combine)`: `reduce` over `array_agg` of the rows Athena reads.
//! - `map_zip_with(m1, m2, (k, v1, v2) -> e)`: `map_from_entries` over the keys of both maps.
//! - `U&'…'` strings: plain strings of the characters they name.
//! - `t AT TIME ZONE 'zone'`: `at_timezone(t, 'zone')`.
//! - `trim(LEADING FROM s)` (and `TRAILING`, `BOTH`): `ltrim(s)` (`rtrim`, `trim`).
//! - `(expr).field` and, in a lambda, `param.field`: `…['field']`, a row's field.
//! - `s LIKE p`: a backslash in `p` is a character as any other, as in Athena, where
//!   DataFusion reads it as an escape (`'a\b' LIKE 'a\b'` was false); `s LIKE p ESCAPE '!'`
//!   with a constant `p` is written with DataFusion's one escape character, the backslash.
//!
//! A query without these names is left exactly as written.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, Ident, ObjectName, OneOrManyWithParens, Subscript, Value, ValueWithSpan,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::parser::Parser;

use crate::trino::dialect::AthenaDialect;
use crate::trino::lambda::{REPLACE_WITH, SORT_WITH};

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

/// An expression written in SQL, parsed as Athena's.
fn expr(sql: &str) -> Option<Expr> {
    Parser::new(&AthenaDialect)
        .try_with_sql(sql)
        .ok()?
        .parse_expr()
        .ok()
}

/// The plain arguments of a call, when it has only such.
fn plain_args(f: &Function) -> Option<Vec<&Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// `reduce_agg(x, init, f, combine)`: `reduce` over the group's values. Athena skips a row whose
/// value or initial state is NULL, gives NULL for a group without other rows, and merges partial
/// states with `combine`, which only matters for how it splits the work.
fn reduce_agg(f: &Function) -> Option<Expr> {
    let [x, init, input, _combine] = plain_args(f)?[..] else {
        return None;
    };
    if f.over.is_some() || !f.within_group.is_empty() {
        return None;
    }
    let keep = match &f.filter {
        Some(c) => format!("({c}) AND ({x}) IS NOT NULL AND ({init}) IS NOT NULL"),
        None => format!("({x}) IS NOT NULL AND ({init}) IS NOT NULL"),
    };
    expr(&format!(
        "reduce(array_agg({x}) FILTER (WHERE {keep}), {init}, {input}, s -> s)"
    ))
}

/// `map_zip_with(m1, m2, (k, v1, v2) -> e)`: a map over the keys of `m1`, then those only in
/// `m2`, each with `e` of its key and its values in both maps (NULL where it has none); NULL
/// when either map is NULL.
fn map_zip_with(f: &Function) -> Option<Expr> {
    let [m1, m2, Expr::Lambda(lambda)] = plain_args(f)?[..] else {
        return None;
    };
    let datafusion::sql::sqlparser::ast::OneOrManyWithParens::Many(params) = &lambda.params else {
        return None;
    };
    let [k, v1, v2] = &params[..] else {
        return None;
    };
    let (k, v1, v2) = (&k.name, &v1.name, &v2.name);
    let mut body = (*lambda.body).clone();
    let value_of = |m: &Expr| expr(&format!("element_at({m}, {k})"));
    let (in1, in2) = (value_of(m1)?, value_of(m2)?);
    let _ = visit_expressions_mut(&mut body, |e| {
        if let Expr::Identifier(i) = e {
            if i.value == v1.value {
                *e = in1.clone();
            } else if i.value == v2.value {
                *e = in2.clone();
            }
        }
        ControlFlow::<()>::Continue(())
    });
    expr(&format!(
        "if(({m1}) IS NULL OR ({m2}) IS NULL, NULL, \
         map_from_entries(transform(concat(map_keys({m1}), \
         filter(map_keys({m2}), {k} -> NOT contains(map_keys({m1}), {k}))), {k} -> ROW({k}, {body}))))"
    ))
}

/// The call rewritten; false when it is not one of the forms above.
fn rewrite_call(f: &mut Function) -> bool {
    // `min(x, n)` and `max(x, n)`: the `n` smallest (largest) values, as `min_by(x, x, n)`.
    for (name, by) in [("min", "min_by"), ("max", "max_by")] {
        if named(f, name)
            && let FunctionArguments::List(list) = &mut f.args
            && list.args.len() == 2
            && list.duplicate_treatment.is_none()
        {
            let x = list.args[0].clone();
            list.args.insert(1, x);
            f.name = ObjectName::from(vec![Ident::new(by)]);
            return true;
        }
    }
    // `approx_distinct(x, e)`: `e` is the standard error Athena aims at, within
    // [0.0040625, 0.26]; the local sketch has one precision (a standard error of about 0.8 %).
    if named(f, "approx_distinct")
        && let FunctionArguments::List(list) = &mut f.args
        && list.args.len() == 2
        && let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) = &list.args[1]
        && let Value::Number(e, _) = &v.value
        && e.parse::<f64>()
            .is_ok_and(|e| (0.0040625..=0.26).contains(&e))
    {
        list.args.truncate(1);
        return true;
    }
    if named(f, "reduce_agg")
        && let Some(Expr::Function(g)) = reduce_agg(f)
    {
        *f = g;
        return true;
    }
    if named(f, "map_zip_with")
        && let Some(Expr::Function(g)) = map_zip_with(f)
    {
        *f = g;
        return true;
    }
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
    if named(f, "regexp_replace")
        && let FunctionArguments::List(list) = &f.args
        && matches!(
            list.args.get(2),
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Lambda(_))))
        )
    {
        f.name = ObjectName::from(vec![Ident::new(REPLACE_WITH)]);
        return true;
    }
    // `normalize(s, NFD)`: the form is a keyword in Athena, a string for the function here.
    if named(f, "normalize")
        && let FunctionArguments::List(list) = &mut f.args
        && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(form)))) =
            list.args.get(1)
        && ["NFC", "NFD", "NFKC", "NFKD"]
            .iter()
            .any(|f| form.value.eq_ignore_ascii_case(f))
    {
        let form = form.value.to_ascii_uppercase();
        list.args[1] = text(&form);
        return true;
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
    if named(f, "map")
        && let FunctionArguments::List(list) = &f.args
        && list.args.is_empty()
    {
        let empty = || {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Array(
                datafusion::sql::sqlparser::ast::Array {
                    elem: vec![],
                    named: true,
                },
            )))
        };
        f.args = FunctionArguments::List(datafusion::sql::sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![empty(), empty()],
            clauses: vec![],
        });
        return true;
    }
    if named(f, "geometric_mean")
        && let FunctionArguments::List(list) = &mut f.args
        && list.args.len() == 1
        && let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = &list.args[0]
    {
        let call = |name: &str, arg: Expr| {
            Expr::Function(Function {
                name: ObjectName::from(vec![Ident::new(name)]),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(
                    datafusion::sql::sqlparser::ast::FunctionArgumentList {
                        duplicate_treatment: None,
                        args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
                        clauses: vec![],
                    },
                ),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            })
        };
        let mut avg = call("avg", call("ln", x.clone()));
        if let Expr::Function(a) = &mut avg {
            a.filter = f.filter.take();
            a.over = f.over.take();
        }
        *f = match call("exp", avg) {
            Expr::Function(e) => e,
            _ => unreachable!("a call"),
        };
        return true;
    }
    false
}

/// `trim(LEADING FROM s)`, `trim(TRAILING FROM s)`, `trim(BOTH FROM s)` (no characters named:
/// whitespace), which the SQL parser does not read, as `ltrim(s)`, `rtrim(s)`, `trim(s)`; None
/// when `sql` has none.
fn trim_side(sql: &str) -> Option<String> {
    static SIDE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\btrim\s*\(\s*(leading|trailing|both)\s+from\s")
            .expect("a valid pattern")
    });
    if !SIDE.is_match(sql) {
        return None;
    }
    Some(
        SIDE.replace_all(sql, |c: &regex::Captures| {
            match c[1].to_ascii_lowercase().as_str() {
                "leading" => "ltrim(",
                "trailing" => "rtrim(",
                _ => "trim(",
            }
            .to_string()
        })
        .into_owned(),
    )
}

/// `['field']`, the subscript that reads a row's field (its name as written when quoted, in
/// lower case otherwise, as the planner folds identifiers).
fn field_subscript(id: &Ident) -> AccessExpr {
    let name = if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_lowercase()
    };
    AccessExpr::Subscript(Subscript::Index {
        index: Expr::Value(Value::SingleQuotedString(name).into()),
    })
}

/// `sql` with the calls above rewritten.
pub fn rewrite(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    if ![
        "array_sort",
        "listagg",
        "map",
        "geometric_mean",
        "regexp_replace",
        "normalize",
        "min",
        "max",
        "approx_distinct",
        "reduce_agg",
        "map_zip_with",
        "u&'",
        "time zone",
        "trim",
        "->",
        ").",
        "like",
    ]
    .iter()
    .any(|n| lower.contains(n))
    {
        return sql.to_string();
    }
    let trimmed = trim_side(sql);
    let sql = trimmed.as_deref().unwrap_or(sql);
    let Ok(mut statements) = Parser::parse_sql(&AthenaDialect, sql) else {
        return sql.to_string();
    };
    let mut changed = false;
    let _ = visit_expressions_mut(&mut statements, |e| {
        match e {
            Expr::Function(f) => changed |= rewrite_call(f),
            // `t AT TIME ZONE 'zone'`: Athena's `at_timezone(t, 'zone')`, which keeps `t`'s
            // precision (DataFusion's cast makes it nanoseconds).
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } if matches!(
                time_zone.as_ref(),
                Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))
            ) =>
            {
                if let Some(call) = expr(&format!("at_timezone({timestamp}, {time_zone})")) {
                    *e = call;
                    changed = true;
                }
            }
            Expr::Like {
                pattern,
                escape_char,
                any: false,
                ..
            } => changed |= athena_like(pattern, escape_char),
            // `(expr).field`: DataFusion reads a dot after an expression only as `['field']`.
            Expr::CompoundFieldAccess { access_chain, .. } => {
                for a in access_chain.iter_mut() {
                    if let AccessExpr::Dot(Expr::Identifier(id)) = a {
                        *a = field_subscript(id);
                        changed = true;
                    }
                }
            }
            // `s -> s.field`: a lambda's parameter is no table, so `s.field` is the parameter's
            // field.
            Expr::Lambda(l) => {
                let params: Vec<String> = match &l.params {
                    OneOrManyWithParens::One(p) => vec![p.name.value.to_lowercase()],
                    OneOrManyWithParens::Many(ps) => {
                        ps.iter().map(|p| p.name.value.to_lowercase()).collect()
                    }
                };
                let _ = visit_expressions_mut(&mut *l.body, |b| {
                    if let Expr::CompoundIdentifier(parts) = b
                        && parts.len() >= 2
                        && params.contains(&parts[0].value.to_lowercase())
                    {
                        *b = Expr::CompoundFieldAccess {
                            root: Box::new(Expr::Identifier(parts[0].clone())),
                            access_chain: parts[1..].iter().map(field_subscript).collect(),
                        };
                        changed = true;
                    }
                    ControlFlow::<()>::Continue(())
                });
            }
            // `U&'\00E9'`: the parser has decoded it; the planner takes only plain strings.
            Expr::Value(v) => {
                if let Value::UnicodeStringLiteral(text) = &v.value {
                    v.value = Value::SingleQuotedString(text.clone());
                    changed = true;
                }
            }
            _ => {}
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

/// A `LIKE`'s pattern as DataFusion reads Athena's: whose only escape character is the
/// backslash, where Athena has none but the one `ESCAPE` names. Whether it changed.
fn athena_like(pattern: &mut Box<Expr>, escape: &mut Option<ValueWithSpan>) -> bool {
    let escape_with = match escape.as_ref().map(|v| &v.value) {
        None => None,
        Some(Value::SingleQuotedString(e)) if e.chars().count() == 1 => e.chars().next(),
        Some(_) => return false,
    };
    if escape_with == Some('\\') {
        return false;
    }
    let Expr::Value(v) = pattern.as_mut() else {
        // A pattern computed per row: its backslashes doubled as it is computed.
        if escape_with.is_some() {
            return false;
        }
        let Some(doubled) = expr(&format!("replace({pattern}, '\\', '\\\\')")) else {
            return false;
        };
        **pattern = doubled;
        return true;
    };
    let Value::SingleQuotedString(p) = &v.value else {
        return false;
    };
    let mut out = String::with_capacity(p.len() + 4);
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape_with {
            // Athena's escape takes `%`, `_` or itself; the next character is literal.
            match chars.next() {
                Some(n @ ('%' | '_')) => {
                    out.push('\\');
                    out.push(n);
                }
                Some('\\') => out.push_str("\\\\"),
                Some(n) => out.push(n),
                None => return false,
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    if out == *p && escape_with.is_none() {
        return false;
    }
    v.value = Value::SingleQuotedString(out);
    *escape = None;
    true
}

#[cfg(test)]
mod tests {
    use crate::trino::csv_rows;

    #[tokio::test]
    async fn a_like_patterns_backslash_is_a_character_and_any_escape_is_read() {
        let rows = csv_rows(
            "SELECT 'a\\b' LIKE 'a\\b', 'a\\x' LIKE 'a\\%', 'a%' LIKE 'a\\%', \
             'a%' LIKE 'a!%' ESCAPE '!', 'ab' LIKE 'a!%' ESCAPE '!', 'a!' LIKE 'a!!' ESCAPE '!', \
             'a\\' LIKE 'a\\%' ESCAPE '!', 'a%' LIKE 'a\\%' ESCAPE '\\'",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["true,true,false,true,false,true,true,true"]);
        let rows = csv_rows(
            "SELECT s LIKE p FROM (VALUES ('a\\b', 'a\\_'), ('ab', 'a\\_'), ('a_', 'a_')) \
             AS t(s, p)",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["true", "false", "true"]);
    }

    #[tokio::test]
    async fn geometric_mean_keeps_its_filter_and_window() {
        let rows = csv_rows(
            "SELECT g, round(geometric_mean(x), 6), round(geometric_mean(x) FILTER (WHERE x > 1), 6) \
             FROM (VALUES ('a', 1), ('a', 4), ('b', 2), ('b', 8), ('b', 4)) AS t(g, x) \
             GROUP BY g ORDER BY g",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["a,2.0,4.0", "b,4.0,4.0"]);
        let rows = csv_rows(
            "SELECT x, round(geometric_mean(x) OVER (PARTITION BY g), 6) \
             FROM (VALUES ('a', 1), ('a', 4)) AS t(g, x) ORDER BY x",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["1,2.0", "4,2.0"]);
    }
}

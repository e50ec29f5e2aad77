//! What a parsed query says that DataFusion's planner reads otherwise, settled on the syntax
//! tree before planning:
//!
//! - **Output names.** Athena names a select item that is neither a column nor aliased by its
//!   place, `_col0`, `_col1`, … (`SELECT team, count(*)` gives `team` and `_col1`). DataFusion
//!   names it by its text, and a cast by the column it casts, so `SELECT CAST(dt AS date), dt`
//!   failed to plan (two outputs named `dt`). Such items get Athena's name as an alias, in every
//!   `SELECT` of the query, up to the first `*` (past it the place is not known before planning,
//!   and DataFusion's names stay). Under `SELECT DISTINCT`, an ORDER BY key written as an
//!   output's expression (`ORDER BY lower(team)`) is read as that output, which DataFusion
//!   refused ("ORDER BY expressions must appear in select list").
//! - **`TABLESAMPLE BERNOULLI (p)`** (and `SYSTEM`): the planner ignored it and read every row.
//!   The table becomes `(SELECT * FROM t WHERE random() < p / 100) AS <its alias or name>`: each
//!   row kept with probability `p` percent, as Bernoulli sampling does (`SYSTEM` samples by
//!   rows too, which Athena's definition, splits chosen at random, allows). A percentage outside
//!   0 to 100, or a sample Athena has no syntax for, is an error.
//! - **Decimal literals.** `1.5` is Athena's `decimal(2,1)`, which DataFusion reads as a double:
//!   it becomes `CAST('1.5' AS DECIMAL(2,1))`, so `n * 100.0 / total` has Athena's type and
//!   scale (one digit after the point, rounded; see `decimals.rs` for a decimal beside a
//!   double). `1e0` stays a double.
//! - **`FETCH FIRST n ROWS ONLY`**, which DataFusion refused: `LIMIT n`; **`GROUP BY ()`**,
//!   which it refused too: no keys.
//! - **`x = ANY (q)`** is `x IN (q)` and `x <> ALL (q)` is `x NOT IN (q)`; other comparisons
//!   with `ANY`/`ALL` read `q` under an alias of its own ([`set_comparison`]); `(a, b) IN (q)`
//!   is an `EXISTS` ([`row_in`]).
//! - **`x IN (q)` and `EXISTS (q)` in a select list**, which DataFusion plans only as filters:
//!   counts of `q`'s rows, scalar subqueries it joins ([`test_as_value`]); in a group key or an
//!   aggregate's argument over one table, computed per row first ([`tests_before_grouping`]).
//! - **Outputs of one name** (`SELECT team, team`, `SELECT *, team`), which DataFusion refused:
//!   named apart for planning, then given back their names ([`outputs_named_apart`]).
//! - **Intervals of a range of fields** (`INTERVAL '1-2' YEAR TO MONTH`, `INTERVAL '2 03:04:05'
//!   DAY TO SECOND`), which DataFusion refused: the same length in months or seconds
//!   ([`interval_range`]).
//! - **`lag(x, n, d)` and `lead(x, n, d)` with a default that reads the row**, which DataFusion
//!   refused: a `CASE` on whether the row `n` away exists ([`shift_with_row_default`]).
//! - **`DISTINCT` in a window function** (`count(DISTINCT x) OVER (…)`), which DataFusion plans
//!   and Athena refuses: refused here too, with Athena's message ([`distinct_window`]).
//!
//! And, on the text before it is parsed ([`values_rows`]): `VALUES 1, 2` (rows of one column,
//! unparenthesized, as Athena takes them) becomes `VALUES (1), (2)`, which the parser reads.

use std::ops::ControlFlow;

use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Fetch, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, LimitClause, OrderBy, OrderByExpr, OrderByKind, Query, Select, SelectItem, SetExpr,
    Statement, TableAlias, TableFactor, TableSampleKind, TableSampleMethod, TableSampleUnit,
    UnaryOperator, Value, VisitMut, VisitorMut, visit_expressions, visit_expressions_mut,
    visit_statements_mut,
};
use datafusion::sql::sqlparser::parser::Parser;

use crate::trino::dialect::AthenaDialect;

/// `sql`'s tokens, each with the text it was read from (a token printed again loses what its
/// text escaped: `'It''s'` would print as `'It's'`). `None` when `sql` does not tokenize.
fn tokens_with_text(
    sql: &str,
) -> Option<Vec<(datafusion::sql::sqlparser::tokenizer::Token, &str)>> {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;
    let tokens = Tokenizer::new(&AthenaDialect, sql)
        .tokenize_with_location()
        .ok()?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    // A location (1-based line, and column in characters) as a byte offset.
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let skip = usize::try_from(column).ok()?.checked_sub(1)?;
        match sql[start..].char_indices().nth(skip) {
            Some((i, _)) => Some(start + i),
            None => Some(sql.len()),
        }
    };
    let starts: Vec<usize> = tokens
        .iter()
        .map(|t| offset(t.span.start.line, t.span.start.column))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.into_iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(sql.len());
        out.push((t.token, sql.get(starts[i]..end)?));
    }
    Some(out)
}

/// `VALUES a, b` as `VALUES (a), (b)`; any other text as written.
pub fn values_rows(sql: &str) -> String {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::Token;
    if !sql.to_ascii_lowercase().contains("values") {
        return sql.to_string();
    }
    let Some(read) = tokens_with_text(sql) else {
        return sql.to_string();
    };
    let tokens: Vec<&Token> = read.iter().map(|(t, _)| t).collect();
    let ends_rows = |t: &Token| match t {
        Token::SemiColon | Token::RParen => true,
        Token::Word(w) => {
            matches!(
                w.keyword,
                Keyword::AS
                    | Keyword::ORDER
                    | Keyword::LIMIT
                    | Keyword::OFFSET
                    | Keyword::FETCH
                    | Keyword::UNION
                    | Keyword::EXCEPT
                    | Keyword::INTERSECT
            ) && w.quote_style.is_none()
        }
        _ => false,
    };
    let mut out = String::with_capacity(sql.len() + 16);
    let mut changed = false;
    // Inside bare rows: the parentheses' and brackets' depth within the current row.
    let mut rows: Option<usize> = None;
    // A row's `(` goes before its first token.
    let mut open = false;
    // The current row got a `(` of ours (a `ROW(…)` row is a row already).
    let mut opened = false;
    let next_word = |i: usize| {
        tokens[i + 1..]
            .iter()
            .find(|x| !matches!(x, Token::Whitespace(_)))
            .copied()
    };
    for (i, &t) in tokens.iter().enumerate() {
        if let Some(depth) = rows.as_mut() {
            if open && !matches!(t, Token::Whitespace(_)) && !(*depth == 0 && ends_rows(t)) {
                open = false;
                let row_constructor = matches!(t, Token::Word(w)
                    if w.keyword == Keyword::ROW && w.quote_style.is_none())
                    && next_word(i) == Some(&Token::LParen);
                if row_constructor {
                    opened = false;
                    continue;
                }
                out.push('(');
                opened = true;
            }
            match t {
                Token::Comma if *depth == 0 => {
                    out.push_str(if opened { ")," } else { "," });
                    open = true;
                    continue;
                }
                t if *depth == 0 && ends_rows(t) => {
                    if opened {
                        out.push(')');
                    }
                    rows = None;
                }
                Token::LParen | Token::LBracket => *depth += 1,
                Token::RParen | Token::RBracket => *depth -= 1,
                _ => {}
            }
        }
        out.push_str(read[i].1);
        if let Token::Word(w) = t
            && w.keyword == Keyword::VALUES
            && w.quote_style.is_none()
            && rows.is_none()
        {
            let next = next_word(i);
            if next.is_some_and(|n| *n != Token::LParen && !ends_rows(n)) {
                rows = Some(0);
                open = true;
                changed = true;
            }
        }
    }
    if rows.is_some() && opened {
        out.push(')');
    }
    if changed { out } else { sql.to_string() }
}

/// `sql` with its quoted identifiers in lower case (`"Team"` is `team`): Athena matches a name
/// whatever its case, quoted or not, where DataFusion matches a quoted one exactly. `None` when
/// no quoted identifier has an upper-case letter.
pub fn quoted_names_folded(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::tokenizer::Token;
    if !sql.contains('"') {
        return None;
    }
    let mut changed = false;
    let text: String = tokens_with_text(sql)?
        .into_iter()
        .map(|(t, text)| match t {
            Token::Word(w)
                if w.quote_style == Some('"') && w.value.chars().any(char::is_uppercase) =>
            {
                changed = true;
                std::borrow::Cow::Owned(text.to_lowercase())
            }
            _ => std::borrow::Cow::Borrowed(text),
        })
        .collect();
    changed.then_some(text)
}

/// The names of the outputs of `statement`'s outermost `SELECT` as the text writes them: an
/// item's alias, or the column it names (`"Team"`, `e.User_Id`), in the case written, which is
/// the name Athena gives the output; an unnamed item's `_colN`. A `*` over derived tables or
/// `WITH` queries (`SELECT * FROM (SELECT team AS "T") AS s`, joined ones too) stands for
/// their names.
/// `None` at a place whose name is the planner's (a column of a `*` over a table). `plan_width`
/// is the number of outputs planned, from which the width of one `*` over a table follows.
/// Empty when the places are not known.
pub fn written_names(statement: &Statement, plan_width: usize) -> Vec<Option<String>> {
    let Statement::Query(q) = statement else {
        return vec![];
    };
    let Some(items) = query_names(q, &[], true) else {
        return vec![];
    };
    let tables = items.iter().filter(|i| matches!(i, Output::Table)).count();
    let known = items.len() - tables;
    if tables > 1 || (tables == 0 && known != plan_width) || known > plan_width {
        return vec![];
    }
    let mut names = Vec::with_capacity(plan_width);
    for item in items {
        match item {
            Output::Name(n) => names.push(Some(n)),
            Output::Planner => names.push(None),
            Output::Table => names.extend(std::iter::repeat_n(None, plan_width - known)),
            Output::Unnamed => names.push(Some(format!("_col{}", names.len()))),
        }
    }
    names
}

/// What names an output of a query, for [`written_names`].
enum Output {
    /// The name written.
    Name(String),
    /// The planner's name.
    Planner,
    /// An unnamed item past a `*` of the outermost `SELECT`: `_col` and its place.
    Unnamed,
    /// A `*` over a table: its columns, under the planner's names.
    Table,
}

/// The outputs of `q`, which sees the `WITH` queries `outer` (innermost last).
fn query_names<'a>(
    q: &'a Query,
    outer: &[&'a datafusion::sql::sqlparser::ast::Cte],
    outermost: bool,
) -> Option<Vec<Output>> {
    let mut ctes = outer.to_vec();
    let mut body = q.body.as_ref();
    if let Some(with) = &q.with {
        ctes.extend(with.cte_tables.iter());
    }
    let select = loop {
        match body {
            SetExpr::Select(s) => break s,
            SetExpr::SetOperation { left, .. } => body = left,
            SetExpr::Query(q) => return query_names(q, &ctes, outermost),
            _ => return None,
        }
    };
    let mut names = Vec::with_capacity(select.projection.len());
    let mut past_star = false;
    for (place, item) in select.projection.iter().enumerate() {
        match item {
            SelectItem::ExprWithAlias { alias, .. } => {
                names.push(Output::Name(alias.value.clone()))
            }
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => {
                names.push(Output::Name(i.value.clone()))
            }
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(ids)) => names.push(
                ids.last()
                    .map_or(Output::Planner, |i| Output::Name(i.value.clone())),
            ),
            SelectItem::UnnamedExpr(e) if named_by_itself(e) => names.push(Output::Planner),
            // Named by its place up to the first `*` (see `name_select`).
            SelectItem::UnnamedExpr(_) if !past_star => {
                names.push(Output::Name(format!("_col{place}")))
            }
            SelectItem::UnnamedExpr(_) if outermost => names.push(Output::Unnamed),
            SelectItem::UnnamedExpr(_) => names.push(Output::Planner),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                past_star = true;
                let qualifier = match item {
                    SelectItem::QualifiedWildcard(
                        datafusion::sql::sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(
                            n,
                        ),
                        _,
                    ) => match n.0.last().and_then(|p| p.as_ident()) {
                        Some(i) => Some(i.value.as_str()),
                        None => return None,
                    },
                    SelectItem::QualifiedWildcard(..) => return None,
                    _ => None,
                };
                match wildcard_names(select, &ctes, qualifier) {
                    Some(inner) => names.extend(inner),
                    None if outermost => names.push(Output::Table),
                    None => return None,
                }
            }
            _ => return None,
        }
    }
    Some(names)
}

/// The constraint of an inner, outer or cross join (`ON`, `USING`, `NATURAL` or none); `None`
/// for the other kinds of join (semi, anti, `APPLY`, …), which Athena's SQL lacks.
pub(crate) fn join_constraint(
    op: &datafusion::sql::sqlparser::ast::JoinOperator,
) -> Option<&datafusion::sql::sqlparser::ast::JoinConstraint> {
    use datafusion::sql::sqlparser::ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c) => Some(c),
        _ => None,
    }
}

/// The names a `*` of `select` stands for (`qualifier.*`: those of the relation so named), when
/// every relation it reads is a derived table or a `WITH` query, joined on conditions (`USING`
/// and `NATURAL` merge columns, which is left to the planner).
fn wildcard_names<'a>(
    select: &'a Select,
    ctes: &[&'a datafusion::sql::sqlparser::ast::Cte],
    qualifier: Option<&str>,
) -> Option<Vec<Output>> {
    use datafusion::sql::sqlparser::ast::JoinConstraint;
    let [from] = select.from.as_slice() else {
        return None;
    };
    let mut relations = vec![&from.relation];
    for join in &from.joins {
        let constraint = join_constraint(&join.join_operator)?;
        if !matches!(constraint, JoinConstraint::On(_) | JoinConstraint::None) {
            return None;
        }
        relations.push(&join.relation);
    }
    let mut names = Vec::new();
    for relation in relations {
        let (own_name, outputs) = relation_names(relation, ctes)?;
        match qualifier {
            Some(q) if own_name.eq_ignore_ascii_case(q) => return Some(outputs),
            Some(_) => {}
            None => names.extend(outputs),
        }
    }
    qualifier.is_none().then_some(names)
}

/// The name a relation of a `FROM` goes by and the names of its outputs, when it is a derived
/// table or a `WITH` query without a list of column names.
fn relation_names<'a>(
    relation: &'a TableFactor,
    ctes: &[&'a datafusion::sql::sqlparser::ast::Cte],
) -> Option<(String, Vec<Output>)> {
    match relation {
        TableFactor::Derived {
            subquery, alias, ..
        } if alias.as_ref().is_none_or(|a| a.columns.is_empty()) => {
            let own = alias
                .as_ref()
                .map_or(String::new(), |a| a.name.value.clone());
            Some((own, query_names(subquery, ctes, false)?))
        }
        TableFactor::Table { name, alias, .. }
            if alias.as_ref().is_none_or(|a| a.columns.is_empty()) =>
        {
            let [part] = name.0.as_slice() else {
                return None;
            };
            let written = &part.as_ident()?.value;
            let at = ctes
                .iter()
                .rposition(|c| c.alias.name.value.eq_ignore_ascii_case(written))?;
            let cte = ctes[at];
            if !cte.alias.columns.is_empty() {
                return None;
            }
            let own = alias
                .as_ref()
                .map_or(written.clone(), |a| a.name.value.clone());
            Some((own, query_names(&cte.query, &ctes[..at], false)?))
        }
        _ => None,
    }
}

/// `sql` read as one expression in Athena's dialect; `None` when it does not read as one.
fn expression(sql: &str) -> Option<Expr> {
    Parser::new(&AthenaDialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// Rewrites `statement` in place (see the module's text).
pub fn athena_select(statement: &mut Statement) -> Result<(), DataFusionError> {
    let mut v = Rewriter;
    if let ControlFlow::Break(e) = statement.visit(&mut v) {
        return Err(e);
    }
    // After the samples are read: their percentages are plain numbers.
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Value(v) = e
            && let Value::Number(n, _) = &v.value
            && let Some(d) = decimal_literal(n)
        {
            *e = d;
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

/// When the query's outputs share a name (`SELECT team, team`, `SELECT *, team`,
/// `SELECT a AS x, b AS x`), which Athena allows and DataFusion's planner refuses ("Projections
/// require unique expression names"): each item of the outermost `SELECT` that may share its
/// name (one named like another, or any named item beside a `*`) is given a name of its own,
/// `__output_<place>`, and an ORDER BY key naming one of those aliases follows it (one that
/// names two stays ambiguous, and is refused). Returns those names, each with the one Athena
/// shows, for the plan's outputs to take back once planned; `None` when no item was renamed.
pub fn outputs_named_apart(statement: &mut Statement) -> Option<Vec<(String, String)>> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let shown = planner_name;
    fn column(e: &Expr) -> Option<&Ident> {
        match e {
            Expr::Identifier(i) => Some(i),
            Expr::CompoundIdentifier(parts) => parts.last(),
            Expr::Nested(inner) => column(inner),
            _ => None,
        }
    }
    let names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => column(e).map(shown),
            SelectItem::ExprWithAlias { alias, .. } => Some(shown(alias)),
            _ => None,
        })
        .collect();
    let wildcard = select.projection.iter().any(|item| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    let mut renamed = Vec::new();
    let mut aliases = Vec::new();
    for (place, (item, name)) in select.projection.iter_mut().zip(&names).enumerate() {
        let Some(name) = name else { continue };
        if !wildcard && names.iter().filter(|n| n.as_ref() == Some(name)).count() < 2 {
            continue;
        }
        let own = format!("__output_{place}");
        let expr = match item {
            SelectItem::UnnamedExpr(e) => e.clone(),
            SelectItem::ExprWithAlias { expr, .. } => {
                aliases.push((name.clone(), own.clone()));
                expr.clone()
            }
            _ => continue,
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::new(&own),
        };
        renamed.push((own, name.clone()));
    }
    if let Some(OrderBy {
        kind: OrderByKind::Expressions(keys),
        ..
    }) = &mut query.order_by
    {
        for key in keys {
            if let Expr::Identifier(i) = &key.expr
                && let [(_, own)] = aliases
                    .iter()
                    .filter(|(n, _)| *n == shown(i))
                    .collect::<Vec<_>>()[..]
            {
                key.expr = Expr::Identifier(Ident::new(own));
            }
        }
    }
    (!renamed.is_empty()).then_some(renamed)
}

/// Aggregates over a cast (`min(CAST(event_time AS date))` beside `min(event_time)`), which
/// DataFusion names alike (a cast is not part of an expression's name) and then refuses ("Schema
/// contains duplicate unqualified field name"): each gets a filter that keeps every row,
/// `FILTER (WHERE n = n)`, whose `n` tells it apart. Group keys that are casts (`GROUP BY
/// CAST(t AS date), CAST(t AS varchar)`, or `NULL` beside `CAST(NULL AS varchar)`), named alike
/// the same way, become `CASE WHEN n = n THEN <cast> END`, the same `n` for the same text
/// wherever the query writes it ([`cast_keys_named_apart`]). Whether one was changed.
pub fn casts_named_apart(statement: &mut Statement) -> bool {
    let mut keys = 0;
    let _ = visit_statements_mut(statement, |s| {
        if let Statement::Query(q) = s {
            cast_keys_named_apart(q, &mut keys);
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Subquery(q)
        | Expr::Exists { subquery: q, .. }
        | Expr::InSubquery { subquery: q, .. } = e
        {
            cast_keys_named_apart(q, &mut keys);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut n = 0;
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Function(f) = e
            && f.over.is_none()
            && f.filter.is_none()
            && AGGREGATES.contains(&f.name.to_string().to_lowercase().as_str())
            && let FunctionArguments::List(list) = &f.args
            && visit_expressions(&list.args, |x| match x {
                Expr::Cast { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .is_break()
        {
            n += 1;
            f.filter = expression(&format!("{n} = {n}")).map(Box::new);
        }
        ControlFlow::<()>::Continue(())
    });
    n > 0 || keys > 0
}

/// In `query` and the queries it is made of (`WITH`, `FROM (…)`, set operations): each `SELECT`
/// with `GROUP BY` keys whose keys include casts (written, or an output's by its place) has
/// each such cast, wherever the select, its `HAVING` or the query's `ORDER BY` writes it, as
/// `CASE WHEN n = n THEN <cast> END` (`n` counted on from `*count`, one per text): the same
/// value, named apart from another cast of the same operand.
fn cast_keys_named_apart(query: &mut Query, count: &mut usize) {
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            cast_keys_named_apart(&mut cte.query, count);
        }
    }
    let mut texts: Vec<String> = Vec::new();
    cast_keys_in(&mut query.body, count, &mut texts);
    // An ORDER BY over a single grouped select reads its keys as written there.
    if texts.is_empty() || !matches!(query.body.as_ref(), SetExpr::Select(_)) {
        return;
    }
    if let Some(OrderBy {
        kind: OrderByKind::Expressions(keys),
        ..
    }) = &mut query.order_by
    {
        for k in keys {
            wrap_casts(&mut k.expr, &texts, *count - texts.len());
        }
    }
}

/// [`cast_keys_named_apart`] on a query's body; `texts` gets the casts wrapped in the body's
/// own select (the first of them numbered `*count - texts.len() + 1`).
fn cast_keys_in(body: &mut SetExpr, count: &mut usize, texts: &mut Vec<String>) {
    match body {
        SetExpr::Query(q) => cast_keys_named_apart(q, count),
        SetExpr::SetOperation { left, right, .. } => {
            cast_keys_in(left, count, &mut Vec::new());
            cast_keys_in(right, count, &mut Vec::new());
        }
        SetExpr::Select(select) => {
            for t in &mut select.from {
                for factor in std::iter::once(&mut t.relation)
                    .chain(t.joins.iter_mut().map(|j| &mut j.relation))
                {
                    if let TableFactor::Derived { subquery, .. } = factor {
                        cast_keys_named_apart(subquery, count);
                    }
                }
            }
            let GroupByExpr::Expressions(keys, _) = &select.group_by else {
                return;
            };
            let is_cast = |e: &Expr| matches!(e, Expr::Cast { .. });
            let mut found: Vec<String> = Vec::new();
            for k in keys {
                let key = match k {
                    Expr::Value(v) => match &v.value {
                        Value::Number(n, _) => n
                            .parse::<usize>()
                            .ok()
                            .and_then(|n| n.checked_sub(1))
                            .and_then(|i| select.projection.get(i))
                            .and_then(|item| match item {
                                SelectItem::UnnamedExpr(e)
                                | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                                _ => None,
                            }),
                        _ => None,
                    },
                    other => Some(other),
                };
                if let Some(key) = key
                    && is_cast(key)
                    && !found.contains(&key.to_string())
                {
                    found.push(key.to_string());
                }
            }
            if found.is_empty() {
                return;
            }
            let first = *count;
            *count += found.len();
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    wrap_casts(e, &found, first);
                }
            }
            if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
                for k in keys {
                    wrap_casts(k, &found, first);
                }
            }
            if let Some(h) = &mut select.having {
                wrap_casts(h, &found, first);
            }
            *texts = found;
        }
        _ => {}
    }
}

/// Each cast in `e` whose text is the i-th of `texts` as `CASE WHEN n = n THEN <cast> END`,
/// `n` being `first + i + 1`.
fn wrap_casts(e: &mut Expr, texts: &[String], first: usize) {
    let _ = visit_expressions_mut(e, |x| {
        if matches!(x, Expr::Cast { .. })
            && let Some(i) = texts.iter().position(|t| *t == x.to_string())
        {
            let n = first + i + 1;
            if let Some(wrapped) = expression(&format!("CASE WHEN {n} = {n} THEN {x} END")) {
                *x = wrapped;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A name as the planner reads it: as quoted, or in lower case when unquoted.
pub(crate) fn planner_name(i: &Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    }
}

/// `1.5` as Athena reads it: a decimal of its own digits, `decimal(2,1)` (DataFusion reads a
/// double). A number with an exponent (`1e0`) stays a double, an integer an integer.
fn decimal_literal(n: &str) -> Option<Expr> {
    if !n.contains('.') || n.contains(['e', 'E']) {
        return None;
    }
    let (p, s) = crate::trino::json_types::decimal_type(n)?;
    expression(&format!("CAST('{n}' AS DECIMAL({p},{s}))"))
}

struct Rewriter;

/// Each `SELECT *` of `body` over joins `USING` columns lists those columns first (see
/// `trino/using.rs`).
fn using_columns_first(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            crate::trino::using::derived_tables_named(s);
            crate::trino::using::using_columns_first(s);
        }
        SetExpr::SetOperation { left, right, .. } => {
            using_columns_first(left);
            using_columns_first(right);
        }
        _ => {}
    }
}

impl VisitorMut for Rewriter {
    type Break = DataFusionError;

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<Self::Break> {
        using_columns_first(&mut query.body);
        name_items(&mut query.body);
        if let SetExpr::Select(s) = query.body.as_mut() {
            tests_before_grouping(s);
        }
        tests_as_values(&mut query.body);
        empty_grouping(&mut query.body);
        fetch_with_ties(query);
        fetch_as_limit(query);
        if let SetExpr::Select(s) = query.body.as_ref()
            && s.distinct.is_some()
            && let Some(OrderBy {
                kind: OrderByKind::Expressions(keys),
                ..
            }) = &mut query.order_by
        {
            order_by_outputs(s, keys);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Self::Break> {
        if let Some(e) = distinct_window(expr) {
            return ControlFlow::Break(e);
        }
        if let Some(e) = set_comparison(expr) {
            *expr = e;
        }
        if let Some(e) = varchar_of_length(expr) {
            *expr = e;
        }
        if let Some(e) = shift_with_row_default(expr) {
            *expr = e;
        }
        if let Expr::Interval(i) = expr {
            match interval_range(i) {
                Ok(Some(e)) => *expr = e,
                Ok(None) => {}
                Err(e) => return ControlFlow::Break(e),
            }
        }
        if let Expr::InSubquery {
            expr: row,
            subquery,
            negated,
        } = expr
            && let Expr::Tuple(values) = row.as_ref()
            && let Some(e) = row_in(values, subquery, *negated)
        {
            *expr = e;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Self::Break> {
        match sampled(factor) {
            Ok(Some(derived)) => {
                *factor = derived;
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

/// The error for a window function over distinct values (`count(DISTINCT x) OVER (…)`,
/// `sum(DISTINCT x) OVER w`), which Athena refuses before it reads a row: a query that runs
/// here would fail there. `None` for any other expression.
fn distinct_window(e: &Expr) -> Option<DataFusionError> {
    use datafusion::sql::sqlparser::ast::DuplicateTreatment;
    let Expr::Function(f) = e else {
        return None;
    };
    f.over.as_ref()?;
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    (list.duplicate_treatment == Some(DuplicateTreatment::Distinct)).then(|| {
        DataFusionError::Plan(format!(
            "DISTINCT in window function parameters not yet supported: {f}"
        ))
    })
}

/// A comparison with a subquery's rows (`x = ANY (q)`, `x > ALL (q)`) as DataFusion answers it
/// right: `= ANY` (`= SOME`) is `IN` and `<> ALL` is `NOT IN`, by definition and with the same
/// NULLs, and they plan as joins; any other keeps its form, with `q` read under an alias of its
/// own. DataFusion's rewrite of these comparisons lost the comparison when `q` read the same
/// table as the outer query (`user_id = ANY (SELECT user_id FROM events …)` kept every row).
/// `None` when `e` is no such comparison.
fn set_comparison(e: &Expr) -> Option<Expr> {
    let (left, op, right, all) = match e {
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        } => (left, compare_op, right, false),
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => (left, compare_op, right, true),
        _ => return None,
    };
    let Expr::Subquery(q) = right.as_ref() else {
        return None;
    };
    if matches!(
        (op, all),
        (BinaryOperator::Eq, false) | (BinaryOperator::NotEq, true)
    ) {
        return Some(Expr::InSubquery {
            expr: left.clone(),
            subquery: q.clone(),
            negated: all,
        });
    }
    let apart = Parser::new(&AthenaDialect)
        .try_with_sql(&format!("SELECT * FROM ({q}) AS __compared"))
        .and_then(|mut p| p.parse_query())
        .ok()?;
    let right = Box::new(Expr::Subquery(apart));
    Some(match e {
        Expr::AnyOp { is_some, .. } => Expr::AnyOp {
            left: left.clone(),
            compare_op: op.clone(),
            right,
            is_some: *is_some,
        },
        _ => Expr::AllOp {
            left: left.clone(),
            compare_op: op.clone(),
            right,
        },
    })
}

/// `CAST(x AS VARCHAR(n))`, whose length the planner drops, as `varchar_cast(CAST(x AS
/// VARCHAR), n, x)`: text cut to `n` characters, another value's text refused when longer (see
/// `conditional.rs`); `TRY_CAST` gives NULL for it. `None` for any other expression.
fn varchar_of_length(e: &Expr) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{CastKind, CharacterLength, DataType as SqlType};
    let Expr::Cast {
        kind,
        expr,
        data_type: SqlType::Varchar(Some(CharacterLength::IntegerLength { length, .. })),
        format: None,
        array: false,
    } = e
    else {
        return None;
    };
    let cast = format!("varchar_cast(CAST({expr} AS VARCHAR), {length}, {expr})");
    let sql = match kind {
        CastKind::TryCast | CastKind::SafeCast => format!("try({cast})"),
        CastKind::Cast | CastKind::DoubleColon => cast,
    };
    expression(&sql)
}

/// `lag(x, n, d)` and `lead(x, n, d)` whose default `d` reads the row (`lag(event_time, 1,
/// event_time)`), which DataFusion refuses ("only support Literal types"): `x` of the row `n`
/// before (after) when there is one, else `d`, told apart by whether `lag(1, n)` over the same
/// window finds a row. `None` for any other expression.
fn shift_with_row_default(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else {
        return None;
    };
    let name = f.name.0.last()?.as_ident()?.value.to_lowercase();
    if !matches!(name.as_str(), "lag" | "lead")
        || f.null_treatment.is_some()
        || f.filter.is_some()
        || !f.within_group.is_empty()
    {
        return None;
    }
    let over = f.over.as_ref()?;
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    let args: Vec<&Expr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let [x, n, d] = args.as_slice() else {
        return None;
    };
    let reads_row = visit_expressions(*d, |e| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break();
    if !reads_row {
        return None;
    }
    expression(&format!(
        "CASE WHEN {name}(1, {n}) OVER {over} IS NOT NULL THEN {name}({x}, {n}) OVER {over} \
         ELSE {d} END"
    ))
}

/// An interval of a range of fields (`INTERVAL '1-2' YEAR TO MONTH`, `INTERVAL '2 03:04:05'
/// DAY TO SECOND`), which DataFusion refuses, as the same length in its last field's kind:
/// months (`INTERVAL '14' MONTH`) or seconds (`INTERVAL '183845' SECOND`). `None` for any other
/// interval; an error for a text that does not match its fields.
fn interval_range(
    i: &datafusion::sql::sqlparser::ast::Interval,
) -> Result<Option<Expr>, DataFusionError> {
    use datafusion::sql::sqlparser::ast::DateTimeField as F;
    let (Some(first), Some(last)) = (&i.leading_field, &i.last_field) else {
        return Ok(None);
    };
    let Expr::Value(v) = i.value.as_ref() else {
        return Ok(None);
    };
    let Value::SingleQuotedString(text) = &v.value else {
        return Ok(None);
    };
    let bad = || {
        DataFusionError::Plan(format!(
            "Invalid INTERVAL {first} TO {last} value: '{text}'"
        ))
    };
    let (negative, body) = match text.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.trim().trim_start_matches('+')),
    };
    let sign = if negative { "-" } else { "" };
    let number = |s: &str| -> Result<u64, DataFusionError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let sql = match (first, last) {
        (F::Year, F::Month) => {
            let (y, m) = body.split_once('-').ok_or_else(bad)?;
            let (y, m) = (number(y)?, number(m)?);
            let months = y
                .checked_mul(12)
                .and_then(|y| y.checked_add(m))
                .ok_or_else(bad)?;
            format!("INTERVAL '{sign}{months}' MONTH")
        }
        (F::Day | F::Hour | F::Minute, F::Hour | F::Minute | F::Second) => {
            const UNITS: [u64; 4] = [86_400, 3_600, 60, 1];
            let place = |f: &F| match f {
                F::Day => 0,
                F::Hour => 1,
                F::Minute => 2,
                _ => 3,
            };
            let (from, to) = (place(first), place(last));
            if from >= to {
                return Ok(None);
            }
            let mut parts: Vec<&str> = Vec::new();
            let clock = if from == 0 {
                let (d, rest) = body.split_once(' ').ok_or_else(bad)?;
                parts.push(d);
                rest.trim_start()
            } else {
                body
            };
            parts.extend(clock.split(':'));
            if parts.len() != to - from + 1 {
                return Err(bad());
            }
            // Only seconds take a fraction.
            let mut fraction = "";
            if let Some(last) = parts.last_mut()
                && let Some((whole, f)) = last.split_once('.')
            {
                if to != 3 || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                (*last, fraction) = (whole, f);
            }
            let mut seconds: u64 = 0;
            for (k, part) in parts.iter().enumerate() {
                let v = number(part)?;
                seconds = v
                    .checked_mul(UNITS[from + k])
                    .and_then(|v| seconds.checked_add(v))
                    .ok_or_else(bad)?;
            }
            let fraction = if fraction.is_empty() {
                String::new()
            } else {
                format!(".{fraction}")
            };
            format!("INTERVAL '{sign}{seconds}{fraction}' SECOND")
        }
        _ => return Ok(None),
    };
    Ok(expression(&sql))
}

/// `(a, b) IN (q)`, which DataFusion refuses ("the subquery should only return one column"), as
/// `EXISTS` over `q`'s rows equal to `(a, b)` in every column. `NOT IN` is `NOT EXISTS` over its
/// rows that may be equal (a comparison with NULL counts), so a NULL keeps a row out as it does
/// on Athena.
fn row_in(values: &[Expr], subquery: &Query, negated: bool) -> Option<Expr> {
    let columns: Vec<String> = (1..=values.len()).map(|i| format!("__c{i}")).collect();
    let equal: Vec<String> = values
        .iter()
        .zip(&columns)
        .map(|(v, c)| format!("__in.{c} = ({v})"))
        .collect();
    let equal = equal.join(" AND ");
    let sql = if negated {
        format!(
            "NOT EXISTS (SELECT 1 FROM ({subquery}) AS __in({}) WHERE ({equal}) IS NOT FALSE)",
            columns.join(", ")
        )
    } else {
        format!(
            "EXISTS (SELECT 1 FROM ({subquery}) AS __in({}) WHERE {equal})",
            columns.join(", ")
        )
    };
    expression(&sql)
}

/// `GROUP BY ()`, the one group of all rows, which DataFusion refused ("Empty tuple not
/// supported"): an aggregation without keys, which is that group.
fn empty_grouping(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            if let GroupByExpr::Expressions(keys, modifiers) = &mut s.group_by
                && !keys.is_empty()
                && modifiers.is_empty()
                && keys
                    .iter()
                    .all(|k| matches!(k, Expr::Tuple(t) if t.is_empty()))
            {
                keys.clear();
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            empty_grouping(left);
            empty_grouping(right);
        }
        _ => {}
    }
}

/// `x IN (q)` and `EXISTS (q)` in the select lists of `body` (a set operation's sides
/// included), which DataFusion plans only as filters ("Physical plan does not support logical
/// expression InSubquery"), as counts of `q`'s rows, scalar subqueries it plans as joins. See
/// [`test_as_value`].
fn tests_as_values(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            for item in s.projection.iter_mut() {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    tests_in(e);
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            tests_as_values(left);
            tests_as_values(right);
        }
        _ => {}
    }
}

/// Aggregate functions, by name: a subquery test in their arguments is computed per row before
/// the aggregation ([`tests_before_grouping`]).
const AGGREGATES: &[&str] = &[
    "count",
    "count_if",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "arbitrary",
    "any_value",
    "array_agg",
    "approx_distinct",
    "approx_percentile",
    "max_by",
    "min_by",
    "histogram",
    "map_agg",
    "listagg",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "variance",
    "var_samp",
    "var_pop",
    "geometric_mean",
];

/// In an aggregating `SELECT` over one table, the subquery tests (`x IN (q)`, `EXISTS (q)`) in
/// an aggregate's arguments (`count_if(user_id IN (…))`), in a group key, or in an output that
/// a `GROUP BY` ordinal names (`CASE WHEN user_id IN (…) THEN 'buyer' END … GROUP BY 1`), which
/// the planner cannot join there: computed per row first, as columns `__test<n>` of the table
/// read through `(SELECT *, <test> AS __test1, … FROM <table> WHERE <filter>) AS <its name>`,
/// where [`tests_as_values`] makes them joins. Any other `SELECT` is left as it is.
fn tests_before_grouping(select: &mut Select) {
    let [from] = select.from.as_slice() else {
        return;
    };
    let name = match &from.relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            a.name.clone()
        }
        TableFactor::Table {
            name, alias: None, ..
        } => match name.0.last().and_then(|p| p.as_ident()) {
            Some(i) => i.clone(),
            None => return,
        },
        _ => return,
    };
    let wildcard = select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    if !from.joins.is_empty() || wildcard {
        return;
    }
    let keys: &[Expr] = match &select.group_by {
        GroupByExpr::Expressions(keys, _) => keys,
        GroupByExpr::All(_) => return,
    };
    let ordinals: Vec<usize> = keys
        .iter()
        .filter_map(|k| match k {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse::<usize>().ok()?.checked_sub(1),
                _ => None,
            },
            _ => None,
        })
        .collect();
    // The tests found, by their text (the n-th computed as `__test<n>`): the group keys' first,
    // so that an output written as a key (`SELECT x IN (q) … GROUP BY x IN (q)`) reads the same
    // column.
    let mut tests: Vec<String> = Vec::new();
    if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
        for k in keys {
            moved_tests(k, true, 0, &name, &mut tests);
        }
    }
    let keyed = tests.len();
    for (place, item) in select.projection.iter_mut().enumerate() {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            moved_tests(e, ordinals.contains(&place), keyed, &name, &mut tests);
        }
    }
    if let Some(h) = &mut select.having {
        moved_tests(h, false, keyed, &name, &mut tests);
    }
    if tests.is_empty() {
        return;
    }
    let columns: Vec<String> = tests
        .iter()
        .enumerate()
        .map(|(i, text)| format!("{text} AS __test{}", i + 1))
        .collect();
    let filter = select
        .selection
        .take()
        .map_or(String::new(), |w| format!(" WHERE {w}"));
    let sql = format!(
        "SELECT *, {} FROM {}{filter}",
        columns.join(", "),
        from.relation
    );
    let Ok(mut inner) = Parser::new(&AthenaDialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
    else {
        return;
    };
    tests_as_values(&mut inner.body);
    select.from[0].relation = TableFactor::Derived {
        lateral: false,
        subquery: inner,
        alias: Some(TableAlias {
            explicit: true,
            name,
            columns: vec![],
            at: None,
        }),
        sample: None,
    };
}

/// Replaces, in `e`, the subquery tests that must be computed before grouping (every one when
/// `all`, else those in an aggregate's arguments and those written as one of the first `keyed`
/// of `tests`, the group keys) by `<table>.__test<n>`, adding each new one to `tests`. Nested
/// queries are not entered.
fn moved_tests(e: &mut Expr, all: bool, keyed: usize, table: &Ident, tests: &mut Vec<String>) {
    let is_test = matches!(e, Expr::Exists { .. })
        || matches!(e, Expr::InSubquery { expr, .. } if !matches!(expr.as_ref(), Expr::Tuple(_)));
    let text = if is_test {
        e.to_string()
    } else {
        String::new()
    };
    if is_test && (all || tests[..keyed].contains(&text)) {
        let n = match tests.iter().position(|t| *t == text) {
            Some(i) => i + 1,
            None => {
                tests.push(text);
                tests.len()
            }
        };
        *e = Expr::CompoundIdentifier(vec![table.clone(), Ident::new(format!("__test{n}"))]);
        return;
    }
    value_parts(e, &mut |x, aggregated| {
        moved_tests(x, all || aggregated, keyed, table, tests);
    });
}

/// Calls `f` on each part of `e` that is a value computed with it: through operators, `CASE`,
/// casts, `IS` tests and function arguments, not into nested queries (their own `SELECT`s are
/// visited on their own). `f` is told whether the part is an argument of an aggregate.
fn value_parts(e: &mut Expr, f: &mut impl FnMut(&mut Expr, bool)) {
    match e {
        Expr::Nested(x)
        | Expr::UnaryOp { expr: x, .. }
        | Expr::Cast { expr: x, .. }
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x) => f(x, false),
        Expr::BinaryOp { left, right, .. } => {
            f(left, false);
            f(right, false);
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            for x in operand.iter_mut().chain(else_result.iter_mut()) {
                f(x, false);
            }
            for w in conditions {
                f(&mut w.condition, false);
                f(&mut w.result, false);
            }
        }
        Expr::Function(call) => {
            let aggregate = call.over.is_none()
                && AGGREGATES.contains(&call.name.to_string().to_lowercase().as_str());
            if let FunctionArguments::List(list) = &mut call.args {
                for a in &mut list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                        f(x, aggregate);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Rewrites the subquery tests of `e` that stand where a value is computed (see
/// [`value_parts`]).
fn tests_in(e: &mut Expr) {
    match test_as_value(e) {
        Some(value) => *e = value,
        None => value_parts(e, &mut |x, _| tests_in(x)),
    }
}

/// `EXISTS (q)` as `(SELECT count(*) …) > 0`: `q`'s own `FROM` and `WHERE` when it is a plain
/// `SELECT` of columns or constants (so a correlated `q` stays correlated the way the user
/// wrote it), else a count of `q`'s rows. `x IN (q)` keeps `IN`'s three values:
///
/// ```text
/// CASE WHEN (count of q's rows equal to x) > 0 THEN true
///      WHEN (count of q's rows) = 0 THEN false
///      WHEN x IS NULL THEN NULL
///      WHEN (count of q's NULL rows) > 0 THEN NULL
///      ELSE false END
/// ```
///
/// with `q` read as `(q) AS __in(__v)`, so that a name in `x` can only be the outer query's.
/// `None` when `e` is no such test.
fn test_as_value(e: &Expr) -> Option<Expr> {
    let sql = match e {
        Expr::Exists { subquery, negated } => {
            let compare = if *negated { "= 0" } else { "> 0" };
            match plain_select(subquery) {
                Some(mut counted) => {
                    if let SetExpr::Select(s) = counted.body.as_mut() {
                        s.distinct = None;
                        s.projection = vec![SelectItem::UnnamedExpr(expression("count(*)")?)];
                    }
                    counted.order_by = None;
                    format!("(({counted}) {compare})")
                }
                None => format!("((SELECT count(*) FROM ({subquery}) AS __exists) {compare})"),
            }
        }
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } if !matches!(expr.as_ref(), Expr::Tuple(_)) => {
            let q = format!("FROM ({subquery}) AS __in(__v)");
            let test = format!(
                "(CASE WHEN (SELECT count(*) {q} WHERE __in.__v = ({expr})) > 0 THEN true \
                 WHEN (SELECT count(*) {q}) = 0 THEN false \
                 WHEN ({expr}) IS NULL THEN NULL \
                 WHEN (SELECT count(*) {q} WHERE __in.__v IS NULL) > 0 THEN NULL \
                 ELSE false END)"
            );
            if *negated {
                format!("(NOT {test})")
            } else {
                test
            }
        }
        _ => return None,
    };
    expression(&sql)
}

/// `q` when it is one `SELECT` whose rows are its `FROM` and `WHERE` alone: no grouping,
/// aggregate, window or limit, and items that are columns, constants or `*`.
fn plain_select(q: &Query) -> Option<Query> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let plain_items = s.projection.iter().all(|item| match item {
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => true,
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => matches!(
            e,
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_)
        ),
        _ => false,
    });
    let grouped = match &s.group_by {
        GroupByExpr::All(_) => true,
        GroupByExpr::Expressions(keys, modifiers) => !keys.is_empty() || !modifiers.is_empty(),
    };
    let plain = plain_items
        && !grouped
        && s.having.is_none()
        && s.qualify.is_none()
        && s.named_window.is_empty()
        && q.with.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none();
    plain.then(|| q.clone())
}

/// `FETCH FIRST n ROWS ONLY` (after an `OFFSET` or not) as `LIMIT n`, which DataFusion plans
/// (it refuses `FETCH`). `WITH TIES` and `PERCENT` are left to be refused.
fn fetch_as_limit(query: &mut Query) {
    let Some(Fetch {
        with_ties: false,
        percent: false,
        quantity,
    }) = &query.fetch
    else {
        return;
    };
    let n = quantity
        .clone()
        .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
    match &mut query.limit_clause {
        None => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(n),
                offset: None,
                limit_by: vec![],
            });
        }
        Some(LimitClause::LimitOffset {
            limit: limit @ None,
            ..
        }) => *limit = Some(n),
        Some(_) => return,
    }
    query.fetch = None;
}

/// `ORDER BY k … FETCH FIRST n ROWS WITH TIES`, which DataFusion refused: the rows ranked
/// at most `n` by the keys (the first `n` and every row tied with the last of them), in the
/// keys' order. The rank is taken in a query around this one, over its outputs, so it applies
/// where each key is an output (by name, place or as written) and each output has a name of its
/// own (no `*`); with an `OFFSET`, or otherwise, the query stays as written.
fn fetch_with_ties(query: &mut Query) {
    let Some(Fetch {
        with_ties: true,
        percent: false,
        quantity,
    }) = &query.fetch
    else {
        return;
    };
    let n = match quantity {
        None => 1,
        Some(q) => match number(q) {
            Some(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
            _ => return,
        },
    };
    let (
        Some(OrderBy {
            kind: OrderByKind::Expressions(keys),
            ..
        }),
        None,
        SetExpr::Select(select),
    ) = (&query.order_by, &query.limit_clause, query.body.as_ref())
    else {
        return;
    };
    let normalized = planner_name;
    let mut names: Vec<(Ident, &Expr)> = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::ExprWithAlias { expr, alias } => names.push((alias.clone(), expr)),
            SelectItem::UnnamedExpr(e @ Expr::Identifier(i)) => names.push((i.clone(), e)),
            SelectItem::UnnamedExpr(e @ Expr::CompoundIdentifier(parts)) => match parts.last() {
                Some(i) => names.push((i.clone(), e)),
                None => return,
            },
            _ => return,
        }
    }
    let mut seen = std::collections::HashSet::new();
    if !names.iter().all(|(n, _)| seen.insert(normalized(n))) {
        return;
    }
    let mut order = Vec::new();
    for k in keys {
        let named = match &k.expr {
            Expr::Value(v) => match &v.value {
                Value::Number(place, _) => place
                    .parse::<usize>()
                    .ok()
                    .and_then(|p| p.checked_sub(1))
                    .and_then(|p| names.get(p)),
                _ => None,
            },
            Expr::Identifier(i) => names.iter().find(|(n, _)| normalized(n) == normalized(i)),
            e => names.iter().find(|(_, x)| x.to_string() == e.to_string()),
        };
        let Some((name, _)) = named else {
            return;
        };
        let mut key = k.clone();
        key.expr = Expr::Identifier(name.clone());
        order.push(key.to_string());
    }
    let outputs: Vec<String> = names.iter().map(|(n, _)| n.to_string()).collect();
    let order = order.join(", ");
    let sql = format!(
        "SELECT {} FROM (SELECT *, rank() OVER (ORDER BY {order}) AS __tie_rank \
         FROM (SELECT 1) AS __ties) AS __ties WHERE __tie_rank <= {n} ORDER BY {order}",
        outputs.join(", ")
    );
    let Ok(mut around) = Parser::new(&AthenaDialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
    else {
        return;
    };
    // The query itself, without its order and fetch, in place of `(SELECT 1)`.
    let mut inner = query.clone();
    inner.order_by = None;
    inner.fetch = None;
    let SetExpr::Select(outer) = around.body.as_mut() else {
        return;
    };
    let Some(TableFactor::Derived {
        subquery: ranked, ..
    }) = outer.from.first_mut().map(|t| &mut t.relation)
    else {
        return;
    };
    let SetExpr::Select(ranked) = ranked.body.as_mut() else {
        return;
    };
    let Some(TableFactor::Derived { subquery, .. }) =
        ranked.from.first_mut().map(|t| &mut t.relation)
    else {
        return;
    };
    **subquery = inner;
    *query = *around;
}

/// Athena's `_colN` for the unnamed items of each `SELECT` in `body` (a set operation's
/// sides included; a nested query is visited on its own).
fn name_items(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => name_select(s),
        SetExpr::SetOperation { left, right, .. } => {
            name_items(left);
            name_items(right);
        }
        _ => {}
    }
}

fn name_select(select: &mut Select) {
    for (i, item) in select.projection.iter_mut().enumerate() {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return,
            SelectItem::UnnamedExpr(e) if !named_by_itself(e) => {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::new(format!("_col{i}")),
                };
            }
            _ => {}
        }
    }
}

/// Under `SELECT DISTINCT`, an ORDER BY key written as an output's expression becomes that
/// output's name: the same value, and DataFusion finds an output among its keys only by name.
fn order_by_outputs(select: &Select, keys: &mut [OrderByExpr]) {
    for key in keys {
        let output = select.projection.iter().find_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } if *expr == key.expr => Some(alias),
            _ => None,
        });
        if let Some(alias) = output {
            key.expr = Expr::Identifier(alias.clone());
        }
    }
}

/// An item Athena names after itself: a column (`team`, `e.team`), or one in parentheses.
fn named_by_itself(e: &Expr) -> bool {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
        Expr::Nested(inner) => named_by_itself(inner),
        _ => false,
    }
}

/// The derived table a sampled table (or derived table) becomes, or `None` when `factor` is
/// not sampled. The table as written, without its sample, is read inside; the outside takes its
/// alias's name, or the table's, so that `t.column` still names a column.
fn sampled(factor: &mut TableFactor) -> Result<Option<TableFactor>, DataFusionError> {
    let (sample, alias, table) = match factor {
        TableFactor::Table {
            name,
            alias,
            sample,
            ..
        } => (
            sample,
            alias,
            name.0.last().and_then(|p| p.as_ident()).cloned(),
        ),
        TableFactor::Derived { alias, sample, .. } => (sample, alias, None),
        _ => return Ok(None),
    };
    let Some(kind) = sample.take() else {
        return Ok(None);
    };
    let outer = alias
        .as_ref()
        .map(|a| a.name.clone())
        .or(table)
        .unwrap_or_else(|| Ident::new("sampled"));
    let s = match kind {
        TableSampleKind::BeforeTableAlias(s) | TableSampleKind::AfterTableAlias(s) => s,
    };
    let unsupported = || {
        DataFusionError::Plan(format!(
            "TABLESAMPLE on {outer}: only BERNOULLI (p) and SYSTEM (p) with a percentage are \
             Athena's sampling, not `{s}`"
        ))
    };
    if !matches!(
        s.name,
        Some(TableSampleMethod::Bernoulli | TableSampleMethod::System)
    ) || s.seed.is_some()
        || s.bucket.is_some()
        || s.offset.is_some()
    {
        return Err(unsupported());
    }
    let Some(q) = &s.quantity else {
        return Err(unsupported());
    };
    if q.unit
        .as_ref()
        .is_some_and(|u| *u != TableSampleUnit::Percent)
    {
        return Err(unsupported());
    }
    let Some(percent) = number(&q.value) else {
        return Err(DataFusionError::Plan(format!(
            "TABLESAMPLE on {outer}: the sample percentage must be a number, not `{}`",
            q.value
        )));
    };
    if !(0.0..=100.0).contains(&percent) {
        return Err(DataFusionError::Plan(format!(
            "TABLESAMPLE on {outer}: the sample percentage must be between 0 and 100, not {percent}"
        )));
    }
    // A double (`1e-1`), as `random()` is.
    let sql = format!(
        "SELECT * FROM {factor} WHERE random() < {:e}",
        percent / 100.0
    );
    let subquery = Parser::new(&AthenaDialect)
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_query())
        .map_err(|e| DataFusionError::Plan(format!("TABLESAMPLE on {outer}: {e}")))?;
    Ok(Some(TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(TableAlias {
            explicit: true,
            name: outer,
            columns: vec![],
            at: None,
        }),
        sample: None,
    }))
}

/// A numeric literal, signed or not.
fn number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse::<f64>().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number(expr).map(|n| -n),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => number(expr),
        Expr::Nested(e) => number(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&AthenaDialect, sql).unwrap();
        athena_select(&mut s[0]).unwrap();
        s[0].to_string()
    }

    #[test]
    fn unnamed_items_take_their_place_as_name() {
        assert_eq!(
            rewritten(
                "SELECT team, count(*), CAST(dt AS DATE) AS d, (dt), e.x, 1 + 1 FROM events e"
            ),
            "SELECT team, count(*) AS _col1, CAST(dt AS DATE) AS d, (dt), e.x, 1 + 1 AS _col5 FROM events e"
        );
        // Both sides of a set operation and nested queries; nothing past a `*`.
        assert_eq!(
            rewritten(
                "SELECT max(x) FROM (SELECT lower(a) FROM t) UNION ALL SELECT 1 \
                 ORDER BY 1"
            ),
            "SELECT max(x) AS _col0 FROM (SELECT lower(a) AS _col0 FROM t) UNION ALL SELECT 1 AS _col0 ORDER BY 1"
        );
        assert_eq!(
            rewritten("SELECT 1, *, 2 FROM t"),
            "SELECT 1 AS _col0, *, 2 FROM t"
        );
    }

    #[test]
    fn distinct_outputs_are_ordered_by_their_names() {
        assert_eq!(
            rewritten(
                "SELECT DISTINCT lower(team), upper(x) AS u FROM t ORDER BY lower(team), upper(x) DESC, y"
            ),
            "SELECT DISTINCT lower(team) AS _col0, upper(x) AS u FROM t ORDER BY _col0, u DESC, y"
        );
        // Without DISTINCT the keys stay as written.
        assert_eq!(
            rewritten("SELECT lower(team) FROM t ORDER BY lower(team)"),
            "SELECT lower(team) AS _col0 FROM t ORDER BY lower(team)"
        );
    }

    #[test]
    fn fetch_first_is_a_limit() {
        assert_eq!(
            rewritten("SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS ONLY"),
            "SELECT a FROM t ORDER BY a LIMIT 3"
        );
        assert_eq!(
            rewritten("SELECT a FROM t OFFSET 2 ROWS FETCH NEXT ROW ONLY"),
            "SELECT a FROM t LIMIT 1 OFFSET 2 ROWS"
        );
    }

    #[test]
    fn bare_values_become_rows() {
        assert_eq!(
            values_rows("SELECT x FROM (VALUES 1, 2 + 3, lower('A')) AS t(x)"),
            "SELECT x FROM (VALUES (1), (2 + 3), (lower('A'))) AS t(x)"
        );
        assert_eq!(values_rows("VALUES 'a', 'b'"), "VALUES ('a'), ('b')");
        let rows = "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, name)";
        assert_eq!(values_rows(rows), rows);
        assert_eq!(values_rows("SELECT 'values' AS v"), "SELECT 'values' AS v");
        // The text between the rows is kept as written, quotes escaped inside a string included.
        assert_eq!(
            values_rows("SELECT x FROM (VALUES 'It''s',\n 'é') AS t(x)"),
            "SELECT x FROM (VALUES ('It''s'),\n ('é')) AS t(x)"
        );
        // A comma inside an array literal is not between rows; `ROW(…)` is a row of its own.
        assert_eq!(
            values_rows("VALUES ARRAY[1, 2], ARRAY[3]"),
            "VALUES (ARRAY[1, 2]), (ARRAY[3])"
        );
        assert_eq!(
            values_rows("SELECT * FROM (VALUES ROW(1, 'a'), ROW (2, 'b')) AS t(x, y)"),
            "SELECT * FROM (VALUES (1, 'a'),  (2, 'b')) AS t(x, y)"
        );
        assert_eq!(
            quoted_names_folded("SELECT \"Team\", 'Keep \"This\"' AS \"My \"\"X\"\"\"\nFROM t"),
            Some("SELECT \"team\", 'Keep \"This\"' AS \"my \"\"x\"\"\"\nFROM t".to_string())
        );
        assert_eq!(quoted_names_folded("SELECT \"team\" FROM t"), None);
    }

    #[test]
    fn a_sampled_table_becomes_a_filtered_one_under_its_name() {
        assert_eq!(
            rewritten("SELECT count(*) FROM events TABLESAMPLE BERNOULLI (10)"),
            "SELECT count(*) AS _col0 FROM (SELECT * FROM events WHERE random() < 1e-1) AS events"
        );
        assert_eq!(
            rewritten("SELECT e.team FROM events AS e TABLESAMPLE SYSTEM (50) WHERE e.dt = 'x'"),
            "SELECT e.team FROM (SELECT * FROM events AS e WHERE random() < 5e-1) AS e WHERE e.dt = 'x'"
        );
    }

    #[test]
    fn a_sample_athena_cannot_take_is_refused_with_what_and_where() {
        for (sql, says) in [
            (
                "SELECT 1 FROM events TABLESAMPLE BERNOULLI (150)",
                "between 0 and 100, not 150",
            ),
            (
                "SELECT 1 FROM events TABLESAMPLE BERNOULLI (-1)",
                "between 0 and 100",
            ),
            (
                "SELECT 1 FROM events TABLESAMPLE (10 ROWS)",
                "only BERNOULLI (p) and SYSTEM (p)",
            ),
        ] {
            let mut s = Parser::parse_sql(&AthenaDialect, sql).unwrap();
            let e = athena_select(&mut s[0]).unwrap_err().to_string();
            assert!(
                e.contains("TABLESAMPLE on events") && e.contains(says),
                "{sql}: {e}"
            );
        }
    }

    /// The rewrites, planned and run: each query failed or read every row before.
    #[tokio::test]
    async fn queries_that_failed_now_answer_as_athena_does() {
        let ctx = crate::session::functions_session().unwrap();
        let rows =
            "(VALUES ('2026-11-20', 'B'), ('2026-11-20', 'a'), ('2026-11-21', 'a')) AS t(dt, k)";
        // The same rows as a table (a correlated subquery over VALUES fails to plan).
        let seen = arrow::array::RecordBatch::try_from_iter([
            (
                "dt",
                Arc::new(arrow::array::StringArray::from(vec![
                    "2026-11-20",
                    "2026-11-20",
                    "2026-11-21",
                ])) as _,
            ),
            (
                "k",
                Arc::new(arrow::array::StringArray::from(vec!["B", "a", "a"])) as _,
            ),
        ])
        .unwrap();
        ctx.register_batch("seen", seen).unwrap();
        for (sql, want) in [
            (
                format!(
                    "SELECT CAST(dt AS date), dt, count(*) FROM {rows} GROUP BY 1, 2 ORDER BY 1"
                ),
                "_col0,dt,_col2\n2026-11-20,2026-11-20,2\n2026-11-21,2026-11-21,1\n",
            ),
            // Group keys that are casts of one operand, or a NULL beside a cast NULL.
            (
                format!(
                    "SELECT CAST(dt AS date) d, CAST(dt AS varchar) s, count(*) FROM {rows} \
                     GROUP BY 1, 2 HAVING CAST(dt AS date) > DATE '2026-11-20' ORDER BY 2"
                ),
                "d,s,_col2\n2026-11-21,2026-11-21,1\n",
            ),
            (
                format!(
                    "SELECT CAST(dt AS date), CAST(dt AS varchar), count(*) FROM {rows} \
                     GROUP BY CAST(dt AS date), CAST(dt AS varchar) ORDER BY CAST(dt AS varchar)"
                ),
                "_col0,_col1,_col2\n2026-11-20,2026-11-20,2\n2026-11-21,2026-11-21,1\n",
            ),
            (
                format!(
                    "WITH g AS (SELECT NULL AS x, CAST(NULL AS varchar) AS y, count(*) AS c \
                     FROM {rows} GROUP BY 1, 2) SELECT * FROM g"
                ),
                "x,y,c\n,,3\n",
            ),
            (
                format!("SELECT CAST(dt AS varchar), dt FROM {rows} ORDER BY dt DESC LIMIT 1"),
                "_col0,dt\n2026-11-21,2026-11-21\n",
            ),
            (
                format!("SELECT DISTINCT lower(k) FROM {rows} ORDER BY lower(k)"),
                "_col0\na\nb\n",
            ),
            // Bare rows: arrays (their commas are not between rows) and row constructors.
            (
                "SELECT a[2], cardinality(a) FROM (VALUES ARRAY[1, 2], ARRAY[3, 4, 5]) AS t(a)"
                    .to_string(),
                "_col0,_col1\n2,2\n4,3\n",
            ),
            (
                "SELECT x + 1, y FROM (VALUES ROW(1, 'a'), ROW(2, 'b')) AS t(x, y)".to_string(),
                "_col0,y\n2,a\n3,b\n",
            ),
            (
                format!("SELECT count(*) FROM {rows} TABLESAMPLE BERNOULLI (0)"),
                "_col0\n0\n",
            ),
            (
                format!("SELECT count(*) FROM {rows} TABLESAMPLE SYSTEM (100)"),
                "_col0\n3\n",
            ),
            (
                format!("SELECT k FROM {rows} ORDER BY k OFFSET 1 ROWS FETCH FIRST 1 ROWS ONLY"),
                "k\na\n",
            ),
            // The first rows and those tied with the last of them.
            (
                format!(
                    "SELECT count(*) FROM (SELECT dt, k FROM {rows} ORDER BY dt \
                     FETCH FIRST 1 ROW WITH TIES) AS t"
                ),
                "_col0\n2\n",
            ),
            (
                format!(
                    "SELECT dt, count(*) AS n FROM {rows} GROUP BY dt ORDER BY count(*) DESC \
                     FETCH FIRST 1 ROWS WITH TIES"
                ),
                "dt,n\n2026-11-20,2\n",
            ),
            (
                format!("SELECT k, dt FROM {rows} ORDER BY 2 DESC, k FETCH FIRST 2 ROWS WITH TIES"),
                "k,dt\na,2026-11-21\nB,2026-11-20\n",
            ),
            (
                "SELECT count(*) FROM (VALUES 'a', 'b') AS v(x) WHERE x IN (SELECT k FROM (VALUES 'a') AS w(k))"
                    .to_string(),
                "_col0\n1\n",
            ),
            // A comparison with the rows of a subquery over the same table.
            (
                format!("SELECT count(*) FROM {rows} WHERE k = ANY (SELECT k FROM {rows} WHERE dt = '2026-11-21')"),
                "_col0\n2\n",
            ),
            (
                format!("SELECT count(*) FROM {rows} WHERE k <> ALL (SELECT k FROM {rows} WHERE dt = '2026-11-21')"),
                "_col0\n1\n",
            ),
            (
                format!("SELECT k FROM {rows} WHERE k < ALL (SELECT k FROM {rows} WHERE k <> 'B') ORDER BY k"),
                "k\nB\n",
            ),
            // A row compared with a subquery's rows, NULLs as on Athena.
            (
                "SELECT x, y FROM (VALUES (1, 1), (1, NULL), (2, 2), (3, 3)) AS s(x, y) \
                 WHERE (x, y) IN (VALUES (1, 1), (2, CAST(NULL AS integer)))"
                    .to_string(),
                "x,y\n1,1\n",
            ),
            (
                "SELECT x, y FROM (VALUES (1, 1), (1, NULL), (2, 2), (3, 3)) AS s(x, y) \
                 WHERE (x, y) NOT IN (VALUES (1, 1), (2, CAST(NULL AS integer)))"
                    .to_string(),
                "x,y\n3,3\n",
            ),
            // A subquery test as a value in the select list, with IN's NULLs.
            (
                "SELECT x, x IN (SELECT y FROM (VALUES 1, 3) AS t(y)) AS a, \
                 x NOT IN (SELECT y FROM (VALUES 1, 3) AS t(y)) AS b, \
                 x IN (SELECT y FROM (VALUES 1, NULL) AS t(y)) AS c, \
                 x IN (SELECT y FROM (VALUES 1) AS t(y) WHERE y > 5) AS d \
                 FROM (VALUES 1, 2, NULL) AS s(x) ORDER BY x"
                    .to_string(),
                "x,a,b,c,d\n1,true,false,true,false\n2,false,true,,false\n,,,,false\n",
            ),
            (
                "SELECT k, dt, CASE WHEN EXISTS (SELECT 1 FROM seen AS o WHERE o.k = t.k \
                 AND o.dt = '2026-11-21') THEN 'again' ELSE 'once' END AS seen, \
                 NOT EXISTS (SELECT max(k) FROM seen WHERE dt > '2027') AS none \
                 FROM seen AS t ORDER BY dt, k"
                    .to_string(),
                "k,dt,seen,none\nB,2026-11-20,once,false\na,2026-11-20,again,false\na,2026-11-21,again,false\n",
            ),
            // Names match whatever their case, quoted or not; outputs keep the case written.
            (
                format!(
                    "SELECT \"K\", count(*) AS Total, max(T.Dt) AS \"Last Day\" FROM {rows} \
                     GROUP BY \"k\" ORDER BY total DESC, \"last day\""
                ),
                "K,Total,Last Day\na,2,2026-11-21\nB,1,2026-11-20\n",
            ),
            // A `*` over a derived table or a `WITH` query keeps its names as written, and an
            // unnamed item past a `*` is named by its place.
            (
                format!(
                    "SELECT * FROM (SELECT \"K\" AS Key, count(*) FROM {rows} GROUP BY 1) \
                     ORDER BY 1"
                ),
                "Key,_col1\nB,1\na,2\n",
            ),
            (
                "WITH d AS (SELECT k AS Key, 2 FROM seen), e AS (SELECT * FROM d) \
                 SELECT *, upper(Key), 1 AS One FROM e ORDER BY 1 LIMIT 1"
                    .to_string(),
                "Key,_col1,_col2,One\nB,2,B,1\n",
            ),
            (
                "WITH a AS (SELECT k AS Key, count(*) AS N FROM seen GROUP BY 1), \
                 b AS (SELECT k AS Kb, max(dt) AS Last FROM seen GROUP BY 1) \
                 SELECT * FROM a JOIN b ON a.Key = b.Kb ORDER BY 1"
                    .to_string(),
                "Key,N,Kb,Last\nB,1,B,2026-11-20\na,2,a,2026-11-21\n",
            ),
            (
                "WITH a AS (SELECT k AS Key, count(*) AS N FROM seen GROUP BY 1) \
                 SELECT x.*, s.dt FROM a AS x JOIN seen AS s ON s.k = x.Key ORDER BY 3, 1"
                    .to_string(),
                "Key,N,dt\nB,1,2026-11-20\na,2,2026-11-20\na,2,2026-11-21\n",
            ),
            (
                "SELECT *, 1 FROM seen ORDER BY 1, 2 LIMIT 1".to_string(),
                "dt,k,_col2\n2026-11-20,B,1\n",
            ),
            // A subquery test in a group key or an aggregate's argument, computed per row.
            (
                "SELECT CASE WHEN k IN (SELECT k FROM seen WHERE dt = '2026-11-21') THEN 'again' \
                 ELSE 'once' END AS kind, count(*) AS n FROM seen WHERE dt = '2026-11-20' \
                 GROUP BY 1 ORDER BY 1"
                    .to_string(),
                "kind,n\nagain,1\nonce,1\n",
            ),
            (
                "SELECT count_if(EXISTS (SELECT 1 FROM seen AS o WHERE o.k = t.k \
                 AND o.dt = '2026-11-21')) AS later, count(*) AS n FROM seen AS t"
                    .to_string(),
                "later,n\n2,3\n",
            ),
            (
                "SELECT k IN (SELECT k FROM seen WHERE dt = '2026-11-21') AS again, count(*) AS n \
                 FROM seen GROUP BY k IN (SELECT k FROM seen WHERE dt = '2026-11-21') ORDER BY 1"
                    .to_string(),
                "again,n\nfalse,1\ntrue,2\n",
            ),
            // Aggregates of a column and of its cast, which DataFusion named alike.
            (
                "SELECT max(dt) AS a, max(CAST(dt AS date)) AS b, count(CAST(k AS varchar)) AS c, \
                 count(k) AS d FROM seen"
                    .to_string(),
                "a,b,c,d\n2026-11-21,2026-11-21,3,3\n",
            ),
            // `lag` and `lead` with a default that reads the row.
            (
                "SELECT x, lag(y, 1, x) OVER (ORDER BY x) AS a, lead(y, 1, -x) OVER w AS b \
                 FROM (VALUES (1, 10), (2, NULL), (3, 30)) AS t(x, y) WINDOW w AS (ORDER BY x) \
                 ORDER BY x"
                    .to_string(),
                "x,a,b\n1,1,\n2,10,30\n3,,-3\n",
            ),
            // NULLs sort last whatever the direction, in windows and aggregates too.
            (
                "SELECT x, row_number() OVER (ORDER BY x DESC) AS n, \
                 array_agg(x) OVER (ORDER BY x DESC ROWS BETWEEN UNBOUNDED PRECEDING \
                 AND UNBOUNDED FOLLOWING) AS a FROM (VALUES 1, NULL, 2) AS t(x) ORDER BY x DESC"
                    .to_string(),
                "x,n,a\n2,1,\"[2, 1, NULL]\"\n1,2,\"[2, 1, NULL]\"\n,3,\"[2, 1, NULL]\"\n",
            ),
            // The one group of all rows.
            (
                format!("SELECT count(*) AS n FROM {rows} GROUP BY ()"),
                "n\n3\n",
            ),
            (
                format!("SELECT count(*) AS n FROM {rows} WHERE k = 'none' GROUP BY ()"),
                "n\n0\n",
            ),
            // Bare rows whose text escapes a quote.
            (
                "SELECT x FROM (VALUES 'It''s', 'b') AS v(x) ORDER BY x".to_string(),
                "x\nIt's\nb\n",
            ),
            // Outputs of one name, as Athena gives them.
            (
                format!("SELECT k, count(*), k FROM {rows} GROUP BY k ORDER BY k"),
                "k,_col1,k\nB,1,B\na,2,a\n",
            ),
            (
                format!("SELECT *, k FROM {rows} ORDER BY dt DESC, k LIMIT 1"),
                "dt,k,k\n2026-11-21,a,a\n",
            ),
            (
                format!("SELECT dt AS x, upper(k) AS x, lower(k) AS y FROM {rows} ORDER BY y, 1 LIMIT 2"),
                "x,x,y\n2026-11-20,A,a\n2026-11-21,A,a\n",
            ),
        ] {
            let (schema, batches) = crate::session::run_sql(&ctx, &sql).await.unwrap();
            let out =
                crate::session::render(&schema, &batches, crate::session::Format::Csv).unwrap();
            assert_eq!(out, want, "{sql}");
        }
        // A key naming two outputs is ambiguous, as on Athena.
        let ambiguous = format!("SELECT dt AS x, k AS x FROM {rows} ORDER BY x");
        assert!(crate::session::run_sql(&ctx, &ambiguous).await.is_err());
    }
}

//! Athena's lateral `UNNEST`: `FROM t CROSS JOIN UNNEST(t.tags) AS u(tag)` (or
//! `FROM t, UNNEST(…) AS u(…)`), and `WITH ORDINALITY`.
//!
//! DataFusion plans `unnest()` in a select list but not as a lateral join, and has no
//! ordinality, so such a query is rewritten before planning:
//!
//! ```sql
//! FROM t AS a CROSS JOIN UNNEST(a.x, a.y) WITH ORDINALITY AS u(p, q, n)
//! -- becomes
//! FROM (SELECT a.*, unnest(a.x) AS p, unnest(a.y) AS q,
//!              unnest(generate_series(1, greatest(cardinality(a.x), cardinality(a.y)))) AS n
//!       FROM t AS a) AS a
//! ```
//!
//! and `u.p` elsewhere in the query becomes `a.p`. Several arrays are zipped, the shorter ones
//! padded with NULL, and a NULL or empty array gives no row: Athena's meaning. One map (or
//! array of rows) under several names gives a column per part of its entries
//! (`UNNEST(m) AS t(k, v)`: `unnest(unnest_part(m, 1)) AS k, unnest(unnest_part(m, 2)) AS v`).
//! `LEFT JOIN UNNEST(x) AS u(y) ON true` keeps a row whose arrays are all empty or NULL, with
//! NULL columns (ordinality included). A query without such an `UNNEST` is left exactly as written; one the rewrite does not cover
//! (without column names) reaches the planner unchanged and gets its error.

use std::ops::ControlFlow;

use crate::trino::arrays::UNNEST_PART;
use crate::trino::dialect::AthenaDialect;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, JoinConstraint, JoinOperator, ObjectNamePart, Query, Select, SelectItem, SetExpr,
    Statement, TableFactor, VisitMut, VisitorMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::parser::Parser;

/// The query with its lateral `UNNEST`s made plain `unnest()` calls; `sql` itself when there is
/// nothing to rewrite.
pub fn rewrite(sql: &str) -> String {
    if !sql.to_ascii_lowercase().contains("unnest") {
        return sql.to_string();
    }
    let Ok(mut statements) = Parser::parse_sql(&AthenaDialect, sql) else {
        return sql.to_string();
    };
    let mut v = Lateral::default();
    for s in &mut statements {
        let _ = s.visit(&mut v);
    }
    if !v.changed {
        return sql.to_string();
    }
    let _ = visit_expressions_mut(&mut statements, |e| {
        if let Expr::CompoundIdentifier(parts) = e
            && parts.len() >= 2
            && let Some(m) = v.moved.iter().find(|m| same(&m.from, &parts[0]))
        {
            parts[0] = m.to.clone();
        }
        ControlFlow::<()>::Continue(())
    });
    statements
        .iter()
        .map(Statement::to_string)
        .collect::<Vec<_>>()
        .join(";\n")
}

fn same(a: &Ident, b: &Ident) -> bool {
    a.value.eq_ignore_ascii_case(&b.value)
}

/// An UNNEST's columns, now under another alias.
#[derive(Clone)]
struct Moved {
    from: Ident,
    to: Ident,
    columns: Vec<Ident>,
}

#[derive(Default)]
struct Lateral {
    moved: Vec<Moved>,
    changed: bool,
}

impl VisitorMut for Lateral {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        crate::trino::missing::for_each_select_mut(&mut q.body, &mut |s| self.select(s));
        ControlFlow::Continue(())
    }
}

impl Lateral {
    fn select(&mut self, s: &mut Select) {
        let before = self.moved.len();
        // `FROM t, UNNEST(…) AS u(…)`
        let mut i = 1;
        while i < s.from.len() {
            if s.from[i].joins.is_empty() && s.from[i - 1].joins.is_empty() {
                let left = s.from[i - 1].relation.clone();
                if let Some(merged) = self.lateral(&left, &s.from[i].relation, false) {
                    s.from[i - 1].relation = merged;
                    s.from.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        for twj in &mut s.from {
            // `FROM t CROSS JOIN UNNEST(…) AS u(…)`, possibly several in a row.
            while let Some(j) = twj.joins.first() {
                let cross = matches!(
                    j.join_operator,
                    JoinOperator::CrossJoin(JoinConstraint::None)
                );
                // `LEFT JOIN UNNEST(…) AS u(…) ON true`: a row whose array is empty or NULL
                // stays, with NULL columns.
                let left = match &j.join_operator {
                    JoinOperator::Left(JoinConstraint::On(on))
                    | JoinOperator::LeftOuter(JoinConstraint::On(on)) => {
                        on.to_string().eq_ignore_ascii_case("true")
                    }
                    _ => false,
                };
                let merged = if cross || left {
                    self.lateral(&twj.relation, &j.relation, left)
                } else {
                    None
                };
                match merged {
                    Some(m) => {
                        twj.relation = m;
                        twj.joins.remove(0);
                    }
                    None => break,
                }
            }
            // `FROM UNNEST(…) WITH ORDINALITY AS u(…)` on its own.
            if let Some(m) = self.standalone(&twj.relation) {
                twj.relation = m;
            }
        }
        // `u.*` names the UNNEST's columns, not the whole row they now sit in.
        let moved = self.moved[before..].to_vec();
        if moved.is_empty() {
            return;
        }
        let mut items = Vec::with_capacity(s.projection.len());
        for item in s.projection.drain(..) {
            let found = match &item {
                SelectItem::QualifiedWildcard(kind, _) => {
                    let name = kind.to_string();
                    moved
                        .iter()
                        .find(|m| m.from.value.eq_ignore_ascii_case(&name))
                }
                _ => None,
            };
            match found {
                Some(m) => items.extend(m.columns.iter().map(|c| {
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![m.to.clone(), c.clone()]))
                })),
                None => items.push(item),
            }
        }
        s.projection = items;
    }

    /// `left` with the UNNEST's columns added to each of its rows, under `left`'s alias.
    fn lateral(&mut self, left: &TableFactor, un: &TableFactor, keep: bool) -> Option<TableFactor> {
        let (alias, columns, items) = unnest_columns(un, keep)?;
        let to = match left {
            TableFactor::Table {
                name, alias: None, ..
            } => match name.0.last()? {
                ObjectNamePart::Identifier(i) => i.clone(),
                _ => return None,
            },
            TableFactor::Table { alias: Some(a), .. } => a.name.clone(),
            TableFactor::Derived { alias: Some(a), .. } => a.name.clone(),
            // Athena lets a subquery go unnamed; the rewrite names it to read its columns.
            TableFactor::Derived { alias: None, .. } => Ident::new(UNNAMED),
            _ => return None,
        };
        let named = match left {
            TableFactor::Derived { alias: None, .. } => format!("{left} AS {to}"),
            _ => left.to_string(),
        };
        let derived = relation(&format!(
            "SELECT * FROM (SELECT {to}.*, {items} FROM {named}) AS {to}"
        ))?;
        self.moved.push(Moved {
            from: alias,
            to,
            columns,
        });
        self.changed = true;
        Some(derived)
    }

    /// An UNNEST with ordinality, or of a map, and nothing to its left.
    fn standalone(&mut self, t: &TableFactor) -> Option<TableFactor> {
        let TableFactor::UNNEST {
            with_ordinality,
            array_exprs,
            alias: Some(alias),
            ..
        } = t
        else {
            return None;
        };
        let entries =
            array_exprs.len() == 1 && alias.columns.len() > 1 + usize::from(*with_ordinality);
        if !with_ordinality && !entries {
            return None;
        }
        let (alias, _, items) = unnest_columns(t, false)?;
        let derived = relation(&format!("SELECT * FROM (SELECT {items}) AS {alias}"))?;
        self.changed = true;
        Some(derived)
    }
}

/// The name an unnamed subquery left of an UNNEST is given.
const UNNAMED: &str = "_unnamed_subquery";

/// An UNNEST's alias, its column names and the select items that produce them; `None` for a
/// form this rewrite does not cover (no column names, `WITH OFFSET`). With `keep` (a `LEFT
/// JOIN`), a row whose arrays are all empty or NULL gives one row of NULLs.
fn unnest_columns(t: &TableFactor, keep: bool) -> Option<(Ident, Vec<Ident>, String)> {
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_offset_alias: None,
        with_ordinality,
    } = t
    else {
        return None;
    };
    let columns: Vec<Ident> = alias.columns.iter().map(|c| c.name.clone()).collect();
    let n = array_exprs.len();
    let named = columns.len().checked_sub(usize::from(*with_ordinality))?;
    // The arrays that give the named columns, one each: the parts of one map's (or array of
    // rows') entries under several names, or the arrays themselves.
    let mut sources: Vec<String> = if n == 1 && named > 1 {
        let e = &array_exprs[0];
        (1..=named)
            .map(|i| format!("{UNNEST_PART}({e}, {i})"))
            .collect()
    } else if n > 0 && named == n {
        array_exprs.iter().map(ToString::to_string).collect()
    } else {
        return None;
    };
    // The rows an input row gives: its longest array's length (NULL for one NULL array).
    let longest = if n == 1 {
        format!("cardinality({})", array_exprs[0])
    } else {
        let sizes: Vec<String> = array_exprs
            .iter()
            .map(|e| format!("coalesce(cardinality({e}), 0)"))
            .collect();
        format!("greatest({})", sizes.join(", "))
    };
    if *with_ordinality {
        sources.push(format!("generate_series(1, {longest})"));
    }
    // Several arrays are zipped, the shorter ones padded with NULL. Kept, each is one NULL
    // element where the row has no elements at all.
    let items: Vec<String> = sources
        .iter()
        .zip(&columns)
        .map(|(p, c)| {
            if keep {
                format!("unnest(CASE WHEN {longest} > 0 THEN {p} ELSE make_array(NULL) END) AS {c}")
            } else {
                format!("unnest({p}) AS {c}")
            }
        })
        .collect();
    Some((alias.name.clone(), columns, items.join(", ")))
}

/// The first relation of a `SELECT … FROM <relation>` text.
fn relation(sql: &str) -> Option<TableFactor> {
    let mut s = Parser::parse_sql(&AthenaDialect, sql).ok()?;
    let Statement::Query(q) = s.pop()? else {
        return None;
    };
    let SetExpr::Select(select) = *q.body else {
        return None;
    };
    select.from.into_iter().next().map(|t| t.relation)
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn lateral_unnest_becomes_a_projection() {
        let sql = "SELECT u.tag, count(*) FROM events AS e CROSS JOIN UNNEST(split(e.event_type, '_')) AS u(tag) GROUP BY u.tag";
        let got = rewrite(sql);
        assert!(
            got.contains("unnest(split(e.event_type, '_')) AS tag"),
            "{got}"
        );
        assert!(got.contains("SELECT e.tag"), "{got}");
        assert!(!got.to_lowercase().contains("cross join"), "{got}");
        // Nothing to rewrite: the text is kept as written.
        let plain = "select unnest(make_array(1, 2))  -- as is";
        assert_eq!(rewrite(plain), plain);
    }

    #[tokio::test]
    async fn a_map_and_an_array_of_rows_unnest_to_a_column_per_part() {
        for (sql, want) in [
            (
                "SELECT v.id, t.k, t.v, t.o FROM (VALUES (1, MAP(ARRAY['a', 'b'], ARRAY[10, 20])), \
                 (2, MAP(ARRAY['c'], ARRAY[30])), (3, CAST(NULL AS MAP(VARCHAR, BIGINT)))) AS v(id, m) \
                 CROSS JOIN UNNEST(v.m) WITH ORDINALITY AS t(k, v, o) ORDER BY v.id, t.k",
                vec!["1,a,10,1", "1,b,20,2", "2,c,30,1"],
            ),
            (
                "SELECT n, s FROM UNNEST(ARRAY[ROW(1, 'x'), ROW(2, 'y')]) AS t(n, s) ORDER BY n",
                vec!["1,x", "2,y"],
            ),
            // A LEFT JOIN keeps the rows with an empty or NULL array or map.
            (
                "SELECT v.id, t.x FROM (VALUES (1, ARRAY[5, 6]), (2, CAST(NULL AS ARRAY(BIGINT))), \
                 (3, CAST(ARRAY[] AS ARRAY(BIGINT)))) AS v(id, a) \
                 LEFT JOIN UNNEST(v.a) AS t(x) ON true ORDER BY v.id, t.x",
                vec!["1,5", "1,6", "2,", "3,"],
            ),
            (
                "SELECT v.id, t.k, t.w FROM (VALUES (1, MAP(ARRAY['a'], ARRAY[1])), \
                 (2, CAST(NULL AS MAP(VARCHAR, BIGINT)))) AS v(id, m) \
                 LEFT JOIN UNNEST(v.m) AS t(k, w) ON TRUE ORDER BY v.id",
                vec!["1,a,1", "2,,"],
            ),
            // Several arrays and ordinality, kept.
            (
                "SELECT v.id, t.x, t.y, t.n FROM (VALUES (1, ARRAY[5, 6], ARRAY['a']), \
                 (2, CAST(NULL AS ARRAY(BIGINT)), CAST(ARRAY[] AS ARRAY(VARCHAR))), \
                 (3, CAST(NULL AS ARRAY(BIGINT)), ARRAY['b'])) AS v(id, a, b) \
                 LEFT JOIN UNNEST(v.a, v.b) WITH ORDINALITY AS t(x, y, n) ON true \
                 ORDER BY v.id, t.n",
                vec!["1,5,a,1", "1,6,,2", "2,,,", "3,,b,1"],
            ),
            (
                "SELECT v.id, t.x, t.n FROM (VALUES (1, ARRAY[5, 6]), \
                 (2, CAST(ARRAY[] AS ARRAY(BIGINT)))) AS v(id, a) \
                 LEFT JOIN UNNEST(v.a) WITH ORDINALITY AS t(x, n) ON true ORDER BY v.id, t.n",
                vec!["1,5,1", "1,6,2", "2,,"],
            ),
            (
                "SELECT v.id, t.k, t.w, t.n FROM (VALUES (1, MAP(ARRAY['a'], ARRAY[1])), \
                 (2, CAST(NULL AS MAP(VARCHAR, BIGINT)))) AS v(id, m) \
                 LEFT JOIN UNNEST(v.m) WITH ORDINALITY AS t(k, w, n) ON true ORDER BY v.id",
                vec!["1,a,1,1", "2,,,"],
            ),
            // An unnamed subquery on the left, as Athena allows.
            (
                "SELECT id, x FROM (SELECT 1 AS id, ARRAY[5, 6] AS a) CROSS JOIN UNNEST(a) AS t(x) \
                 ORDER BY x",
                vec!["1,5", "1,6"],
            ),
        ] {
            assert_eq!(crate::trino::csv_rows(sql).await.unwrap(), want, "{sql}");
        }
    }
}

//! An output's alias where Athena reads only input columns: `GROUP BY` and `HAVING` name the
//! columns of the `FROM` (and `GROUP BY` an output's place, `GROUP BY 1`), not the aliases of
//! the select list. DataFusion reads `SELECT lower(team) AS t … GROUP BY t` and `HAVING c > 10`
//! (`count(*) AS c`) by the alias, so such a query ran on a laptop and failed on Athena
//! ("Column 't' cannot be resolved").
//!
//! The check knows a select's input columns when its `FROM` reads named tables only (joins of
//! them included); a select over a subquery, a `WITH` query or an `UNNEST` is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, GroupByExpr, Query, Select, SelectItem, TableFactor, Visit, Visitor, visit_expressions,
};
use datafusion::sql::sqlparser::parser::Parser;

use crate::trino::dialect::AthenaDialect;
use crate::trino::foreign::ForeignSyntax;

/// A name in `GROUP BY` or `HAVING` that is a select alias, where it is.
struct Named {
    clause: &'static str,
    name: String,
    line: u64,
    column: u64,
}

/// A select whose `FROM` reads named tables only, with what it names by an alias's name.
struct Candidate {
    tables: Vec<String>,
    named: Vec<Named>,
}

#[derive(Default)]
struct Selects {
    /// Names of `WITH` queries, which are not the catalog's tables.
    ctes: BTreeSet<String>,
    found: Vec<Candidate>,
}

fn tables_of(select: &Select) -> Option<Vec<String>> {
    let mut tables = Vec::new();
    for twj in &select.from {
        for relation in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation))
        {
            match relation {
                TableFactor::Table {
                    name, args: None, ..
                } => tables.push(name.to_string()),
                _ => return None,
            }
        }
    }
    Some(tables)
}

impl Selects {
    fn select(&mut self, s: &Select) {
        let aliases: BTreeMap<String, &Expr> = s
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { expr, alias } => {
                    Some((alias.value.to_lowercase(), expr))
                }
                _ => None,
            })
            .collect();
        if aliases.is_empty() {
            return;
        }
        let Some(tables) = tables_of(s) else {
            return;
        };
        let mut named = Vec::new();
        let mut pick = |clause: &'static str, e: &Expr| {
            let _ = visit_expressions(e, |x| {
                if let Expr::Identifier(i) = x {
                    let name = i.value.to_lowercase();
                    // `SELECT team AS team … GROUP BY team` names the column either way.
                    let itself = aliases
                        .get(&name)
                        .is_some_and(|a| matches!(a, Expr::Identifier(j) if j.value.eq_ignore_ascii_case(&i.value)));
                    if aliases.contains_key(&name) && !itself {
                        let at = i.span.start;
                        named.push(Named {
                            clause,
                            name: i.value.clone(),
                            line: at.line,
                            column: at.column,
                        });
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        };
        if let GroupByExpr::Expressions(exprs, _) = &s.group_by {
            for e in exprs {
                pick("GROUP BY", e);
            }
        }
        if let Some(h) = &s.having {
            pick("HAVING", h);
        }
        if !named.is_empty() {
            self.found.push(Candidate { tables, named });
        }
    }
}

impl Visitor for Selects {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.to_lowercase()),
            );
        }
        for s in crate::trino::missing::selects_of(&q.body) {
            self.select(s);
        }
        ControlFlow::Continue(())
    }
}

/// The first select alias that `sql`'s `GROUP BY` or `HAVING` reads where Athena reads only the
/// `FROM`'s columns. SQL that does not parse, and selects whose input columns are not known
/// without planning, pass.
pub async fn first_alias_reference(ctx: &SessionContext, sql: &str) -> Option<ForeignSyntax> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("group") && !lower.contains("having") {
        return None;
    }
    let statements = Parser::parse_sql(&AthenaDialect, sql).ok()?;
    let mut selects = Selects::default();
    for s in &statements {
        let _ = s.visit(&mut selects);
    }
    let mut first: Option<ForeignSyntax> = None;
    'candidates: for c in selects.found {
        let mut inputs = BTreeSet::new();
        for t in &c.tables {
            let last = t.rsplit('.').next().unwrap_or(t).trim_matches('"');
            if selects.ctes.contains(&last.to_lowercase()) {
                continue 'candidates;
            }
            let Ok(provider) = ctx.table_provider(t.as_str()).await else {
                continue 'candidates;
            };
            inputs.extend(
                provider
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().to_lowercase()),
            );
        }
        for n in c.named {
            if inputs.contains(&n.name.to_lowercase()) {
                continue;
            }
            let earlier = first
                .as_ref()
                .is_some_and(|f| (f.line, f.column) <= (n.line, n.column));
            if !earlier {
                first = Some(ForeignSyntax {
                    written: format!("{} {}", n.clause, n.name),
                    instead: if n.clause == "GROUP BY" {
                        "Athena groups by the FROM's columns, expressions of them or an output's \
                         place, not an output's alias (\"Column cannot be resolved\"): write \
                         the expression, or GROUP BY 1 for the first output"
                    } else {
                        "Athena's HAVING reads the FROM's columns and aggregates, not an \
                         output's alias (\"Column cannot be resolved\"): write the aggregate \
                         itself, HAVING count(*) > 10"
                    },
                    line: n.line,
                    column: n.column,
                });
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    async fn refused(sql: &str) -> Option<String> {
        let ctx = crate::session::functions_session().unwrap();
        let batch = arrow::array::RecordBatch::try_from_iter([
            (
                "team",
                Arc::new(arrow::array::StringArray::from(vec!["a", "B"])) as _,
            ),
            (
                "n",
                Arc::new(arrow::array::Int64Array::from(vec![1, 2])) as _,
            ),
        ])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        super::first_alias_reference(&ctx, sql)
            .await
            .map(|f| f.to_string())
    }

    #[tokio::test]
    async fn an_outputs_alias_in_group_by_or_having_is_refused() {
        assert_eq!(
            refused("SELECT lower(team) AS l, count(*)\nFROM t GROUP BY l")
                .await
                .as_deref()
                .map(|e| e.split(';').next().unwrap_or_default()),
            Some(
                "line 2, column 17: `GROUP BY l` is not in Athena's SQL, which would refuse this query"
            )
        );
        for (sql, written) in [
            (
                "SELECT team, count(*) AS c FROM t GROUP BY team HAVING c > 1",
                "HAVING c",
            ),
            (
                "SELECT * FROM (SELECT n + 1 AS m FROM t GROUP BY ROLLUP (m))",
                "GROUP BY m",
            ),
            (
                "SELECT lower(team) AS l FROM t AS x JOIN t AS y ON x.n = y.n GROUP BY l",
                "GROUP BY l",
            ),
        ] {
            let e = refused(sql).await.unwrap_or_else(|| panic!("{sql} passed"));
            assert!(e.contains(&format!("`{written}`")), "{sql}: {e}");
        }
        for sql in [
            "SELECT team AS team, count(*) FROM t GROUP BY team",
            "SELECT lower(team) AS team, count(*) FROM t GROUP BY team",
            "SELECT lower(team) AS l, count(*) FROM t GROUP BY 1",
            "SELECT lower(team) AS l, count(*) FROM t GROUP BY lower(team)",
            "SELECT l, count(*) FROM (SELECT lower(team) AS l FROM t) GROUP BY l",
            "WITH w AS (SELECT team FROM t) SELECT lower(team) AS l FROM w GROUP BY l",
            "SELECT team, count(*) AS c FROM t GROUP BY team HAVING count(*) > 1",
            "SELECT lower(team) AS l FROM t ORDER BY l",
        ] {
            assert_eq!(refused(sql).await, None, "{sql}");
        }
    }
}

//! Athena's hidden columns, `"$path"` and `"$file_size"`: a query that names one reads the
//! table registered with them (`<table>$hidden`, see `table.rs`) under the table's own name,
//! and its `SELECT *` leaves them out, as Athena's does.
//!
//! ```sql
//! SELECT "$path", count(*) FROM events GROUP BY 1
//! -- becomes
//! SELECT "$path", count(*) FROM "events$hidden" AS events GROUP BY 1
//! ```
//!
//! A query that names none is left exactly as written.

use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, Statement, TableAlias, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;

use crate::table::HIDDEN_COLUMNS;
use crate::trino::dialect::AthenaDialect;

/// The name the table with hidden columns is registered under, beside `table`.
pub fn hidden_table(table: &str) -> String {
    format!("{table}$hidden")
}

fn is_hidden(i: &Ident) -> bool {
    HIDDEN_COLUMNS
        .iter()
        .any(|h| i.value.eq_ignore_ascii_case(h))
}

/// Whether the statements name a hidden column.
struct Names(bool);

impl Visitor for Names {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        let named = match e {
            Expr::Identifier(i) => is_hidden(i),
            Expr::CompoundIdentifier(parts) => parts.last().is_some_and(is_hidden),
            _ => false,
        };
        if named {
            self.0 = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// Reads each table that has a hidden twin through it, and keeps `*` to the table's own
/// columns.
struct Swap<'a> {
    ctx: &'a SessionContext,
}

impl Swap<'_> {
    /// The table reference made the hidden twin's, under the name it had; the name it is
    /// read by, when it was one.
    fn swap(&self, t: &mut TableFactor) -> Option<String> {
        let TableFactor::Table {
            name, alias, args, ..
        } = t
        else {
            return None;
        };
        if args.is_some() {
            return None;
        }
        let Some(ObjectNamePart::Identifier(last)) = name.0.last().cloned() else {
            return None;
        };
        let twin = hidden_table(&last.value.to_lowercase());
        if last.value.contains('$') || !self.ctx.table_exist(twin.as_str()).unwrap_or(false) {
            return None;
        }
        let at = name.0.len() - 1;
        name.0[at] = ObjectNamePart::Identifier(Ident::with_quote('"', twin));
        if alias.is_none() {
            *alias = Some(TableAlias {
                explicit: true,
                name: last,
                columns: Vec::new(),
                at: None,
            });
        }
        alias.as_ref().map(|a| a.name.value.to_lowercase())
    }

    /// The select's tables with hidden twins read through them, and its `*` kept to their own
    /// columns.
    fn select(&self, select: &mut Select) {
        let mut swapped = Vec::new();
        for twj in &mut select.from {
            swapped.extend(self.swap(&mut twj.relation));
            for j in &mut twj.joins {
                swapped.extend(self.swap(&mut j.relation));
            }
        }
        if !swapped.is_empty() {
            let hidden = || {
                ExcludeSelectItem::Multiple(
                    HIDDEN_COLUMNS
                        .iter()
                        .map(|h| {
                            ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', *h))])
                        })
                        .collect(),
                )
            };
            for item in &mut select.projection {
                let o = match item {
                    SelectItem::Wildcard(o) => o,
                    // `e.*` of a table read through its twin.
                    SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(name),
                        o,
                    ) if name
                        .0
                        .last()
                        .and_then(ObjectNamePart::as_ident)
                        .is_some_and(|i| swapped.contains(&i.value.to_lowercase())) =>
                    {
                        o
                    }
                    _ => continue,
                };
                if o.opt_exclude.is_none() {
                    o.opt_exclude = Some(hidden());
                }
            }
        }
    }
}

impl VisitorMut for Swap<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        crate::trino::missing::for_each_select_mut(&mut q.body, &mut |s| self.select(s));
        ControlFlow::Continue(())
    }
}

/// The query reading the tables with hidden columns when it names one; `sql` itself otherwise.
pub fn rewrite(ctx: &SessionContext, sql: &str) -> String {
    if !sql.contains('$') {
        return sql.to_string();
    }
    let Ok(mut statements) = Parser::parse_sql(&AthenaDialect, sql) else {
        return sql.to_string();
    };
    let mut names = Names(false);
    for s in &statements {
        let _ = s.visit(&mut names);
    }
    if !names.0 {
        return sql.to_string();
    }
    for s in &mut statements {
        let _ = s.visit(&mut Swap { ctx });
    }
    statements
        .iter()
        .map(Statement::to_string)
        .collect::<Vec<_>>()
        .join(";\n")
}

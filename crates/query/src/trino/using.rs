//! Joins `USING (k)` as Athena reads them.
//!
//! - The join's `k` is one column: the left side's in an inner or left join, the right side's
//!   in a right join, and the one that is not NULL in a full join ([`UsingColumnOfBothSides`]).
//!   DataFusion reads `k` as the left side's column in every join, so a full join's rows found
//!   only on the right had no key (`a FULL JOIN b USING (event_type)`, the usual comparison of
//!   two periods, lost the names of the types only the second period has).
//! - `SELECT *` puts the `USING` columns first, then the other columns of each side in order
//!   ([`using_columns_first`]); DataFusion keeps the left side's columns where they are, so
//!   `ORDER BY 1` sorted by another column.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{
    Expr, ExprSchemable, JoinConstraint, JoinType, LogicalPlan, Projection, cast, when,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::{
    self as ast, ExcludeSelectItem, ObjectName, Select, SelectItem,
    SelectItemQualifiedWildcardKind, TableFactor,
};

/// `SELECT *` (with nothing excluded) over relations joined `USING` columns, each join the
/// same columns and each relation named: the `USING` columns, then each relation's other
/// columns, as `k, a.* EXCLUDE (k), b.* EXCLUDE (k)`. Any other `SELECT` is left as it is (when
/// joins use different columns, which relation of a left side has one is not known before
/// planning).
pub fn using_columns_first(select: &mut Select) {
    let [from] = select.from.as_slice() else {
        return;
    };
    if from.joins.is_empty() {
        return;
    }
    let mut columns: Vec<ObjectName> = Vec::new();
    let mut relations = vec![from.relation.clone()];
    for (i, join) in from.joins.iter().enumerate() {
        let Some(ast::JoinConstraint::Using(names)) =
            crate::trino::select::join_constraint(&join.join_operator)
        else {
            return;
        };
        let mut these: Vec<ObjectName> = Vec::new();
        for name in names {
            let [part] = name.0.as_slice() else {
                return;
            };
            if part.as_ident().is_none() {
                return;
            }
            if !these.iter().any(|c| same_name(c, name)) {
                these.push(name.clone());
            }
        }
        if i == 0 {
            columns = these;
        } else if these.len() != columns.len()
            || !these
                .iter()
                .all(|t| columns.iter().any(|c| same_name(c, t)))
        {
            return;
        }
        relations.push(join.relation.clone());
    }
    let Some(relations) = relations
        .iter()
        .map(relation_name)
        .collect::<Option<Vec<ObjectName>>>()
    else {
        return;
    };
    let wildcards = select
        .projection
        .iter()
        .filter(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .count();
    let Some(at) = select.projection.iter().position(|i| {
        matches!(i, SelectItem::Wildcard(o)
            if o.opt_exclude.is_none()
                && o.opt_except.is_none()
                && o.opt_replace.is_none()
                && o.opt_rename.is_none()
                && o.opt_ilike.is_none()
                && o.opt_alias.is_none())
    }) else {
        return;
    };
    if wildcards != 1 {
        return;
    }
    let Some(mut items) = columns
        .iter()
        .map(|c| {
            let ident = c.0[0].as_ident().cloned()?;
            if relations.len() == 2 {
                return Some(SelectItem::UnnamedExpr(ast::Expr::Identifier(ident)));
            }
            // The planner reads an unqualified `k` of more than two relations as ambiguous.
            // The first that is not NULL is the join's `k` whatever the kinds of joins: they
            // are equal where rows matched.
            let parts: Vec<String> = relations.iter().map(|r| format!("{r}.{ident}")).collect();
            let sql = format!("coalesce({})", parts.join(", "));
            let expr = datafusion::sql::sqlparser::parser::Parser::new(
                &crate::trino::dialect::AthenaDialect,
            )
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .ok()?;
            Some(SelectItem::ExprWithAlias { expr, alias: ident })
        })
        .collect::<Option<Vec<SelectItem>>>()
    else {
        return;
    };
    let SelectItem::Wildcard(options) = select.projection.remove(at) else {
        unreachable!("found above")
    };
    for relation in relations {
        let mut options = options.clone();
        options.opt_exclude = Some(ExcludeSelectItem::Multiple(columns.clone()));
        items.push(SelectItem::QualifiedWildcard(
            SelectItemQualifiedWildcardKind::ObjectName(relation),
            options,
        ));
    }
    select.projection.splice(at..at, items);
}

/// Each derived table without a name among several relations of `select`'s `FROM` is given
/// one (`__derived_1`, …). Athena joins `(SELECT …)` to a named relation that has a column of
/// the same name (`days LEFT JOIN (SELECT date(dt) AS d, …) USING (d)`); DataFusion found the
/// unqualified `d` beside `days.d` ambiguous. A query cannot name these relations, so nothing
/// it reads changes.
pub fn derived_tables_named(select: &mut Select) {
    let several = select.from.len() > 1 || select.from.iter().any(|f| !f.joins.is_empty());
    if !several {
        return;
    }
    let mut n = 0;
    for from in &mut select.from {
        let relations = std::iter::once(&mut from.relation)
            .chain(from.joins.iter_mut().map(|j| &mut j.relation));
        for relation in relations {
            if let TableFactor::Derived {
                alias: alias @ None,
                ..
            } = relation
            {
                n += 1;
                *alias = Some(ast::TableAlias {
                    explicit: true,
                    name: ast::Ident::new(format!("__derived_{n}")),
                    columns: vec![],
                    at: None,
                });
            }
        }
    }
}

/// The name a relation of a `FROM` goes by: its alias, or a table's name.
fn relation_name(relation: &TableFactor) -> Option<ObjectName> {
    match relation {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(ObjectName::from(vec![a.name.clone()]))
        }
        TableFactor::Table {
            name, alias: None, ..
        } => Some(name.clone()),
        _ => None,
    }
}

fn same_name(a: &ObjectName, b: &ObjectName) -> bool {
    let name = |n: &ObjectName| {
        n.0.first()
            .and_then(|p| p.as_ident())
            .map(crate::trino::select::planner_name)
    };
    name(a) == name(b)
}

/// A right or full join `USING` its columns gets a projection above it in which each left
/// `USING` column (the one the query's unqualified name reads) is the right side's column
/// (right join) or the one of the two that is not NULL (full join); every other column passes
/// through under its own name.
#[derive(Debug, Default)]
pub struct UsingColumnOfBothSides;

impl UsingColumnOfBothSides {
    fn rewrite(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if join.join_constraint != JoinConstraint::Using
            || !matches!(join.join_type, JoinType::Right | JoinType::Full)
        {
            return Ok(Transformed::no(plan));
        }
        let mut pairs: Vec<(Column, Expr)> = Vec::new();
        for (l, r) in &join.on {
            let (Expr::Column(lc), Expr::Column(_)) = (l, r) else {
                return Ok(Transformed::no(plan));
            };
            let left_type = l.get_type(join.left.schema())?;
            let right = if r.get_type(join.right.schema())? == left_type {
                r.clone()
            } else {
                cast(r.clone(), left_type)
            };
            let value = match join.join_type {
                JoinType::Right => right,
                _ => when(l.clone().is_null(), right).otherwise(l.clone())?,
            };
            pairs.push((lc.clone(), value));
        }
        let schema = Arc::clone(plan.schema());
        let exprs: Vec<Expr> = schema
            .iter()
            .map(|(qualifier, field)| {
                let column = Column::new(qualifier.cloned(), field.name());
                match pairs.iter().find(|(c, _)| *c == column) {
                    Some((_, value)) => value
                        .clone()
                        .alias_qualified(qualifier.cloned(), field.name()),
                    None => Expr::Column(column),
                }
            })
            .collect();
        let projection = Projection::try_new(exprs, Arc::new(plan))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
}

impl AnalyzerRule for UsingColumnOfBothSides {
    fn name(&self) -> &str {
        "using_column_of_both_sides"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(Self::rewrite)
            .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    async fn rows(sql: &str) -> Vec<String> {
        crate::trino::table_lines(sql).await.unwrap()
    }

    const LEFT: &str = "(VALUES ('a', 1), ('b', 2)) AS t(x_name, k)";

    #[tokio::test]
    async fn a_full_joins_key_is_the_side_that_has_one() {
        let sql = "SELECT k, count(*) AS n FROM (VALUES ('a', 1), ('b', 2)) AS t(k, x) \
                   FULL JOIN (VALUES ('a', 20), ('c', 30)) AS u(k, z) USING (k) GROUP BY k ORDER BY k";
        assert_eq!(
            rows(sql).await,
            ["| k | n |", "| a | 1 |", "| b | 1 |", "| c | 1 |"]
        );
        let sql = "SELECT k FROM (VALUES ('a', 1), ('b', 2)) AS t(k, x) \
                   RIGHT JOIN (VALUES ('a', 20), ('c', 30)) AS u(k, z) USING (k) ORDER BY k";
        assert_eq!(rows(sql).await, ["| k |", "| a |", "| c |"]);
    }

    #[tokio::test]
    async fn a_derived_table_without_a_name_joins_using_a_column_of_a_named_one() {
        let sql = "SELECT d, coalesce(c, 0) AS c FROM (VALUES 1, 2) days(d) \
                   LEFT JOIN (SELECT 1 AS d, 5 AS c) USING (d) ORDER BY d";
        assert_eq!(rows(sql).await, ["| d | c |", "| 1 | 5 |", "| 2 | 0 |"]);
        let sql = "SELECT * FROM (SELECT 1 AS d, 5 AS c) FULL JOIN (SELECT 2 AS d, 7 AS e) \
                   USING (d) ORDER BY d";
        assert_eq!(
            rows(sql).await,
            ["| d | c | e |", "| 1 | 5 | |", "| 2 | | 7 |"]
        );
    }

    #[tokio::test]
    async fn three_relations_joined_using_one_key() {
        let sql = "SELECT * FROM (VALUES ('a', 1), ('b', 2)) t(k, x) \
                   FULL JOIN (VALUES ('b', 20), ('c', 30)) u(k, y) USING (k) \
                   FULL JOIN (VALUES ('c', 300), ('d', 400)) v(k, z) USING (k) ORDER BY 1";
        assert_eq!(
            rows(sql).await,
            [
                "| k | x | y | z |",
                "| a | 1 | | |",
                "| b | 2 | 20 | |",
                "| c | | 30 | 300 |",
                "| d | | | 400 |"
            ]
        );
    }

    #[tokio::test]
    async fn select_star_lists_the_using_columns_first() {
        let sql = format!(
            "SELECT * FROM {LEFT} FULL JOIN (VALUES (2, 'z'), (3, 'y')) AS u(k, y_name) \
             USING (k) ORDER BY 1"
        );
        assert_eq!(
            rows(&sql).await,
            [
                "| k | x_name | y_name |",
                "| 1 | a | |",
                "| 2 | b | z |",
                "| 3 | | y |"
            ]
        );
        // Other items stay where they are written.
        let sql = format!(
            "SELECT 0 AS first, *, 9 AS last FROM {LEFT} JOIN (VALUES (2, 'z')) AS u(k, y_name) \
             USING (k)"
        );
        assert_eq!(
            rows(&sql).await,
            [
                "| first | k | x_name | y_name | last |",
                "| 0 | 2 | b | z | 9 |"
            ]
        );
    }
}

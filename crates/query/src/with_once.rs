//! A `WITH` query that the statement reads more than once, computed once.
//!
//! DataFusion plans a `WITH` query in place of each reference, so a query that joins a
//! grouped `WITH` query with itself (next-day retention: `daily a LEFT JOIN daily b`), or
//! compares it with its own average in a subquery, groups the same rows two or three times. A
//! `WITH` query read at least twice whose rows are a grouping (`GROUP BY`, an aggregate, or
//! `DISTINCT`: far fewer rows than it reads) is run first instead, its rows held in memory as a
//! table of a name of its own for the time the statement is planned, and every reference reads
//! that table under the query's name. What the statement answers does not change:
//!
//! - a query that calls a function whose value changes from one call to the next (`random()`,
//!   `uuid()`, `shuffle`) or with the time (`now()`, `current_date`) stays in place, where each
//!   reference computes its own, as on Athena;
//! - a query whose rows pass [`MAX_BYTES`] of Arrow data, or that fails to plan or run on its
//!   own, stays in place too (a failure then comes from the statement as written);
//! - a name that a query inside the statement defines again (`WITH daily AS (… WITH daily AS
//!   …)`) is left alone, and a query's own body reads the tables of its name, never itself.
//!
//! `EXPLAIN` shows the statement as DataFusion plans it, nothing run.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Cte, Expr, Ident, ObjectName, Query, SelectItem, SetExpr, Statement, TableAlias, TableFactor,
    Visit, VisitMut, Visitor, VisitorMut, With, visit_expressions,
};
use futures::StreamExt;

use crate::trino::select::planner_name as normalized;

/// The most Arrow data a `WITH` query's rows may take to be held (past it, it stays in place).
pub const MAX_BYTES: usize = 256 << 20;

/// Functions whose value is not the same at every call of one statement.
const CHANGING: &[&str] = &[
    "random",
    "rand",
    "uuid",
    "shuffle",
    "now",
    "current_timestamp",
    "current_time",
    "current_date",
    "localtimestamp",
    "localtime",
];

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The tables one statement's `WITH` queries were computed into; they leave the session when
/// this is dropped (the plan keeps what it reads).
pub struct Computed {
    ctx: SessionContext,
    names: Vec<String>,
}

impl Drop for Computed {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.ctx.deregister_table(name.as_str());
        }
    }
}

/// Computes each `WITH` query of `statement` that it reads more than once and that groups its
/// rows (see the module's documentation), and points the statement's references at the
/// results. Never fails: a query that cannot be computed on its own stays in place.
pub async fn computed_once(
    ctx: &SessionContext,
    statement: &mut datafusion::sql::parser::Statement,
) -> Computed {
    let mut computed = Computed {
        ctx: ctx.clone(),
        names: Vec::new(),
    };
    let datafusion::sql::parser::Statement::Statement(s) = statement else {
        return computed;
    };
    let Statement::Query(query) = s.as_mut() else {
        return computed;
    };
    let Some(mut with) = query.with.take() else {
        return computed;
    };
    if !with.recursive {
        let mut i = 0;
        while i < with.cte_tables.len() {
            match computed_at(ctx, query, &mut with, i).await {
                Some(name) => computed.names.push(name),
                None => i += 1,
            }
        }
    }
    if !with.cte_tables.is_empty() {
        query.with = Some(with);
    }
    computed
}

/// Computes the `i`-th `WITH` query when it is worth it, removes it from `with` and points
/// the references after it at the table its rows were registered as (whose name it returns).
async fn computed_at(
    ctx: &SessionContext,
    query: &mut Query,
    with: &mut With,
    i: usize,
) -> Option<String> {
    let cte = &with.cte_tables[i];
    let name = cte.alias.name.clone();
    if !groups(ctx, &cte.query) || changes(&cte.query) {
        return None;
    }
    let twice = with
        .cte_tables
        .iter()
        .filter(|c| normalized(&c.alias.name) == normalized(&name))
        .count();
    if twice > 1 {
        return None;
    }
    let mut defined = Defines(&name, 0);
    let _ = Visit::visit(&*query, &mut defined);
    for later in &with.cte_tables[i..] {
        let _ = Visit::visit(later.query.as_ref(), &mut defined);
    }
    if defined.1 > 0 {
        return None;
    }
    let mut reads = Reads(&name, 0);
    let _ = Visit::visit(&*query, &mut reads);
    for later in &with.cte_tables[i + 1..] {
        let _ = Visit::visit(later.query.as_ref(), &mut reads);
    }
    if reads.1 < 2 {
        return None;
    }
    let batches = rows(ctx, &with.cte_tables[..i], cte).await?;
    let table = format!(
        "__with_{}_{}",
        NEXT.fetch_add(1, Ordering::Relaxed),
        name.value
    );
    let (schema, batches) = batches;
    let provider = MemTable::try_new(schema, batches).ok()?;
    ctx.register_table(table.as_str(), Arc::new(provider))
        .ok()?;
    let mut rename = Rename {
        name: &name,
        table: Ident::with_quote('"', table.clone()),
    };
    let _ = VisitMut::visit(query, &mut rename);
    for later in &mut with.cte_tables[i + 1..] {
        let _ = VisitMut::visit(later.query.as_mut(), &mut rename);
    }
    with.cte_tables.remove(i);
    Some(table)
}

/// The rows of `cte`, planned with the `WITH` queries before it and run on all partitions,
/// with its schema under the names the query gives its columns; `None` when it fails, or
/// holds more than [`MAX_BYTES`].
async fn rows(
    ctx: &SessionContext,
    earlier: &[Cte],
    cte: &Cte,
) -> Option<(Arc<Schema>, Vec<Vec<RecordBatch>>)> {
    let mut body = (*cte.query).clone();
    if !earlier.is_empty() {
        match &mut body.with {
            Some(w) => {
                let mut all = earlier.to_vec();
                all.append(&mut w.cte_tables);
                w.cte_tables = all;
            }
            None => body.with = Some(With {
                with_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                recursive: false,
                cte_tables: earlier.to_vec(),
            }),
        }
    }
    let statement =
        datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(Box::new(body))));
    let plan = ctx.state().statement_to_plan(statement).await.ok()?;
    let df = ctx.execute_logical_plan(plan).await.ok()?;
    let planned = df.schema().as_arrow().clone();
    let columns = &cte.alias.columns;
    if !columns.is_empty() && columns.len() != planned.fields().len() {
        return None;
    }
    let fields: Vec<Field> = planned
        .fields()
        .iter()
        .enumerate()
        .map(|(k, f)| match columns.get(k) {
            Some(c) => f.as_ref().clone().with_name(normalized(&c.name)),
            None => f.as_ref().clone(),
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    if !fields.iter().all(|f| seen.insert(f.name().clone())) {
        return None;
    }
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        planned.metadata().clone(),
    ));
    let streams = df.execute_stream_partitioned().await.ok()?;
    let bytes = Arc::new(AtomicUsize::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for (k, mut stream) in streams.into_iter().enumerate() {
        let (bytes, over, schema) = (bytes.clone(), over.clone(), schema.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            while let Some(batch) = stream.next().await {
                if over.load(Ordering::Relaxed) {
                    return None;
                }
                let batch = batch.ok()?;
                let size = batch.get_array_memory_size();
                if bytes.fetch_add(size, Ordering::Relaxed) + size > MAX_BYTES {
                    over.store(true, Ordering::Relaxed);
                    return None;
                }
                out.push(RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).ok()?);
            }
            Some((k, out))
        });
    }
    let mut partitions = Vec::new();
    while let Some(done) = tasks.join_next().await {
        partitions.push(done.ok()??);
    }
    partitions.sort_by_key(|(k, _)| *k);
    Some((schema, partitions.into_iter().map(|(_, b)| b).collect()))
}

/// Whether `query`'s rows are a grouping of the rows it reads: `GROUP BY`, `DISTINCT`, or an
/// aggregate (not a window) in its select list.
fn groups(ctx: &SessionContext, query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let grouped = match &select.group_by {
        datafusion::sql::sqlparser::ast::GroupByExpr::All(_) => true,
        datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(keys, _) => !keys.is_empty(),
    };
    if grouped || select.distinct.is_some() {
        return true;
    }
    let state = ctx.state();
    let aggregates = state.aggregate_functions();
    select.projection.iter().any(|item| {
        let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else {
            return false;
        };
        visit_expressions(e, |x| match x {
            Expr::Function(f)
                if f.over.is_none()
                    && aggregates.contains_key(&f.name.to_string().to_lowercase()) =>
            {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .is_break()
    })
}

/// Whether `query` calls a function whose value changes between calls.
fn changes(query: &Query) -> bool {
    visit_expressions(query, |x| match x {
        Expr::Function(f) if CHANGING.contains(&f.name.to_string().to_lowercase().as_str()) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether `factor` reads the table named `name` (one part, no arguments).
fn names(factor: &TableFactor, name: &Ident) -> bool {
    match factor {
        TableFactor::Table {
            name: n,
            args: None,
            ..
        } => match n.0.as_slice() {
            [part] => part
                .as_ident()
                .is_some_and(|i| normalized(i) == normalized(name)),
            _ => false,
        },
        _ => false,
    }
}

/// Counts the tables read under a name.
struct Reads<'a>(&'a Ident, usize);

impl Visitor for Reads<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if names(factor, self.0) {
            self.1 += 1;
        }
        ControlFlow::Continue(())
    }
}

/// Counts the `WITH` queries defined under a name.
struct Defines<'a>(&'a Ident, usize);

impl Visitor for Defines<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(w) = &query.with {
            self.1 += w
                .cte_tables
                .iter()
                .filter(|c| normalized(&c.alias.name) == normalized(self.0))
                .count();
        }
        ControlFlow::Continue(())
    }
}

/// Points the tables read under `name` at `table`, under the alias `name` when they had none.
struct Rename<'a> {
    name: &'a Ident,
    table: Ident,
}

impl VisitorMut for Rename<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if names(factor, self.name)
            && let TableFactor::Table { name, alias, .. } = factor
        {
            *name = ObjectName::from(vec![self.table.clone()]);
            if alias.is_none() {
                *alias = Some(TableAlias {
                    explicit: true,
                    name: self.name.clone(),
                    columns: vec![],
                    at: None,
                });
            }
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParserBuilder;

    use crate::trino::dialect::AthenaDialect;

    fn parsed(sql: &str) -> datafusion::sql::parser::Statement {
        DFParserBuilder::new(sql)
            .with_dialect(&AthenaDialect)
            .build()
            .unwrap()
            .parse_statements()
            .unwrap()
            .pop_front()
            .unwrap()
    }

    fn session() -> SessionContext {
        let ctx = crate::session::functions_session().unwrap();
        let rows = RecordBatch::try_from_iter([
            (
                "dt",
                Arc::new(arrow::array::StringArray::from(vec![
                    "2026-11-20",
                    "2026-11-20",
                    "2026-11-21",
                    "2026-11-21",
                    "2026-11-22",
                ])) as _,
            ),
            (
                "u",
                Arc::new(arrow::array::StringArray::from(vec![
                    "a", "b", "a", "c", "c",
                ])) as _,
            ),
        ])
        .unwrap();
        ctx.register_batch("seen", rows).unwrap();
        ctx
    }

    /// Each query, with how many of its `WITH` queries are computed once, and its rows: the
    /// same as with every `WITH` query planned in place (the second query of each pair).
    #[tokio::test]
    async fn a_with_query_read_twice_is_computed_once_with_the_same_answer() {
        let ctx = session();
        let daily = "daily AS (SELECT dt, u FROM seen GROUP BY 1, 2)";
        let inline = "(SELECT dt, u FROM seen GROUP BY 1, 2)";
        for (sql, same_as, computed, want) in [
            // Next-day retention: the grouping joined with itself.
            (
                format!(
                    "WITH {daily} SELECT a.dt, count(*) n, count(b.u) back FROM daily a \
                     LEFT JOIN daily b ON a.u = b.u AND CAST(b.dt AS date) = \
                     date_add('day', 1, CAST(a.dt AS date)) GROUP BY 1 ORDER BY 1"
                ),
                format!(
                    "SELECT a.dt, count(*) n, count(b.u) back FROM {inline} a \
                     LEFT JOIN {inline} b ON a.u = b.u AND CAST(b.dt AS date) = \
                     date_add('day', 1, CAST(a.dt AS date)) GROUP BY 1 ORDER BY 1"
                ),
                1,
                "dt,n,back\n2026-11-20,2,1\n2026-11-21,2,1\n2026-11-22,1,0\n",
            ),
            // Read unaliased (its columns qualified by its name), in a subquery, and by a
            // later `WITH` query; a column list renames its columns.
            (
                format!(
                    "WITH {daily}, per(d, users) AS (SELECT dt, count(*) FROM daily GROUP BY 1), \
                     best AS (SELECT max(users) m FROM per) \
                     SELECT per.d, per.users, (SELECT count(*) FROM daily WHERE daily.dt = per.d) c \
                     FROM per, best WHERE per.users = best.m OR per.d = (SELECT min(d) FROM per) ORDER BY 1"
                ),
                format!(
                    "SELECT per.d, per.users, (SELECT count(*) FROM {inline} daily WHERE daily.dt = per.d) c \
                     FROM (SELECT dt, count(*) FROM {inline} x GROUP BY 1) per(d, users), \
                     (SELECT max(users) m FROM (SELECT dt, count(*) FROM {inline} x GROUP BY 1) y(d, users)) best \
                     WHERE per.users = best.m OR per.d = \
                     (SELECT min(d) FROM (SELECT dt, count(*) FROM {inline} x GROUP BY 1) z(d, users)) ORDER BY 1"
                ),
                2,
                "d,users,c\n2026-11-20,2,2\n2026-11-21,2,2\n",
            ),
            // DISTINCT, read twice.
            (
                "WITH us AS (SELECT DISTINCT u FROM seen) SELECT count(*) FROM us a, us b WHERE a.u < b.u"
                    .to_string(),
                "SELECT count(*) FROM (SELECT DISTINCT u FROM seen) a, (SELECT DISTINCT u FROM seen) b WHERE a.u < b.u"
                    .to_string(),
                1,
                "_col0\n3\n",
            ),
            // Read once, not grouped, or with a value of its own at each call: in place.
            (
                format!("WITH {daily} SELECT count(*) FROM daily"),
                format!("SELECT count(*) FROM {inline} d"),
                0,
                "_col0\n5\n",
            ),
            (
                "WITH s AS (SELECT u FROM seen WHERE dt > '2026-11-20') SELECT count(*) FROM s a JOIN s b ON a.u = b.u"
                    .to_string(),
                "SELECT count(*) FROM (SELECT u FROM seen WHERE dt > '2026-11-20') a \
                 JOIN (SELECT u FROM seen WHERE dt > '2026-11-20') b ON a.u = b.u"
                    .to_string(),
                0,
                "_col0\n5\n",
            ),
            (
                "WITH r AS (SELECT u, max(random()) x FROM seen GROUP BY 1) SELECT count(*) FROM r a JOIN r b ON a.u = b.u"
                    .to_string(),
                "SELECT count(*) FROM (SELECT DISTINCT u FROM seen) a JOIN (SELECT DISTINCT u FROM seen) b ON a.u = b.u"
                    .to_string(),
                0,
                "_col0\n3\n",
            ),
            // A query named as the table it reads: its body reads the table.
            (
                "WITH seen AS (SELECT dt, u FROM seen GROUP BY 1, 2) \
                 SELECT count(*) FROM seen a JOIN seen b ON a.u = b.u AND a.dt = b.dt"
                    .to_string(),
                format!("SELECT count(*) FROM {inline} a JOIN {inline} b ON a.u = b.u AND a.dt = b.dt"),
                1,
                "_col0\n5\n",
            ),
        ] {
            let mut statement = parsed(&sql);
            let done = computed_once(&ctx, &mut statement).await;
            assert_eq!(done.names.len(), computed, "{sql}");
            let tables: Vec<String> = done.names.clone();
            drop(done);
            for t in tables {
                assert!(!ctx.table_exist(t.as_str()).unwrap(), "{t} left behind");
            }
            for q in [&sql, &same_as] {
                let (schema, batches) = crate::session::run_sql(&ctx, q).await.unwrap();
                let out = crate::session::render(&schema, &batches, crate::session::Format::Csv)
                    .unwrap();
                assert_eq!(out, want, "{q}");
            }
        }
    }

    /// A `WITH` query whose rows pass the limit, or that fails on its own, stays in place.
    #[tokio::test]
    async fn a_with_query_that_cannot_be_held_stays_in_place() {
        let ctx = session();
        let mut statement = parsed(
            "WITH big AS (SELECT x, repeat('y', 1000) AS pad FROM UNNEST(sequence(1, 300000)) AS t(x) GROUP BY 1) \
             SELECT count(*) FROM big a JOIN big b ON a.x = b.x",
        );
        assert_eq!(computed_once(&ctx, &mut statement).await.names.len(), 0);
        let mut statement = parsed(
            "WITH bad AS (SELECT u, count(*) / 0 AS n FROM seen GROUP BY 1) \
             SELECT count(*) FROM bad a JOIN bad b ON a.u = b.u",
        );
        assert_eq!(computed_once(&ctx, &mut statement).await.names.len(), 0);
        let err = crate::session::run_sql(
            &ctx,
            "WITH bad AS (SELECT u, count(*) / 0 AS n FROM seen GROUP BY 1) \
             SELECT sum(a.n) FROM bad a JOIN bad b ON a.u = b.u",
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("Division by zero"), "{err}");
    }
}

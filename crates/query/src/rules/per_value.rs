//! Functions of one low-cardinality string column computed once per distinct value of a batch.
//!
//! `split_part(context_locale, '-', 1)`, `regexp_extract(context_app_version, '^[0-9]+')` or
//! `split(event_type, '_')` see a handful of values in a batch of thousands of rows: the string
//! columns are read from dictionary-encoded Parquet, and files are sorted by event type. Each
//! such expression (deterministic, reading one `Utf8View` column and nothing else) is
//! evaluated on the batch's distinct values, then spread back to the rows.
//!
//! Distinct values are found by their 16-byte views: equal views are equal strings (a short
//! string is held in its view; a long one by buffer and offset, which the Parquet reader shares
//! between the rows of one dictionary value), so the answer never changes; two equal long
//! strings at different places only cost one extra evaluation. A batch with more distinct views
//! than [`values_allowed`] (an eighth of its rows, at most [`MAX_VALUES`]) is evaluated as
//! written, and after a few such batches the expression stops looking (a high-cardinality
//! column such as `user_id`). The limit follows the batch, not a column's usual cardinality:
//! `split_part(context_ip, '.', 4)` over a few hundred addresses a batch is worth it as much as
//! over a handful of locales.
//!
//! Applied to the expressions of projections, to the group keys, the arguments (of aggregates
//! without an ordering) and the FILTER clauses of aggregations that read their input directly
//! (partial or single mode), and to the `IN` lists, `LIKE`s and tests of functions (`upper(event_type) =
//! 'PURCHASE'`, `regexp_like(context_locale, '^de')`) of the predicate a Parquet scan evaluates
//! (pruning by statistics still sees the predicate as written), and the same in a filter over
//! batches. Only a function or a CASE is wrapped: a bare comparison costs no more than finding
//! the distinct values. A bare string equality against a literal is compared by views instead
//! (`view_eq.rs`), in projections, filters and scan predicates.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{take, take_record_batch};
use arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr,
    Literal, NotExpr,
};
use datafusion::physical_expr::{PhysicalExpr, projection::ProjectionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::ProjectionExec;

/// Distinct values a batch may have for the expression to be evaluated once per value, at most.
const MAX_VALUES: usize = 1024;
/// Rows per distinct value a batch needs, at least: fewer, and finding the values and spreading
/// the answers back costs about what evaluating every row does.
const ROWS_PER_VALUE: usize = 8;
/// Distinct values below which a batch is evaluated as written (a batch of under 128 rows).
const MIN_VALUES: usize = 16;
/// Batches over their limit after which an expression stops looking.
const GIVE_UP_AFTER: u32 = 3;
/// Slots of the table that finds a row's value: a power of two, at least four per value.
const SLOTS: usize = 4096;
const _: () =
    assert!(SLOTS.is_power_of_two() && SLOTS >= 4 * MAX_VALUES && MAX_VALUES < u16::MAX as usize);

/// Distinct values a batch of `rows` rows may have for the expression to be evaluated once per
/// value.
fn values_allowed(rows: usize) -> usize {
    (rows / ROWS_PER_VALUE).min(MAX_VALUES)
}

/// A view's slot in that table (Fibonacci hashing of its two halves).
fn slot_of(view: u128) -> usize {
    let folded = (view as u64) ^ ((view >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

#[derive(Debug)]
pub struct OncePerValue {
    inner: Arc<dyn PhysicalExpr>,
    column: usize,
    misses: AtomicU32,
}

impl OncePerValue {
    fn new(inner: Arc<dyn PhysicalExpr>, column: usize) -> Self {
        Self {
            inner,
            column,
            misses: AtomicU32::new(0),
        }
    }
}

impl PartialEq for OncePerValue {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column && self.inner.as_ref() == other.inner.as_ref()
    }
}
impl Eq for OncePerValue {}
impl Hash for OncePerValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.column.hash(state);
        self.inner.hash(state);
    }
}

impl fmt::Display for OncePerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "per_value({})", self.inner)
    }
}

impl PhysicalExpr for OncePerValue {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        let allowed = values_allowed(rows);
        if self.misses.load(Ordering::Relaxed) >= GIVE_UP_AFTER || allowed < MIN_VALUES {
            return self.inner.evaluate(batch);
        }
        // A batch without the column (see `ViewEq::evaluate`) is the inner expression's.
        let Some(column) = batch
            .columns()
            .get(self.column)
            .and_then(|c| c.as_string_view_opt())
        else {
            return self.inner.evaluate(batch);
        };
        let views = column.views();
        let nulls = column.nulls();
        // The first row of each distinct value (NULL is one value), and each row's value. Values
        // are found through a small open-addressing table of their views: one hash and, most of
        // the time, one compare per row, however many values the batch has.
        let mut keys: Vec<Option<u128>> = Vec::with_capacity(allowed);
        let mut firsts: Vec<u32> = Vec::with_capacity(allowed);
        let mut which: Vec<u32> = Vec::with_capacity(rows);
        let mut slots = [u16::MAX; SLOTS];
        let mut null_value: Option<u32> = None;
        let mut last: Option<(u128, u32)> = None;
        for (i, view) in views.iter().enumerate() {
            let key = *view;
            if nulls.is_some_and(|n| n.is_null(i)) {
                let v = match null_value {
                    Some(v) => v,
                    None => {
                        if keys.len() == allowed {
                            self.misses.fetch_add(1, Ordering::Relaxed);
                            return self.inner.evaluate(batch);
                        }
                        keys.push(None);
                        firsts.push(i as u32);
                        let v = (keys.len() - 1) as u32;
                        null_value = Some(v);
                        v
                    }
                };
                which.push(v);
                continue;
            }
            if let Some((k, v)) = last
                && k == key
            {
                which.push(v);
                continue;
            }
            let mut slot = slot_of(key);
            let v = loop {
                let at = slots[slot];
                if at == u16::MAX {
                    if keys.len() == allowed {
                        self.misses.fetch_add(1, Ordering::Relaxed);
                        return self.inner.evaluate(batch);
                    }
                    keys.push(Some(key));
                    firsts.push(i as u32);
                    slots[slot] = (keys.len() - 1) as u16;
                    break (keys.len() - 1) as u32;
                }
                if keys[at as usize] == Some(key) {
                    break u32::from(at);
                }
                slot = (slot + 1) & (SLOTS - 1);
            };
            last = Some((key, v));
            which.push(v);
        }
        let distinct = take_record_batch(batch, &UInt32Array::from(firsts))?;
        let values = self
            .inner
            .evaluate(&distinct)?
            .into_array(distinct.num_rows())?;
        Ok(ColumnarValue::Array(take(
            &values,
            &UInt32Array::from(which),
            None,
        )?))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [inner] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("one child expected".to_string())
        })?;
        // The column is read from the new expression: a rewrite may have renumbered it.
        let mut found = None;
        if !single_column(&inner, &mut found) {
            return Ok(inner);
        }
        match found {
            Some(column) => Ok(Arc::new(Self::new(inner, column))),
            None => Ok(inner),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }

    /// The expression as written, for what reads a predicate's shape rather than evaluating
    /// it: the Parquet reader prunes row groups and pages through a snapshot.
    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(Arc::clone(&self.inner)))
    }
}

/// The one column `e` reads, when it reads exactly one and is made only of deterministic
/// functions, CASE and literals over it.
fn single_column(e: &Arc<dyn PhysicalExpr>, found: &mut Option<usize>) -> bool {
    if let Some(c) = e.downcast_ref::<Column>() {
        return match found {
            Some(i) => *i == c.index(),
            None => {
                *found = Some(c.index());
                true
            }
        };
    }
    if e.downcast_ref::<Literal>().is_some() {
        return true;
    }
    let deterministic = match e.downcast_ref::<ScalarFunctionExpr>() {
        Some(f) => f.fun().signature().volatility == Volatility::Immutable,
        None => {
            e.downcast_ref::<CaseExpr>().is_some()
                || e.downcast_ref::<BinaryExpr>().is_some()
                || e.downcast_ref::<InListExpr>().is_some()
                || e.downcast_ref::<IsNullExpr>().is_some()
                || e.downcast_ref::<IsNotNullExpr>().is_some()
                || e.downcast_ref::<NotExpr>().is_some()
                || e.downcast_ref::<CastExpr>().is_some()
                || e.downcast_ref::<LikeExpr>().is_some()
        }
    };
    deterministic && e.children().into_iter().all(|c| single_column(c, found))
}

/// Worth evaluating once per value: a function, or a CASE that calls one or matches patterns or
/// lists. A CASE of bare comparisons (`CASE WHEN source = 'web' THEN 1 END`) costs less than
/// finding the distinct values in a projection, once its comparisons are made on views
/// (`view_eq.rs`); as a group key, any CASE is evaluated once per value (`wrap`'s `any_case`):
/// grouping by such a CASE over a day took twice as long as grouping by the column.
fn costly(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<ScalarFunctionExpr>().is_some()
        || (e.downcast_ref::<CaseExpr>().is_some() && works(e))
}

/// Whether `e` calls a function, matches a pattern or looks a value up in a list.
fn works(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<ScalarFunctionExpr>().is_some()
        || e.downcast_ref::<LikeExpr>().is_some()
        || e.downcast_ref::<InListExpr>().is_some()
        || e.children().into_iter().any(works)
}

/// Whether `e` is true or false of a row by its form: a comparison, a connective, a negation,
/// a NULL test, or a function that answers with a boolean.
fn predicate(e: &Arc<dyn PhysicalExpr>) -> bool {
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        use datafusion::logical_expr::Operator as O;
        return matches!(
            b.op(),
            O::Eq
                | O::NotEq
                | O::Lt
                | O::LtEq
                | O::Gt
                | O::GtEq
                | O::IsDistinctFrom
                | O::IsNotDistinctFrom
                | O::And
                | O::Or
        );
    }
    if let Some(f) = e.downcast_ref::<ScalarFunctionExpr>() {
        return f.return_type() == &DataType::Boolean;
    }
    e.downcast_ref::<NotExpr>().is_some()
        || e.downcast_ref::<IsNullExpr>().is_some()
        || e.downcast_ref::<IsNotNullExpr>().is_some()
}

/// `e` with `f` applied to each of its children, rebuilt only when one of them changed.
pub(super) fn map_children(
    e: &Arc<dyn PhysicalExpr>,
    mut f: impl FnMut(&Arc<dyn PhysicalExpr>) -> Result<Transformed<Arc<dyn PhysicalExpr>>>,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    let mut changed = false;
    let mut new = Vec::new();
    for c in e.children() {
        let t = f(c)?;
        changed |= t.transformed;
        new.push(t.data);
    }
    if !changed {
        return Ok(Transformed::no(Arc::clone(e)));
    }
    Ok(Transformed::yes(Arc::clone(e).with_new_children(new)?))
}

/// `e` with its largest parts that qualify wrapped (any CASE over one column with `any_case`).
fn wrap(
    e: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
    any_case: bool,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    if e.downcast_ref::<Column>().is_some() || e.downcast_ref::<Literal>().is_some() {
        return Ok(Transformed::no(Arc::clone(e)));
    }
    let mut found = None;
    // A nested result (an array from `split`) costs as much to spread back as to compute.
    if (costly(e) || (any_case && e.downcast_ref::<CaseExpr>().is_some()))
        && single_column(e, &mut found)
        && let Some(i) = found
        && schema.fields().get(i).map(|f| f.data_type()) == Some(&DataType::Utf8View)
        && e.data_type(schema).is_ok_and(|t| !t.is_nested())
    {
        return Ok(Transformed::yes(Arc::new(OncePerValue::new(
            Arc::clone(e),
            i,
        ))));
    }
    if e.downcast_ref::<OncePerValue>().is_some() {
        return Ok(Transformed::no(Arc::clone(e)));
    }
    map_children(e, |c| wrap(c, schema, any_case))
}

/// A scan's pushed-down predicate with its `IN` lists, `LIKE`s and tests of functions
/// (`upper(event_type) = 'PURCHASE'`, `strpos(context_user_agent, 'Chrome') > 0`) over one
/// column wrapped: the Parquet reader evaluates them row by row on the decoded strings.
/// Whether the column holds strings is known only from the batch, where a column of another
/// type is evaluated as written.
fn wrap_filter(e: &Arc<dyn PhysicalExpr>) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    let matching = e.downcast_ref::<InListExpr>().is_some()
        || e.downcast_ref::<LikeExpr>().is_some()
        || (predicate(e) && works(e));
    let mut found = None;
    if matching
        && single_column(e, &mut found)
        && let Some(i) = found
    {
        return Ok(Transformed::yes(Arc::new(OncePerValue::new(
            Arc::clone(e),
            i,
        ))));
    }
    if e.downcast_ref::<OncePerValue>().is_some() {
        return Ok(Transformed::no(Arc::clone(e)));
    }
    map_children(e, wrap_filter)
}

/// A filter's predicate (over batches, or in a scan) with its `IN` lists and `LIKE`s run once
/// per value and its equalities below the top conjuncts compared by views.
fn rewrite_predicate(
    e: &Arc<dyn PhysicalExpr>,
    schema: Option<&Schema>,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    let t = wrap_filter(e)?;
    let v = super::view_eq::rewrite_predicate(&t.data, schema)?;
    Ok(Transformed::new_transformed(
        v.data,
        t.transformed || v.transformed,
    ))
}

/// `scan` with its Parquet predicate's string matches wrapped, when it has any.
fn scan_with_wrapped_filter(scan: &DataSourceExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
        return Ok(None);
    };
    let Some(source) = config.file_source().downcast_ref::<ParquetSource>() else {
        return Ok(None);
    };
    let Some(predicate) = datafusion::datasource::physical_plan::FileSource::filter(source) else {
        return Ok(None);
    };
    let t = rewrite_predicate(&predicate, None)?;
    if !t.transformed {
        return Ok(None);
    }
    let source = Arc::new(source.with_predicate(t.data));
    let config = FileScanConfigBuilder::from(config.clone())
        .with_source(source)
        .build();
    Ok(Some(Arc::new(
        scan.clone().with_data_source(Arc::new(config)),
    )))
}

#[derive(Debug, Default)]
pub struct PerValueStrings;

impl PhysicalOptimizerRule for PerValueStrings {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite_plan(plan, |_| true)
    }

    fn name(&self) -> &str {
        "per_value_strings"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The projections' part of [`PerValueStrings`], run before DataFusion merges projections into
/// the Parquet scans below them: a merged projection (`source = 'web' AS __common_expr_1`, which
/// common subexpression elimination makes of `count_if(source = 'web')` beside
/// `sum(if(source = 'web', …))`) is evaluated by the reader, where [`PerValueStrings`], run
/// last, does not look. The wrapped expressions keep reading the right column when the merge
/// renumbers it.
#[derive(Debug, Default)]
pub struct PerValueProjections;

impl PhysicalOptimizerRule for PerValueProjections {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite_plan(plan, |node| node.downcast_ref::<ProjectionExec>().is_some())
    }

    fn name(&self) -> &str {
        "per_value_projections"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with the nodes that `which` picks rewritten by [`rewrite_node`], bottom up.
fn rewrite_plan(
    plan: Arc<dyn ExecutionPlan>,
    which: impl Fn(&Arc<dyn ExecutionPlan>) -> bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if !which(&node) {
            return Ok(Transformed::no(node));
        }
        let t = rewrite_node(Arc::clone(&node))?;
        // The nodes above were planned against this one's ordering and constants, which
        // DataFusion reads from the expressions: a wrapped group key is no longer the
        // expression a filter below made constant. Keep such a node as it was.
        if t.transformed && !same_properties(&node, &t.data) {
            return Ok(Transformed::no(node));
        }
        Ok(t)
    })
    .map(|t| t.data)
}

/// Whether `b` gives the plan above it the same orderings, constants, equal columns and
/// partitioning as `a`, as DataFusion describes them.
fn same_properties(a: &Arc<dyn ExecutionPlan>, b: &Arc<dyn ExecutionPlan>) -> bool {
    let (pa, pb) = (a.properties(), b.properties());
    pa.output_ordering() == pb.output_ordering()
        && pa.equivalence_properties().to_string() == pb.equivalence_properties().to_string()
        && pa.output_partitioning().to_string() == pb.output_partitioning().to_string()
}

/// One node with its expressions rewritten (see the module's documentation).
fn rewrite_node(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = node.downcast_ref::<DataSourceExec>() {
        return Ok(match scan_with_wrapped_filter(scan)? {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(node),
        });
    }
    if let Some(f) = node.downcast_ref::<FilterExec>() {
        let schema = f.input().schema();
        let t = rewrite_predicate(f.predicate(), Some(&schema))?;
        if !t.transformed {
            return Ok(Transformed::no(node));
        }
        let new = FilterExecBuilder::from(f).with_predicate(t.data).build()?;
        return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
    }
    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
        let schema = p.input().schema();
        let mut changed = false;
        let mut exprs = Vec::with_capacity(p.expr().len());
        for pe in p.expr() {
            let t = wrap(&pe.expr, &schema, false)?;
            let v = super::view_eq::rewrite(&t.data, Some(&schema))?;
            changed |= t.transformed || v.transformed;
            exprs.push(ProjectionExpr {
                expr: v.data,
                alias: pe.alias.clone(),
            });
        }
        if !changed {
            return Ok(Transformed::no(node));
        }
        let new = ProjectionExec::try_new(exprs, Arc::clone(p.input()))?;
        return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
    }
    if let Some(a) = node.downcast_ref::<AggregateExec>() {
        if !matches!(a.mode(), AggregateMode::Partial | AggregateMode::Single)
            || a.group_expr().has_grouping_set()
        {
            return Ok(Transformed::no(node));
        }
        let schema = a.input().schema();
        let mut changed = false;
        let mut keys = Vec::with_capacity(a.group_expr().expr().len());
        for (e, name) in a.group_expr().expr() {
            let t = wrap(e, &schema, true)?;
            changed |= t.transformed;
            keys.push((t.data, name.clone()));
        }
        // Arguments of aggregates that take no ordering (`count(CASE WHEN … END)`).
        let mut aggregates = Vec::with_capacity(a.aggr_expr().len());
        for f in a.aggr_expr() {
            if !f.order_bys().is_empty() {
                aggregates.push(Arc::clone(f));
                continue;
            }
            let mut args = Vec::new();
            let mut arg_changed = false;
            for e in f.expressions() {
                let t = wrap(&e, &schema, false)?;
                let v = super::view_eq::rewrite(&t.data, Some(&schema))?;
                arg_changed |= t.transformed || v.transformed;
                args.push(v.data);
            }
            match arg_changed
                .then(|| f.with_new_expressions(args, vec![]))
                .flatten()
            {
                Some(new) => {
                    changed = true;
                    aggregates.push(Arc::new(new));
                }
                None => aggregates.push(Arc::clone(f)),
            }
        }
        // Aggregates' FILTER clauses (`count(*) FILTER (WHERE source = 'web')`): no planner
        // reads them as constants, so a bare equality is compared by views too.
        let mut filters = Vec::with_capacity(a.filter_expr().len());
        for f in a.filter_expr() {
            let Some(e) = f else {
                filters.push(None);
                continue;
            };
            let t = wrap_filter(e)?;
            let v = super::view_eq::rewrite(&t.data, Some(&schema))?;
            changed |= t.transformed || v.transformed;
            filters.push(Some(v.data));
        }
        if !changed {
            return Ok(Transformed::no(node));
        }
        let group = PhysicalGroupBy::new(
            keys,
            a.group_expr().null_expr().to_vec(),
            a.group_expr().groups().to_vec(),
            false,
        );
        let new = AggregateExec::try_new(
            *a.mode(),
            group,
            aggregates,
            filters,
            Arc::clone(a.input()),
            a.input_schema(),
        )?
        .with_limit_options(a.limit_options());
        return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
    }
    Ok(Transformed::no(node))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::physical_plan::aggregates::AggregateExec;

    use super::PerValueStrings;

    /// The query's rows, and its physical plan, with or without the rule.
    async fn run(rule: bool, sql: &str) -> (String, String) {
        let mut state = SessionStateBuilder::new().with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(PerValueStrings));
        }
        let ctx = SessionContext::new_with_state(state.build());
        // A low-cardinality column of long strings with NULLs, and a high-cardinality one.
        ctx.sql(
            "CREATE TABLE t AS SELECT arrow_cast(CASE WHEN value % 7 = 0 THEN NULL \
             ELSE concat('k', value % 5, '-a-suffix-longer-than-twelve') END, 'Utf8View') AS s, \
             arrow_cast(concat('u', value), 'Utf8View') AS u, value AS n \
             FROM generate_series(1, 30000)",
        )
        .await
        .unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        // An aggregate shows its name as written: its arguments and filters are listed too.
        let mut args = String::new();
        plan.apply(|node| {
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                for f in a.aggr_expr() {
                    for e in f.expressions() {
                        args.push_str(&format!("{e}\n"));
                    }
                }
                for e in a.filter_expr().iter().flatten() {
                    args.push_str(&format!("{e}\n"));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let plan = format!("{}{args}", displayable(plan.as_ref()).indent(true));
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (rows, plan)
    }

    #[tokio::test]
    async fn answers_are_those_of_the_expression_as_written() {
        for (sql, wrapped) in [
            (
                "SELECT split_part(s, '-', 1) AS a, upper(substr(s, 2, 1)) AS b, count(*) AS c \
                 FROM t GROUP BY 1, 2 ORDER BY 1, 2",
                true,
            ),
            (
                "SELECT n, lower(s) AS l, length(s) + 1 AS len FROM t WHERE n % 997 = 0 ORDER BY n",
                true,
            ),
            (
                "SELECT n % 3 AS g, count(CASE WHEN split_part(s, '-', 1) = 'k1' THEN 1 END) AS c, \
                 sum(CASE WHEN s IS NULL THEN 0 ELSE 1 END) AS d FROM t GROUP BY 1 ORDER BY 1",
                true,
            ),
            // A group key that is a CASE of bare comparisons (in a projection, its comparisons
            // are made on views instead).
            (
                "SELECT CASE WHEN s = 'k1-a-suffix-longer-than-twelve' THEN 1 WHEN s IS NULL \
                 THEN 2.5 ELSE 0 END AS k, count(*) AS c FROM t GROUP BY 1 ORDER BY 1",
                true,
            ),
            // Over 64 values a batch: evaluated as written, then no longer looked at.
            (
                "SELECT max(upper(u)) AS m, count(DISTINCT lower(u)) AS d FROM t",
                false,
            ),
            ("SELECT upper(u) AS x FROM t ORDER BY n DESC LIMIT 3", true),
            // Tests of functions in a filter: a comparison, a boolean function, a NULL test.
            (
                "SELECT count(*) AS c, sum(n) AS s FROM t WHERE upper(split_part(s, '-', 1)) = 'K3' \
                 OR starts_with(lower(s), 'k1') OR length(s) IS NULL",
                true,
            ),
            (
                "SELECT n FROM t WHERE strpos(s, '2-a') > 0 AND n < 100 ORDER BY n",
                true,
            ),
            // An aggregate's FILTER: a test of a function, an equality, a LIKE.
            (
                "SELECT n % 3 AS g, count(*) FILTER (WHERE upper(s) = 'K1-A-SUFFIX-LONGER-THAN-TWELVE') \
                 AS a, sum(n) FILTER (WHERE s = 'k2-a-suffix-longer-than-twelve') AS b, \
                 count(*) FILTER (WHERE s LIKE 'k3%' OR s IS NULL) AS c FROM t GROUP BY 1 ORDER BY 1",
                true,
            ),
        ] {
            let (with, plan) = run(true, sql).await;
            let (without, _) = run(false, sql).await;
            assert_eq!(with, without, "{sql}\n{plan}");
            if wrapped {
                assert!(plan.contains("per_value("), "{sql}\n{plan}");
            }
        }
    }

    /// `t.parquet` in `dir`: `s` is `k0` to `k4` or NULL (every 7th row), `n` is 1 to 30,000.
    async fn parquet_of_keys(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join("t.parquet");
        SessionContext::new()
            .sql(&format!(
                "COPY (SELECT CASE WHEN value % 7 = 0 THEN NULL ELSE concat('k', value % 5) END AS s, \
                 value AS n FROM generate_series(1, 30000)) TO '{}' STORED AS PARQUET",
                path.display()
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        path
    }

    #[tokio::test]
    async fn a_parquet_scans_in_list_like_and_tests_run_per_value_with_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = parquet_of_keys(&dir).await;
        for rule in [true, false] {
            let mut config = datafusion::prelude::SessionConfig::new();
            config.options_mut().execution.parquet.pushdown_filters = true;
            let mut state = SessionStateBuilder::new()
                .with_config(config)
                .with_default_features();
            if rule {
                state = state.with_physical_optimizer_rule(Arc::new(PerValueStrings));
            }
            let ctx = SessionContext::new_with_state(state.build());
            ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
                .await
                .unwrap();
            let sql = "SELECT count(*), sum(n) FROM t WHERE s IN ('k1', 'k3') OR s LIKE '%4' \
                       OR upper(s) = 'K100'";
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.clone().create_physical_plan().await.unwrap();
            let plan = displayable(plan.as_ref()).indent(true).to_string();
            assert_eq!(plan.contains("per_value("), rule, "{plan}");
            let rows = pretty_format_batches(&df.collect().await.unwrap())
                .unwrap()
                .to_string();
            // Of 1..30000, the values with n % 5 in {1, 3, 4} and n % 7 != 0.
            let (count, sum) = (1..=30000_i64)
                .filter(|n| n % 7 != 0 && [1, 3, 4].contains(&(n % 5)))
                .fold((0, 0), |(c, s), n| (c + 1, s + n));
            assert!(rows.contains(&format!("| {count} ")), "{rows}");
            assert!(rows.contains(&format!("| {sum} ")), "{rows}");
        }
    }

    /// Up to the batch's limit of values in any order (colliding slots included), NULLs, and
    /// one value too many: always the expression's own answer. The limit is an eighth of the
    /// rows, at most [`super::MAX_VALUES`].
    #[test]
    fn every_row_gets_its_own_values_answer() {
        use arrow::array::{Array, StringViewArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use datafusion::physical_expr::PhysicalExpr;
        use datafusion::prelude::SessionContext;
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let ctx = SessionContext::new();
        let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let upper = ctx
            .create_physical_expr(
                datafusion::functions::string::expr_fn::upper(datafusion::prelude::col("s")),
                &df_schema,
            )
            .unwrap();
        // Batches of 1000 rows (a limit of 125 values) and of 10,000 (the maximum).
        for rows in [1000, 10 * super::MAX_VALUES] {
            let allowed = super::values_allowed(rows);
            // With NULL, as many values as allowed; then one too many.
            for values in [allowed - 1, allowed] {
                let texts: Vec<Option<String>> = (0..rows)
                    .map(|i| {
                        // A scrambled order, so that neighbouring rows rarely share a value;
                        // 7919 is prime, so any `values + 1` rows in a row take every value.
                        let v = (i * 7919) % (values + 1);
                        // Short texts, held in their views: equal texts have equal views.
                        (v > 0).then(|| format!("v{v}"))
                    })
                    .collect();
                let array = StringViewArray::from_iter(texts.iter().map(|r| r.as_deref()));
                let batch =
                    arrow::array::RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(array)])
                        .unwrap();
                let wrapped = super::OncePerValue::new(Arc::clone(&upper), 0);
                let got = wrapped.evaluate(&batch).unwrap().into_array(rows).unwrap();
                let want = upper.evaluate(&batch).unwrap().into_array(rows).unwrap();
                assert_eq!(got.as_ref(), want.as_ref(), "{rows} rows, {values} values");
                assert_eq!(
                    got.null_count(),
                    texts.iter().filter(|r| r.is_none()).count()
                );
                let missed = wrapped.misses.load(std::sync::atomic::Ordering::Relaxed);
                assert_eq!(
                    missed,
                    u32::from(values == allowed),
                    "{rows} rows, {values} values"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_projection_merged_into_its_scan_keeps_its_rewrite_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = parquet_of_keys(&dir).await;
        // One expression used by two aggregates becomes a common expression, projected by the
        // scan itself once DataFusion merges the projection into it.
        let sql = "SELECT n % 3 AS g, count(CASE WHEN upper(s) = 'K1' THEN 1 END) AS a, \
                   sum(CASE WHEN upper(s) = 'K1' THEN 0 ELSE 1 END) AS b FROM t GROUP BY 1 ORDER BY 1";
        let mut answers = Vec::new();
        for rule in [true, false] {
            let mut rules =
                datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
            if rule {
                let at = rules
                    .iter()
                    .position(|r| r.name() == "ProjectionPushdown")
                    .unwrap();
                rules.insert(at, Arc::new(super::PerValueProjections));
            }
            // One partition: no repartition between the projection and the scan.
            let state = SessionStateBuilder::new()
                .with_config(datafusion::prelude::SessionConfig::new().with_target_partitions(1))
                .with_default_features()
                .with_physical_optimizer_rules(rules)
                .build();
            let ctx = SessionContext::new_with_state(state);
            ctx.register_parquet("t", path.to_str().unwrap(), Default::default())
                .await
                .unwrap();
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.clone().create_physical_plan().await.unwrap();
            let plan = displayable(plan.as_ref()).indent(true).to_string();
            let scan = plan
                .lines()
                .find(|l| l.contains("DataSourceExec"))
                .unwrap_or_default();
            assert_eq!(scan.contains("per_value(upper("), rule, "{plan}");
            answers.push(
                pretty_format_batches(&df.collect().await.unwrap())
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(answers[0], answers[1]);
        assert!(answers[0].contains("| 0 | 1714 | 8286 |"), "{}", answers[0]);
    }
}

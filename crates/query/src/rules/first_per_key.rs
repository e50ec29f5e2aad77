//! The first row of each window partition, without sorting every row.
//!
//! "The first event of each user", "the latest version of each order": analysts write it as
//!
//! ```sql
//! SELECT … FROM (SELECT …, row_number() OVER (PARTITION BY k ORDER BY o) AS rn FROM …) WHERE rn = 1
//! ```
//!
//! DataFusion plans a sort of every row by `(k, o)` under the window, then numbers them all and
//! keeps the ones numbered 1. [`FirstPerKey`] replaces that sort and the window by
//! [`FirstPerKeyExec`]: one pass that keeps, per key, the row that sorts first by `o` (a hash map
//! from the key to its best row), then sorts only those rows by `(k, o)` and numbers them (each
//! is 1). The filter still runs, so the plan above sees the same schema, ordering and
//! partitioning, and the same rows: any row the filter keeps sorts first in its partition.
//! (DataFusion's window keeps a state per partition of the window, found by the partition's
//! values: with tens of thousands of users of one row each, numbering took longer than
//! finding the rows.)
//!
//! It applies when the filter (possibly through a projection) requires the row number to be at
//! most `n`, up to [`MAX_PER_KEY`] (`rn = 1`, `rn <= 3`, `rn < 4`, `rn = 2`, alone or beside
//! other conditions): the operator then keeps the `n` rows of each key that sort first (the
//! latest three events of each user), numbers them 1 to `n`, and the filter picks among them as
//! before. The window must compute only that `row_number()`, with a
//! `PARTITION BY`, and its input be a sort by the partition keys then the order keys. Rows that
//! tie on the order keys make `row_number()` pick any of them; so does this operator (the first
//! it reads).

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::utils::split_conjunction;
use datafusion::physical_expr::window::StandardWindowExpr;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
    replace_children_if_necessary,
};
use futures::{StreamExt, TryStreamExt};

/// Rows per key the operator keeps at most: a filter `rn <= n` with a larger `n` keeps the sort.
const MAX_PER_KEY: usize = 16;

/// Replaces the sort under a `row_number() … = 1` (or `<= n`) window by [`FirstPerKeyExec`].
#[derive(Debug, Default)]
pub struct FirstPerKey;

impl PhysicalOptimizerRule for FirstPerKey {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| match rewrite(&node)? {
            Some(new) => Ok(Transformed::yes(new)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "FirstPerKey"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The filter with its window's sort replaced, when the shape fits.
fn rewrite(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(filter) = node.downcast_ref::<FilterExec>() else {
        return Ok(None);
    };
    // The columns the filter bounds, as columns of its input, each with its bound.
    let bounded: Vec<(usize, usize)> = split_conjunction(filter.predicate())
        .into_iter()
        .filter_map(at_most)
        .collect();
    if bounded.is_empty() {
        return Ok(None);
    }
    // Through at most one projection of plain columns.
    let (projection, window_node) = match filter.input().downcast_ref::<ProjectionExec>() {
        Some(p) => (Some(filter.input()), p.input()),
        None => (None, filter.input()),
    };
    let Some(window) = window_node.downcast_ref::<BoundedWindowAggExec>() else {
        return Ok(None);
    };
    let [expr] = window.window_expr() else {
        return Ok(None);
    };
    let row_number_at = window.input().schema().fields().len();
    let refers_to_row_number = |i: usize| match projection {
        None => i == row_number_at,
        Some(p) => p
            .downcast_ref::<ProjectionExec>()
            .and_then(|p| p.expr().get(i))
            .and_then(|e| e.expr.downcast_ref::<Column>())
            .is_some_and(|c| c.index() == row_number_at),
    };
    // The least bound on the row number.
    let Some(per_key) = bounded
        .into_iter()
        .filter(|(c, _)| refers_to_row_number(*c))
        .map(|(_, n)| n)
        .min()
    else {
        return Ok(None);
    };
    if !is_row_number(expr) {
        return Ok(None);
    }
    let partition_by = expr.partition_by();
    let Some(sort) = window.input().downcast_ref::<SortExec>() else {
        return Ok(None);
    };
    let keys = partition_by.len();
    let ordering = sort.expr();
    if keys == 0
        || sort.fetch().is_some()
        || !sort.preserve_partitioning()
        || ordering.len() <= keys
        || !ordering
            .iter()
            .zip(partition_by)
            .all(|(s, p)| s.expr.as_ref() == p.as_ref())
    {
        return Ok(None);
    }
    // In the window's place: its schema (the input's columns, then the row number), ordering
    // and partitioning.
    let window: Arc<dyn ExecutionPlan> = Arc::new(FirstPerKeyExec::new(
        Arc::clone(sort.input()),
        ordering.clone(),
        keys,
        per_key,
        Arc::clone(window.properties()),
    ));
    let below_filter = match projection {
        Some(p) => replace_children_if_necessary(Arc::clone(p), vec![window])?,
        None => window,
    };
    Ok(Some(replace_children_if_necessary(
        Arc::clone(node),
        vec![below_filter],
    )?))
}

/// The column a conjunct bounds, and the bound `n` (from 1 to [`MAX_PER_KEY`]): `c = n`,
/// `c <= n` or `c < n + 1` (either way round, through casts).
fn at_most(conjunct: &Arc<dyn PhysicalExpr>) -> Option<(usize, usize)> {
    let b = conjunct.downcast_ref::<BinaryExpr>()?;
    let (column, op, value) = match (column_of(b.left()), literal_of(b.right())) {
        (Some(c), Some(v)) => (c, *b.op(), v),
        _ => (column_of(b.right())?, b.op().swap()?, literal_of(b.left())?),
    };
    let n = match op {
        Operator::Eq | Operator::LtEq => value,
        Operator::Lt => value - 1,
        _ => return None,
    };
    (1..=MAX_PER_KEY as i128)
        .contains(&n)
        .then_some((column, n as usize))
}

fn column_of(e: &Arc<dyn PhysicalExpr>) -> Option<usize> {
    if let Some(c) = e.downcast_ref::<CastExpr>() {
        return column_of(c.expr());
    }
    e.downcast_ref::<Column>().map(Column::index)
}

fn literal_of(e: &Arc<dyn PhysicalExpr>) -> Option<i128> {
    if let Some(c) = e.downcast_ref::<CastExpr>() {
        return literal_of(c.expr());
    }
    match e.downcast_ref::<Literal>()?.value() {
        ScalarValue::Int8(Some(v)) => Some(i128::from(*v)),
        ScalarValue::Int16(Some(v)) => Some(i128::from(*v)),
        ScalarValue::Int32(Some(v)) => Some(i128::from(*v)),
        ScalarValue::Int64(Some(v)) => Some(i128::from(*v)),
        ScalarValue::UInt8(Some(v)) => Some(i128::from(*v)),
        ScalarValue::UInt16(Some(v)) => Some(i128::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(i128::from(*v)),
        ScalarValue::UInt64(Some(v)) => Some(i128::from(*v)),
        _ => None,
    }
}

fn is_row_number(expr: &Arc<dyn datafusion::physical_expr::window::WindowExpr>) -> bool {
    expr.as_any()
        .downcast_ref::<StandardWindowExpr>()
        .and_then(|s| {
            s.get_standard_func_expr()
                .as_any()
                .downcast_ref::<WindowUDFExpr>()
                .map(|u| u.fun().name() == "row_number")
        })
        .unwrap_or(false)
}

/// Per partition of its input, the first `per_key` rows of each key by the order keys, sorted
/// by `(keys, order keys)` and numbered from 1 within their key: what a sort and a
/// `row_number()` window would give, less every row that is not among the first of its key.
#[derive(Debug)]
pub struct FirstPerKeyExec {
    input: Arc<dyn ExecutionPlan>,
    /// The partition keys, then the order keys.
    ordering: LexOrdering,
    keys: usize,
    per_key: usize,
    /// The replaced window's: same schema, ordering and partitioning.
    properties: Arc<PlanProperties>,
}

impl FirstPerKeyExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        ordering: LexOrdering,
        keys: usize,
        per_key: usize,
        properties: Arc<PlanProperties>,
    ) -> Self {
        Self {
            input,
            ordering,
            keys,
            per_key,
            properties,
        }
    }
}

impl DisplayAs for FirstPerKeyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let exprs: Vec<String> = self.ordering.iter().map(|e| e.to_string()).collect();
        write!(
            f,
            "FirstPerKeyExec: keys=[{}], order=[{}], per_key={}",
            exprs[..self.keys].join(", "),
            exprs[self.keys..].join(", "),
            self.per_key
        )
    }
}

impl ExecutionPlan for FirstPerKeyExec {
    fn name(&self) -> &str {
        "FirstPerKeyExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for e in self.ordering.iter() {
            if f(&e.expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().expect("one child");
        Ok(Arc::new(Self::new(
            input,
            self.ordering.clone(),
            self.keys,
            self.per_key,
            Arc::clone(&self.properties),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let schema = self.schema();
        let mut firsts = Firsts::new(
            &self.ordering,
            self.keys,
            self.per_key,
            &self.input.schema(),
        )?;
        let batch_size = context.session_config().batch_size();
        let out_schema = Arc::clone(&schema);
        let stream = futures::stream::once(async move {
            let mut input = input;
            while let Some(batch) = input.next().await {
                firsts.add(batch?)?;
            }
            firsts.finish(&out_schema, batch_size)
        })
        .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// Rows held beyond four per key before the winners are gathered into one batch (small in tests,
/// so that they gather).
const COMPACT_SLACK: usize = if cfg!(test) { 2_048 } else { 65_536 };

/// One of the best rows so far of a key.
struct Best {
    order: Box<[u8]>,
    at: (usize, usize),
}

/// The running state of one partition.
struct Firsts {
    ordering: LexOrdering,
    keys: usize,
    per_key: usize,
    key_rows: RowConverter,
    order_rows: RowConverter,
    batches: Vec<RecordBatch>,
    /// Per key, its best rows so far (at most `per_key`), sorted by their order keys, the
    /// first read first among equal ones.
    best: HashMap<Box<[u8]>, Vec<Best>>,
    /// Rows in `best`.
    kept: usize,
    /// Rows held in `batches`.
    held: usize,
}

impl Firsts {
    fn new(
        ordering: &LexOrdering,
        keys: usize,
        per_key: usize,
        schema: &SchemaRef,
    ) -> Result<Self> {
        let fields = |range: std::ops::Range<usize>| -> Result<Vec<SortField>> {
            ordering[range]
                .iter()
                .map(|e| {
                    Ok(SortField::new_with_options(
                        e.expr.data_type(schema)?,
                        e.options,
                    ))
                })
                .collect()
        };
        Ok(Self {
            ordering: ordering.clone(),
            keys,
            per_key,
            key_rows: RowConverter::new(fields(0..keys)?)?,
            order_rows: RowConverter::new(fields(keys..ordering.len())?)?,
            batches: Vec::new(),
            best: HashMap::new(),
            kept: 0,
            held: 0,
        })
    }

    fn rows(&self, batch: &RecordBatch) -> Result<(Rows, Rows)> {
        let eval = |range: std::ops::Range<usize>| -> Result<Vec<ArrayRef>> {
            self.ordering[range]
                .iter()
                .map(|e| e.expr.evaluate(batch)?.into_array(batch.num_rows()))
                .collect()
        };
        let keys = self.key_rows.convert_columns(&eval(0..self.keys)?)?;
        let order = self
            .order_rows
            .convert_columns(&eval(self.keys..self.ordering.len())?)?;
        Ok((keys, order))
    }

    fn add(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (keys, order) = self.rows(&batch)?;
        let at = self.batches.len();
        let mut used = false;
        for i in 0..batch.num_rows() {
            let o = order.row(i);
            let new = || Best {
                order: o.as_ref().into(),
                at: (at, i),
            };
            match self.best.get_mut(keys.row(i).as_ref()) {
                // Most rows sort after every row kept: one compare with the last.
                Some(kept)
                    if kept.len() == self.per_key
                        && kept.last().is_some_and(|b| o.as_ref() >= &*b.order) => {}
                // It sorts before a kept row, or there is room: it is kept, after every kept
                // row it does not sort before (a later row loses ties).
                Some(kept) => {
                    let place = kept.partition_point(|b| &*b.order <= o.as_ref());
                    if kept.len() == self.per_key {
                        kept.pop();
                    } else {
                        self.kept += 1;
                    }
                    kept.insert(place, new());
                    used = true;
                }
                None => {
                    let mut kept = Vec::with_capacity(self.per_key.min(4));
                    kept.push(new());
                    self.best.insert(keys.row(i).as_ref().into(), kept);
                    self.kept += 1;
                    used = true;
                }
            }
        }
        if used {
            self.held += batch.num_rows();
            self.batches.push(batch);
        }
        // Keep what is held in proportion to the rows kept: gather them into one batch.
        if self.held > 4 * self.kept + COMPACT_SLACK {
            self.compact()?;
        }
        Ok(())
    }

    /// Replaces the held batches by one batch of the rows kept.
    fn compact(&mut self) -> Result<()> {
        let winners: Vec<(usize, usize)> = self.best.values().flatten().map(|b| b.at).collect();
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        let one = interleave_record_batch(&refs, &winners)?;
        for (i, b) in self.best.values_mut().flatten().enumerate() {
            b.at = (0, i);
        }
        self.held = one.num_rows();
        self.batches = vec![one];
        Ok(())
    }

    /// The rows kept, sorted by `(keys, order keys)`, each with its number within its key (the
    /// last column of `schema`), in batches of at most `batch_size` rows.
    fn finish(self, schema: &SchemaRef, batch_size: usize) -> Result<Vec<RecordBatch>> {
        let mut winners: Vec<(Box<[u8]>, Vec<Best>)> = self.best.into_iter().collect();
        // Each key's rows are in order already.
        winners.sort_unstable_by(|(ka, _), (kb, _)| ka.cmp(kb));
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        let indices: Vec<(usize, usize)> = winners
            .iter()
            .flat_map(|(_, kept)| kept.iter().map(|b| b.at))
            .collect();
        let numbers: Vec<u64> = winners
            .iter()
            .flat_map(|(_, kept)| 1..=kept.len() as u64)
            .collect();
        if indices.is_empty() {
            return Ok(vec![]);
        }
        let number_type = schema.field(schema.fields().len() - 1).data_type();
        let size = batch_size.max(1);
        indices
            .chunks(size)
            .zip(numbers.chunks(size))
            .map(|(chunk, numbers)| {
                let b = interleave_record_batch(&refs, chunk)?;
                let numbers: ArrayRef = Arc::new(arrow::array::UInt64Array::from(numbers.to_vec()));
                let mut columns = b.columns().to_vec();
                columns.push(arrow::compute::cast(&numbers, number_type)?);
                Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// 120,000 rows over 20,000 keys (some NULL) in 8 partitions of small batches; `o` has
    /// NULLs and ties, `v` is unique, so `ORDER BY o, v` has one first row per key.
    fn table() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("o", DataType::Int64, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parts = vec![Vec::new(); 8];
        for b in 0..120 {
            let n = 1000;
            let k: StringArray = (0..n)
                .map(|_| {
                    let r = next();
                    (r % 97 != 0).then(|| format!("user-{}", r % 20_000))
                })
                .collect();
            let o: Int64Array = (0..n)
                .map(|_| {
                    let r = next();
                    (r % 31 != 0).then_some((r % 1000) as i64)
                })
                .collect();
            let v: Int64Array = (0..n).map(|i| (b * n + i) as i64).collect();
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(k), Arc::new(o), Arc::new(v)],
            )
            .unwrap();
            parts[b as usize % 8].push(batch);
        }
        Arc::new(MemTable::try_new(schema, parts).unwrap())
    }

    fn context(with_rule: bool) -> SessionContext {
        let rules =
            crate::rules::physical_rules_with(with_rule.then(|| Arc::new(FirstPerKey) as _));
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(4))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("t", table()).unwrap();
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let batches = df.collect().await.unwrap();
        (pretty_format_batches(&batches).unwrap().to_string(), shown)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_rows_per_key_are_the_windows_and_only_its_sort_is_replaced() {
        let (with, without) = (context(true), context(false));
        let rewritten = [
            "SELECT k, o, v FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o, v) AS rn FROM t) WHERE rn = 1 ORDER BY k NULLS FIRST",
            "SELECT k, o, v, rn FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o DESC NULLS FIRST, v DESC) AS rn FROM t) WHERE rn <= 1 AND v % 3 = 0 ORDER BY v",
            "SELECT o, count(*) AS n FROM (SELECT k, o, row_number() OVER (PARTITION BY k ORDER BY o NULLS FIRST, v) AS rn FROM t) s WHERE 1 = rn GROUP BY o ORDER BY o NULLS FIRST",
            "SELECT k, v FROM (SELECT k, v, row_number() OVER (PARTITION BY k, o % 2 ORDER BY v DESC) AS rn FROM t) WHERE rn < 2 ORDER BY k NULLS FIRST, v",
            // The first few rows per key, or one of them.
            "SELECT k, v FROM (SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v) AS rn FROM t) WHERE rn = 2 ORDER BY k, v",
            "SELECT k, o, v, rn FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o NULLS FIRST, v DESC) AS rn FROM t) WHERE rn <= 3 ORDER BY k NULLS FIRST, rn",
            "SELECT k, v, rn FROM (SELECT *, row_number() OVER (PARTITION BY k ORDER BY o DESC, v) AS rn FROM t) WHERE rn < 17 AND v % 2 = 0 AND rn <= 5 ORDER BY k NULLS FIRST, rn",
            "SELECT rn, count(*) AS n FROM (SELECT row_number() OVER (PARTITION BY k ORDER BY o, v) AS rn FROM t) WHERE rn <= 16 GROUP BY rn ORDER BY rn",
        ];
        for sql in rewritten {
            let (a, plan) = run(&with, sql).await;
            let (b, _) = run(&without, sql).await;
            assert!(plan.contains("FirstPerKeyExec"), "{sql}\n{plan}");
            assert!(!plan.contains("WindowAggExec"), "{sql}\n{plan}");
            assert!(a == b, "{sql}: different answers");
            assert!(a.lines().count() > 10, "{sql}\n{a}");
        }
        let untouched = [
            // More rows per key than it keeps, or no bound at all.
            "SELECT k, v FROM (SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v) AS rn FROM t) WHERE rn <= 17 ORDER BY k, v",
            "SELECT k, v FROM (SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v) AS rn FROM t) WHERE rn > 1 ORDER BY k, v",
            // Another window function over the same rows: the pruned rows count there.
            "SELECT k, v, c FROM (SELECT k, v, count(*) OVER (PARTITION BY k) AS c, row_number() OVER (PARTITION BY k ORDER BY v) AS rn FROM t) WHERE rn = 1 ORDER BY k, v",
            // rank() keeps ties.
            "SELECT k, v FROM (SELECT k, v, rank() OVER (PARTITION BY k ORDER BY o) AS rn FROM t) WHERE rn = 1 ORDER BY k, v",
        ];
        for sql in untouched {
            let (a, plan) = run(&with, sql).await;
            let (b, _) = run(&without, sql).await;
            assert!(!plan.contains("FirstPerKeyExec"), "{sql}\n{plan}");
            assert!(a == b, "{sql}: different answers");
        }
    }
}

//! Ranking and first/last-value windows over a sorted partition, computed for all its window
//! partitions at once.
//!
//! DataFusion's `WindowAggExec` holds its sorted input partition whole, then, for each window
//! partition, slices every column, makes the function's evaluator and frame, evaluates, and at
//! the end joins the results of all window partitions. Sessions and users are many and small:
//! `first_value(event_type) OVER (PARTITION BY session_id ORDER BY event_time)` over 141,000
//! rows of 47,000 sessions spent about 1 µs a session on that, twice DuckDB's whole query.
//!
//! [`SortedWindowsExec`] takes the same sorted partition and finds the window partitions (and,
//! where a function needs them, the peers of equal order keys) once, with arrow's `partition`
//! kernel, as DataFusion does. Each function is then one pass over those ranges:
//!
//! - `row_number()`, `rank()`, `dense_rank()`: counted from the ranges;
//! - `first_value(x)` over a frame that starts UNBOUNDED PRECEDING and ends at or after the
//!   current row: `x` of the window partition's first row;
//! - `last_value(x)` over a frame that ends UNBOUNDED FOLLOWING: `x` of its last row; ending at
//!   the CURRENT ROW, the row's own `x` (ROWS) or its last peer's (RANGE, GROUPS); the frame
//!   starting at or before the current row.
//!
//! - `count(x)` and `sum(x)` of bigints over a frame whose edges are rows (ROWS with offsets),
//!   the partition's ends, the current row's peers (RANGE and GROUPS without offsets), or an
//!   offset of one integer, date or timestamp order key (`RANGE BETWEEN INTERVAL '1' HOUR
//!   PRECEDING AND CURRENT ROW`, found by binary search within the window partition; a
//!   partition with NULL keys is evaluated as DataFusion evaluates it): each row's frame found
//!   from the ranges, and counted or summed from running totals. A sum fails
//!   where DataFusion's accumulators for Athena's sum fail, with their message: a frame that
//!   starts at the partition's first row where the partition's running sum leaves the bigint
//!   range, another where the frame's sum is read out of it.
//!
//! - `lag(x, n, d)` and `lead(x, n, d)`: DataFusion's own evaluator over the whole sorted
//!   partition at once, then the default where the row read lies in another window partition.
//!
//! A window with any other function (other aggregates, `nth_value`, `ntile`, …), another
//! frame, `IGNORE NULLS`, DISTINCT or FILTER keeps DataFusion's `WindowAggExec`. The schema,
//! ordering, partitioning and requirements are the replaced node's, and so are the rows and
//! results.

use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt64Array};
use arrow::compute::{concat_batches, partition, take};
use arrow::datatypes::{DataType, Int64Type, Schema};
use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{WindowFrame, WindowFrameBound, WindowFrameUnits};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::window::{
    PlainAggregateWindowExpr, SlidingAggregateWindowExpr, StandardWindowExpr,
    StandardWindowFunctionExpr, WindowExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::distribution_requirements::InputDistributionRequirements;
use datafusion::physical_plan::execution_plan::{
    ChildrenPropertiesMode, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{WindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, SendableRecordBatchStream};
use futures::{StreamExt, TryStreamExt};

use crate::trino::overflow::{CheckedSum, frame_sum_overflow, running_sum_overflow};

/// What one window function gives each row of a window partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fun {
    RowNumber,
    Rank,
    DenseRank,
    /// `x` of the window partition's first row.
    First,
    /// `x` of its last row.
    LastOfPartition,
    /// `x` of the row's last peer.
    LastPeer,
    /// The row's own `x`.
    Own,
    /// `count(x)`: the values of the row's frame that are not NULL.
    Count(Frame),
    /// `sum(x)` of bigints over a frame that starts at the window partition's first row:
    /// added one row after another, failing where a sum leaves the bigint range, as
    /// [`CheckedSum`]'s accumulator adds them.
    RunningSum(Frame),
    /// `sum(x)` of bigints over another frame: summed wider and checked when read, as
    /// [`CheckedSum`]'s sliding accumulator reads it.
    FrameSum(Frame),
    /// `lag(x, n, d)` or `lead(x, n, d)`, `n` as a distance: DataFusion's evaluator over all
    /// the rows at once, and its default where the row it reads is in another partition.
    Shift(i64),
}

impl Fun {
    /// Whether the function reads the peers of equal order keys.
    fn needs_peers(self) -> bool {
        match self {
            Fun::Rank | Fun::DenseRank | Fun::LastPeer => true,
            Fun::Count(f) | Fun::RunningSum(f) | Fun::FrameSum(f) => {
                matches!(f.start, Edge::Peers) || matches!(f.end, Edge::Peers)
            }
            _ => false,
        }
    }
}

/// Where a frame starts or ends, for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// The window partition's first row (a start) or its end (an end).
    Unbounded,
    /// `n` rows after the row (before it, when negative), within the window partition: ROWS.
    Rows(i64),
    /// The row's first peer (a start) or past its last (an end): the CURRENT ROW of RANGE and
    /// GROUPS frames.
    Peers,
    /// The first row whose order key is at least the row's key plus `n` (a start), or the
    /// first whose key is greater than that (an end), within the window partition: a RANGE
    /// offset, `n` in the order key's units (days, milliseconds, …) and negative before the
    /// row. Keys are compared as if ascending (a descending key is negated).
    Range(i64),
}

/// A frame as a start and an end per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    start: Edge,
    end: Edge,
    /// Whether the one order key is descending (read by [`Edge::Range`] only).
    descending: bool,
}

/// Nanoseconds in one unit of an order key of type `t` that RANGE offsets can move (integers
/// move by 1), or `None` for a type they cannot.
fn key_unit(t: &DataType) -> Option<Option<i128>> {
    use arrow::datatypes::TimeUnit;
    Some(match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => None,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => None,
        DataType::Date32 => Some(86_400_000_000_000),
        DataType::Timestamp(unit, _) => Some(match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        }),
        _ => return None,
    })
}

/// A RANGE offset `v` in units of an order key (see [`key_unit`]): an integer for integer
/// keys, an interval without months for dates and times, in whole units.
fn offset_in_units(v: &ScalarValue, unit: Option<i128>) -> Option<i64> {
    match unit {
        None => match v.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(Some(n)) if n >= 0 => Some(n),
            _ => None,
        },
        Some(unit) => {
            let nanos: i128 = match v {
                ScalarValue::IntervalMonthDayNano(Some(iv)) if iv.months == 0 => {
                    i128::from(iv.days) * 86_400_000_000_000 + i128::from(iv.nanoseconds)
                }
                ScalarValue::IntervalDayTime(Some(iv)) => {
                    i128::from(iv.days) * 86_400_000_000_000
                        + i128::from(iv.milliseconds) * 1_000_000
                }
                _ => return None,
            };
            if nanos < 0 || nanos % unit != 0 {
                return None;
            }
            i64::try_from(nanos / unit).ok()
        }
    }
}

impl Frame {
    /// The frame, when its edges are ones [`Edge`] can say: offsets in ROWS frames, and in
    /// RANGE frames over one order key of a type [`key_unit`] knows (`key`: its type and
    /// whether it is descending).
    fn of(frame: &WindowFrame, key: Option<(&DataType, bool)>) -> Option<Frame> {
        let edge = |b: &WindowFrameBound| -> Option<Edge> {
            match b {
                WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) if v.is_null() => {
                    Some(Edge::Unbounded)
                }
                WindowFrameBound::CurrentRow => Some(match frame.units {
                    WindowFrameUnits::Rows => Edge::Rows(0),
                    WindowFrameUnits::Range | WindowFrameUnits::Groups => Edge::Peers,
                }),
                WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v)
                    if frame.units == WindowFrameUnits::Range =>
                {
                    let n = offset_in_units(v, key_unit(key?.0)?)?;
                    Some(Edge::Range(match b {
                        WindowFrameBound::Preceding(_) => -n,
                        _ => n,
                    }))
                }
                WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) => {
                    if frame.units != WindowFrameUnits::Rows {
                        return None;
                    }
                    let n = match v {
                        ScalarValue::UInt64(Some(n)) => i64::try_from(*n).ok()?,
                        _ => return None,
                    };
                    Some(Edge::Rows(match b {
                        WindowFrameBound::Preceding(_) => -n,
                        _ => n,
                    }))
                }
            }
        };
        Some(Frame {
            start: edge(&frame.start_bound)?,
            end: edge(&frame.end_bound)?,
            descending: key.is_some_and(|(_, d)| d),
        })
    }

    /// Whether an edge is a RANGE offset, which reads the order key.
    fn reads_keys(self) -> bool {
        matches!(self.start, Edge::Range(_)) || matches!(self.end, Edge::Range(_))
    }

    /// The rows of row `i`'s frame, inside window partition `p`, its peers `peer` (when the
    /// frame reads them); empty when the frame ends before it starts.
    /// `keys`: the order key of every row as ascending numbers (when an edge reads them).
    fn rows(self, i: usize, p: &Range<usize>, peer: &Range<usize>, keys: &[i128]) -> Range<usize> {
        let at = |n: i64, past: i64| -> usize {
            let j = (i as i64).saturating_add(n).saturating_add(past);
            j.clamp(p.start as i64, p.end as i64) as usize
        };
        // The first row of the partition whose key is past `key[i] + n` (`or_equal`: at least).
        let by_key = |n: i64, or_equal: bool| -> usize {
            let bound = keys[i] + i128::from(n);
            let within = &keys[p.clone()];
            p.start + within.partition_point(|&k| if or_equal { k < bound } else { k <= bound })
        };
        let start = match self.start {
            Edge::Unbounded => p.start,
            Edge::Rows(n) => at(n, 0),
            Edge::Peers => peer.start,
            Edge::Range(n) => by_key(n, true),
        };
        let end = match self.end {
            Edge::Unbounded => p.end,
            Edge::Rows(n) => at(n, 1),
            Edge::Peers => peer.end,
            Edge::Range(n) => by_key(n, false),
        };
        start..end.max(start)
    }
}

/// The aggregate function of a window `e` and its frame, when this node computes it: `count`
/// and Athena's `sum` of bigints, neither DISTINCT nor filtered.
fn aggregate_of(e: &Arc<dyn WindowExpr>, input: &Schema) -> Option<Fun> {
    let any = e.as_any();
    let (aggregate, running): (&AggregateFunctionExpr, bool) =
        if let Some(plain) = any.downcast_ref::<PlainAggregateWindowExpr>() {
            (plain.get_aggregate_expr(), true)
        } else {
            let sliding = any.downcast_ref::<SlidingAggregateWindowExpr>()?;
            (sliding.get_aggregate_expr(), false)
        };
    // A filter is not a flag this node can read otherwise; the expression's name carries it.
    if aggregate.is_distinct()
        || aggregate.ignore_nulls()
        || e.name().contains("FILTER (WHERE")
        || aggregate.expressions().len() != 1
        || aggregate.field().data_type() != &DataType::Int64
    {
        return None;
    }
    let key = match e.order_by() {
        [one] => one
            .expr
            .data_type(input)
            .ok()
            .map(|t| (t, one.options.descending)),
        _ => None,
    };
    let frame = Frame::of(e.get_window_frame(), key.as_ref().map(|(t, d)| (t, *d)))?;
    let udf = aggregate.fun();
    match udf.name() {
        "count" => Some(Fun::Count(frame)),
        "sum"
            if (udf.inner().as_ref() as &dyn Any)
                .downcast_ref::<CheckedSum>()
                .is_some() =>
        {
            Some(match running {
                // DataFusion keeps an accumulator that only adds when the frame starts at the
                // window partition's first row, a sliding one otherwise.
                true if frame.start == Edge::Unbounded => Fun::RunningSum(frame),
                true => return None,
                false => Fun::FrameSum(frame),
            })
        }
        _ => None,
    }
}

/// The function `e` computes, when this node computes it.
fn fun_of(e: &Arc<dyn WindowExpr>, input: &Schema) -> Option<Fun> {
    let Some(standard) = e.as_any().downcast_ref::<StandardWindowExpr>() else {
        return aggregate_of(e, input);
    };
    let udf = standard
        .get_standard_func_expr()
        .as_any()
        .downcast_ref::<WindowUDFExpr>()?;
    // Not a flag this node can read otherwise; the expression's name carries it.
    if StandardWindowFunctionExpr::name(udf).contains("IGNORE NULLS") {
        return None;
    }
    let frame = e.get_window_frame();
    let unbounded = |b: &WindowFrameBound| match b {
        WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) => v.is_null(),
        WindowFrameBound::CurrentRow => false,
    };
    // The frame holds the current row: it starts at or before it and ends at or after it.
    let starts_before = matches!(
        frame.start_bound,
        WindowFrameBound::Preceding(_) | WindowFrameBound::CurrentRow
    );
    let ends_after = matches!(
        frame.end_bound,
        WindowFrameBound::Following(_) | WindowFrameBound::CurrentRow
    );
    let is_u64 = e.field().is_ok_and(|f| f.data_type() == &DataType::UInt64);
    let one_arg = udf.args().len() == 1;
    match udf.fun().name() {
        "row_number" if is_u64 && udf.args().is_empty() => Some(Fun::RowNumber),
        "rank" if is_u64 && udf.args().is_empty() => Some(Fun::Rank),
        "dense_rank" if is_u64 && udf.args().is_empty() => Some(Fun::DenseRank),
        "first_value"
            if one_arg
                && matches!(&frame.start_bound, WindowFrameBound::Preceding(v) if v.is_null())
                && ends_after =>
        {
            Some(Fun::First)
        }
        "last_value" if one_arg && starts_before => match &frame.end_bound {
            b @ WindowFrameBound::Following(_) if unbounded(b) => Some(Fun::LastOfPartition),
            WindowFrameBound::CurrentRow => Some(match frame.units {
                WindowFrameUnits::Rows => Fun::Own,
                WindowFrameUnits::Range | WindowFrameUnits::Groups => Fun::LastPeer,
            }),
            _ => None,
        },
        "lag" | "lead" if (1..=3).contains(&udf.args().len()) => {
            let offset = match udf.args().get(1) {
                None => 1,
                Some(arg) => arg
                    .downcast_ref::<Literal>()?
                    .value()
                    .cast_to(&DataType::Int64)
                    .ok()
                    .and_then(|v| match v {
                        ScalarValue::Int64(Some(n)) => n.checked_abs(),
                        _ => None,
                    })?,
            };
            Some(Fun::Shift(offset))
        }
        _ => None,
    }
}

/// Replaces each `WindowAggExec` whose every function [`fun_of`] knows with a
/// [`SortedWindowsExec`].
#[derive(Debug, Default)]
pub struct SortedWindows;

impl PhysicalOptimizerRule for SortedWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(window) = node.downcast_ref::<WindowAggExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(funs) = window
                .window_expr()
                .iter()
                .map(|e| fun_of(e, &window.input().schema()))
                .collect::<Option<Vec<_>>>()
            else {
                return Ok(Transformed::no(node));
            };
            if funs.is_empty() {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(SortedWindowsExec { inner: node, funs }) as Arc<dyn ExecutionPlan>,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sorted_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A `WindowAggExec` (kept as `inner`, which it answers for but running) computed by ranges.
#[derive(Debug)]
pub struct SortedWindowsExec {
    inner: Arc<dyn ExecutionPlan>,
    /// Per window expression of `inner`.
    funs: Vec<Fun>,
}

impl SortedWindowsExec {
    fn window(&self) -> &WindowAggExec {
        self.inner
            .downcast_ref::<WindowAggExec>()
            .expect("made around a WindowAggExec")
    }
}

impl DisplayAs for SortedWindowsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .window()
            .window_expr()
            .iter()
            .map(|e| e.name())
            .collect();
        write!(f, "SortedWindowsExec: wdw=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for SortedWindowsExec {
    fn name(&self) -> &str {
        "SortedWindowsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.inner.input_distribution_requirements()
    }

    fn required_input_ordering(
        &self,
    ) -> Vec<Option<datafusion::physical_expr::OrderingRequirements>> {
        self.inner.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.inner.maintains_input_order()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        self.inner.benefits_from_input_partitioning()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
        self.replace_children(children, options)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            inner: Arc::clone(&self.inner).replace_children(children, options)?,
            funs: self.funs.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let window = self.window();
        let input = window.input().execute(partition, context)?;
        let exprs: Vec<(Arc<dyn WindowExpr>, Fun)> = window
            .window_expr()
            .iter()
            .cloned()
            .zip(self.funs.iter().copied())
            .collect();
        let schema = self.schema();
        let out_schema = Arc::clone(&schema);
        let in_schema = window.input().schema();
        let stream = futures::stream::once(async move {
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            let batch = concat_batches(&in_schema, &batches)?;
            drop(batches);
            if batch.num_rows() == 0 {
                return Ok(None);
            }
            let mut columns = batch.columns().to_vec();
            let mut ranges = Ranges::default();
            for (e, fun) in &exprs {
                columns.push(evaluate(e, *fun, &batch, &mut ranges)?);
            }
            Ok(Some(RecordBatch::try_new(out_schema, columns)?))
        })
        .filter_map(|r: Result<Option<RecordBatch>>| async move { r.transpose() });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// The ranges of rows equal on a list of expressions, found once per list: the window
/// expressions of one node share their partition keys, and often their order keys.
#[derive(Default)]
struct Ranges(Vec<Found>);

/// A list of expressions, and the ranges of rows equal on them.
type Found = (Vec<Arc<dyn PhysicalExpr>>, Arc<[Range<usize>]>);

impl Ranges {
    /// The ranges of rows of `batch` equal on `exprs` (all rows, when there are none).
    fn of(
        &mut self,
        exprs: &[Arc<dyn PhysicalExpr>],
        batch: &RecordBatch,
    ) -> Result<Arc<[Range<usize>]>> {
        if let Some((_, found)) = self.0.iter().find(|(k, _)| k.as_slice() == exprs) {
            return Ok(Arc::clone(found));
        }
        let rows = batch.num_rows();
        let found: Arc<[Range<usize>]> = if exprs.is_empty() {
            std::iter::once(0..rows).collect()
        } else {
            let columns = exprs
                .iter()
                .map(|e| e.evaluate(batch)?.into_array(rows))
                .collect::<Result<Vec<ArrayRef>>>()?;
            partition(&columns)?.ranges().into()
        };
        self.0.push((exprs.to_vec(), Arc::clone(&found)));
        Ok(found)
    }
}

/// The ranges of `peers` inside partition `p`, in order: they tile it.
fn peers_within<'a>(
    peers: &'a [Range<usize>],
    p: &Range<usize>,
) -> impl Iterator<Item = Range<usize>> + use<'a> {
    let first = peers.partition_point(|r| r.start < p.start);
    let end = p.end;
    peers[first..]
        .iter()
        .take_while(move |r| r.end <= end)
        .cloned()
}

/// `e`'s results for every row of `batch`, sorted on its partition and order keys.
fn evaluate(
    e: &Arc<dyn WindowExpr>,
    fun: Fun,
    batch: &RecordBatch,
    ranges: &mut Ranges,
) -> Result<ArrayRef> {
    let arg = || -> Result<ArrayRef> {
        let args = e.evaluate_args(batch)?;
        Ok(Arc::clone(&args[0]))
    };
    if fun == Fun::Own {
        return arg();
    }
    let partitions = ranges.of(e.partition_by(), batch)?;
    // Peers: rows equal on the partition keys and the order keys (within one partition).
    let peers = if fun.needs_peers() {
        let mut keys = e.partition_by().to_vec();
        keys.extend(e.order_by().iter().map(|o| Arc::clone(&o.expr)));
        ranges.of(&keys, batch)?
    } else {
        Arc::from([])
    };
    if let Fun::Count(frame) | Fun::RunningSum(frame) | Fun::FrameSum(frame) = fun {
        let keys = if frame.reads_keys() {
            match ascending_keys(e, frame, batch)? {
                Some(keys) => keys,
                // NULL keys: DataFusion's own evaluation, window partition by window partition.
                None => return evaluate_each(e, batch, &partitions),
            }
        } else {
            Vec::new()
        };
        return aggregate(fun, frame, &arg()?, &partitions, &peers, &keys);
    }
    if let Fun::Shift(distance) = fun {
        return shifted(e, distance, batch, &partitions);
    }
    // Per row: its number (the ranking functions), or the row whose value it takes.
    let mut per_row: Vec<u64> = Vec::with_capacity(batch.num_rows());
    let mut repeat = |value: usize, times: usize| {
        per_row.extend(std::iter::repeat_n(value as u64, times));
    };
    for p in partitions.iter() {
        match fun {
            Fun::RowNumber => {
                for n in 1..=p.len() {
                    repeat(n, 1);
                }
            }
            Fun::Rank => {
                for r in peers_within(&peers, p) {
                    repeat(r.start - p.start + 1, r.len());
                }
            }
            Fun::DenseRank => {
                for (n, r) in peers_within(&peers, p).enumerate() {
                    repeat(n + 1, r.len());
                }
            }
            Fun::First => repeat(p.start, p.len()),
            Fun::LastOfPartition => repeat(p.end - 1, p.len()),
            Fun::LastPeer => {
                for r in peers_within(&peers, p) {
                    repeat(r.end - 1, r.len());
                }
            }
            Fun::Own | Fun::Count(_) | Fun::RunningSum(_) | Fun::FrameSum(_) | Fun::Shift(_) => {
                unreachable!("computed above")
            }
        }
    }
    let per_row = UInt64Array::from(per_row);
    Ok(match fun {
        Fun::RowNumber | Fun::Rank | Fun::DenseRank => Arc::new(per_row),
        _ => take(arg()?.as_ref(), &per_row, None)?,
    })
}

/// The one order key of `e` for every row of `batch` as numbers that ascend with it (in the
/// units of [`key_unit`]), or `None` when one is NULL.
fn ascending_keys(
    e: &Arc<dyn WindowExpr>,
    frame: Frame,
    batch: &RecordBatch,
) -> Result<Option<Vec<i128>>> {
    let [key] = e.order_by() else {
        unreachable!("a RANGE offset has one order key")
    };
    let values = key.expr.evaluate(batch)?.into_array(batch.num_rows())?;
    if values.null_count() > 0 {
        return Ok(None);
    }
    let values = arrow::compute::cast(&values, &DataType::Int64)?;
    let values = values.as_primitive::<Int64Type>();
    let sign: i128 = if frame.descending { -1 } else { 1 };
    Ok(Some(
        values
            .values()
            .iter()
            .map(|&v| sign * i128::from(v))
            .collect(),
    ))
}

/// `e` evaluated as DataFusion's window evaluates it, one window partition at a time.
fn evaluate_each(
    e: &Arc<dyn WindowExpr>,
    batch: &RecordBatch,
    partitions: &[Range<usize>],
) -> Result<ArrayRef> {
    let parts = partitions
        .iter()
        .map(|p| e.evaluate(&batch.slice(p.start, p.len())))
        .collect::<Result<Vec<ArrayRef>>>()?;
    let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    Ok(arrow::compute::concat(&parts)?)
}

/// `lag` or `lead` (window `e`, reading the row `distance` rows away) over `batch`, sorted
/// into `partitions`.
///
/// DataFusion's evaluator shifts all the rows at once, as it shifts one partition, with the
/// function's default where the row it reads is past either end; whether it reads earlier or
/// later rows (a window DataFusion turned around to fit its input's order reads the other
/// way) is its own to say. A row whose read row is in another partition then takes the
/// default from a row past the ends.
fn shifted(
    e: &Arc<dyn WindowExpr>,
    distance: i64,
    batch: &RecordBatch,
    partitions: &[Range<usize>],
) -> Result<ArrayRef> {
    let rows = batch.num_rows();
    let standard = e
        .as_any()
        .downcast_ref::<StandardWindowExpr>()
        .expect("lag and lead are standard window functions");
    let mut evaluator = standard.get_standard_func_expr().create_evaluator()?;
    let values = e.evaluate_args(batch)?;
    let all = evaluator.evaluate_all(&values, rows)?;
    // A lag reads earlier rows: its evaluator is causal.
    let back = if evaluator.is_causal() {
        distance
    } else {
        -distance
    };
    if back == 0 || back.unsigned_abs() >= rows as u64 {
        return Ok(all);
    }
    // A row past the ends, whose value is the default.
    let outside = if back > 0 { 0 } else { rows - 1 };
    let mut crossed = false;
    let mut take_from: Vec<u64> = Vec::with_capacity(rows);
    for p in partitions {
        for i in p.clone() {
            let read = i as i64 - back;
            let inside = read >= p.start as i64 && read < p.end as i64;
            crossed |= !inside;
            take_from.push(if inside { i } else { outside } as u64);
        }
    }
    if !crossed {
        return Ok(all);
    }
    Ok(take(all.as_ref(), &UInt64Array::from(take_from), None)?)
}

/// `count` or `sum` of `values` over each row's frame, the rows sorted into `partitions` and,
/// where the frame reads them, `peers`.
fn aggregate(
    fun: Fun,
    frame: Frame,
    values: &ArrayRef,
    partitions: &[Range<usize>],
    peers: &[Range<usize>],
    keys: &[i128],
) -> Result<ArrayRef> {
    let rows = values.len();
    // How many values before each row are not NULL, and (for sums) their sum.
    let mut seen: Vec<u64> = Vec::with_capacity(rows + 1);
    seen.push(0);
    let mut n = 0;
    for i in 0..rows {
        n += u64::from(values.is_valid(i));
        seen.push(n);
    }
    let no_peer = 0..0;
    let mut peer_at = peers.iter();
    let mut peer = &no_peer;
    let mut frames: Vec<Range<usize>> = Vec::with_capacity(rows);
    for p in partitions {
        for i in p.clone() {
            if !peers.is_empty() && !peer.contains(&i) {
                peer = peer_at
                    .find(|r| r.contains(&i))
                    .expect("peers tile the partitions");
            }
            frames.push(frame.rows(i, p, peer, keys));
        }
    }
    let values_in = |r: &Range<usize>| seen[r.end] - seen[r.start];
    if let Fun::Count(_) = fun {
        return Ok(Arc::new(Int64Array::from_iter_values(
            frames.iter().map(|r| values_in(r) as i64),
        )));
    }
    let values = values.as_primitive::<Int64Type>();
    let mut sums: Vec<Option<i64>> = Vec::with_capacity(rows);
    if let Fun::RunningSum(_) = fun {
        // Each frame starts at its partition's first row: the partition's sums one row after
        // another, checked up to the last row a frame holds.
        let mut at = 0;
        for p in partitions {
            let last = frames[at..at + p.len()]
                .iter()
                .map(|r| r.end)
                .max()
                .unwrap_or(p.start);
            let mut running: Vec<i64> = Vec::with_capacity(last - p.start + 1);
            running.push(0);
            let mut sum: i64 = 0;
            for v in values.slice(p.start, last - p.start).iter() {
                if let Some(v) = v {
                    sum = sum
                        .checked_add(v)
                        .ok_or_else(|| running_sum_overflow(sum, v))?;
                }
                running.push(sum);
            }
            for r in &frames[at..at + p.len()] {
                sums.push((values_in(r) > 0).then(|| running[r.end - p.start]));
            }
            at += p.len();
        }
    } else {
        let mut prefix: Vec<i128> = Vec::with_capacity(rows + 1);
        prefix.push(0);
        let mut sum: i128 = 0;
        for v in values.iter() {
            sum += i128::from(v.unwrap_or(0));
            prefix.push(sum);
        }
        for r in &frames {
            if values_in(r) == 0 {
                sums.push(None);
                continue;
            }
            let sum = prefix[r.end] - prefix[r.start];
            sums.push(Some(
                i64::try_from(sum).map_err(|_| frame_sum_overflow(sum))?,
            ));
        }
    }
    Ok(Arc::new(Int64Array::from(sums)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::SortedWindows;
    use crate::rules::whole_windows::WholeWindows;

    /// Rows and plan of `sql` over `t` (20,000 rows of 1,500 users and a NULL user, order keys
    /// with ties), with windows computed by ranges or not.
    async fn run(ranges: bool, sql: &str) -> (String, String) {
        crate::rules::rows_and_physical_plan(&session(ranges).await, sql).await
    }

    /// A session over `t` with Athena's analyzer rules (its `sum` of bigints among them).
    async fn session(ranges: bool) -> SessionContext {
        let mut rules = crate::rules::physical_rules_with(Some(Arc::new(WholeWindows)));
        if ranges {
            let at = rules
                .iter()
                .position(|r| r.name() == "whole_windows")
                .expect("the rule that makes whole windows");
            rules.insert(at + 1, Arc::new(SortedWindows));
        }
        let mut config = SessionConfig::new().with_target_partitions(4);
        config.options_mut().execution.sort_in_place_threshold_bytes = 1 << 30;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_analyzer_rules(crate::session::analyzer_rules())
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.sql(
            "CREATE TABLE t AS SELECT value AS id, \
             CASE WHEN value % 101 = 0 THEN NULL ELSE 'u' || CAST(value % 1500 AS VARCHAR) END \
             AS user_id, (value * 7919) % 97 AS ts, \
             CASE WHEN value % 17 = 0 THEN NULL ELSE 'e' || CAST(value % 5 AS VARCHAR) END AS kind \
             FROM generate_series(1, 20000)",
        )
        .await
        .unwrap();
        ctx
    }

    #[tokio::test]
    async fn windows_computed_by_ranges_give_the_same_rows() {
        // Each result is one the order keys decide (ties only where the value is the same for
        // every row of a tie), so both plans must agree row for row.
        for window in [
            "row_number() OVER (PARTITION BY user_id ORDER BY id)",
            "rank() OVER (PARTITION BY user_id ORDER BY ts)",
            "dense_rank() OVER (PARTITION BY user_id ORDER BY ts DESC)",
            "first_value(kind) OVER (PARTITION BY user_id ORDER BY id)",
            "first_value(kind) OVER (PARTITION BY user_id ORDER BY id DESC \
             ROWS BETWEEN UNBOUNDED PRECEDING AND 2 FOLLOWING)",
            "last_value(kind) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)",
            "last_value(ts * 2) OVER (PARTITION BY user_id ORDER BY ts)",
            "last_value(ts * 2) OVER (PARTITION BY user_id ORDER BY ts \
             GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW)",
            "last_value(kind) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)",
            "last_value(kind) OVER (PARTITION BY user_id, kind ORDER BY id \
             RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)",
            "count(*) OVER (PARTITION BY user_id ORDER BY id)",
            "count(kind) OVER (PARTITION BY user_id ORDER BY ts)",
            "count(kind) OVER (PARTITION BY user_id)",
            "count(*) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN 3 FOLLOWING AND 5 FOLLOWING)",
            "count(kind) OVER (PARTITION BY user_id ORDER BY ts \
             GROUPS BETWEEN CURRENT ROW AND CURRENT ROW)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY id)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY ts)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)",
            "sum(CASE WHEN kind IS NULL THEN NULL ELSE ts END) OVER (PARTITION BY user_id \
             ORDER BY id ROWS BETWEEN 1 PRECEDING AND 3 FOLLOWING)",
            "sum(CASE WHEN kind = 'e1' THEN ts END) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY ts \
             RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY id DESC \
             ROWS BETWEEN 4 PRECEDING AND 2 PRECEDING)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY ts \
             RANGE BETWEEN 5 PRECEDING AND CURRENT ROW)",
            "count(kind) OVER (PARTITION BY user_id ORDER BY ts DESC \
             RANGE BETWEEN 10 PRECEDING AND 3 FOLLOWING)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY ts \
             RANGE BETWEEN UNBOUNDED PRECEDING AND 7 FOLLOWING)",
            "count(*) OVER (PARTITION BY user_id ORDER BY ts \
             RANGE BETWEEN 2 FOLLOWING AND 20 FOLLOWING)",
            "count(*) OVER (PARTITION BY user_id ORDER BY ts \
             RANGE BETWEEN 20 PRECEDING AND 3 PRECEDING)",
            "count(*) OVER (PARTITION BY user_id ORDER BY to_timestamp_seconds(ts * 60) \
             RANGE BETWEEN INTERVAL '15' MINUTE PRECEDING AND CURRENT ROW)",
            "sum(ts) OVER (PARTITION BY user_id ORDER BY to_timestamp_millis(ts * 3600000) DESC \
             RANGE BETWEEN INTERVAL '1' DAY PRECEDING AND INTERVAL '2' HOUR FOLLOWING)",
            // NULL order keys: each window partition evaluated as DataFusion evaluates it.
            "count(*) OVER (PARTITION BY user_id ORDER BY CASE WHEN id % 13 = 0 THEN NULL \
             ELSE ts END RANGE BETWEEN 5 PRECEDING AND CURRENT ROW)",
            "lag(kind) OVER (PARTITION BY user_id ORDER BY id)",
            "lead(ts, 2) OVER (PARTITION BY user_id ORDER BY id)",
            "lag(kind, 3, 'none') OVER (PARTITION BY user_id ORDER BY id DESC)",
            "lead(kind, 0) OVER (PARTITION BY user_id ORDER BY id)",
            "lag(ts, -1, -5) OVER (PARTITION BY user_id ORDER BY id)",
            "lead(id, 1000) OVER (PARTITION BY user_id ORDER BY id)",
        ] {
            let sql = format!(
                "SELECT id, user_id, {window} AS w, \
                 row_number() OVER (PARTITION BY user_id ORDER BY id) AS rn FROM t ORDER BY id"
            );
            let (rows, plan) = run(true, &sql).await;
            // Every window of the plan, this one too.
            assert!(plan.contains("SortedWindowsExec"), "{window}\n{plan}");
            assert!(!plan.contains("WindowAggExec:"), "{window}\n{plan}");
            let (expected, before) = run(false, &sql).await;
            assert!(!before.contains("SortedWindowsExec"), "{before}");
            assert_eq!(rows, expected, "{window}");
            assert_eq!(rows.lines().count(), 20_000 + 4);
        }
    }

    #[tokio::test]
    async fn a_shift_datafusion_turned_around_reads_the_other_way() {
        // One sort serves both windows: the shifts, ordered the other way, are turned around.
        let sql = "SELECT id, a, lag(kind, 2, 'none') OVER (PARTITION BY user_id ORDER BY id) \
                   AS b, lead(ts) OVER (PARTITION BY user_id ORDER BY id) AS c FROM (SELECT *, \
                   row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS a FROM t) \
                   ORDER BY id";
        let (rows, plan) = run(true, sql).await;
        assert_eq!(plan.matches("SortExec: expr=[user_id").count(), 1, "{plan}");
        assert_eq!(plan.matches("SortedWindowsExec").count(), 2, "{plan}");
        assert_eq!(rows, run(false, sql).await.0);
    }

    #[tokio::test]
    async fn sums_out_of_the_bigint_range_fail_as_datafusions_window_fails() {
        // A running sum fails where it leaves the range, even if it comes back; a sliding
        // frame's sum where it is read out of the range.
        for window in [
            "sum(big) OVER (PARTITION BY user_id ORDER BY id)",
            "sum(big) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
        ] {
            let sql = format!(
                "SELECT id, {window} AS w, row_number() OVER (PARTITION BY user_id ORDER BY id) \
                 AS rn FROM (SELECT id, user_id, CASE WHEN id % 7 = 0 \
                 THEN 9223372036854775807 - ts ELSE ts END AS big FROM t) ORDER BY id"
            );
            let mut errors = Vec::new();
            for ranges in [true, false] {
                let df = session(ranges).await.sql(&sql).await.unwrap();
                let plan = datafusion::physical_plan::displayable(
                    df.clone().create_physical_plan().await.unwrap().as_ref(),
                )
                .indent(false)
                .to_string();
                assert_eq!(plan.contains("SortedWindowsExec"), ranges, "{plan}");
                let error = df
                    .collect()
                    .await
                    .expect_err("a sum out of range")
                    .to_string();
                assert!(error.contains("bigint addition overflow"), "{error}");
                errors.push(error);
            }
            assert_eq!(errors[0], errors[1], "{window}");
        }
    }

    #[tokio::test]
    async fn other_functions_and_frames_keep_datafusions_window() {
        for window in [
            "lag(kind) IGNORE NULLS OVER (PARTITION BY user_id ORDER BY id)",
            "count(*) FILTER (WHERE kind = 'e1') OVER (PARTITION BY user_id ORDER BY id)",
            "nth_value(kind, 2) OVER (PARTITION BY user_id ORDER BY id)",
            "first_value(kind) IGNORE NULLS OVER (PARTITION BY user_id ORDER BY id)",
            "first_value(kind) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
            "last_value(kind) OVER (PARTITION BY user_id ORDER BY id \
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)",
            "avg(ts) OVER (PARTITION BY user_id ORDER BY id)",
            "sum(CAST(ts AS double)) OVER (PARTITION BY user_id ORDER BY id)",
            "count(DISTINCT kind) OVER (PARTITION BY user_id)",
            "count(*) OVER (PARTITION BY user_id ORDER BY ts \
             GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW)",
            "count(*) OVER (PARTITION BY user_id ORDER BY CAST(ts AS double) \
             RANGE BETWEEN 5 PRECEDING AND CURRENT ROW)",
        ] {
            let sql = format!("SELECT id, {window} AS w FROM t ORDER BY id");
            let (rows, plan) = run(true, &sql).await;
            assert!(!plan.contains("SortedWindowsExec"), "{window}\n{plan}");
            assert_eq!(rows, run(false, &sql).await.0, "{window}");
        }
    }
}

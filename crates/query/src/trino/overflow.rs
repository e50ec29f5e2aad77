//! Integer arithmetic that fails on overflow, as Athena's does.
//!
//! DataFusion adds, subtracts and multiplies integers with wrapping kernels:
//! `9223372036854775807 + 1` is `-9223372036854775808` there, where Athena fails the query with
//! `bigint addition overflow: 9223372036854775807 + 1`. A wrapped sum is a wrong answer that looks
//! like a right one, so after type coercion [`CheckedIntegerArithmetic`] turns each `+`, `-` and
//! `*` whose operands are both of one integer type into [`Checked`], which computes the same
//! values with arrow's checked kernels and fails with Athena's message on the first row that does
//! not fit. Other types (decimals, floats, dates, timestamps, intervals) keep DataFusion's
//! operators.
//!
//! `sum` of integers wraps the same way in DataFusion, where Athena's adds each value with the
//! same check (`bigint addition overflow: 9223372036854775807 + 1`). The rule turns `sum` of a
//! bigint (every integer type is summed as one) into [`CheckedSum`], in aggregations (`DISTINCT`
//! too) and over windows (where `sum(DISTINCT …) OVER` keeps DataFusion's).

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::buffer::NullBuffer;
use arrow::compute::kernels::numeric;
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, BinaryExpr, ColumnarValue, EmitTo, Expr,
    ExprSchemable, GroupsAccumulator, LogicalPlan, Operator, ReversedUDAF, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr_common::datum::apply;

use super::conditional::trino_type;

/// `+`, `-` or `*` of two values of one integer type, failing on overflow (or, inside `try`,
/// NULL where a row overflows).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Checked {
    op: Op,
    lenient: bool,
    signature: Signature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Subtract,
    Multiply,
}

impl Op {
    fn of(op: Operator) -> Option<Self> {
        match op {
            Operator::Plus => Some(Self::Add),
            Operator::Minus => Some(Self::Subtract),
            Operator::Multiply => Some(Self::Multiply),
            _ => None,
        }
    }

    /// The function's name, which `EXPLAIN` shows.
    fn name(self, lenient: bool) -> &'static str {
        match (self, lenient) {
            (Self::Add, false) => "checked_add",
            (Self::Subtract, false) => "checked_subtract",
            (Self::Multiply, false) => "checked_multiply",
            (Self::Add, true) => "try_add",
            (Self::Subtract, true) => "try_subtract",
            (Self::Multiply, true) => "try_multiply",
        }
    }

    /// As Athena's message names it.
    fn noun(self) -> &'static str {
        match self {
            Self::Add => "addition",
            Self::Subtract => "subtraction",
            Self::Multiply => "multiplication",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Subtract => "-",
            Self::Multiply => "*",
        }
    }

    fn exact(self, a: i128, b: i128) -> Option<i128> {
        match self {
            Self::Add => a.checked_add(b),
            Self::Subtract => a.checked_sub(b),
            Self::Multiply => a.checked_mul(b),
        }
    }
}

impl Checked {
    fn new(op: Op, lenient: bool) -> Self {
        Self {
            op,
            lenient,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// Each row's exact result where it fits the operands' type (NULL where it does not, or
    /// where an operand is NULL), and the first pair of operands whose result does not fit.
    fn per_row(
        &self,
        l: &ColumnarValue,
        r: &ColumnarValue,
        rows: usize,
        (lo, hi): (i128, i128),
    ) -> Result<(Int64Array, Option<(i64, i64)>)> {
        let as_i64 = |v: &ColumnarValue| -> Result<ArrayRef> {
            Ok(arrow::compute::cast(&v.to_array(rows)?, &DataType::Int64)?)
        };
        let (la, ra) = (as_i64(l)?, as_i64(r)?);
        let (la, ra) = (
            la.as_primitive::<Int64Type>(),
            ra.as_primitive::<Int64Type>(),
        );
        let mut first = None;
        let exact: Int64Array = la
            .iter()
            .zip(ra.iter())
            .map(|(a, b)| {
                let (a, b) = (a?, b?);
                let v = self
                    .op
                    .exact(i128::from(a), i128::from(b))
                    .filter(|v| (lo..=hi).contains(v))
                    .and_then(|v| i64::try_from(v).ok());
                if v.is_none() && first.is_none() {
                    first = Some((a, b));
                }
                v
            })
            .collect();
        Ok((exact, first))
    }

    /// Athena's error for an overflow, or (inside `try`) each row's result, NULL where it
    /// overflows.
    fn overflowed(
        &self,
        l: &ColumnarValue,
        r: &ColumnarValue,
        rows: usize,
    ) -> Result<ColumnarValue> {
        let t = l.data_type();
        let scalar = matches!((l, r), (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { rows };
        let message = format!("{} {} overflow", trino_type(&t), self.op.noun());
        let Some(bounds) = bounds(&t) else {
            return exec_err!("{message}");
        };
        let (exact, first) = self.per_row(l, r, rows, bounds)?;
        if !self.lenient {
            return match first {
                Some((a, b)) => exec_err!("{message}: {a} {} {b}", self.op.symbol()),
                None => exec_err!("{message}"),
            };
        }
        let out = arrow::compute::cast(&exact, &t)?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// The range of a signed integer type that fits an `i64`.
fn bounds(t: &DataType) -> Option<(i128, i128)> {
    Some(match t {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.op.name(self.lenient)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] if l == r && l.is_integer() => Ok(l.clone()),
            _ => exec_err!(
                "{} takes two integers of one type, not {arg_types:?}",
                self.name()
            ),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [l, r] = args.args.as_slice() else {
            return exec_err!("{} takes two arguments", self.name());
        };
        let kernel = match self.op {
            Op::Add => numeric::add,
            Op::Subtract => numeric::sub,
            Op::Multiply => numeric::mul,
        };
        match apply(l, r, kernel) {
            Err(e) if is_overflow(&e) => self.overflowed(l, r, args.number_rows),
            other => other,
        }
    }
}

fn is_overflow(e: &datafusion::error::DataFusionError) -> bool {
    matches!(
        e.find_root(),
        datafusion::error::DataFusionError::ArrowError(err, _)
            if matches!(err.as_ref(), ArrowError::ArithmeticOverflow(_))
    )
}

/// The error of a running sum that leaves the bigint range when `v` is added to it.
pub(crate) fn running_sum_overflow(sum: i64, v: i64) -> datafusion::error::DataFusionError {
    sum_overflow(sum, v, Op::Add)
}

/// The error of a sliding frame's sum that is out of the bigint range when it is read.
pub(crate) fn frame_sum_overflow(sum: i128) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(format!(
        "bigint addition overflow: a frame's sum is {sum}"
    ))
}

/// The error of a sum that leaves the bigint range.
fn sum_overflow(sum: i64, v: i64, op: Op) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(format!(
        "bigint {} overflow: {sum} {} {v}",
        op.noun(),
        op.symbol()
    ))
}

/// `sum` of bigints, as Athena's: each value added with a check, and the query failing with
/// Athena's message where a sum leaves the bigint range (DataFusion's wraps). NULL when no
/// value was summed.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedSum {
    signature: Signature,
}

impl CheckedSum {
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
        })
    }
}

impl AggregateUDFImpl for CheckedSum {
    // Named as the `sum` it stands for, so plans and column names read the same.
    fn name(&self) -> &str {
        "sum"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(if args.is_distinct {
            Box::<DistinctSum>::default()
        } else {
            Box::<SumOne>::default()
        })
    }
    /// Over a sliding frame: DataFusion adds the rows that come into the frame before it takes
    /// out those that leave (Athena takes them out first), so the sum is kept wider and checked
    /// when it is read, and a frame whose sum fits never fails.
    fn create_sliding_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<SlidingSum>::default())
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<arrow::datatypes::FieldRef>> {
        use arrow::datatypes::Field;
        Ok(vec![Arc::new(if args.is_distinct {
            Field::new_list(
                format_state_name(args.name, "sum distinct"),
                Field::new_list_field(DataType::Int64, true),
                false,
            )
        } else {
            Field::new(format_state_name(args.name, "sum"), DataType::Int64, true)
        })])
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::<SumGroups>::default())
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// One sum: its value and how many values it holds (it can go back to none over a window).
#[derive(Debug, Default)]
struct SumOne {
    sum: i64,
    values: u64,
}

impl SumOne {
    fn add_all(&mut self, values: &ArrayRef) -> Result<()> {
        for v in values.as_primitive::<Int64Type>().iter().flatten() {
            self.sum = self
                .sum
                .checked_add(v)
                .ok_or_else(|| sum_overflow(self.sum, v, Op::Add))?;
            self.values += 1;
        }
        Ok(())
    }

    fn value(&self) -> ScalarValue {
        ScalarValue::Int64((self.values > 0).then_some(self.sum))
    }
}

impl Accumulator for SumOne {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add_all(&values[0])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add_all(&states[0])
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value()])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value())
    }
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// `sum(DISTINCT x)`: the distinct values, summed with a check (smallest first) when read.
#[derive(Debug, Default)]
struct DistinctSum {
    values: datafusion::common::HashSet<i64>,
}

impl DistinctSum {
    fn insert(&mut self, values: &dyn Array) {
        self.values
            .extend(values.as_primitive::<Int64Type>().iter().flatten());
    }
}

impl Accumulator for DistinctSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.insert(values[0].as_ref());
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for list in states[0].as_list::<i32>().iter().flatten() {
            self.insert(list.as_ref());
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self
            .values
            .iter()
            .map(|v| ScalarValue::Int64(Some(*v)))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &DataType::Int64,
        ))])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut values: Vec<i64> = self.values.iter().copied().collect();
        values.sort_unstable();
        let mut sum = SumOne::default();
        sum.add_all(&(Arc::new(Int64Array::from(values)) as ArrayRef))?;
        Ok(sum.value())
    }
    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.values.capacity() * std::mem::size_of::<i64>()
    }
}

/// The sum of a sliding frame, kept in 128 bits (no frame of `i64` values reaches their
/// limit) and checked against the bigint range when it is read.
#[derive(Debug, Default)]
struct SlidingSum {
    sum: i128,
    values: u64,
}

impl Accumulator for SlidingSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in values[0].as_primitive::<Int64Type>().iter().flatten() {
            self.sum += i128::from(v);
            self.values += 1;
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for v in values[0].as_primitive::<Int64Type>().iter().flatten() {
            self.sum -= i128::from(v);
            self.values -= 1;
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values == 0 {
            return Ok(ScalarValue::Int64(None));
        }
        match i64::try_from(self.sum) {
            Ok(v) => Ok(ScalarValue::Int64(Some(v))),
            Err(_) => Err(frame_sum_overflow(self.sum)),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// A sum per group, and whether the group has a value yet.
#[derive(Debug, Default)]
struct SumGroups {
    sums: Vec<i64>,
    seen: Vec<bool>,
}

impl SumGroups {
    /// Adds `values[i]` to group `groups[i]`, where `take(i)` (its value is not NULL and the
    /// filter passes it).
    fn add(
        &mut self,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.sums.resize(total, 0);
        self.seen.resize(total, false);
        let values = values.as_primitive::<Int64Type>();
        let (sums, seen) = (&mut self.sums, &mut self.seen);
        let mut add = |g: usize, v: i64| -> Result<()> {
            sums[g] = sums[g]
                .checked_add(v)
                .ok_or_else(|| sum_overflow(sums[g], v, Op::Add))?;
            seen[g] = true;
            Ok(())
        };
        if values.null_count() == 0 && filter.is_none() {
            for (&g, &v) in groups.iter().zip(values.values()) {
                add(g, v)?;
            }
            return Ok(());
        }
        for (i, &g) in groups.iter().enumerate() {
            let passes = filter.is_none_or(|f| f.is_valid(i) && f.value(i));
            if passes && values.is_valid(i) {
                add(g, values.value(i))?;
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for SumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, opt_filter, total_num_groups)
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.add(&values[0], group_indices, None, total_num_groups)
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        let seen = emit_to.take_needed(&mut self.seen);
        Ok(Arc::new(Int64Array::new(
            sums.into(),
            Some(NullBuffer::from(seen)),
        )))
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let values = values[0].as_primitive::<Int64Type>();
        Ok(vec![match opt_filter {
            None => Arc::new(values.clone()),
            Some(f) => Arc::new(
                (0..values.len())
                    .map(|i| {
                        (f.is_valid(i) && f.value(i) && values.is_valid(i)).then(|| values.value(i))
                    })
                    .collect::<Int64Array>(),
            ),
        }])
    }
    fn size(&self) -> usize {
        self.sums.capacity() * std::mem::size_of::<i64>() + self.seen.capacity()
    }
}

/// Turns integer `+`, `-` and `*` into [`Checked`] calls, and `sum` of a bigint into
/// [`CheckedSum`], keeping every expression's name. It runs after DataFusion's type coercion,
/// when both operands of such an operator have one type and a sum's argument is cast to bigint.
#[derive(Debug)]
pub struct CheckedIntegerArithmetic {
    /// Strict and lenient, for each [`Op`].
    udfs: [[Arc<ScalarUDF>; 2]; 3],
    sum: Arc<AggregateUDF>,
}

impl Default for CheckedIntegerArithmetic {
    fn default() -> Self {
        let udfs = |op| [false, true].map(|l| Arc::new(ScalarUDF::from(Checked::new(op, l))));
        Self {
            udfs: [Op::Add, Op::Subtract, Op::Multiply].map(udfs),
            sum: Arc::new(CheckedSum::udaf()),
        }
    }
}

/// Whether `args` are one bigint.
fn one_bigint(args: &[Expr], schema: &DFSchema) -> bool {
    matches!(args, [a] if a.get_type(schema).ok() == Some(DataType::Int64))
}

/// Marks an operator inside `try` (see `conditional.rs`), which runs before type coercion:
/// [`CheckedIntegerArithmetic`] makes a marked integer operator NULL where it overflows, and
/// drops the mark from anything else.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InTry {
    signature: Signature,
}

impl InTry {
    const NAME: &str = "in_try";

    /// `e`, marked.
    pub fn mark(e: Expr) -> Expr {
        static UDF: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
            Arc::new(ScalarUDF::from(InTry {
                signature: Signature::any(1, Volatility::Immutable),
            }))
        });
        UDF.call(vec![e])
    }
}

impl ScalarUDFImpl for InTry {
    fn name(&self) -> &str {
        Self::NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(t.clone()),
            _ => exec_err!("{} takes one argument", Self::NAME),
        }
    }
    // The mark is dropped during analysis; were it left, it gives its argument.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.as_slice() {
            [v] => Ok(v.clone()),
            _ => exec_err!("{} takes one argument", Self::NAME),
        }
    }
}

impl CheckedIntegerArithmetic {
    fn rewrite(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        expr.transform_up(|e| {
            if let Expr::AggregateFunction(f) = &e
                && f.func.name() == "sum"
                && !Arc::ptr_eq(&f.func, &self.sum)
                && one_bigint(&f.params.args, schema)
            {
                let Expr::AggregateFunction(f) = e else {
                    unreachable!("matched above")
                };
                return Ok(Transformed::yes(Expr::AggregateFunction(
                    AggregateFunction {
                        func: Arc::clone(&self.sum),
                        params: f.params,
                    },
                )));
            }
            if let Expr::WindowFunction(w) = &e
                && matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(a)
                    if a.name() == "sum" && !Arc::ptr_eq(a, &self.sum))
                && !w.params.distinct
                && one_bigint(&w.params.args, schema)
            {
                let Expr::WindowFunction(w) = e else {
                    unreachable!("matched above")
                };
                return Ok(Transformed::yes(Expr::WindowFunction(Box::new(
                    WindowFunction {
                        fun: WindowFunctionDefinition::AggregateUDF(Arc::clone(&self.sum)),
                        params: w.params,
                    },
                ))));
            }
            if let Expr::ScalarFunction(f) = &e
                && f.func.name() == InTry::NAME
            {
                let Expr::ScalarFunction(f) = e else {
                    unreachable!("matched above")
                };
                let Ok([arg]) = <[Expr; 1]>::try_from(f.args) else {
                    return exec_err!("{} takes one argument", InTry::NAME);
                };
                // The operator below was made strict already: make it lenient.
                if let Expr::ScalarFunction(inner) = &arg
                    && let Some(i) = self
                        .udfs
                        .iter()
                        .position(|[strict, _]| strict.name() == inner.func.name())
                {
                    let Expr::ScalarFunction(inner) = arg else {
                        unreachable!("matched above")
                    };
                    return Ok(Transformed::yes(self.udfs[i][1].call(inner.args)));
                }
                return Ok(Transformed::yes(arg));
            }
            let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else {
                return Ok(Transformed::no(e));
            };
            let Some(op) = Op::of(*op) else {
                return Ok(Transformed::no(e));
            };
            let (Ok(lt), Ok(rt)) = (left.get_type(schema), right.get_type(schema)) else {
                return Ok(Transformed::no(e));
            };
            if lt != rt || !lt.is_integer() {
                return Ok(Transformed::no(e));
            }
            let udf = &self.udfs[op as usize][0];
            let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = e else {
                unreachable!("matched above")
            };
            Ok(Transformed::yes(udf.call(vec![*left, *right])))
        })
    }
}

impl AnalyzerRule for CheckedIntegerArithmetic {
    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = merge_schema(&plan.inputs());
            if plan.inputs().is_empty() {
                schema.merge(plan.schema());
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                self.rewrite(expr, &schema)
                    .map(|t| t.update_data(|e| name.restore(e)))
            })?
            .map_data(|plan| plan.recompute_schema())
        })
        .map(|t| t.data)
    }
}

#[cfg(test)]
mod tests {
    async fn one(sql: &str) -> std::result::Result<String, String> {
        let ctx = crate::session::functions_session().map_err(|e| e.to_string())?;
        let batches = async { ctx.sql(sql).await?.collect().await }
            .await
            .map_err(|e| e.to_string())?;
        Ok(arrow::util::pretty::pretty_format_batches(&batches)
            .map_err(|e| e.to_string())?
            .to_string())
    }

    #[tokio::test]
    async fn integer_overflow_fails_as_athena_does() {
        for (sql, message) in [
            (
                "SELECT x + 1 FROM (VALUES (CAST(9223372036854775807 AS bigint))) t(x)",
                "bigint addition overflow: 9223372036854775807 + 1",
            ),
            (
                "SELECT x * x FROM (VALUES (CAST(3037000500 AS bigint))) t(x)",
                "bigint multiplication overflow: 3037000500 * 3037000500",
            ),
            (
                "SELECT x - CAST(1 AS integer) FROM (VALUES (CAST(-2147483648 AS integer))) t(x)",
                "integer subtraction overflow: -2147483648 - 1",
            ),
            (
                "SELECT CAST(2147483647 AS integer) + CAST(1 AS integer)",
                "integer addition overflow: 2147483647 + 1",
            ),
            (
                "SELECT CAST(100 AS tinyint) + CAST(100 AS tinyint)",
                "tinyint addition overflow: 100 + 100",
            ),
            // The second row overflows; the first does not.
            (
                "SELECT x * 2 FROM (VALUES (CAST(1 AS bigint)), \
                 (CAST(5000000000000000000 AS bigint))) t(x)",
                "bigint multiplication overflow: 5000000000000000000 * 2",
            ),
        ] {
            let got = one(sql).await;
            let err = got.expect_err(sql);
            assert!(err.contains(message), "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn a_sum_of_bigints_fails_where_athena_s_does() {
        let big = "CAST(9223372036854775807 AS bigint)";
        for (sql, message) in [
            (
                format!("SELECT sum(x) FROM (VALUES ({big}), (CAST(1 AS bigint))) t(x)"),
                "bigint addition overflow: 9223372036854775807 + 1",
            ),
            (
                "SELECT sum(x) FROM (VALUES (CAST(-9223372036854775807 AS bigint)), \
                 (CAST(-2 AS bigint))) t(x)"
                    .into(),
                "bigint addition overflow: -9223372036854775807 + -2",
            ),
            // One group of two overflows.
            (
                format!(
                    "SELECT g, sum(x) FROM (VALUES (1, CAST(1 AS bigint)), (2, {big}), \
                     (2, CAST(5 AS bigint))) t(g, x) GROUP BY g"
                ),
                "bigint addition overflow: 9223372036854775807 + 5",
            ),
            (
                format!(
                    "SELECT sum(x) FILTER (WHERE x > 0) FROM (VALUES ({big}), \
                     (CAST(1 AS bigint))) t(x)"
                ),
                "bigint addition overflow",
            ),
            (
                format!(
                    "SELECT sum(x) OVER (ORDER BY x) FROM (VALUES ({big}), (CAST(1 AS bigint))) t(x)"
                ),
                "bigint addition overflow",
            ),
            // The distinct values overflow, though each repeats. (Alone, it is planned as a sum
            // over the grouped values.)
            (
                format!(
                    "SELECT sum(DISTINCT x) FROM (VALUES ({big}), ({big}), (CAST(1 AS bigint)), \
                     (CAST(1 AS bigint))) t(x)"
                ),
                "bigint addition overflow",
            ),
            (
                format!(
                    "SELECT g, sum(DISTINCT x) FROM (VALUES (1, {big}), (1, CAST(2 AS bigint)), \
                     (2, CAST(1 AS bigint))) t(g, x) GROUP BY g"
                ),
                "bigint addition overflow",
            ),
            // A sliding frame whose sum does not fit.
            (
                format!(
                    "SELECT sum(x) OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
                     FROM (VALUES (1, {big}), (2, {big})) t(i, x)"
                ),
                "bigint addition overflow",
            ),
        ] {
            let err = one(&sql).await.expect_err(&sql);
            assert!(err.contains(message), "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn sums_that_fit_are_unchanged() {
        let rows = |sql: &'static str| async move { crate::trino::csv_rows(sql).await.unwrap() };
        assert_eq!(
            rows(
                "SELECT g, sum(x) AS s, sum(y) AS t, sum(z) FILTER (WHERE g = 1) AS f, \
                 sum(DISTINCT z) AS d, typeof(sum(y)) AS ty FROM (VALUES \
                 (1, CAST(9223372036854775807 AS bigint), CAST(2147483647 AS integer), CAST(1 AS bigint)), \
                 (1, CAST(-1 AS bigint), CAST(2147483647 AS integer), CAST(1 AS bigint)), \
                 (2, NULL, NULL, CAST(3 AS bigint))) t(g, x, y, z) GROUP BY g ORDER BY g"
            )
            .await,
            [
                "1,9223372036854775806,4294967294,2,1,bigint",
                "2,,,,3,bigint"
            ]
        );
        // Over a sliding frame: what leaves the frame is taken out before the next row comes in.
        assert_eq!(
            rows(
                "SELECT i, sum(x) OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) \
                 FROM (VALUES (1, CAST(9223372036854775807 AS bigint)), (2, CAST(-5 AS bigint)), \
                 (3, CAST(7 AS bigint)), (4, NULL), (5, NULL)) t(i, x) ORDER BY i"
            )
            .await,
            [
                "1,9223372036854775807",
                "2,9223372036854775802",
                "3,2",
                "4,7",
                "5,"
            ]
        );
        // No rows: NULL; and the column keeps its name.
        assert_eq!(
            rows("SELECT sum(x) FROM (VALUES (CAST(1 AS bigint))) t(x) WHERE x > 1").await,
            ["\"\""]
        );
        let got = one("SELECT sum(x) FROM (VALUES (CAST(1 AS bigint))) t(x)")
            .await
            .unwrap();
        assert!(got.contains("sum(t.x)"), "{got}");
    }

    #[tokio::test]
    async fn values_that_fit_are_unchanged() {
        let got = one(
            "SELECT x + 1 AS a, x - 1 AS b, x * 3 AS c, y + 1 AS d, y * y AS e, z + 0.5 AS g \
             FROM (VALUES (CAST(3074457345618258602 AS bigint), CAST(46340 AS integer), 1.5), \
             (CAST(NULL AS bigint), CAST(-46340 AS integer), 2.5)) t(x, y, z)",
        )
        .await
        .unwrap();
        for v in [
            "3074457345618258603",
            "3074457345618258601",
            "9223372036854775806",
            "46341",
            "2147395600",
            "2.0",
            "-46339",
            "3.0",
        ] {
            assert!(got.contains(v), "{v} in {got}");
        }
    }

    #[tokio::test]
    async fn names_and_other_types_are_kept() {
        // An unnamed sum keeps its column name; dates, decimals and doubles keep their operators.
        let got = one(
            "SELECT x + 1, DATE '2026-01-31' + INTERVAL '1' DAY AS d, 1.5 * 2 AS m, \
             1e308 * 10 AS big FROM (VALUES (CAST(1 AS bigint))) t(x)",
        )
        .await
        .unwrap();
        assert!(got.contains("2026-02-01"), "{got}");
        assert!(got.contains("3.0"), "{got}");
        assert!(got.contains("inf"), "{got}");
        // A branch not taken is not evaluated, so its overflow does not fail the query.
        let got = one(
            "SELECT CASE WHEN x < 10 THEN x * 9223372036854775807 ELSE 0 END AS c \
             FROM (VALUES (CAST(1 AS bigint)), (CAST(20 AS bigint))) t(x)",
        )
        .await
        .unwrap();
        assert!(got.contains("9223372036854775807"), "{got}");
    }

    #[tokio::test]
    async fn inside_try_an_overflowing_row_is_null_and_the_others_keep_their_values() {
        let got = one(
            "SELECT try(x * 2) AS a, try(x + y) AS b, try(1.5 * 2) AS c, \
             try(DATE '2026-01-31' + INTERVAL '1' DAY) AS d \
             FROM (VALUES (CAST(1 AS bigint), CAST(2 AS bigint)), \
             (CAST(5000000000000000000 AS bigint), CAST(5000000000000000000 AS bigint)), \
             (CAST(NULL AS bigint), CAST(7 AS bigint))) t(x, y) ORDER BY x NULLS LAST",
        )
        .await
        .unwrap();
        // Rows ordered by x: 1, 5000000000000000000, NULL. A NULL prints as an empty cell.
        let rows: Vec<Vec<&str>> = got
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows[0][1..5], ["2", "3", "3.0", "2026-02-01"], "{got}");
        assert_eq!(rows[1][1..5], ["", "", "3.0", "2026-02-01"], "{got}");
        assert_eq!(rows[2][1..5], ["", "", "3.0", "2026-02-01"], "{got}");
    }
}

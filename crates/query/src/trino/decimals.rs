//! Decimals as Athena types them. A decimal beside a double is read as a double (`x > 0.5`
//! on a double `x` compares doubles, `coalesce(x, 0.0)` is a double). DataFusion coerces both
//! to a `decimal(30,15)` instead, which fails on a double of 10^15 or more ("too large to store
//! in a Decimal128") and costs a conversion a row. The rewrite runs before DataFusion's type
//! coercion, on comparisons and arithmetic, `CASE` (and `if`), `IN`, `BETWEEN`, `coalesce`,
//! `nullif`, `greatest` and `least`. The same rewrite gives `avg` of decimals, in an aggregation
//! or over a window, Athena's type ([`DecimalAvg`]), and `floor`, `ceil`, `round` of decimals
//! theirs (`floor(2.7)` is `2`, `round(1.55, 1)` is `1.60`).
//!
//! `x / y` with a decimal on either side is planned in place of `/` ([`DecimalDivision`]): the
//! quotient at the larger of the two scales, rounded half away from zero, where DataFusion
//! gives the dividend's scale plus 4, truncated (`CAST(26321 AS decimal(12,2)) / 1000` is
//! `26.32` on Athena, was `26.321000` here).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::{
    AggregateFunction, Between, BinaryExpr, Case, InList, ScalarFunction, WindowFunction,
    WindowFunctionDefinition,
};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::fun::{Call, Fun, arc, arity};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Cast, EmitTo, Expr, ExprSchemable,
    GroupsAccumulator, ReversedUDAF, ScalarUDF, Signature,
};

#[derive(Debug)]
pub struct AthenaDecimals;

fn is_float(e: &Expr, schema: &DFSchema) -> bool {
    matches!(
        e.get_type(schema),
        Ok(DataType::Float16 | DataType::Float32 | DataType::Float64)
    )
}

fn is_decimal(e: &Expr, schema: &DFSchema) -> bool {
    matches!(
        e.get_type(schema),
        Ok(DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..))
    )
}

/// Whether `exprs` mix a double and a decimal, the case to rewrite.
fn mixed<'a>(exprs: impl IntoIterator<Item = &'a Expr> + Clone, schema: &DFSchema) -> bool {
    exprs.clone().into_iter().any(|e| is_float(e, schema))
        && exprs.into_iter().any(|e| is_decimal(e, schema))
}

/// `e` as a double when it is a decimal.
fn double(e: Expr, schema: &DFSchema) -> Expr {
    if is_decimal(&e, schema) {
        Expr::Cast(Cast::new(Box::new(e), DataType::Float64))
    } else {
        e
    }
}

/// Whether a `CASE` mixes a double and a decimal among its results, and among its base and
/// `WHEN` values (`CASE x WHEN …`).
fn case_mix(c: &Case, s: &DFSchema) -> (bool, bool) {
    let results = c
        .when_then_expr
        .iter()
        .map(|(_, t)| t.as_ref())
        .chain(c.else_expr.as_deref());
    let keys = c.expr.as_deref().is_some_and(|base| {
        mixed(
            std::iter::once(base).chain(c.when_then_expr.iter().map(|(w, _)| w.as_ref())),
            s,
        )
    });
    (mixed(results, s), keys)
}

impl FunctionRewrite for AthenaDecimals {
    fn name(&self) -> &str {
        "athena_decimals"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let s = schema;
        Ok(match expr {
            Expr::BinaryExpr(b) if mixed([b.left.as_ref(), b.right.as_ref()], s) => {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(double(*b.left, s)),
                    b.op,
                    Box::new(double(*b.right, s)),
                )))
            }
            Expr::Case(c) => {
                let (results, keys) = case_mix(&c, s);
                if !results && !keys {
                    return Ok(Transformed::no(Expr::Case(c)));
                }
                let side = |e: Expr, on: bool| if on { double(e, s) } else { e };
                Transformed::yes(Expr::Case(Case::new(
                    c.expr.map(|b| Box::new(side(*b, keys))),
                    c.when_then_expr
                        .into_iter()
                        .map(|(w, t)| (Box::new(side(*w, keys)), Box::new(side(*t, results))))
                        .collect(),
                    c.else_expr.map(|e| Box::new(side(*e, results))),
                )))
            }
            Expr::InList(l) if mixed(std::iter::once(l.expr.as_ref()).chain(&l.list), s) => {
                Transformed::yes(Expr::InList(InList::new(
                    Box::new(double(*l.expr, s)),
                    l.list.into_iter().map(|e| double(e, s)).collect(),
                    l.negated,
                )))
            }
            Expr::Between(b) if mixed([b.expr.as_ref(), b.low.as_ref(), b.high.as_ref()], s) => {
                Transformed::yes(Expr::Between(Between::new(
                    Box::new(double(*b.expr, s)),
                    b.negated,
                    Box::new(double(*b.low, s)),
                    Box::new(double(*b.high, s)),
                )))
            }
            // `avg` of a decimal(p, s) (p up to 38): a decimal(p, s), as Athena averages.
            Expr::AggregateFunction(f)
                if f.func.name() == "avg"
                    && f.params.args.len() == 1
                    && matches!(f.params.args[0].get_type(s), Ok(DataType::Decimal128(..))) =>
            {
                Transformed::yes(Expr::AggregateFunction(AggregateFunction {
                    func: Arc::new(DecimalAvg::udaf()),
                    params: f.params,
                }))
            }
            // The same over a window.
            Expr::WindowFunction(w)
                if matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(a) if a.name() == "avg")
                    && w.params.args.len() == 1
                    && matches!(w.params.args[0].get_type(s), Ok(DataType::Decimal128(..))) =>
            {
                let w = *w;
                Transformed::yes(Expr::WindowFunction(Box::new(WindowFunction {
                    fun: WindowFunctionDefinition::AggregateUDF(Arc::new(DecimalAvg::udaf())),
                    params: w.params,
                })))
            }
            // `floor`, `ceil` of a decimal(p, s): a decimal(p - s + min(s, 1), 0), `2`, not
            // `2.0`; `truncate`: a decimal(max(1, p - s), 0); `round(x, n)`: a
            // decimal(p + 1, s), `1.60`.
            Expr::ScalarFunction(f)
                if matches!(
                    f.func.name(),
                    "floor" | "ceil" | "ceiling" | "round" | "trunc" | "truncate"
                ) && let Some(Ok(DataType::Decimal128(p, sc))) =
                    f.args.first().map(|a| a.get_type(s)) =>
            {
                let sc8 = u8::try_from(sc).unwrap_or(0);
                let to = match (f.func.name(), f.args.len()) {
                    ("round", 2) => DataType::Decimal128((p + 1).min(38), sc),
                    ("trunc" | "truncate", 1) => {
                        DataType::Decimal128(p.saturating_sub(sc8).max(1), 0)
                    }
                    ("round", _) | (_, 1) => DataType::Decimal128((p - sc8 + sc8.min(1)).max(1), 0),
                    _ => return Ok(Transformed::no(Expr::ScalarFunction(f))),
                };
                let call = Expr::ScalarFunction(f);
                if sc < 0 || call.get_type(s).ok().as_ref() == Some(&to) {
                    return Ok(Transformed::no(call));
                }
                Transformed::yes(Expr::Cast(Cast::new(Box::new(call), to)))
            }
            Expr::ScalarFunction(f)
                if matches!(f.func.name(), "coalesce" | "nullif" | "greatest" | "least")
                    && mixed(&f.args, s) =>
            {
                Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                    func: f.func,
                    args: f.args.into_iter().map(|e| double(e, s)).collect(),
                }))
            }
            other => Transformed::no(other),
        })
    }
}

/// Athena's decimal division, which the planner puts in place of `/` when a side is a decimal.
const DECIMAL_DIVIDE: &str = "decimal_divide";

/// The decimal an operand of a division is read as: a decimal as it is, an integer as a
/// decimal of scale 0 with its type's digits (an integer literal is Athena's `integer`, 10
/// digits, when it fits one). `None` for anything else, or a negative scale.
fn division_operand(t: &DataType, literal: Option<i64>) -> Option<(u8, i8)> {
    Some(match t {
        DataType::Decimal128(p, s) if *s >= 0 => (*p, *s),
        DataType::Int8 | DataType::UInt8 => (3, 0),
        DataType::Int16 | DataType::UInt16 => (5, 0),
        DataType::Int32 | DataType::UInt32 => (10, 0),
        DataType::Int64 if literal.is_some_and(|v| i32::try_from(v).is_ok()) => (10, 0),
        DataType::Int64 => (19, 0),
        DataType::UInt64 => (20, 0),
        _ => return None,
    })
}

/// `decimal(p1, s1) / decimal(p2, s2)`: `decimal(min(38, p1 + s2 + max(0, s2 - s1)),
/// max(s1, s2))`, as Athena types it.
fn decimal_quotient(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[2])?;
    let (DataType::Decimal128(p1, s1), DataType::Decimal128(_, s2)) = (&t[0], &t[1]) else {
        return Err(DataFusionError::Plan(format!(
            "{n}: two decimals, not {} and {}",
            t[0], t[1]
        )));
    };
    let (p1, s1, s2) = (i16::from(*p1), i16::from(*s1), i16::from(*s2));
    let p = (p1 + s2 + (s2 - s1).max(0)).min(38);
    let s = s1.max(s2);
    Ok(DataType::Decimal128(
        u8::try_from(p.max(s).max(1)).expect("at most 38"),
        i8::try_from(s).expect("at most 38"),
    ))
}

/// The function [`DECIMAL_DIVIDE`] names.
fn decimal_divide_udf() -> ScalarUDF {
    Fun::new(DECIMAL_DIVIDE, decimal_quotient, decimal_divide).udf()
}

fn decimal_divide(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use arrow::array::{AsArray, Decimal128Builder};
    use arrow::datatypes::{Decimal128Type, i256};
    let DataType::Decimal128(p, s) = *call.ret else {
        unreachable!("typed by decimal_quotient")
    };
    let (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) =
        (&call.types[0], &call.types[1])
    else {
        unreachable!("typed by decimal_quotient")
    };
    let (x, y) = (
        a[0].as_primitive::<Decimal128Type>(),
        a[1].as_primitive::<Decimal128Type>(),
    );
    // x / 10^s1 ÷ y / 10^s2 at scale s: x · 10^(s + s2 - s1) ÷ y.
    let shift = u32::try_from(i16::from(s) + i16::from(*s2) - i16::from(*s1)).expect("s >= s1");
    let ten = i256::from_i128(10);
    let factor = ten.checked_pow(shift);
    let bound = ten.wrapping_pow(u32::from(p));
    let mut out = Decimal128Builder::with_capacity(x.len());
    for i in 0..x.len() {
        if x.is_null(i) || y.is_null(i) {
            out.append_null();
            continue;
        }
        let d = i256::from_i128(y.value(i));
        if d == i256::ZERO {
            call.row_err::<()>("Division by zero")?;
            out.append_null();
            continue;
        }
        let quotient = factor
            .and_then(|f| i256::from_i128(x.value(i)).checked_mul(f))
            .and_then(|num| {
                let q = num.checked_div(d)?;
                let r = num.checked_rem(d)?;
                // Half away from zero: |r| ≥ |d| / 2.
                let up = r.wrapping_abs().checked_mul(i256::from_i128(2))? >= d.wrapping_abs();
                let q = if up {
                    q.checked_add(num.signum().wrapping_mul(d.signum()))?
                } else {
                    q
                };
                (q.wrapping_abs() < bound).then_some(q)
            });
        match quotient {
            Some(q) => out.append_value(q.as_i128()),
            None => {
                call.row_err::<()>(format!(
                    "Decimal overflow: the quotient does not fit decimal({p}, {s})"
                ))?;
                out.append_null();
            }
        }
    }
    Ok(arc(out.finish().with_precision_and_scale(p, s)?))
}

/// Plans `x / y` with a decimal on either side as Athena divides decimals
/// ([`DECIMAL_DIVIDE`]); an integer side is cast to its decimal first.
#[derive(Debug)]
pub struct DecimalDivision;

impl ExprPlanner for DecimalDivision {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> datafusion::error::Result<PlannerResult<RawBinaryExpr>> {
        if !matches!(expr.op, BinaryOperator::Divide) {
            return Ok(PlannerResult::Original(expr));
        }
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        if !matches!(l, DataType::Decimal128(..)) && !matches!(r, DataType::Decimal128(..)) {
            return Ok(PlannerResult::Original(expr));
        }
        let literal = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Int64(v), _) => *v,
            _ => None,
        };
        let (Some((p1, s1)), Some((p2, s2))) = (
            division_operand(&l, literal(&expr.left)),
            division_operand(&r, literal(&expr.right)),
        ) else {
            return Ok(PlannerResult::Original(expr));
        };
        let as_decimal = |e: Expr, t: &DataType, p: u8, s: i8| {
            let target = DataType::Decimal128(p, s);
            if *t == target {
                e
            } else {
                Expr::Cast(Cast::new(Box::new(e), target))
            }
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(
                Arc::new(decimal_divide_udf()),
                vec![
                    as_decimal(expr.left, &l, p1, s1),
                    as_decimal(expr.right, &r, p2, s2),
                ],
            ),
        )))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_decimal_beside_a_double_is_read_as_a_double() {
        for (sql, want) in [
            (
                "SELECT CAST(1e20 AS double) > CAST('0.5' AS decimal(2,1))",
                "true",
            ),
            (
                "SELECT typeof(coalesce(CAST(1 AS double), CAST('0.5' AS decimal(2,1))))",
                "double",
            ),
            (
                "SELECT typeof(CASE WHEN true THEN CAST(1 AS double) ELSE CAST('0.5' AS decimal(2,1)) END)",
                "double",
            ),
            (
                "SELECT typeof(if(false, CAST(1 AS double), CAST('0.5' AS decimal(2,1))))",
                "double",
            ),
            (
                "SELECT CAST(2e20 AS double) BETWEEN CAST('0.5' AS decimal(2,1)) AND CAST(3e20 AS double)",
                "true",
            ),
            (
                "SELECT CAST(1e20 AS double) IN (CAST('0.5' AS decimal(2,1)), CAST(1e20 AS double))",
                "true",
            ),
            (
                "SELECT typeof(greatest(CAST(1 AS double), CAST('0.5' AS decimal(2,1))))",
                "double",
            ),
            // An average of decimals is a decimal of their type, rounded half away from zero,
            // grouped or not.
            (
                "SELECT avg(x), typeof(avg(x)) FROM (VALUES (1.0), (0.0), (0.0)) AS t(x)",
                "0.3,\"decimal(2,1)\"",
            ),
            (
                "SELECT array_join(array_agg(CAST(a AS varchar) ORDER BY x), ' ') FROM (SELECT x, \
                 avg(x) OVER (ORDER BY x ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS a \
                 FROM (VALUES (1.0), (2.0), (4.0)) AS t(x))",
                "1.0 1.5 2.3",
            ),
            (
                "SELECT floor(2.7), ceil(-2.5), typeof(ceiling(12.25)), round(1.55, 1), \
                 typeof(round(1.55, 1)), round(2.5)",
                "2,-2,\"decimal(3,0)\",1.60,\"decimal(4,2)\",3",
            ),
            (
                "SELECT avg(x) FROM (VALUES (-1.0), (0.0), (-0.5), (0.0)) AS t(x)",
                "-0.4",
            ),
            (
                "SELECT array_join(array_agg(CAST(a AS varchar) ORDER BY g), ' ') FROM \
                 (SELECT g, avg(x) AS a FROM (VALUES (1, 0.25), (1, 0.5), (2, 1.05), (2, 1.00)) \
                 AS t(g, x) GROUP BY g)",
                "0.38 1.03",
            ),
        ] {
            assert_eq!(crate::trino::csv_rows(sql).await.unwrap(), [want], "{sql}");
        }
    }
}

/// `avg` of a decimal as Athena computes it: a decimal of the argument's own type, rounded
/// half away from zero (`avg` of 1.0, 0.0, 0.0 is 0.3), where DataFusion's has four more
/// digits, truncated. DataFusion's average runs as it is, at its own scale (truncating there
/// and rounding at Athena's scale gives the rounded quotient); its result is then rounded.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DecimalAvg {
    inner: Arc<AggregateUDF>,
}

impl DecimalAvg {
    /// `avg(x)` for a decimal `x` of `decimal(p, s)` with `p <= 38`.
    pub fn udaf() -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            inner: datafusion::functions_aggregate::average::avg_udaf(),
        })
    }

    /// The field DataFusion's average returns for `args`.
    fn inner_field(&self, input: &[FieldRef], name: &str) -> Result<FieldRef> {
        let types: Vec<DataType> = input.iter().map(|f| f.data_type().clone()).collect();
        Ok(Arc::new(Field::new(
            name,
            self.inner.return_type(&types)?,
            true,
        )))
    }
}

impl AggregateUDFImpl for DecimalAvg {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match t.first() {
            Some(DataType::Decimal128(p, s)) => Ok(DataType::Decimal128(*p, *s)),
            _ => self.inner.return_type(t),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let to = args.return_field.data_type().clone();
        let inner = self.inner.accumulator(AccumulatorArgs {
            return_field: self.inner_field(args.expr_fields, args.name)?,
            ..args
        })?;
        Ok(Box::new(Rounded { inner, to }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(StateFieldsArgs {
            return_field: self.inner_field(args.input_fields, args.name)?,
            ..args
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        match self.inner_field(args.expr_fields, args.name) {
            Ok(return_field) => self.inner.groups_accumulator_supported(AccumulatorArgs {
                return_field,
                ..args
            }),
            Err(_) => false,
        }
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let to = args.return_field.data_type().clone();
        let inner = self.inner.create_groups_accumulator(AccumulatorArgs {
            return_field: self.inner_field(args.expr_fields, args.name)?,
            ..args
        })?;
        Ok(Box::new(RoundedGroups { inner, to }))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// An accumulator whose result is cast (rounding a decimal half away from zero) to `to`.
#[derive(Debug)]
struct Rounded {
    inner: Box<dyn Accumulator>,
    to: DataType,
}

impl Accumulator for Rounded {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(values)
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()?.cast_to(&self.to)
    }
    fn size(&self) -> usize {
        self.inner.size() + std::mem::size_of::<Self>()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(values)
    }
    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }
}

/// [`Rounded`] for groups.
struct RoundedGroups {
    inner: Box<dyn GroupsAccumulator>,
    to: DataType,
}

impl GroupsAccumulator for RoundedGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .update_batch(values, group_indices, opt_filter, total_num_groups)
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(arrow::compute::cast(
            &self.inner.evaluate(emit_to)?,
            &self.to,
        )?)
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.inner.convert_to_state(values, opt_filter)
    }
    fn size(&self) -> usize {
        self.inner.size() + std::mem::size_of::<Self>()
    }
}

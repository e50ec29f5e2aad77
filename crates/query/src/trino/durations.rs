//! Athena's durations, data sizes and a few more scalar functions:
//!
//! - `parse_duration('3.81 d')`: a decimal number and a unit (`ns`, `us`, `ms`, `s`, `m`, `h`,
//!   `d`) as an interval day to second, rounded to the millisecond.
//! - `to_milliseconds(interval)`: an interval day to second in milliseconds.
//! - `human_readable_seconds(x)`: `1 hour, 2 minutes, 42 seconds` (weeks to seconds, units
//!   that are 0 left out, `x` rounded to the second).
//! - `parse_data_size('2.3MB')`: bytes as decimal(38, 0), units of 1024 (`B`, `kB`, `MB`, …
//!   `YB`), the fraction truncated.
//! - `from_unixtime_nanos(n)`: nanoseconds since the epoch as `timestamp(9) with time zone`
//!   (UTC).
//! - `luhn_check(digits)`: whether a string of digits passes the Luhn check.
//! - `ngrams(x, n)`: the runs of `n` consecutive elements of `x` (all of `x` when it is
//!   shorter).
//! - `interval * n`, `n * interval` and `interval / n` ([`IntervalScaling`]): an interval day to
//!   second scaled in milliseconds, one of months in months, the fraction dropped; a double NaN,
//!   or dividing by 0, fails with Athena's message.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int64Array,
    IntervalMonthDayNanoArray, StringArray, TimestampNanosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Field, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::fun::{Call, Fun, Result, arc, arity, ints};

const NANOS_PER_MS: i64 = 1_000_000;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// An interval day to second of `nanos` nanoseconds, as every interval day to second is held:
/// no days, so that two of them compare, sort, group and hash by their length (DataFusion
/// compares months, then days, then nanoseconds, so that 25 hours held as 0 days would be less
/// than 1 day held as 1 day). Athena's interval day to second is one number of milliseconds.
fn day_to_second(nanos: i64) -> IntervalMonthDayNano {
    IntervalMonthDayNano::new(0, 0, nanos)
}

/// Interval literals as intervals day to second are held (see [`day_to_second`]):
/// `INTERVAL '1' DAY` is planned as 1 day, 0 nanoseconds, and would then be neither equal to
/// `INTERVAL '24' HOUR` nor less than `INTERVAL '25' HOUR`, nor greater than a difference of
/// timestamps of three days (which is a duration, compared as nanoseconds). A literal with months
/// (a year to month interval) is left as it is.
#[derive(Debug, Default)]
pub struct IntervalsWithoutDays;

impl IntervalsWithoutDays {
    fn rewrite(expr: Expr) -> DfResult<Transformed<Expr>> {
        expr.transform_up(|e| match e {
            Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), meta)
                if v.months == 0 && v.days != 0 =>
            {
                match i64::from(v.days)
                    .checked_mul(NANOS_PER_DAY)
                    .and_then(|n| n.checked_add(v.nanoseconds))
                {
                    Some(n) => Ok(Transformed::yes(Expr::Literal(
                        ScalarValue::IntervalMonthDayNano(Some(day_to_second(n))),
                        meta,
                    ))),
                    None => Ok(Transformed::no(Expr::Literal(
                        ScalarValue::IntervalMonthDayNano(Some(v)),
                        meta,
                    ))),
                }
            }
            e => Ok(Transformed::no(e)),
        })
    }
}

impl AnalyzerRule for IntervalsWithoutDays {
    fn name(&self) -> &str {
        "intervals_without_days"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                Self::rewrite(expr).map(|t| t.update_data(|e| name.restore(e)))
            })?
            .map_data(|plan| plan.recompute_schema())
        })
        .map(|t| t.data)
    }
}

/// `'2.3 MB'` as (`2.3`, `MB`): the leading digits and dots, and the rest trimmed.
fn number_and_unit(v: &str) -> (&str, &str) {
    let t = v.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    (&t[..split], t[split..].trim())
}

fn parse_duration(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        let (number, unit) = number_and_unit(v);
        let nanos_per: f64 = match unit {
            "ns" => 1.0,
            "us" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3_600e9,
            "d" => 86_400e9,
            _ => f64::NAN,
        };
        match number.parse::<f64>() {
            Ok(n) if nanos_per.is_finite() && number.chars().any(|c| c.is_ascii_digit()) => {
                // Rounded to the millisecond, as Athena's interval day to second.
                let ms = (n * nanos_per / 1e6).round() as i64;
                out.push(Some(day_to_second(ms * NANOS_PER_MS)));
            }
            _ => out.push(call.row_err(format!("duration is not valid: {v:?}"))?),
        }
    }
    Ok(arc(IntervalMonthDayNanoArray::from(out)))
}

fn to_milliseconds(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let iv = cast(&a[0], &DataType::Interval(IntervalUnit::MonthDayNano))?;
    let iv = iv.as_primitive::<IntervalMonthDayNanoType>();
    let mut out = Vec::with_capacity(iv.len());
    for i in 0..iv.len() {
        if iv.is_null(i) {
            out.push(None);
            continue;
        }
        let v = iv.value(i);
        out.push(if v.months != 0 {
            call.row_err("takes an interval day to second, not one of months")?
        } else {
            Some(i64::from(v.days) * 86_400_000 + v.nanoseconds / NANOS_PER_MS)
        });
    }
    Ok(arc(Int64Array::from(out)))
}

/// Plans `interval * n`, `n * interval` and `interval / n` (DataFusion has no such operators) as
/// calls of `interval_multiply` and `interval_divide`.
#[derive(Debug)]
pub struct IntervalScaling;

fn is_interval(t: &DataType) -> bool {
    matches!(t, DataType::Interval(_) | DataType::Duration(_))
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Null
}

impl ExprPlanner for IntervalScaling {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> datafusion::error::Result<PlannerResult<RawBinaryExpr>> {
        let divide = match expr.op {
            BinaryOperator::Multiply => false,
            BinaryOperator::Divide => true,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let (interval, number) = if is_interval(&l) && is_number(&r) {
            (expr.left, expr.right)
        } else if !divide && is_number(&l) && is_interval(&r) {
            (expr.right, expr.left)
        } else {
            return Ok(PlannerResult::Original(expr));
        };
        let fun = if divide {
            Fun::new("interval_divide", scaled, interval_divide)
        } else {
            Fun::new("interval_multiply", scaled, interval_multiply)
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                Arc::new(fun.udf()),
                vec![interval, number],
            ),
        )))
    }
}

/// How Athena's message names the double it refuses (NaN, or 0 to divide by), as Java prints it.
fn refused_double(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x.is_sign_negative() {
        "-0.0"
    } else {
        "0.0"
    }
}

/// `interval * n` (`divide` false) or `interval / n`, row by row. Athena multiplies by a bigint
/// exactly, and by anything else as a double; it divides as a double.
fn scale_intervals(call: &Call, a: &[ArrayRef], divide: bool) -> Result<ArrayRef> {
    let iv = cast(&a[0], &DataType::Interval(IntervalUnit::MonthDayNano))?;
    let iv = iv.as_primitive::<IntervalMonthDayNanoType>();
    let exact = !divide && a[1].data_type().is_integer();
    let ints = exact.then(|| ints(&a[1])).transpose()?;
    let doubles = if exact {
        None
    } else {
        Some(cast(&a[1], &DataType::Float64)?)
    };
    let doubles: Option<&Float64Array> = doubles.as_ref().map(|d| d.as_primitive());
    let mut out = Vec::with_capacity(iv.len());
    for i in 0..iv.len() {
        let n_null = match (&ints, doubles) {
            (Some(n), _) => n.is_null(i),
            (None, Some(d)) => d.is_null(i),
            (None, None) => true,
        };
        if iv.is_null(i) || n_null {
            out.push(None);
            continue;
        }
        let v = iv.value(i);
        let ms = i64::from(v.days) * 86_400_000 + v.nanoseconds / NANOS_PER_MS;
        let months = i64::from(v.months);
        let scaled = match (&ints, doubles) {
            (Some(n), _) => {
                let k = n.value(i);
                months.checked_mul(k).zip(ms.checked_mul(k))
            }
            (None, Some(d)) => {
                let x = d.value(i);
                if x.is_nan() || (divide && x == 0.0) {
                    let verb = if divide { "divide" } else { "multiply" };
                    out.push(
                        call.row_err(format!("Cannot {verb} by double {}", refused_double(x)))?,
                    );
                    continue;
                }
                // Java's `(long)`: toward zero, saturating, as Rust's `as`.
                let f = |v: i64| {
                    if divide {
                        (v as f64 / x) as i64
                    } else {
                        (v as f64 * x) as i64
                    }
                };
                Some((f(months), f(ms)))
            }
            (None, None) => None,
        };
        let fits = scaled.and_then(|(months, ms)| {
            Some(IntervalMonthDayNano::new(
                i32::try_from(months).ok()?,
                0,
                ms.checked_mul(NANOS_PER_MS)?,
            ))
        });
        match fits {
            Some(v) => out.push(Some(v)),
            None => out.push(call.row_err("the interval is out of range")?),
        }
    }
    Ok(arc(IntervalMonthDayNanoArray::from(out)))
}

fn scaled(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[2])?;
    Ok(DataType::Interval(IntervalUnit::MonthDayNano))
}

fn interval_multiply(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    scale_intervals(call, a, false)
}

fn interval_divide(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    scale_intervals(call, a, true)
}

fn human_readable_seconds(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = cast(&a[0], &DataType::Float64)?;
    let x: &Float64Array = x.as_primitive();
    let mut out: Vec<Option<String>> = Vec::with_capacity(x.len());
    for v in x.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        if !v.is_finite() {
            out.push(call.row_err(format!("invalid number of seconds: {v}"))?);
            continue;
        }
        let mut rest = v.abs().round() as u64;
        let mut parts = Vec::new();
        for (unit, size) in [
            ("week", 604_800),
            ("day", 86_400),
            ("hour", 3_600),
            ("minute", 60),
            ("second", 1),
        ] {
            let n = rest / size;
            rest %= size;
            if n > 0 {
                parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
            }
        }
        out.push(Some(if parts.is_empty() {
            "0 seconds".to_string()
        } else {
            parts.join(", ")
        }));
    }
    Ok(arc(StringArray::from(out)))
}

fn parse_data_size(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        let (number, unit) = number_and_unit(v);
        let power = UNITS.iter().position(|u| *u == unit);
        // Exact decimal arithmetic: digits times 1024^power, the fraction truncated.
        let value = power.and_then(|p| {
            let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
            if whole.is_empty() && frac.is_empty() {
                return None;
            }
            let digits: i128 = format!("{whole}{frac}").parse().ok()?;
            let scale = 10_i128.checked_pow(frac.len() as u32)?;
            let factor = 1024_i128.checked_pow(p as u32)?;
            Some(digits.checked_mul(factor)? / scale)
        });
        match value {
            Some(x) => out.push(Some(x)),
            None => out.push(call.row_err(format!("invalid data size: {v:?}"))?),
        }
    }
    Ok(arc(
        Decimal128Array::from(out).with_precision_and_scale(38, 0)?
    ))
}

fn from_unixtime_nanos(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    // A decimal keeps its whole nanoseconds (the fraction is dropped), as Athena.
    let n: Int64Array = match a[0].data_type() {
        DataType::Decimal128(_, scale) => {
            let div = 10_i128.pow(u32::from((*scale).max(0) as u8));
            a[0].as_primitive::<arrow::datatypes::Decimal128Type>()
                .iter()
                .map(|v| v.map(|v| (v / div) as i64))
                .collect()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let f = cast(&a[0], &DataType::Float64)?;
            f.as_primitive::<arrow::datatypes::Float64Type>()
                .iter()
                .map(|v| v.map(|v| v.trunc() as i64))
                .collect()
        }
        _ => ints(&a[0])?,
    };
    Ok(arc(TimestampNanosecondArray::from(
        n.iter().collect::<Vec<_>>(),
    )
    .with_timezone("UTC")))
}

fn luhn_check(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            out.push(call.row_err(format!("not a string of digits: {v:?}"))?);
            continue;
        }
        let sum: u32 = v
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let d2 = d * 2;
                    if d2 > 9 { d2 - 9 } else { d2 }
                } else {
                    d
                }
            })
            .sum();
        out.push(Some(sum.is_multiple_of(10)));
    }
    Ok(arc(BooleanArray::from(out)))
}

fn ngrams(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = super::arrays::list(call.name, &a[0])?;
    let n = ints(&a[1])?;
    let o = x.offsets();
    let (mut inner_lengths, mut outer_lengths, mut indices, mut valid) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..x.len() {
        if x.is_null(i) || n.is_null(i) {
            outer_lengths.push(0);
            valid.push(false);
            continue;
        }
        let k = n.value(i);
        if k <= 0 {
            call.row_err::<()>(format!("N must be positive, not {k}"))?;
            outer_lengths.push(0);
            valid.push(false);
            continue;
        }
        let (s, e) = (o[i] as usize, o[i + 1] as usize);
        let len = e - s;
        let k = (k as usize).min(len.max(1));
        let grams = if len == 0 { 1 } else { len - k + 1 };
        for g in 0..grams {
            let run = k.min(len);
            indices.extend((s + g..s + g + run).map(|j| j as u32));
            inner_lengths.push(run);
        }
        outer_lengths.push(grams);
        valid.push(true);
    }
    super::arrays::lists_of_lists(call, &x, indices, inner_lengths, outer_lengths, valid)
}

pub fn functions() -> Vec<Fun> {
    fn one(n: &str, t: &[DataType], ret: DataType) -> Result<DataType> {
        arity(n, t, &[1])?;
        Ok(ret)
    }
    vec![
        Fun::new("interval_multiply", scaled, interval_multiply),
        Fun::new("interval_divide", scaled, interval_divide),
        Fun::new(
            "parse_duration",
            |n, t| one(n, t, DataType::Interval(IntervalUnit::MonthDayNano)),
            parse_duration,
        ),
        Fun::new(
            "to_milliseconds",
            |n, t| one(n, t, DataType::Int64),
            to_milliseconds,
        ),
        Fun::new(
            "human_readable_seconds",
            |n, t| one(n, t, DataType::Utf8),
            human_readable_seconds,
        ),
        Fun::new(
            "parse_data_size",
            |n, t| one(n, t, DataType::Decimal128(38, 0)),
            parse_data_size,
        ),
        Fun::new(
            "from_unixtime_nanos",
            |n, t| {
                one(
                    n,
                    t,
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                )
            },
            from_unixtime_nanos,
        ),
        Fun::new(
            "luhn_check",
            |n, t| one(n, t, DataType::Boolean),
            luhn_check,
        ),
        Fun::new(
            "ngrams",
            |n, t| {
                arity(n, t, &[2])?;
                match &t[0] {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        Ok(DataType::new_list(
                            DataType::List(Arc::new(Field::new_list_field(
                                f.data_type().clone(),
                                true,
                            ))),
                            true,
                        ))
                    }
                    other => Err(datafusion::common::DataFusionError::Plan(format!(
                        "ngrams takes an array, not {}",
                        super::trino_type(other)
                    ))),
                }
            },
            ngrams,
        ),
    ]
}

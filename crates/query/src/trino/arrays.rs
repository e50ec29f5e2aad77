//! Athena's array functions that DataFusion has under other meanings or not at all:
//!
//! - `slice(x, start, length)`: `length` elements from the 1-based `start` (from the end when
//!   negative); `start` 0 or a negative `length` is an error.
//! - `trim_array(x, n)`: `x` without its last `n` elements; `n` outside [0, cardinality] is an
//!   error.
//! - `contains_sequence(x, seq)`: whether `seq` appears in `x` as consecutive elements.
//! - `array_max(x)`, `array_min(x)`: NULL when an element is NULL (DataFusion skips NULLs).
//! - `array_position(x, e)`: 0 when `e` is not in `x` (DataFusion gives NULL).
//! - `arrays_overlap(x, y)` and `contains(x, e)` (planned as [`CONTAINS_ELEMENT`]): true on a
//!   common non-NULL element; else NULL when a NULL element could have been one; else false.
//! - `zip(a, b, …)`: rows of the arrays' elements side by side, the shorter padded with NULL.
//! - `sequence(start, stop[, step])` over bigint, date (a step of days or months, one day by
//!   default) and timestamp (a step of an interval): from `start` to `stop` inclusive; the step
//!   defaults to 1 (or -1 when `stop` < `start`); a step of the wrong sign is an error, and so
//!   is a result of more than 10,000 entries.
//! - `combinations(x, n)`: every group of `n` (at most 5) of `x`'s elements, in Athena's
//!   order; `shuffle(x)`: `x` in a random order.
//! - `cardinality(x)`: an array's elements (DataFusion counts the elements of nested arrays
//!   too) or a map's entries.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int64Array, ListArray, UInt32Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, IntervalMonthDayNanoType, IntervalUnit, TimeUnit};
use arrow::row::{RowConverter, SortField};
use chrono::{Duration, Months, NaiveDate};
use datafusion::common::DataFusionError;

use super::fun::{Call, Fun, Result, arc, arity, ints};

pub(super) fn list(name: &str, a: &ArrayRef) -> Result<ListArray> {
    match a.data_type() {
        DataType::List(_) => Ok(a.as_list::<i32>().clone()),
        DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Ok(cast(a, &DataType::List(Arc::clone(f)))?
                .as_list::<i32>()
                .clone())
        }
        DataType::Null => Ok(ListArray::new_null(
            Arc::new(Field::new_list_field(DataType::Null, true)),
            a.len(),
        )),
        t => Err(DataFusionError::Execution(format!(
            "{name} expects an array, not {}",
            super::trino_type(t)
        ))),
    }
}

fn element_type(name: &str, t: &DataType) -> Result<DataType> {
    match list_type(name, t)? {
        DataType::List(f) => Ok(f.data_type().clone()),
        t => Ok(t),
    }
}

fn list_type(name: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Ok(DataType::List(Arc::clone(f)))
        }
        DataType::Null => Ok(DataType::new_list(DataType::Null, true)),
        t => Err(DataFusionError::Plan(format!(
            "{name} expects an array, not {}",
            super::trino_type(t)
        ))),
    }
}

/// The array column a function returns (`call.ret`): `values` cut by `offsets`, cast to the
/// element type.
fn list_result(
    call: &Call,
    offsets: OffsetBuffer<i32>,
    values: &ArrayRef,
    nulls: Option<arrow::buffer::NullBuffer>,
) -> Result<ArrayRef> {
    let DataType::List(field) = call.ret else {
        return Err(DataFusionError::Execution(format!(
            "{} returns an array",
            call.name
        )));
    };
    Ok(arc(ListArray::try_new(
        Arc::clone(field),
        offsets,
        cast(values, field.data_type())?,
        nulls,
    )?))
}

/// The array of arrays a function returns (`call.ret`): the elements of `x` at `indices`, cut
/// into arrays of the `inner` lengths, those into rows of the `outer` lengths; `valid` says
/// which rows are not NULL.
pub(super) fn lists_of_lists(
    call: &Call,
    x: &ListArray,
    indices: Vec<u32>,
    inner: Vec<usize>,
    outer: Vec<usize>,
    valid: Vec<bool>,
) -> Result<ArrayRef> {
    let DataType::List(outer_field) = call.ret else {
        return Err(DataFusionError::Execution(format!(
            "{} returns an array",
            call.name
        )));
    };
    let DataType::List(inner_field) = outer_field.data_type() else {
        return Err(DataFusionError::Execution(format!(
            "{} returns an array of arrays",
            call.name
        )));
    };
    let values = take(x.values(), &UInt32Array::from(indices), None)?;
    let arrays = ListArray::try_new(
        Arc::clone(inner_field),
        OffsetBuffer::from_lengths(inner),
        cast(&values, inner_field.data_type())?,
        None,
    )?;
    Ok(arc(ListArray::try_new(
        Arc::clone(outer_field),
        OffsetBuffer::from_lengths(outer),
        arc(arrays),
        Some(valid.into()),
    )?))
}

/// A sub-list of each row, chosen from the row's length and its integer arguments: Ok(None) for
/// a NULL row.
fn sublists(
    call: &Call,
    a: &[ArrayRef],
    pick: impl Fn(usize, &[i64]) -> std::result::Result<(usize, usize), String>,
) -> Result<ArrayRef> {
    let x = list(call.name, &a[0])?;
    let args: Vec<Int64Array> = a[1..].iter().map(ints).collect::<Result<_>>()?;
    let offsets = x.offsets();
    let mut indices = Vec::new();
    let mut lengths = Vec::with_capacity(x.len());
    let mut nulls = Vec::with_capacity(x.len());
    let mut v = vec![0; args.len()];
    for i in 0..x.len() {
        let null = x.is_null(i) || args.iter().any(|a| a.is_null(i));
        let range = if null {
            None
        } else {
            for (k, a) in args.iter().enumerate() {
                v[k] = a.value(i);
            }
            let len = (offsets[i + 1] - offsets[i]) as usize;
            match pick(len, &v) {
                Ok(r) => Some(r),
                Err(e) => call.row_err::<()>(e).map(|_| None)?,
            }
        };
        match range {
            Some((from, n)) => {
                let base = offsets[i] as u32 + from as u32;
                indices.extend(base..base + n as u32);
                lengths.push(n);
                nulls.push(true);
            }
            None => {
                lengths.push(0);
                nulls.push(false);
            }
        }
    }
    let values = take(x.values(), &UInt32Array::from(indices), None)?;
    list_result(
        call,
        OffsetBuffer::from_lengths(lengths),
        &values,
        Some(nulls.into()),
    )
}

fn slice(len: usize, v: &[i64]) -> std::result::Result<(usize, usize), String> {
    let (start, length) = (v[0], v[1]);
    if start == 0 {
        return Err("SQL array indices start at 1".to_string());
    }
    if length < 0 {
        return Err(format!(
            "length must be greater than or equal to 0, not {length}"
        ));
    }
    let len = len as i64;
    let from = if start > 0 { start - 1 } else { len + start };
    if from < 0 || from >= len {
        return Ok((0, 0));
    }
    Ok((from as usize, length.min(len - from) as usize))
}

fn trim_array(len: usize, v: &[i64]) -> std::result::Result<(usize, usize), String> {
    let n = v[0];
    if n < 0 || n > len as i64 {
        return Err(format!(
            "size to trim must be between 0 and the array's cardinality {len}, not {n}"
        ));
    }
    Ok((0, len - n as usize))
}

fn contains_sequence(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (x, s) = (list(call.name, &a[0])?, list(call.name, &a[1])?);
    // Both sides' elements as comparable rows, of one common type.
    let t = x.value_type();
    let converter = RowConverter::new(vec![SortField::new(t.clone())])?;
    let xr = converter.convert_columns(&[x.values().clone()])?;
    let sr = converter.convert_columns(&[cast(s.values(), &t)?])?;
    let (xo, so) = (x.offsets(), s.offsets());
    let out: BooleanArray = (0..x.len())
        .map(|i| {
            if x.is_null(i) || s.is_null(i) {
                return None;
            }
            let (xs, xe) = (xo[i] as usize, xo[i + 1] as usize);
            let (ss, se) = (so[i] as usize, so[i + 1] as usize);
            let n = se - ss;
            Some(
                n == 0
                    || (xs..=xe.saturating_sub(n))
                        .filter(|&k| k + n <= xe)
                        .any(|k| (0..n).all(|j| xr.row(k + j) == sr.row(ss + j))),
            )
        })
        .collect();
    Ok(arc(out))
}

/// The name `contains(array, element)` is planned under.
pub const CONTAINS_ELEMENT: &str = "contains_element";

/// The elements of `x` and the values of `others` (cast to the elements' type) as comparable
/// rows: equal rows are equal values, and rows sort as the values do.
fn rows_of(
    x: &ListArray,
    others: &[&ArrayRef],
) -> Result<(arrow::row::Rows, Vec<arrow::row::Rows>)> {
    let t = x.value_type();
    let converter = RowConverter::new(vec![SortField::new(t.clone())])?;
    let own = converter.convert_columns(&[Arc::clone(x.values())])?;
    // An array of NULLs (`ARRAY[]`, `ARRAY[NULL]`) has elements of no type: nothing is equal to
    // them, and the values are taken as NULLs of that type (they cannot be cast to it).
    let others = others
        .iter()
        .map(|o| {
            let o = match t {
                DataType::Null => arrow::array::new_null_array(&t, o.len()),
                _ => cast(o, &t)?,
            };
            Ok(converter.convert_columns(&[o])?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((own, others))
}

/// Whether element `j` of `a` is NULL, for any type (a NULL-typed array has no null buffer).
pub(super) fn nulls_of(a: &dyn Array) -> impl Fn(usize) -> bool + use<> {
    let n = a.logical_nulls();
    move |j| n.as_ref().is_some_and(|n| n.is_null(j))
}

/// `array_max` (`largest`) or `array_min`.
fn extreme(call: &Call, a: &[ArrayRef], largest: bool) -> Result<ArrayRef> {
    let x = list(call.name, &a[0])?;
    let (rows, _) = rows_of(&x, &[])?;
    let values = x.values();
    let null = nulls_of(values.as_ref());
    let o = x.offsets();
    let mut pick: Vec<Option<u32>> = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let (s, e) = (o[i] as usize, o[i + 1] as usize);
        if x.is_null(i) || s == e || (s..e).any(&null) {
            pick.push(None);
            continue;
        }
        let best = (s..e).reduce(|b, j| {
            let better = if largest {
                rows.row(j) > rows.row(b)
            } else {
                rows.row(j) < rows.row(b)
            };
            if better { j } else { b }
        });
        pick.push(best.map(|j| j as u32));
    }
    Ok(take(values, &UInt32Array::from(pick), None)?)
}

fn array_position(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = list(call.name, &a[0])?;
    let null = nulls_of(x.values().as_ref());
    let (rows, others) = rows_of(&x, &[&a[1]])?;
    let o = x.offsets();
    let out: Int64Array = (0..x.len())
        .map(|i| {
            if x.is_null(i) || a[1].is_null(i) {
                return None;
            }
            let (s, e) = (o[i] as usize, o[i + 1] as usize);
            Some(
                (s..e)
                    .position(|j| !null(j) && rows.row(j) == others[0].row(i))
                    .map_or(0, |p| p as i64 + 1),
            )
        })
        .collect();
    Ok(arc(out))
}

/// Athena's three-valued membership: true on a match, NULL when an unknown could match.
fn member(found: bool, unknown: bool) -> Option<bool> {
    if found {
        Some(true)
    } else if unknown {
        None
    } else {
        Some(false)
    }
}

fn element_in(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = list(call.name, &a[0])?;
    let null = nulls_of(x.values().as_ref());
    let (rows, others) = rows_of(&x, &[&a[1]])?;
    let o = x.offsets();
    let out: BooleanArray = (0..x.len())
        .map(|i| {
            if x.is_null(i) {
                return None;
            }
            let (s, e) = (o[i] as usize, o[i + 1] as usize);
            let nulls = (s..e).any(&null);
            if a[1].is_null(i) {
                return member(false, s < e);
            }
            let found = (s..e).any(|j| !null(j) && rows.row(j) == others[0].row(i));
            member(found, nulls)
        })
        .collect();
    Ok(arc(out))
}

fn arrays_overlap(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = list(call.name, &a[0])?;
    let y = list(call.name, &a[1])?;
    let y_values = Arc::clone(y.values());
    let (x_null, y_null) = (nulls_of(x.values().as_ref()), nulls_of(y_values.as_ref()));
    let (xr, yr) = rows_of(&x, &[&y_values])?;
    let (xo, yo) = (x.offsets(), y.offsets());
    let out: BooleanArray = (0..x.len())
        .map(|i| {
            if x.is_null(i) || y.is_null(i) {
                return None;
            }
            let (xs, xe) = (xo[i] as usize, xo[i + 1] as usize);
            let (ys, ye) = (yo[i] as usize, yo[i + 1] as usize);
            let found = (xs..xe)
                .filter(|&p| !x_null(p))
                .any(|p| (ys..ye).any(|q| !y_null(q) && xr.row(p) == yr[0].row(q)));
            let nulls = (xs..xe).any(&x_null) || (ys..ye).any(&y_null);
            member(found, nulls && xs < xe && ys < ye)
        })
        .collect();
    Ok(arc(out))
}

const MAX_ENTRIES: usize = 10_000;

/// The steps from `start` to `stop` inclusive, `next` giving the k-th value.
fn steps<T: PartialOrd + Copy>(
    start: T,
    stop: T,
    up: bool,
    next: impl Fn(i64) -> Option<T>,
) -> std::result::Result<Vec<T>, String> {
    if (up && stop < start) || (!up && stop > start) {
        return Err(
            "sequence stop value should be greater than or equal to start value if step is \
             greater than zero otherwise stop should be less than or equal to start"
                .to_string(),
        );
    }
    let mut out = vec![start];
    for k in 1.. {
        let Some(v) = next(k) else { break };
        if (up && v > stop) || (!up && v < stop) {
            break;
        }
        if out.len() == MAX_ENTRIES {
            return Err(format!(
                "result of sequence function must not have more than {MAX_ENTRIES} entries"
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// An interval step as (months, nanoseconds).
fn interval_step(a: &ArrayRef, i: usize) -> Result<(i64, i64)> {
    let iv = cast(a, &DataType::Interval(IntervalUnit::MonthDayNano))?;
    let iv = iv.as_primitive::<IntervalMonthDayNanoType>().value(i);
    Ok((
        i64::from(iv.months),
        i64::from(iv.days) * 86_400_000_000_000 + iv.nanoseconds,
    ))
}

fn sequence(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let n = a[0].len();
    let field = match call.ret {
        DataType::List(f) => Arc::clone(f),
        t => {
            return Err(DataFusionError::Execution(format!(
                "sequence returns an array, not {t}"
            )));
        }
    };
    let element = field.data_type().clone();
    let mut lengths = Vec::with_capacity(n);
    let mut nulls = Vec::with_capacity(n);
    let step_null = |i: usize| a.get(2).is_some_and(|s| s.is_null(i));
    let values: ArrayRef = match &element {
        DataType::Int64 => {
            let (start, stop) = (ints(&a[0])?, ints(&a[1])?);
            let step = a.get(2).map(ints).transpose()?;
            let mut out = Vec::new();
            for i in 0..n {
                if start.is_null(i) || stop.is_null(i) || step_null(i) {
                    lengths.push(0);
                    nulls.push(false);
                    continue;
                }
                let (s, e) = (start.value(i), stop.value(i));
                let d = step
                    .as_ref()
                    .map_or(if e >= s { 1 } else { -1 }, |x| x.value(i));
                let r = if d == 0 {
                    Err("step must not be zero".to_string())
                } else {
                    steps(s, e, d > 0, |k| s.checked_add(k.checked_mul(d)?))
                };
                match r {
                    Ok(v) => {
                        lengths.push(v.len());
                        nulls.push(true);
                        out.extend(v);
                    }
                    Err(e) => {
                        call.row_err::<()>(e)?;
                        lengths.push(0);
                        nulls.push(false);
                    }
                }
            }
            arc(Int64Array::from(out))
        }
        DataType::Date32 | DataType::Timestamp(..) => {
            let unit_nanos: i64 = match &element {
                DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
                DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
                DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
                DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
                _ => 86_400_000_000_000,
            };
            // Days or ticks since the epoch.
            let ticks = |x: &ArrayRef| -> Result<Int64Array> {
                let x = cast(x, &element)?;
                if element == DataType::Date32 {
                    ints(&cast(&x, &DataType::Int32)?)
                } else {
                    ints(&x)
                }
            };
            let (start, stop) = (ticks(&a[0])?, ticks(&a[1])?);
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
            let mut out = Vec::new();
            for i in 0..n {
                if start.is_null(i) || stop.is_null(i) || step_null(i) {
                    lengths.push(0);
                    nulls.push(false);
                    continue;
                }
                let (s, e) = (start.value(i), stop.value(i));
                let (months, nanos) = match a.get(2) {
                    Some(st) => interval_step(st, i)?,
                    None if element == DataType::Date32 => {
                        (0, if e >= s { 1 } else { -1 } * 86_400_000_000_000)
                    }
                    None => {
                        return Err(DataFusionError::Execution(
                            "sequence of timestamps takes a step (an INTERVAL)".to_string(),
                        ));
                    }
                };
                let r = if months != 0 && nanos != 0 {
                    Err("a sequence step is either months or days to seconds".to_string())
                } else if months == 0 && nanos % unit_nanos != 0 {
                    Err("the sequence step is finer than the values".to_string())
                } else if months == 0 && nanos == 0 {
                    Err("step must not be zero".to_string())
                } else if months == 0 {
                    let d = nanos / unit_nanos;
                    steps(s, e, d > 0, |k| s.checked_add(k.checked_mul(d)?))
                } else {
                    // Calendar months from the start, each clamped to its month's end.
                    let per_day = 86_400_000_000_000 / unit_nanos;
                    let (day, within) = (s.div_euclid(per_day), s.rem_euclid(per_day));
                    let base = epoch + Duration::days(day);
                    steps(s, e, months > 0, |k| {
                        let m = k.checked_mul(months)?;
                        let d = if m >= 0 {
                            base.checked_add_months(Months::new(u32::try_from(m).ok()?))?
                        } else {
                            base.checked_sub_months(Months::new(u32::try_from(-m).ok()?))?
                        };
                        Some((d - epoch).num_days() * per_day + within)
                    })
                };
                match r {
                    Ok(v) => {
                        lengths.push(v.len());
                        nulls.push(true);
                        out.extend(v);
                    }
                    Err(e) => {
                        call.row_err::<()>(e)?;
                        lengths.push(0);
                        nulls.push(false);
                    }
                }
            }
            let v = Int64Array::from(out);
            if element == DataType::Date32 {
                arc(Date32Array::from_iter(
                    v.iter().map(|d| d.map(|d| d as i32)),
                ))
            } else {
                cast(&v, &element)?
            }
        }
        t => {
            return Err(DataFusionError::Execution(format!(
                "sequence takes bigint, date or timestamp, not {}",
                super::trino_type(t)
            )));
        }
    };
    Ok(arc(ListArray::try_new(
        field,
        OffsetBuffer::from_lengths(lengths),
        values,
        Some(nulls.into()),
    )?))
}

fn sequence_type(name: &str, t: &[DataType]) -> Result<DataType> {
    arity(name, t, &[2, 3])?;
    let element = match (&t[0], &t[1]) {
        (DataType::Date32 | DataType::Date64, DataType::Date32 | DataType::Date64) => {
            DataType::Date32
        }
        (DataType::Timestamp(u, z), DataType::Timestamp(..) | DataType::Date32) => {
            DataType::Timestamp(*u, z.clone())
        }
        (a, b)
            if (a.is_integer() || a == &DataType::Null)
                && (b.is_integer() || b == &DataType::Null) =>
        {
            DataType::Int64
        }
        (a, b) => {
            return Err(DataFusionError::Plan(format!(
                "sequence takes two bigints, dates or timestamps, not {a} and {b}"
            )));
        }
    };
    if let Some(step) = t.get(2) {
        let ok = match element {
            DataType::Int64 => step.is_integer() || step == &DataType::Null,
            _ => matches!(step, DataType::Interval(_) | DataType::Null),
        };
        if !ok {
            return Err(DataFusionError::Plan(format!(
                "sequence over {element} takes a step of {}, not {step}",
                if element == DataType::Int64 {
                    "bigint"
                } else {
                    "INTERVAL"
                }
            )));
        }
    }
    Ok(DataType::new_list(element, true))
}

/// The name an `UNNEST` of a map (or of an array of rows) reads its columns through.
pub const UNNEST_PART: &str = "unnest_part";

/// The `i`-th (1-based) column of an `UNNEST` of one map or array of rows, as an array per row:
/// a map's keys (1) or values (2), or the rows' `i`-th fields.
fn part_type(name: &str, t: &DataType, i: Option<i64>) -> Result<DataType> {
    let fields = match t {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => kv.clone(),
            _ => return Err(DataFusionError::Plan(format!("{name}: a map's entries"))),
        },
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match f.data_type() {
                DataType::Struct(fs) => fs.clone(),
                t => {
                    return Err(DataFusionError::Plan(format!(
                        "UNNEST with several column names takes a map or an array of rows, not an array of {t}"
                    )));
                }
            }
        }
        t => {
            return Err(DataFusionError::Plan(format!(
                "UNNEST takes an array or a map, not {}",
                super::trino_type(t)
            )));
        }
    };
    let Some(i) = i.filter(|i| *i >= 1 && (*i as usize) <= fields.len()) else {
        return Err(DataFusionError::Plan(format!(
            "UNNEST names more columns than the {} of its map or rows",
            fields.len()
        )));
    };
    Ok(DataType::new_list(
        fields[i as usize - 1].data_type().clone(),
        true,
    ))
}

fn unnest_part(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let i = ints(&a[1])?;
    let i = (0..i.len())
        .find(|&r| i.is_valid(r))
        .map_or(1, |r| i.value(r)) as usize;
    let DataType::List(field) = call.ret else {
        return Err(DataFusionError::Execution(format!(
            "{} returns an array",
            call.name
        )));
    };
    let (offsets, column, nulls) = match a[0].data_type() {
        DataType::Map(..) => {
            let m = a[0].as_map();
            (
                m.offsets().clone(),
                Arc::clone(m.entries().column(i - 1)),
                m.logical_nulls(),
            )
        }
        _ => {
            let l = list(call.name, &a[0])?;
            let rows = l.values().as_struct();
            (
                l.offsets().clone(),
                Arc::clone(rows.column(i - 1)),
                l.logical_nulls(),
            )
        }
    };
    Ok(arc(ListArray::try_new(
        Arc::clone(field),
        offsets,
        cast(&column, field.data_type())?,
        nulls,
    )?))
}

/// `zip(a, b, …)`: an array of rows, the i-th holding each array's i-th element, the shorter
/// arrays padded with NULL; NULL when an array is NULL.
fn zip_type(name: &str, t: &[DataType]) -> Result<DataType> {
    if t.len() < 2 {
        return Err(DataFusionError::Plan(format!(
            "{name} takes two arrays or more"
        )));
    }
    let fields: Vec<Field> = t
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(Field::new(
                format!("field{i}"),
                element_type(name, t)?,
                true,
            ))
        })
        .collect::<Result<_>>()?;
    Ok(DataType::new_list(DataType::Struct(fields.into()), true))
}

fn zip(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let lists: Vec<ListArray> = a
        .iter()
        .map(|x| list(call.name, x))
        .collect::<Result<_>>()?;
    let DataType::List(field) = call.ret else {
        return Err(DataFusionError::Execution(
            "zip returns an array".to_string(),
        ));
    };
    let DataType::Struct(fields) = field.data_type() else {
        return Err(DataFusionError::Execution("zip returns rows".to_string()));
    };
    let n = lists[0].len();
    let mut picks: Vec<Vec<Option<u32>>> = vec![Vec::new(); lists.len()];
    let (mut lengths, mut nulls) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        if lists.iter().any(|l| l.is_null(i)) {
            lengths.push(0);
            nulls.push(false);
            continue;
        }
        let spans: Vec<(usize, usize)> = lists
            .iter()
            .map(|l| (l.offsets()[i] as usize, l.offsets()[i + 1] as usize))
            .collect();
        let len = spans.iter().map(|(s, e)| e - s).max().unwrap_or(0);
        for (p, (s, e)) in picks.iter_mut().zip(&spans) {
            p.extend((0..len).map(|k| (s + k < *e).then(|| (s + k) as u32)));
        }
        lengths.push(len);
        nulls.push(true);
    }
    let columns: Vec<ArrayRef> = lists
        .iter()
        .zip(picks)
        .zip(fields.iter())
        .map(|((l, p), f)| {
            Ok(cast(
                &take(l.values(), &UInt32Array::from(p), None)?,
                f.data_type(),
            )?)
        })
        .collect::<Result<_>>()?;
    let rows = arrow::array::StructArray::try_new(fields.clone(), columns, None)?;
    Ok(arc(ListArray::try_new(
        Arc::clone(field),
        OffsetBuffer::from_lengths(lengths),
        arc(rows),
        Some(nulls.into()),
    )?))
}

/// `contains(array, element)` with Athena's NULLs.
pub fn contains_element() -> Fun {
    Fun::new(
        CONTAINS_ELEMENT,
        |n, t| {
            arity(n, t, &[2])?;
            list_type(n, &t[0])?;
            Ok(DataType::Boolean)
        },
        element_in,
    )
}

/// The combinations of `n` of `len` positions, each in increasing order, the combinations in
/// Athena's (colexicographic) order: [0, 1], [0, 2], [1, 2], [0, 3], …
fn combinations_of(len: usize, n: usize, mut each: impl FnMut(&[usize])) {
    if n > len {
        return;
    }
    let mut c: Vec<usize> = (0..n).collect();
    loop {
        each(&c);
        // The lowest position that can move up without meeting the next one, moved, and
        // those below it reset.
        let Some(k) = (0..n).find(|&k| c[k] + 1 < c.get(k + 1).copied().unwrap_or(len)) else {
            return;
        };
        c[k] += 1;
        for (j, v) in c.iter_mut().enumerate().take(k) {
            *v = j;
        }
    }
}

/// `n` of `len` items, or None past `limit`.
fn choose(len: usize, n: usize, limit: usize) -> Option<usize> {
    let mut r: usize = 1;
    for i in 0..n.min(len) {
        r = r.checked_mul(len - i)? / (i + 1);
        if r > limit {
            return None;
        }
    }
    Some(if n > len { 0 } else { r })
}

/// Athena's largest number of elements in the result of one `combinations` call.
const MAX_COMBINATION_ELEMENTS: usize = 100_000;

/// `cardinality(x)`: the number of an array's elements (its first dimension only) or of a
/// map's entries.
fn cardinality(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let lengths = |o: &OffsetBuffer<i32>, nulls: Option<&arrow::buffer::NullBuffer>| {
        Int64Array::from_iter((0..o.len() - 1).map(|i| {
            nulls
                .is_none_or(|n| n.is_valid(i))
                .then(|| i64::from(o[i + 1] - o[i]))
        }))
    };
    match a[0].data_type() {
        DataType::Map(..) => {
            let m = a[0].as_map();
            Ok(arc(lengths(m.offsets(), m.nulls())))
        }
        DataType::Null => Ok(arc(Int64Array::new_null(a[0].len()))),
        _ => {
            let x = list(call.name, &a[0])?;
            Ok(arc(lengths(x.offsets(), x.nulls())))
        }
    }
}

/// Athena's largest `n` for `combinations`.
const MAX_COMBINATION: i64 = 5;

/// `combinations(x, n)`: every `n`-element group of `x`'s elements, as arrays.
fn combinations(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = list(call.name, &a[0])?;
    let n = ints(&a[1])?;
    let offsets = x.offsets();
    let mut indices: Vec<u32> = Vec::new();
    let mut groups = Vec::new();
    let mut counts = Vec::with_capacity(x.len());
    let mut nulls = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        if x.is_null(i) || n.is_null(i) {
            counts.push(0);
            nulls.push(false);
            continue;
        }
        let k = n.value(i);
        if !(0..=MAX_COMBINATION).contains(&k) {
            let msg = if k < 0 {
                format!("combination size must not be negative: {k}")
            } else {
                format!("combination size must not exceed {MAX_COMBINATION}: {k}")
            };
            call.row_err::<()>(msg)?;
            counts.push(0);
            nulls.push(false);
            continue;
        }
        let base = offsets[i] as usize;
        let len = offsets[i + 1] as usize - base;
        if choose(len, k as usize, MAX_COMBINATION_ELEMENTS)
            .is_none_or(|c| c * k as usize > MAX_COMBINATION_ELEMENTS)
        {
            call.row_err::<()>("combinations exceed max size")?;
            counts.push(0);
            nulls.push(false);
            continue;
        }
        let before = groups.len();
        combinations_of(len, k as usize, |c| {
            indices.extend(c.iter().map(|&p| (base + p) as u32));
            groups.push(c.len());
        });
        counts.push(groups.len() - before);
        nulls.push(true);
    }
    lists_of_lists(call, &x, indices, groups, counts, nulls)
}

/// `shuffle(x)`: `x`'s elements in a random order.
fn shuffle(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use rand::seq::SliceRandom;
    let x = list(call.name, &a[0])?;
    let offsets = x.offsets();
    let mut rng = rand::rng();
    let mut indices: Vec<u32> = Vec::with_capacity(x.values().len());
    for i in 0..x.len() {
        let from = indices.len();
        indices.extend(offsets[i] as u32..offsets[i + 1] as u32);
        indices[from..].shuffle(&mut rng);
    }
    let values = take(x.values(), &UInt32Array::from(indices), None)?;
    list_result(call, x.offsets().clone(), &values, x.nulls().cloned())
}

pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new(
            "slice",
            |n, t| {
                arity(n, t, &[3])?;
                list_type(n, &t[0])
            },
            |c, a| sublists(c, a, slice),
        ),
        Fun::new(
            "trim_array",
            |n, t| {
                arity(n, t, &[2])?;
                list_type(n, &t[0])
            },
            |c, a| sublists(c, a, trim_array),
        ),
        Fun::new(
            "contains_sequence",
            |n, t| {
                arity(n, t, &[2])?;
                list_type(n, &t[0])?;
                list_type(n, &t[1])?;
                Ok(DataType::Boolean)
            },
            contains_sequence,
        ),
        Fun::new("sequence", sequence_type, sequence),
        Fun::new(
            "array_max",
            |n, t| {
                arity(n, t, &[1])?;
                element_type(n, &t[0])
            },
            |c, a| extreme(c, a, true),
        ),
        Fun::new(
            "array_min",
            |n, t| {
                arity(n, t, &[1])?;
                element_type(n, &t[0])
            },
            |c, a| extreme(c, a, false),
        ),
        Fun::new(
            "array_position",
            |n, t| {
                arity(n, t, &[2])?;
                list_type(n, &t[0])?;
                Ok(DataType::Int64)
            },
            array_position,
        ),
        contains_element(),
        Fun::new("zip", zip_type, zip),
        Fun::new(
            "cardinality",
            |n, t| {
                arity(n, t, &[1])?;
                if !matches!(t[0], DataType::Map(..)) {
                    list_type(n, &t[0])?;
                }
                Ok(DataType::Int64)
            },
            cardinality,
        ),
        Fun::new(
            "combinations",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::new_list(list_type(n, &t[0])?, true))
            },
            combinations,
        ),
        Fun::new(
            "shuffle",
            |n, t| {
                arity(n, t, &[1])?;
                list_type(n, &t[0])
            },
            shuffle,
        )
        .volatile(),
        Fun::new(
            UNNEST_PART,
            |n, t| {
                arity(n, t, &[2])?;
                part_type(n, &t[0], Some(1))
            },
            unnest_part,
        )
        .literal_type(|n, t, lits| {
            arity(n, t, &[2])?;
            let i = match lits.get(1) {
                Some(Some(v)) => match v.cast_to(&DataType::Int64) {
                    Ok(datafusion::common::ScalarValue::Int64(i)) => i,
                    _ => None,
                },
                _ => None,
            };
            part_type(n, &t[0], i)
        }),
        Fun::new(
            "arrays_overlap",
            |n, t| {
                arity(n, t, &[2])?;
                list_type(n, &t[0])?;
                list_type(n, &t[1])?;
                Ok(DataType::Boolean)
            },
            arrays_overlap,
        ),
    ]
}

#[cfg(test)]
mod tests {
    async fn rows(sql: &str) -> Vec<String> {
        crate::trino::csv_rows(sql).await.unwrap()
    }

    #[tokio::test]
    async fn membership_and_extremes_follow_athenas_nulls_row_by_row() {
        let got = rows(
            "SELECT id, contains(a, e), array_position(a, e), array_max(a), array_min(a), \
             arrays_overlap(a, ARRAY[e, 9]), cardinality(array_remove(a, e)) \
             FROM (VALUES (1, ARRAY[3, 1, 3], 3), (2, ARRAY[1, NULL], 2), \
             (3, CAST(NULL AS ARRAY(BIGINT)), 1), (4, ARRAY[5, 6], NULL), (5, ARRAY[], 1)) \
             AS t(id, a, e) ORDER BY id",
        )
        .await;
        assert_eq!(
            got,
            [
                "1,true,1,3,1,true,1",
                "2,,0,,,,2",
                "3,,,,,,",
                "4,,,6,5,,",
                "5,false,0,,,false,0",
            ]
        );
    }

    #[tokio::test]
    async fn zip_pads_row_by_row_and_a_null_array_gives_null() {
        let got = rows(
            "SELECT id, cardinality(zip(a, b)), zip(a, b)[2][1], zip(a, b)[2][2] \
             FROM (VALUES (1, ARRAY[1, 2], ARRAY['x']), (2, ARRAY[3], ARRAY['y', 'z']), \
             (3, CAST(NULL AS ARRAY(BIGINT)), ARRAY['w'])) AS t(id, a, b) ORDER BY id",
        )
        .await;
        assert_eq!(got, ["1,2,2,", "2,2,,z", "3,,,"]);
    }
}

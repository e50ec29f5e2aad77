//! Subscripts that fail where Athena's fail. DataFusion's `array_element` gives NULL for an index
//! past either end and reads a negative one from the end, and a map's subscript gives NULL for a
//! key it lacks; on Athena:
//!
//! - `a[i]` fails when `i` is 0 ("SQL array indices start at 1"), negative, or past the end;
//! - `element_at(a, i)` fails when `i` is 0 (a negative `i` counts from the end, one past either
//!   end is NULL);
//! - `m[k]` fails when `m` has no key `k` (`element_at(m, k)` is NULL).
//!
//! `element_at` and a map's subscript are planned as DataFusion's access with a check in front
//! ([`element_at`], [`map_value`]): the check gives its input back, or fails on the row, or
//! gives NULL for it inside `try(…)`. `a[i]` is one function that checks and takes
//! ([`array_subscript`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_nested::extract::array_element_udf;
use datafusion::functions_nested::map_extract::map_extract_udf;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Expr, ScalarUDF};

use super::fun::{Body, Call, Fun, Result, Ret};

/// `a[i]`, as Athena reads it: one function of the array and the index that checks the index
/// and takes the element, so the array is written once (twice, the planner would compute it
/// apart from the subscript, and `split(context_locale, '-')[2]` could not be found once per
/// value of its column, see `rules/per_value.rs`).
pub fn array_subscript(array: Expr, index: Expr) -> Expr {
    check(
        "array subscript",
        element_type,
        subscript,
        vec![array, index],
    )
}

fn element_type(_: &str, t: &[DataType]) -> Result<DataType> {
    match &t[0] {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Ok(f.data_type().clone())
        }
        DataType::Null => Ok(DataType::Null),
        other => Err(datafusion::common::DataFusionError::Plan(format!(
            "cannot take a subscript of {}",
            super::conditional::trino_type(other)
        ))),
    }
}

/// Each row's element `i` (from 1) of its array, after `array_index` checked `i`: NULL for a
/// NULL array or index, or a row whose check failed inside `try(…)`.
fn subscript(call: &Call, args: &[ArrayRef]) -> Result<ArrayRef> {
    let checked = array_index(call, args)?;
    let index: &Int64Array = checked.as_primitive();
    let list = &args[0];
    let (values, starts): (ArrayRef, Vec<Option<i64>>) = match list.data_type() {
        DataType::List(_) => {
            let l = list.as_list::<i32>();
            let o = l.value_offsets();
            (
                Arc::clone(l.values()),
                (0..l.len())
                    .map(|r| l.is_valid(r).then(|| i64::from(o[r])))
                    .collect(),
            )
        }
        DataType::LargeList(_) => {
            let l = list.as_list::<i64>();
            let o = l.value_offsets();
            (
                Arc::clone(l.values()),
                (0..l.len()).map(|r| l.is_valid(r).then(|| o[r])).collect(),
            )
        }
        DataType::FixedSizeList(_, _) => {
            let l = list.as_fixed_size_list();
            (
                Arc::clone(l.values()),
                (0..l.len())
                    .map(|r| l.is_valid(r).then(|| i64::from(l.value_offset(r))))
                    .collect(),
            )
        }
        _ => return Ok(arrow::array::new_null_array(call.ret, list.len())),
    };
    // A checked index is 1 to the array's length, or NULL.
    let at: arrow::array::UInt64Array = starts
        .into_iter()
        .zip(index.iter())
        .map(|(start, i)| Some((start? + i? - 1) as u64))
        .collect();
    Ok(arrow::compute::take(&values, &at, None)?)
}

/// `element_at(a, i)` on an array, as Athena reads it.
pub fn element_at(array: Expr, index: Expr) -> Expr {
    let checked = check("element_at index", int64, element_at_index, vec![index]);
    call(&array_element_udf(), vec![array, checked])
}

/// `m[k]` (`must_exist`) or `element_at(m, k)`, as Athena reads them.
pub fn map_value(map: Expr, key: Expr, must_exist: bool) -> Expr {
    let map = if must_exist {
        let first = |_: &str, t: &[DataType]| Ok(t[0].clone());
        check(
            "map subscript",
            first,
            map_key_present,
            vec![map, key.clone()],
        )
    } else {
        map
    };
    let values = call(&map_extract_udf(), vec![map, key]);
    call(
        &array_element_udf(),
        vec![values, Expr::Literal(ScalarValue::Int64(Some(1)), None)],
    )
}

/// A check, named for what the user wrote (its errors begin with the name), on `args`.
fn check(name: &'static str, ret: Ret, body: Body, args: Vec<Expr>) -> Expr {
    call(&Arc::new(Fun::new(name, ret, body).udf()), args)
}

fn int64(_: &str, _: &[DataType]) -> Result<DataType> {
    Ok(DataType::Int64)
}

fn call(f: &Arc<ScalarUDF>, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(f), args))
}

/// The number of elements of each array (None for a NULL array).
fn lengths(a: &ArrayRef) -> Vec<Option<i64>> {
    let valid = |i: usize| a.is_valid(i);
    match a.data_type() {
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            (0..l.len())
                .map(|i| valid(i).then(|| i64::from(l.value_length(i))))
                .collect()
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            (0..l.len())
                .map(|i| valid(i).then(|| l.value_length(i)))
                .collect()
        }
        DataType::FixedSizeList(_, n) => (0..a.len())
            .map(|i| valid(i).then_some(i64::from(*n)))
            .collect(),
        _ => vec![None; a.len()],
    }
}

fn indices(a: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(a, &DataType::Int64)?.as_primitive().clone())
}

fn array_index(call: &Call, args: &[ArrayRef]) -> Result<ArrayRef> {
    let index = indices(&args[1])?;
    let mut out = Vec::with_capacity(index.len());
    for (len, i) in lengths(&args[0]).into_iter().zip(index.iter()) {
        out.push(match (len, i) {
            (Some(_), Some(0)) => call.row_err("SQL array indices start at 1")?,
            (Some(_), Some(i)) if i < 0 => {
                call.row_err(format!("Array subscript is negative: {i}"))?
            }
            (Some(len), Some(i)) if i > len => call.row_err(format!(
                "Array subscript must be less than or equal to array length: {i} > {len}"
            ))?,
            (_, i) => i,
        });
    }
    Ok(Arc::new(Int64Array::from(out)))
}

fn element_at_index(call: &Call, args: &[ArrayRef]) -> Result<ArrayRef> {
    let index = indices(&args[0])?;
    let mut out = Vec::with_capacity(index.len());
    for i in index.iter() {
        out.push(match i {
            Some(0) => call.row_err("SQL array indices start at 1")?,
            i => i,
        });
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// The maps, each checked to hold its row's key: a map without it is an error, or NULL inside
/// `try`. A NULL map or key passes (the value is NULL).
fn map_key_present(call: &Call, args: &[ArrayRef]) -> Result<ArrayRef> {
    let (maps, keys) = (args[0].as_map(), &args[1]);
    let key_type = maps.keys().data_type();
    let keys = if keys.data_type() == key_type {
        Arc::clone(keys)
    } else {
        cast(keys, key_type)?
    };
    // Each entry beside its row's key.
    let offsets = maps.value_offsets();
    let rows: arrow::array::UInt32Array = (0..maps.len())
        .flat_map(|r| {
            let n = (offsets[r + 1] - offsets[r]) as usize;
            std::iter::repeat_n(r as u32, n)
        })
        .collect();
    let first = offsets[0] as usize;
    let last = offsets[maps.len()] as usize;
    let entry_keys = maps.keys().slice(first, last - first);
    let wanted = arrow::compute::take(&keys, &rows, None)?;
    let equal = arrow::compute::kernels::cmp::eq(&entry_keys, &wanted)?;
    let mut missing = Vec::with_capacity(maps.len());
    for r in 0..maps.len() {
        let (a, b) = (offsets[r] as usize - first, offsets[r + 1] as usize - first);
        let found = (a..b).any(|e| equal.is_valid(e) && equal.value(e));
        if found || maps.is_null(r) || keys.is_null(r) {
            missing.push(false);
            continue;
        }
        let key = super::render::cell(&keys, r);
        let _: Option<()> = call.row_err(format!("Key not present in map: {key}"))?;
        missing.push(true);
    }
    if !missing.contains(&true) {
        return Ok(Arc::clone(&args[0]));
    }
    // Inside `try`: the maps without their key become NULL.
    Ok(arrow::compute::nullif(
        &args[0],
        &arrow::array::BooleanArray::from(missing),
    )?)
}

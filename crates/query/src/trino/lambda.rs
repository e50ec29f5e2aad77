//! Athena's higher-order functions that DataFusion does not have under any name: `all_match`,
//! `none_match`, `reduce` and `zip_with`. (`transform`, `filter` and `any_match` are
//! DataFusion's own, registered under Athena's names in `trino.rs`.)
//!
//! A lambda body is a DataFusion expression; each function hands it the array's elements (and
//! whatever columns the body captures, spread to one row per element) and assembles the answer
//! with Athena's rules for NULL:
//!
//! - `all_match`: false when an element gives false; else NULL when one gives NULL; else true
//!   (an empty array: true).
//! - `none_match`: false when an element gives true; else NULL when one gives NULL; else true.
//! - `reduce(array, initial, (s, x) -> …, s -> …)`: the input function applied element by
//!   element from the initial state, then the output function; NULL for a NULL array.
//! - `zip_with(a, b, (x, y) -> …)`: the function over pairs of elements, the shorter array
//!   padded with NULL; NULL when either array is NULL.
//! - `array_sort(x, (a, b) -> …)`: `x` in the order the comparator gives (negative: `a` first;
//!   positive: `b` first; 0: as they were); a NULL answer is an error, as in Athena. The
//!   planner knows `array_sort` as DataFusion's one-argument function, so `syntax.rs` renames
//!   a call with a lambda to [`SORT_WITH`] before planning.
//! - `regexp_replace(s, pattern, g -> …)`: each match replaced by the function of its capture
//!   groups (`g[1]` is the first); a NULL replacement makes the string NULL. Renamed to
//!   [`REPLACE_WITH`] before planning, as `array_sort`'s.
//! - `map_filter(m, (k, v) -> …)`: the entries the function gives true for (NULL drops one).
//! - `transform_values(m, (k, v) -> …)`, `transform_keys(m, (k, v) -> …)`: the map with new
//!   values, or new keys; a NULL or repeated new key is an error, as in Athena.

use std::sync::Arc;

use std::collections::HashSet;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, ListArray, ListBuilder, MapArray,
    StringBuilder, StructArray, UInt32Array, new_null_array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::filter;
use arrow::compute::{cast, interleave, take, take_arrays};
use arrow::datatypes::{DataType, Field, FieldRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::utils::list_values_row_number;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature,
    HigherOrderUDF, HigherOrderUDFImpl, LambdaParametersProgress, ValueOrLambda, Volatility,
};

pub fn functions() -> Vec<Arc<HigherOrderUDF>> {
    vec![
        Arc::new(HigherOrderUDF::new_from_impl(Match::all())),
        Arc::new(HigherOrderUDF::new_from_impl(Match::none())),
        Arc::new(HigherOrderUDF::new_from_impl(Reduce::new())),
        Arc::new(HigherOrderUDF::new_from_impl(ZipWith::new())),
        Arc::new(HigherOrderUDF::new_from_impl(SortWith::new())),
        Arc::new(HigherOrderUDF::new_from_impl(ReplaceWith::new())),
        Arc::new(HigherOrderUDF::new_from_impl(OverMap::new(MapOp::Filter))),
        Arc::new(HigherOrderUDF::new_from_impl(OverMap::new(MapOp::Keys))),
        Arc::new(HigherOrderUDF::new_from_impl(OverMap::new(MapOp::Values))),
    ]
}

/// The signature of a function taking `values` values, then `lambdas` lambdas.
fn values_then_lambdas(values: usize, lambdas: usize) -> HigherOrderSignature {
    let args = std::iter::repeat_n(ValueOrLambda::Value(()), values)
        .chain(std::iter::repeat_n(ValueOrLambda::Lambda(()), lambdas))
        .collect();
    HigherOrderSignature::exact(args, Volatility::Immutable)
}

/// Any list type as `List` (what the functions below read), NULL as a list of NULLs.
fn as_list(name: &str, t: &DataType) -> Result<DataType> {
    Ok(match t {
        DataType::List(_) => t.clone(),
        DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => DataType::List(Arc::clone(f)),
        DataType::Null => DataType::new_list(DataType::Null, true),
        other => {
            return plan_err!(
                "{name} expects an array as its first argument, not {}",
                super::trino_type(other)
            );
        }
    })
}

fn element(name: &str, list: &FieldRef) -> Result<FieldRef> {
    match list.data_type() {
        DataType::List(f) | DataType::LargeList(f) => Ok(Arc::clone(f)),
        other => plan_err!("{name} expects an array, not {}", super::trino_type(other)),
    }
}

fn value<'a, V, L>(name: &str, args: &'a [ValueOrLambda<V, L>], i: usize) -> Result<&'a V> {
    match args.get(i) {
        Some(ValueOrLambda::Value(v)) => Ok(v),
        _ => plan_err!("{name}: argument {} must be a value, not a lambda", i + 1),
    }
}

fn lambda<'a, V, L>(name: &str, args: &'a [ValueOrLambda<V, L>], i: usize) -> Result<&'a L> {
    match args.get(i) {
        Some(ValueOrLambda::Lambda(l)) => Ok(l),
        _ => plan_err!("{name}: argument {} must be a lambda (x -> …)", i + 1),
    }
}

/// The function's array argument, one row per input row.
fn list_arg(name: &str, args: &HigherOrderFunctionArgs, i: usize) -> Result<ListArray> {
    let a = value(name, &args.args, i)?.to_array(args.number_rows)?;
    match a.data_type() {
        DataType::List(_) => Ok(a.as_list::<i32>().clone()),
        other => exec_err!("{name} expects an array, not {}", super::trino_type(other)),
    }
}

/// The list's offsets made to start at 0, and its elements (only those its rows reach).
fn flat(list: &ListArray) -> (Vec<usize>, ArrayRef) {
    let offsets = list.offsets();
    let first = offsets[0].max(0) as usize;
    let starts: Vec<usize> = offsets.iter().map(|&o| o.max(0) as usize - first).collect();
    let last = *starts.last().unwrap_or(&0);
    (starts, list.values().slice(first, last))
}

/// `all_match` and `none_match`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Match {
    name: &'static str,
    /// The predicate's value that decides the answer (false for all, true for none).
    decisive: bool,
    signature: HigherOrderSignature,
}

impl Match {
    fn all() -> Self {
        Self::new("all_match", false)
    }

    fn none() -> Self {
        Self::new("none_match", true)
    }

    fn new(name: &'static str, decisive: bool) -> Self {
        Self {
            name,
            decisive,
            signature: values_then_lambdas(1, 1),
        }
    }
}

impl HigherOrderUDFImpl for Match {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [t] = arg_types else {
            return plan_err!("{} takes an array and a lambda", self.name);
        };
        Ok(vec![as_list(self.name, t)?])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let list = value(self.name, fields, 0)?;
        Ok(LambdaParametersProgress::Complete(vec![vec![element(
            self.name, list,
        )?]]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let predicate = lambda(self.name, args.arg_fields, 1)?;
        if !matches!(predicate.data_type(), DataType::Boolean | DataType::Null) {
            return plan_err!(
                "{}'s lambda must return boolean, not {}",
                self.name,
                predicate.data_type()
            );
        }
        Ok(Arc::new(Field::new(self.name, DataType::Boolean, true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let list = list_arg(self.name, &args, 0)?;
        let predicate = lambda(self.name, &args.args, 1)?;
        let (starts, values) = flat(&list);
        let result = if values.is_empty() {
            new_null_array(&DataType::Boolean, 0)
        } else {
            let rows = list_values_row_number(&list)?;
            let v = || Ok(Arc::clone(&values));
            let out = predicate
                .evaluate(&[&v], |c| Ok(take_arrays(c, &rows, None)?))?
                .into_array(values.len())?;
            cast(&out, &DataType::Boolean)?
        };
        let result: &BooleanArray = result.as_boolean();
        let mut b = BooleanBuilder::with_capacity(list.len());
        for i in 0..list.len() {
            if list.is_null(i) {
                b.append_null();
                continue;
            }
            let (mut decided, mut unknown) = (false, false);
            for j in starts[i]..starts[i + 1] {
                if result.is_null(j) {
                    unknown = true;
                } else if result.value(j) == self.decisive {
                    decided = true;
                    break;
                }
            }
            match (decided, unknown) {
                (true, _) => b.append_value(false),
                (false, true) => b.append_null(),
                (false, false) => b.append_value(true),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

/// `reduce(array, initial_state, input_function, output_function)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Reduce {
    signature: HigherOrderSignature,
}

impl Reduce {
    fn new() -> Self {
        Self {
            signature: values_then_lambdas(2, 2),
        }
    }
}

/// The state's field: the input function's result once known, else the initial value's.
fn state_field(fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>]) -> Result<(FieldRef, bool)> {
    let init = value("reduce", fields, 1)?;
    Ok(match fields.get(2) {
        Some(ValueOrLambda::Lambda(Some(out))) | Some(ValueOrLambda::Value(out))
            if out.data_type() != &DataType::Null =>
        {
            (
                Arc::new(Field::new("s", out.data_type().clone(), true)),
                true,
            )
        }
        _ => (
            Arc::new(Field::new("s", init.data_type().clone(), true)),
            false,
        ),
    })
}

impl HigherOrderUDFImpl for Reduce {
    fn name(&self) -> &str {
        "reduce"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [list, init] = arg_types else {
            return plan_err!(
                "reduce takes an array, an initial state, an input function and an output function"
            );
        };
        Ok(vec![as_list("reduce", list)?, init.clone()])
    }

    fn lambda_parameters(
        &self,
        step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let list = value("reduce", fields, 0)?;
        let x = element("reduce", list)?;
        let (s, known) = state_field(fields)?;
        if known || step > 0 {
            Ok(LambdaParametersProgress::Complete(vec![
                vec![Arc::clone(&s), x],
                vec![s],
            ]))
        } else {
            Ok(LambdaParametersProgress::Partial(vec![
                Some(vec![s, x]),
                None,
            ]))
        }
    }

    fn coerce_values_for_lambdas(
        &self,
        fields: &[ValueOrLambda<DataType, DataType>],
    ) -> Result<Option<Vec<DataType>>> {
        let list = value("reduce", fields, 0)?;
        let init = value("reduce", fields, 1)?;
        let out = lambda("reduce", fields, 2)?;
        let state = if out == &DataType::Null { init } else { out };
        Ok(Some(vec![list.clone(), state.clone()]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let out = lambda("reduce", args.arg_fields, 3)?;
        Ok(Arc::new(Field::new(
            "reduce",
            out.data_type().clone(),
            true,
        )))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let list = list_arg("reduce", &args, 0)?;
        let mut state = value("reduce", &args.args, 1)?.to_array(n)?;
        let input = lambda("reduce", &args.args, 2)?;
        let output = lambda("reduce", &args.args, 3)?;
        let state_type = state.data_type().clone();
        let (starts, values) = flat(&list);
        let longest = (0..list.len())
            .filter(|&i| list.is_valid(i))
            .map(|i| starts[i + 1] - starts[i])
            .max()
            .unwrap_or(0);
        // Element k of every array that has one, as one batch: k steps, not one per element.
        for k in 0..longest {
            let rows: Vec<u32> = (0..n)
                .filter(|&i| list.is_valid(i) && starts[i + 1] - starts[i] > k)
                .map(|i| i as u32)
                .collect();
            let rows = UInt32Array::from(rows);
            let at = UInt32Array::from_iter_values(
                rows.values()
                    .iter()
                    .map(|&i| (starts[i as usize] + k) as u32),
            );
            let s = take(&state, &rows, None)?;
            let x = take(&values, &at, None)?;
            let (sf, xf) = (|| Ok(Arc::clone(&s)), || Ok(Arc::clone(&x)));
            let next = input
                .evaluate(&[&sf, &xf], |c| Ok(take_arrays(c, &rows, None)?))?
                .into_array(rows.len())?;
            let next = cast(&next, &state_type)?;
            let mut from = Vec::with_capacity(n);
            let mut r = 0;
            for i in 0..n {
                if r < rows.len() && rows.value(r) as usize == i {
                    from.push((1, r));
                    r += 1;
                } else {
                    from.push((0, i));
                }
            }
            state = interleave(&[state.as_ref(), next.as_ref()], &from)?;
        }
        let sf = || Ok(Arc::clone(&state));
        let out = output.evaluate(&[&sf], |c| Ok(c.to_vec()))?.into_array(n)?;
        let out = cast(&out, args.return_type())?;
        Ok(ColumnarValue::Array(null_where(out, list.logical_nulls())?))
    }
}

/// `a` with NULL in each row `nulls` marks.
fn null_where(a: ArrayRef, nulls: Option<NullBuffer>) -> Result<ArrayRef> {
    let Some(nulls) = nulls.filter(|n| n.null_count() > 0) else {
        return Ok(a);
    };
    let none = new_null_array(a.data_type(), 1);
    let from: Vec<(usize, usize)> = (0..a.len())
        .map(|i| if nulls.is_valid(i) { (0, i) } else { (1, 0) })
        .collect();
    Ok(interleave(&[a.as_ref(), none.as_ref()], &from)?)
}

/// `zip_with(a, b, (x, y) -> …)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ZipWith {
    signature: HigherOrderSignature,
}

impl ZipWith {
    fn new() -> Self {
        Self {
            signature: values_then_lambdas(2, 1),
        }
    }
}

impl HigherOrderUDFImpl for ZipWith {
    fn name(&self) -> &str {
        "zip_with"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [a, b] = arg_types else {
            return plan_err!("zip_with takes two arrays and a lambda");
        };
        Ok(vec![as_list("zip_with", a)?, as_list("zip_with", b)?])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let x = element("zip_with", value("zip_with", fields, 0)?)?;
        let y = element("zip_with", value("zip_with", fields, 1)?)?;
        let nullable = |f: FieldRef| Arc::new(f.as_ref().clone().with_nullable(true));
        Ok(LambdaParametersProgress::Complete(vec![vec![
            nullable(x),
            nullable(y),
        ]]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let out = lambda("zip_with", args.arg_fields, 2)?;
        Ok(Arc::new(Field::new(
            "zip_with",
            DataType::new_list(out.data_type().clone(), true),
            true,
        )))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let a = list_arg("zip_with", &args, 0)?;
        let b = list_arg("zip_with", &args, 1)?;
        let f = lambda("zip_with", &args.args, 2)?;
        let (sa, va) = flat(&a);
        let (sb, vb) = flat(&b);
        let nulls = NullBuffer::union(a.logical_nulls().as_ref(), b.logical_nulls().as_ref());
        let mut lengths = Vec::with_capacity(a.len());
        let (mut ia, mut ib, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..a.len() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                lengths.push(0);
                continue;
            }
            let (la, lb) = (sa[i + 1] - sa[i], sb[i + 1] - sb[i]);
            let len = la.max(lb);
            for k in 0..len {
                ia.push((k < la).then(|| (sa[i] + k) as u32));
                ib.push((k < lb).then(|| (sb[i] + k) as u32));
                rows.push(i as u32);
            }
            lengths.push(len);
        }
        let rows = UInt32Array::from(rows);
        let x = take(&va, &UInt32Array::from(ia), None)?;
        let y = take(&vb, &UInt32Array::from(ib), None)?;
        let out_field = match args.return_type() {
            DataType::List(f) => Arc::clone(f),
            other => return exec_err!("zip_with returns an array, not {other}"),
        };
        let out = if rows.is_empty() {
            new_null_array(out_field.data_type(), 0)
        } else {
            let (xf, yf) = (|| Ok(Arc::clone(&x)), || Ok(Arc::clone(&y)));
            let out = f
                .evaluate(&[&xf, &yf], |c| Ok(take_arrays(c, &rows, None)?))?
                .into_array(rows.len())?;
            cast(&out, out_field.data_type())?
        };
        Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(
            out_field,
            OffsetBuffer::from_lengths(lengths),
            out,
            nulls,
        )?)))
    }
}

/// The name `regexp_replace(s, pattern, lambda)` is planned under.
pub const REPLACE_WITH: &str = "regexp_replace_with";

/// `regexp_replace(s, pattern, g -> …)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ReplaceWith {
    signature: HigherOrderSignature,
}

impl ReplaceWith {
    fn new() -> Self {
        Self {
            signature: values_then_lambdas(2, 1),
        }
    }
}

impl HigherOrderUDFImpl for ReplaceWith {
    fn name(&self) -> &str {
        REPLACE_WITH
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("regexp_replace takes a string, a pattern and a function");
        }
        Ok(vec![DataType::Utf8, DataType::Utf8])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        _fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        Ok(LambdaParametersProgress::Complete(vec![vec![Arc::new(
            Field::new("groups", DataType::new_list(DataType::Utf8, true), true),
        )]]))
    }

    fn return_field_from_args(&self, _args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new("regexp_replace", DataType::Utf8, true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let s = value("regexp_replace", &args.args, 0)?.to_array(n)?;
        let p = value("regexp_replace", &args.args, 1)?.to_array(n)?;
        let f = lambda("regexp_replace", &args.args, 2)?;
        let (s, p) = (cast(&s, &DataType::Utf8)?, cast(&p, &DataType::Utf8)?);
        let (s, p) = (s.as_string::<i32>(), p.as_string::<i32>());
        let mut patterns = super::text::Patterns::new();
        // Every match of every row: its span, and its groups as one array for the function.
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut groups = ListBuilder::new(StringBuilder::new());
        let mut rows = Vec::new();
        for i in 0..n {
            if s.is_null(i) || p.is_null(i) {
                continue;
            }
            let re = patterns
                .get(p.value(i))
                .map_err(datafusion::error::DataFusionError::Execution)?;
            for caps in re.captures_iter(s.value(i)) {
                let whole = caps.get(0).expect("group 0");
                spans.push((i, whole.start(), whole.end()));
                for g in 1..caps.len() {
                    groups
                        .values()
                        .append_option(caps.get(g).map(|m| m.as_str()));
                }
                groups.append(true);
                rows.push(i as u32);
            }
        }
        let groups: ArrayRef = Arc::new(groups.finish());
        let replaced = if rows.is_empty() {
            new_null_array(&DataType::Utf8, 0)
        } else {
            let rows = UInt32Array::from(rows);
            let gf = || Ok(Arc::clone(&groups));
            let out = f
                .evaluate(&[&gf], |c| Ok(take_arrays(c, &rows, None)?))?
                .into_array(groups.len())?;
            cast(&out, &DataType::Utf8)?
        };
        let replaced = replaced.as_string::<i32>();
        let mut out = StringBuilder::new();
        let mut m = 0;
        for i in 0..n {
            if s.is_null(i) || p.is_null(i) {
                out.append_null();
                continue;
            }
            let text = s.value(i);
            let (mut result, mut at, mut null) = (String::new(), 0, false);
            while m < spans.len() && spans[m].0 == i {
                let (_, start, end) = spans[m];
                result.push_str(&text[at..start]);
                if replaced.is_null(m) {
                    null = true;
                } else {
                    result.push_str(replaced.value(m));
                }
                at = end;
                m += 1;
            }
            result.push_str(&text[at..]);
            if null {
                out.append_null();
            } else {
                out.append_value(result);
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The name `array_sort(x, lambda)` is planned under.
pub const SORT_WITH: &str = "array_sort_with";
/// Elements an array sorted by a comparator may have: the comparator runs on every pair.
const MAX_SORT_WITH: usize = 1_000;

/// `array_sort(x, (a, b) -> …)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SortWith {
    signature: HigherOrderSignature,
}

impl SortWith {
    fn new() -> Self {
        Self {
            signature: values_then_lambdas(1, 1),
        }
    }
}

impl HigherOrderUDFImpl for SortWith {
    fn name(&self) -> &str {
        SORT_WITH
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [t] = arg_types else {
            return plan_err!("array_sort takes an array and a comparator");
        };
        Ok(vec![as_list("array_sort", t)?])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let x = element("array_sort", value("array_sort", fields, 0)?)?;
        Ok(LambdaParametersProgress::Complete(vec![vec![
            Arc::clone(&x),
            x,
        ]]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let list = value("array_sort", args.arg_fields, 0)?;
        let cmp = lambda("array_sort", args.arg_fields, 1)?;
        if !cmp.data_type().is_integer() {
            return plan_err!(
                "array_sort's comparator must return an integer, not {}",
                cmp.data_type()
            );
        }
        Ok(Arc::new(Field::new(
            "array_sort",
            list.data_type().clone(),
            true,
        )))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let list = list_arg("array_sort", &args, 0)?;
        let cmp = lambda("array_sort", &args.args, 1)?;
        let (starts, values) = flat(&list);
        // Every ordered pair of each row's elements, as one batch for the comparator.
        let (mut a, mut b, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..list.len() {
            let len = starts[i + 1] - starts[i];
            if list.is_null(i) || len < 2 {
                continue;
            }
            if len > MAX_SORT_WITH {
                return exec_err!(
                    "array_sort with a comparator takes arrays of up to {MAX_SORT_WITH} elements here, not {len}"
                );
            }
            for p in starts[i]..starts[i + 1] {
                for q in starts[i]..starts[i + 1] {
                    a.push(p as u32);
                    b.push(q as u32);
                    rows.push(i as u32);
                }
            }
        }
        let order: Vec<i64> = if rows.is_empty() {
            Vec::new()
        } else {
            let rows = UInt32Array::from(rows);
            let x = take(&values, &UInt32Array::from(a), None)?;
            let y = take(&values, &UInt32Array::from(b), None)?;
            let (xf, yf) = (|| Ok(Arc::clone(&x)), || Ok(Arc::clone(&y)));
            let out = cmp
                .evaluate(&[&xf, &yf], |c| Ok(take_arrays(c, &rows, None)?))?
                .into_array(rows.len())?;
            let out = cast(&out, &DataType::Int64)?;
            let out = out.as_primitive::<arrow::datatypes::Int64Type>();
            if out.null_count() > 0 {
                return exec_err!("array_sort: the comparator returned NULL");
            }
            out.values().to_vec()
        };
        // Insertion sort on the comparator's answers: stable, and it cannot fail on a
        // comparator that is not a total order.
        let mut permutation: Vec<u32> = Vec::with_capacity(values.len());
        let mut at = 0;
        for i in 0..list.len() {
            let (s, len) = (starts[i], starts[i + 1] - starts[i]);
            if list.is_null(i) {
                continue;
            }
            let mut idx: Vec<usize> = (0..len).collect();
            if len >= 2 {
                let m = &order[at..at + len * len];
                at += len * len;
                for k in 1..len {
                    let mut j = k;
                    while j > 0 && m[idx[j - 1] * len + idx[j]] > 0 {
                        idx.swap(j - 1, j);
                        j -= 1;
                    }
                }
            }
            permutation.extend(idx.into_iter().map(|k| (s + k) as u32));
        }
        let lengths: Vec<usize> = (0..list.len())
            .map(|i| {
                if list.is_null(i) {
                    0
                } else {
                    starts[i + 1] - starts[i]
                }
            })
            .collect();
        let DataType::List(field) = args.return_type() else {
            return exec_err!("array_sort returns an array");
        };
        Ok(ColumnarValue::Array(Arc::new(ListArray::try_new(
            Arc::clone(field),
            OffsetBuffer::from_lengths(lengths),
            take(&values, &UInt32Array::from(permutation), None)?,
            list.logical_nulls(),
        )?)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum MapOp {
    Filter,
    Keys,
    Values,
}

/// `map_filter`, `transform_keys` and `transform_values`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OverMap {
    op: MapOp,
    signature: HigherOrderSignature,
}

impl OverMap {
    fn new(op: MapOp) -> Self {
        Self {
            op,
            signature: values_then_lambdas(1, 1),
        }
    }
}

/// A map type's entry field and its key and value fields.
fn map_fields(name: &str, t: &DataType) -> Result<(FieldRef, FieldRef, FieldRef, bool)> {
    if let DataType::Map(entries, sorted) = t
        && let DataType::Struct(kv) = entries.data_type()
        && kv.len() == 2
    {
        return Ok((
            Arc::clone(entries),
            Arc::clone(&kv[0]),
            Arc::clone(&kv[1]),
            *sorted,
        ));
    }
    plan_err!(
        "{name} expects a map as its first argument, not {}",
        super::trino_type(t)
    )
}

impl HigherOrderUDFImpl for OverMap {
    fn name(&self) -> &str {
        match self.op {
            MapOp::Filter => "map_filter",
            MapOp::Keys => "transform_keys",
            MapOp::Values => "transform_values",
        }
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [t] = arg_types else {
            return plan_err!("{} takes a map and a lambda", self.name());
        };
        map_fields(self.name(), t)?;
        Ok(vec![t.clone()])
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let map = value(self.name(), fields, 0)?;
        let (_, k, v, _) = map_fields(self.name(), map.data_type())?;
        Ok(LambdaParametersProgress::Complete(vec![vec![k, v]]))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let map = value(self.name(), args.arg_fields, 0)?;
        let out = lambda(self.name(), args.arg_fields, 1)?;
        let (entries, k, v, sorted) = map_fields(self.name(), map.data_type())?;
        let t = match self.op {
            MapOp::Filter => {
                if !matches!(out.data_type(), DataType::Boolean | DataType::Null) {
                    return plan_err!(
                        "map_filter's lambda must return boolean, not {}",
                        out.data_type()
                    );
                }
                map.data_type().clone()
            }
            MapOp::Keys => map_type(
                &entries,
                Field::new(k.name(), out.data_type().clone(), false),
                v.as_ref().clone(),
                sorted,
            ),
            MapOp::Values => map_type(
                &entries,
                k.as_ref().clone(),
                Field::new(v.name(), out.data_type().clone(), true),
                sorted,
            ),
        };
        Ok(Arc::new(Field::new(self.name(), t, true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let map = value(name, &args.args, 0)?.to_array(args.number_rows)?;
        let f = lambda(name, &args.args, 1)?;
        let Some(map) = map.as_map_opt() else {
            return exec_err!("{name} expects a map, not {}", map.data_type());
        };
        let (entries_field, key_field, value_field, sorted) = map_fields(name, args.return_type())?;
        let offsets = map.offsets();
        let first = offsets[0].max(0) as usize;
        let starts: Vec<usize> = offsets.iter().map(|&o| o.max(0) as usize - first).collect();
        let count = *starts.last().unwrap_or(&0);
        let keys = map.keys().slice(first, count);
        let values = map.values().slice(first, count);
        let rows = UInt32Array::from_iter_values(
            (0..map.len()).flat_map(|i| std::iter::repeat_n(i as u32, starts[i + 1] - starts[i])),
        );
        let out = if count == 0 {
            new_null_array(&DataType::Null, 0)
        } else {
            let (kf, vf) = (|| Ok(Arc::clone(&keys)), || Ok(Arc::clone(&values)));
            f.evaluate(&[&kf, &vf], |c| Ok(take_arrays(c, &rows, None)?))?
                .into_array(count)?
        };
        let (keys, values, lengths) = match self.op {
            MapOp::Filter => {
                let out = cast(&out, &DataType::Boolean)?;
                let out: &BooleanArray = out.as_boolean();
                let keep: BooleanArray = (0..count)
                    .map(|j| Some(out.is_valid(j) && out.value(j)))
                    .collect();
                let lengths: Vec<usize> = starts
                    .windows(2)
                    .map(|w| (w[0]..w[1]).filter(|&j| keep.value(j)).count())
                    .collect();
                (filter(&keys, &keep)?, filter(&values, &keep)?, lengths)
            }
            MapOp::Keys => {
                let keys = cast(&out, key_field.data_type())?;
                unique_keys("transform_keys", &keys, &starts)?;
                (
                    keys,
                    values,
                    starts.windows(2).map(|w| w[1] - w[0]).collect(),
                )
            }
            MapOp::Values => (
                keys,
                cast(&out, value_field.data_type())?,
                starts.windows(2).map(|w| w[1] - w[0]).collect(),
            ),
        };
        let DataType::Struct(kv) = entries_field.data_type() else {
            return exec_err!("{name}: a map's entries are a struct");
        };
        let entries = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
        Ok(ColumnarValue::Array(Arc::new(MapArray::try_new(
            entries_field,
            OffsetBuffer::from_lengths(lengths),
            entries,
            map.logical_nulls(),
            sorted,
        )?)))
    }
}

fn map_type(entries: &FieldRef, k: Field, v: Field, sorted: bool) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            entries.name(),
            DataType::Struct(vec![k, v].into()),
            false,
        )),
        sorted,
    )
}

/// Athena's rule for a map's keys: none NULL, none repeated within a map (`starts`: each map's
/// first entry, and the end).
pub(super) fn unique_keys(name: &str, keys: &ArrayRef, starts: &[usize]) -> Result<()> {
    if keys.logical_null_count() > 0 {
        return exec_err!("{name}: map key cannot be null");
    }
    let converter = RowConverter::new(vec![SortField::new(keys.data_type().clone())])?;
    let rows = converter.convert_columns(&[Arc::clone(keys)])?;
    let mut seen = HashSet::new();
    for w in starts.windows(2) {
        seen.clear();
        for j in w[0]..w[1] {
            if !seen.insert(rows.row(j)) {
                return exec_err!("{name}: duplicate map keys are not allowed");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// One query's rows as CSV lines (header dropped).
    async fn rows(sql: &str) -> Vec<String> {
        crate::trino::csv_rows(sql).await.unwrap()
    }

    const T: &str = "FROM (VALUES (1, ARRAY[1, 2, 3], 2), (2, ARRAY[5], 10), \
                     (3, CAST(NULL AS ARRAY(BIGINT)), 1), (4, ARRAY[], 3), (5, ARRAY[4, NULL], 0)) \
                     AS t(id, a, n)";

    #[tokio::test]
    async fn lambdas_see_the_columns_of_their_own_row() {
        let sql = format!(
            "SELECT id, array_join(transform(a, x -> x * n), ';'), \
             array_join(filter(a, x -> x > n), ';'), \
             all_match(a, x -> x > n), none_match(a, x -> x > n), any_match(a, x -> x > n), \
             reduce(a, n, (s, x) -> s + x, s -> s * 10) {T} ORDER BY id"
        );
        assert_eq!(
            rows(&sql).await,
            [
                "1,2;4;6,3,false,false,true,80",
                "2,50,,false,true,false,150",
                "3,,,,,,",
                "4,,,true,true,false,30",
                "5,0,4,,false,true,",
            ]
        );
    }

    #[tokio::test]
    async fn zip_with_pads_the_shorter_array_row_by_row() {
        let sql = format!(
            "SELECT id, array_join(zip_with(a, ARRAY[n, n], (x, y) -> coalesce(x, 0) + y), ';') \
             {T} ORDER BY id"
        );
        assert_eq!(
            rows(&sql).await,
            ["1,3;4", "2,15;10", "3,", "4,3;3", "5,4;0"]
        );
    }

    #[tokio::test]
    async fn map_lambdas_see_their_row_and_keep_athenas_key_rules() {
        let sql = "SELECT id, array_join(map_keys(map_filter(m, (k, v) -> v > n)), ';'), \
                   array_join(map_values(transform_values(m, (k, v) -> v + n)), ';'), \
                   array_join(map_keys(transform_keys(m, (k, v) -> k || CAST(n AS VARCHAR))), ';') \
                   FROM (VALUES (1, MAP(ARRAY['a', 'b', 'c'], ARRAY[1, 5, NULL]), 2), \
                   (2, MAP(ARRAY['d'], ARRAY[7]), 10), (3, MAP(ARRAY['e', 'f'], ARRAY[3, 4]), 0)) \
                   AS t(id, m, n) ORDER BY id";
        assert_eq!(
            rows(sql).await,
            ["1,b,3;7,a2;b2;c2", "2,,17,d10", "3,e;f,3;4,e0;f0"]
        );
        for (sql, error) in [
            (
                "SELECT transform_keys(MAP(ARRAY[1, 2], ARRAY[3, 4]), (k, v) -> 0)",
                "duplicate map keys",
            ),
            (
                "SELECT transform_keys(MAP(ARRAY[1, 2], ARRAY[3, 4]), (k, v) -> CAST(NULL AS BIGINT))",
                "map key cannot be null",
            ),
        ] {
            let e = crate::trino::csv_rows(sql).await.unwrap_err();
            assert!(e.contains(error), "{sql}: {e}");
        }
    }

    #[tokio::test]
    async fn array_sort_with_a_comparator_row_by_row() {
        // Descending by distance from the row's n; a NULL array stays NULL.
        let sql = format!(
            "SELECT id, array_join(array_sort(a, (x, y) -> \
             IF(abs(x - n) > abs(y - n), -1, IF(abs(x - n) = abs(y - n), 0, 1))), ';'), \
             array_join(array_sort(a), ';') {T} ORDER BY id"
        );
        assert_eq!(
            rows(&sql).await,
            ["1,1;3;2,1;2;3", "2,5,5", "3,,", "4,,", "5,4,4"]
        );
        // A comparator that is no order at all gives some order, not a failure.
        let rows = rows("SELECT cardinality(array_sort(ARRAY[3, 1, 2, 5, 4], (x, y) -> 1))").await;
        assert_eq!(rows, ["5"]);
    }

    #[tokio::test]
    async fn regexp_replace_with_a_function_of_the_groups_row_by_row() {
        let got = rows(
            "SELECT id, regexp_replace(s, '([a-z])([0-9]+)', g -> upper(g[1]) || CAST(CAST(g[2] AS BIGINT) * k AS VARCHAR)) \
             FROM (VALUES (1, 'a1 b2', 10), (2, 'none', 2), (3, CAST(NULL AS VARCHAR), 1), (4, 'c3', NULL)) \
             AS t(id, s, k) ORDER BY id",
        )
        .await;
        assert_eq!(got, ["1,A10 B20", "2,none", "3,", "4,"]);
    }
}

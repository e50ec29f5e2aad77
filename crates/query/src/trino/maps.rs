//! Athena's map aggregates: `histogram(x)` (each value and how many rows have it),
//! `map_agg(k, v)` (a map from the rows' keys to their values; a key seen twice keeps its first
//! value), `multimap_agg(k, v)` (each key and the array of all its values) and `map_union(m)`
//! (every map's entries, a key in several maps keeping the first value seen). Rows whose key is
//! NULL are left out, as on Athena.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, StructArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Histogram,
    MapAgg,
    MultimapAgg,
    MapUnion,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MapAggregate {
    kind: Kind,
    signature: Signature,
}

/// The four aggregates, to register on a session.
pub fn aggregates() -> Vec<AggregateUDF> {
    [
        Kind::Histogram,
        Kind::MapAgg,
        Kind::MultimapAgg,
        Kind::MapUnion,
    ]
    .into_iter()
    .map(|kind| {
        AggregateUDF::new_from_impl(MapAggregate {
            kind,
            signature: Signature::any(
                if matches!(kind, Kind::Histogram | Kind::MapUnion) {
                    1
                } else {
                    2
                },
                Volatility::Immutable,
            ),
        })
    })
    .collect()
}

/// `map(key, value)` as arrow types it.
pub(super) fn map_type(key: &DataType, value: &DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", key.clone(), false),
                Field::new("value", value.clone(), true),
            ])),
            false,
        )),
        false,
    )
}

/// The key and value types of a map type.
fn map_entry_types(t: &DataType) -> Option<(DataType, DataType)> {
    match t {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                Some((kv[0].data_type().clone(), kv[1].data_type().clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t.clone(), true)))
}

impl MapAggregate {
    /// The type of one value of the result map.
    fn value_type(&self, args: &[DataType]) -> DataType {
        match self.kind {
            Kind::Histogram => DataType::Int64,
            Kind::MapAgg => args[1].clone(),
            Kind::MultimapAgg => list_of(&args[1]),
            Kind::MapUnion => map_entry_types(&args[0]).map_or(DataType::Null, |(_, v)| v),
        }
    }
}

impl AggregateUDFImpl for MapAggregate {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Histogram => "histogram",
            Kind::MapAgg => "map_agg",
            Kind::MultimapAgg => "multimap_agg",
            Kind::MapUnion => "map_union",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if self.kind == Kind::MapUnion {
            return match map_entry_types(&args[0]) {
                Some((k, v)) => Ok(map_type(&k, &v)),
                None => Err(DataFusionError::Plan(format!(
                    "map_union takes a map, not {}",
                    args[0]
                ))),
            };
        }
        Ok(map_type(&args[0], &self.value_type(args)))
    }

    fn accumulator(&self, a: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MapAcc::new(
            self.kind,
            a.return_field.data_type(),
        )?))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    /// Each group's rows in bulk (`buffered.rs`): grouped by session, a batch gave each of
    /// thousands of groups a row or two.
    fn create_groups_accumulator(
        &self,
        a: AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::GroupsAccumulator>> {
        let (kind, result) = (self.kind, a.return_field.data_type().clone());
        let map_type = result.clone();
        Ok(super::buffered::grouped(
            move || MapAcc::new(kind, &map_type),
            result,
        ))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let DataType::Map(entries, _) = args.return_field.data_type() else {
            return Err(DataFusionError::Internal("a map".into()));
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return Err(DataFusionError::Internal("map entries are a struct".into()));
        };
        Ok(vec![
            Arc::new(Field::new(
                format!("{}_keys", args.name),
                list_of(fields[0].data_type()),
                true,
            )),
            Arc::new(Field::new(
                format!("{}_values", args.name),
                list_of(fields[1].data_type()),
                true,
            )),
        ])
    }
}

/// The entries so far, in the order their keys were first seen.
#[derive(Debug)]
struct MapAcc {
    kind: Kind,
    key_type: DataType,
    value_type: DataType,
    map_type: DataType,
    index: HashMap<ScalarValue, usize>,
    keys: Vec<ScalarValue>,
    /// Histogram: the count; map_agg: the value; multimap_agg: the values (a list).
    values: Vec<ScalarValue>,
}

impl MapAcc {
    fn new(kind: Kind, map_type: &DataType) -> Result<Self> {
        let DataType::Map(entries, _) = map_type else {
            return Err(DataFusionError::Internal(format!(
                "a map aggregate returns a map, not {map_type}"
            )));
        };
        let DataType::Struct(fields) = entries.data_type() else {
            return Err(DataFusionError::Internal("map entries are a struct".into()));
        };
        Ok(MapAcc {
            kind,
            key_type: fields[0].data_type().clone(),
            value_type: fields[1].data_type().clone(),
            map_type: map_type.clone(),
            index: HashMap::new(),
            keys: Vec::new(),
            values: Vec::new(),
        })
    }

    fn slot(&mut self, key: ScalarValue, first: impl FnOnce() -> ScalarValue) -> (usize, bool) {
        if let Some(&i) = self.index.get(&key) {
            return (i, false);
        }
        let i = self.keys.len();
        self.index.insert(key.clone(), i);
        self.keys.push(key);
        self.values.push(first());
        (i, true)
    }

    /// Adds one row (or, when merging, one partial entry) to the entries.
    fn add(&mut self, key: ScalarValue, value: ScalarValue, merging: bool) -> Result<()> {
        if key.is_null() {
            return Ok(());
        }
        match self.kind {
            Kind::Histogram => {
                let n = if merging {
                    match value {
                        ScalarValue::Int64(Some(n)) => n,
                        _ => 0,
                    }
                } else {
                    1
                };
                let (i, _) = self.slot(key, || ScalarValue::Int64(Some(0)));
                if let ScalarValue::Int64(Some(c)) = &mut self.values[i] {
                    *c += n;
                }
            }
            // A key in several maps keeps one of their values (the first seen), as in Athena.
            Kind::MapAgg | Kind::MapUnion => {
                self.slot(key, || value);
            }
            Kind::MultimapAgg => {
                let vt = match &self.value_type {
                    DataType::List(f) => f.data_type().clone(),
                    t => t.clone(),
                };
                let added: Vec<ScalarValue> = if merging {
                    match value {
                        ScalarValue::List(l) if !l.is_null(0) => {
                            let inner = l.value(0);
                            (0..inner.len())
                                .map(|j| ScalarValue::try_from_array(&inner, j))
                                .collect::<Result<_>>()?
                        }
                        _ => Vec::new(),
                    }
                } else {
                    vec![value]
                };
                let (i, _) = self.slot(key, || ScalarValue::new_null_list(vt.clone(), true, 0));
                let mut all: Vec<ScalarValue> = match &self.values[i] {
                    ScalarValue::List(l) if !l.is_null(0) && l.len() == 1 => {
                        let inner = l.value(0);
                        (0..inner.len())
                            .map(|j| ScalarValue::try_from_array(&inner, j))
                            .collect::<Result<_>>()?
                    }
                    _ => Vec::new(),
                };
                all.extend(added);
                self.values[i] = ScalarValue::List(ScalarValue::new_list(&all, &vt, true));
            }
        }
        Ok(())
    }

    /// Histogram: a batch's rows counted per value first, by the value's row encoding (no
    /// allocation per row), then each value added once with its count, in the order of its
    /// first row. Converting every row to a `ScalarValue` (a string allocated per row) made
    /// `histogram(source)` three times as slow as grouping by it.
    fn count_batch(&mut self, keys: &ArrayRef) -> Result<()> {
        use arrow::row::{RowConverter, SortField};
        let converter = RowConverter::new(vec![SortField::new(keys.data_type().clone())])?;
        let rows = converter.convert_columns(std::slice::from_ref(keys))?;
        let mut seen: HashMap<arrow::row::Row<'_>, usize> = HashMap::new();
        // Each value's first row and its rows in the batch, in the order first seen.
        let mut counts: Vec<(usize, i64)> = Vec::new();
        for i in (0..keys.len()).filter(|&i| keys.is_valid(i)) {
            match seen.entry(rows.row(i)) {
                std::collections::hash_map::Entry::Occupied(e) => counts[*e.get()].1 += 1,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(counts.len());
                    counts.push((i, 1));
                }
            }
        }
        for (first, n) in counts {
            self.add(
                ScalarValue::try_from_array(keys, first)?,
                ScalarValue::Int64(Some(n)),
                true,
            )?;
        }
        Ok(())
    }

    fn list(items: &[ScalarValue], t: &DataType) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list(items, t, true))
    }
}

impl Accumulator for MapAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if self.kind == Kind::MapUnion {
            let m = values[0].as_map();
            for i in (0..m.len()).filter(|&i| m.is_valid(i)) {
                let span = m.value_offsets()[i] as usize..m.value_offsets()[i + 1] as usize;
                for j in span {
                    self.add(
                        ScalarValue::try_from_array(m.keys(), j)?,
                        ScalarValue::try_from_array(m.values(), j)?,
                        false,
                    )?;
                }
            }
            return Ok(());
        }
        if self.kind == Kind::Histogram {
            return self.count_batch(&values[0]);
        }
        for i in 0..values[0].len() {
            let key = ScalarValue::try_from_array(&values[0], i)?;
            let value = match values.get(1) {
                Some(v) => ScalarValue::try_from_array(v, i)?,
                None => ScalarValue::Null,
            };
            self.add(key, value, false)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let keys = states[0].as_list::<i32>();
        let values = states[1].as_list::<i32>();
        for row in 0..keys.len() {
            if keys.is_null(row) {
                continue;
            }
            let (k, v) = (keys.value(row), values.value(row));
            for j in 0..k.len() {
                self.add(
                    ScalarValue::try_from_array(&k, j)?,
                    ScalarValue::try_from_array(&v, j)?,
                    true,
                )?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            Self::list(&self.keys, &self.key_type),
            Self::list(&self.values, &self.value_type),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let keys = if self.keys.is_empty() {
            arrow::array::new_empty_array(&self.key_type)
        } else {
            ScalarValue::iter_to_array(self.keys.iter().cloned())?
        };
        let values = if self.values.is_empty() {
            arrow::array::new_empty_array(&self.value_type)
        } else {
            ScalarValue::iter_to_array(self.values.iter().cloned())?
        };
        let n = keys.len();
        let map = map_array(&self.map_type, &keys, &values, vec![n], None)?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .keys
                .iter()
                .chain(&self.values)
                .map(ScalarValue::size)
                .sum::<usize>()
            + self.index.capacity() * 64
    }
}

/// The map-building scalar functions: `map_concat(m, …)` (the union, a key in several maps
/// taking its value from the last; NULL when a map is NULL), `array_histogram(x)` (each
/// non-NULL element and how often it occurs, in order of first occurrence) and
/// `map_from_entries(array(row(k, v)))` (a NULL or repeated key is an error, as in Athena), and
/// `split_to_map` / `split_to_multimap` (below).
pub fn functions() -> Vec<super::fun::Fun> {
    use super::fun::{Fun, arity};
    vec![
        Fun::new(
            "map_concat",
            |n, t| {
                if t.is_empty() {
                    return Err(DataFusionError::Plan(format!("{n} takes one map or more")));
                }
                match &t[0] {
                    m @ DataType::Map(..) => Ok(m.clone()),
                    other => Err(DataFusionError::Plan(format!(
                        "{n} takes maps, not {}",
                        super::trino_type(other)
                    ))),
                }
            },
            map_concat,
        ),
        Fun::new(
            "array_histogram",
            |n, t| {
                arity(n, t, &[1])?;
                match &t[0] {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        Ok(map_type(f.data_type(), &DataType::Int64))
                    }
                    other => Err(DataFusionError::Plan(format!(
                        "{n} takes an array, not {}",
                        super::trino_type(other)
                    ))),
                }
            },
            array_histogram,
        ),
        Fun::new(
            "map_from_entries",
            |n, t| {
                let (k, v) = entry_types(n, t)?;
                Ok(map_type(&k, &v))
            },
            map_from_entries,
        ),
        Fun::new(
            "multimap_from_entries",
            |n, t| {
                let (k, v) = entry_types(n, t)?;
                Ok(map_type(&k, &list_of(&v)))
            },
            multimap_from_entries,
        ),
        Fun::new(
            "cosine_similarity",
            |n, t| {
                arity(n, t, &[2])?;
                match t {
                    [DataType::Map(..), DataType::Map(..)] => Ok(DataType::Float64),
                    _ => Err(DataFusionError::Plan(format!(
                        "{n} takes two map(varchar, double), not {} and {}",
                        t[0], t[1]
                    ))),
                }
            },
            cosine_similarity,
        ),
        Fun::new(
            "split_to_map",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(map_type(&DataType::Utf8, &DataType::Utf8))
            },
            split_to_map,
        ),
        Fun::new(
            "split_to_multimap",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(map_type(&DataType::Utf8, &list_of(&DataType::Utf8)))
            },
            split_to_map,
        ),
    ]
}

/// The key and value types of the one argument of `map_from_entries` and
/// `multimap_from_entries`: an array of (key, value) rows.
fn entry_types(n: &str, t: &[DataType]) -> Result<(DataType, DataType)> {
    super::fun::arity(n, t, &[1])?;
    match &t[0] {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match f.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    Ok((kv[0].data_type().clone(), kv[1].data_type().clone()))
                }
                other => Err(DataFusionError::Plan(format!(
                    "{n} takes an array of (key, value) rows, not of {other}"
                ))),
            }
        }
        other => Err(DataFusionError::Plan(format!(
            "{n} takes an array of (key, value) rows, not {}",
            super::trino_type(other)
        ))),
    }
}

fn map_from_entries(call: &super::fun::Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = super::arrays::list(call.name, &a[0])?;
    let rows = x.values().as_struct();
    let first = x.offsets()[0] as usize;
    let starts: Vec<usize> = x.offsets().iter().map(|&o| o as usize - first).collect();
    let count = *starts.last().unwrap_or(&0);
    let (k, v) = (
        rows.column(0).slice(first, count),
        rows.column(1).slice(first, count),
    );
    // Only the entries of non-NULL arrays count; a NULL array's own entries are dropped.
    let keep: Vec<usize> = (0..x.len())
        .filter(|&i| x.is_valid(i))
        .flat_map(|i| starts[i]..starts[i + 1])
        .collect();
    let lengths: Vec<usize> = (0..x.len())
        .map(|i| {
            if x.is_valid(i) {
                starts[i + 1] - starts[i]
            } else {
                0
            }
        })
        .collect();
    let picks: Vec<(usize, usize)> = keep.iter().map(|&j| (0, j)).collect();
    let kept_keys = arrow::compute::interleave(&[k.as_ref()], &picks)?;
    let mut kept_starts = vec![0];
    for l in &lengths {
        kept_starts.push(kept_starts.last().expect("a start") + l);
    }
    super::lambda::unique_keys(call.name, &kept_keys, &kept_starts)?;
    let nulls = (0..x.len()).map(|i| x.is_valid(i)).collect();
    build_map(
        call.ret,
        &[k.as_ref()],
        &[v.as_ref()],
        &picks,
        lengths,
        nulls,
    )
}

/// `multimap_from_entries(array(row(k, v)))`: each key, in order of first appearance, with the
/// array of its values in order; a NULL key or a NULL entry is an error, a NULL array gives NULL.
fn multimap_from_entries(call: &super::fun::Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use arrow::array::{GenericListArray, UInt32Array};
    use arrow::row::{RowConverter, SortField};
    let x = super::arrays::list(call.name, &a[0])?;
    let rows = x.values().as_struct();
    let first = x.offsets()[0] as usize;
    let count = *x.offsets().last().unwrap_or(&0) as usize - first;
    let (k, v) = (
        rows.column(0).slice(first, count),
        rows.column(1).slice(first, count),
    );
    let converter = RowConverter::new(vec![SortField::new(k.data_type().clone())])?;
    let key_rows = converter.convert_columns(&[Arc::clone(&k)])?;
    let (mut key_picks, mut value_picks) = (Vec::new(), Vec::new());
    let (mut value_lengths, mut lengths, mut nulls) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..x.len() {
        if x.is_null(i) {
            lengths.push(0);
            nulls.push(false);
            continue;
        }
        let (lo, hi) = (
            x.offsets()[i] as usize - first,
            x.offsets()[i + 1] as usize - first,
        );
        // Each key's entries, in order of first appearance.
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        for j in lo..hi {
            if rows.is_null(first + j) {
                return Err(DataFusionError::Execution(format!(
                    "{}: map entry cannot be null",
                    call.name
                )));
            }
            if k.is_null(j) {
                return Err(DataFusionError::Execution(format!(
                    "{}: map key cannot be null",
                    call.name
                )));
            }
            match groups
                .iter_mut()
                .find(|(g, _)| key_rows.row(*g) == key_rows.row(j))
            {
                Some((_, members)) => members.push(j as u32),
                None => groups.push((j, vec![j as u32])),
            }
        }
        lengths.push(groups.len());
        nulls.push(true);
        for (g, members) in groups {
            key_picks.push(g as u32);
            value_lengths.push(members.len());
            value_picks.extend(members);
        }
    }
    let keys = arrow::compute::take(&k, &UInt32Array::from(key_picks), None)?;
    let values = arrow::compute::take(&v, &UInt32Array::from(value_picks), None)?;
    let lists = GenericListArray::<i32>::try_new(
        Arc::new(Field::new_list_field(values.data_type().clone(), true)),
        OffsetBuffer::from_lengths(value_lengths),
        values,
        None,
    )?;
    let lists: ArrayRef = Arc::new(lists);
    Ok(Arc::new(map_array(
        call.ret,
        &keys,
        &lists,
        lengths,
        Some(nulls),
    )?))
}

/// `cosine_similarity(x, y)` of two sparse vectors `map(varchar, double)`: the dot product over
/// their common keys divided by both norms; NULL when either map or any of its values is NULL.
fn cosine_similarity(_: &super::fun::Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use arrow::array::Float64Array;
    use arrow::datatypes::Float64Type;
    let (l, r) = (a[0].as_map(), a[1].as_map());
    let text = |m: &MapArray| arrow::compute::cast(m.keys(), &DataType::Utf8);
    let num = |m: &MapArray| arrow::compute::cast(m.values(), &DataType::Float64);
    let (lk, rk) = (text(l)?, text(r)?);
    let (lv, rv) = (num(l)?, num(r)?);
    let (lk, rk) = (lk.as_string::<i32>(), rk.as_string::<i32>());
    let (lv, rv) = (
        lv.as_primitive::<Float64Type>(),
        rv.as_primitive::<Float64Type>(),
    );
    let span =
        |m: &MapArray, i: usize| m.value_offsets()[i] as usize..m.value_offsets()[i + 1] as usize;
    let out: Float64Array = (0..l.len())
        .map(|i| {
            if l.is_null(i) || r.is_null(i) {
                return None;
            }
            let (ls, rs) = (span(l, i), span(r, i));
            if ls.clone().any(|j| lv.is_null(j)) || rs.clone().any(|j| rv.is_null(j)) {
                return None;
            }
            let norm = |v: &arrow::array::Float64Array, s: std::ops::Range<usize>| {
                s.map(|j| v.value(j) * v.value(j))
                    .fold(0.0, |t, x| t + x)
                    .sqrt()
            };
            let right: HashMap<&str, f64> =
                rs.clone().map(|j| (rk.value(j), rv.value(j))).collect();
            let dot: f64 = ls
                .clone()
                .filter_map(|j| right.get(lk.value(j)).map(|y| lv.value(j) * y))
                // From +0.0, as Athena adds: an empty float sum in Rust is -0.0.
                .fold(0.0, |t, x| t + x);
            Some(dot / (norm(lv, ls) * norm(rv, rs)))
        })
        .collect();
    Ok(Arc::new(out))
}

/// The entries of `text`: split at `entry`, then each entry at its one `kv` delimiter.
/// A trailing entry delimiter adds no entry.
fn split_entries<'a>(
    text: &'a str,
    entry: &str,
    kv: &str,
) -> std::result::Result<Vec<(&'a str, &'a str)>, String> {
    if entry.is_empty() {
        return Err("entryDelimiter is empty".into());
    }
    if kv.is_empty() {
        return Err("keyValueDelimiter is empty".into());
    }
    if entry == kv {
        return Err("entryDelimiter and keyValueDelimiter must not be the same".into());
    }
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (item, next) = rest.split_once(entry).unwrap_or((rest, ""));
        match item.split_once(kv) {
            Some((k, v)) if !v.contains(kv) => out.push((k, v)),
            _ => {
                return Err(format!(
                    "Key-value delimiter must appear exactly once in each entry. Bad input: '{item}'"
                ));
            }
        }
        rest = next;
    }
    Ok(out)
}

/// `split_to_map(text, entry, kv)` (a repeated key is an error) and
/// `split_to_multimap(text, entry, kv)` (each key with all its values, in order).
fn split_to_map(call: &super::fun::Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    use arrow::array::{ListBuilder, StringBuilder};
    let multi = call.name == "split_to_multimap";
    let cols = [
        super::fun::text(&a[0])?,
        super::fun::text(&a[1])?,
        super::fun::text(&a[2])?,
    ];
    let rows = cols[0].len();
    let mut keys = StringBuilder::new();
    let mut values = StringBuilder::new();
    let mut lists = ListBuilder::new(StringBuilder::new());
    let (mut lengths, mut nulls) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for i in 0..rows {
        if cols.iter().any(|c| c.is_null(i)) {
            lengths.push(0);
            nulls.push(false);
            continue;
        }
        let entries = match split_entries(cols[0].value(i), cols[1].value(i), cols[2].value(i)) {
            Ok(e) => e,
            Err(e) => {
                call.row_err::<()>(e)?;
                lengths.push(0);
                nulls.push(false);
                continue;
            }
        };
        let mut seen: Vec<(&str, Vec<&str>)> = Vec::new();
        let mut repeated = None;
        for (k, v) in entries {
            match seen.iter_mut().find(|(s, _)| *s == k) {
                Some((_, vs)) if multi => vs.push(v),
                Some(_) => {
                    repeated = Some(k);
                    break;
                }
                None => seen.push((k, vec![v])),
            }
        }
        if let Some(k) = repeated {
            call.row_err::<()>(format!("Duplicate keys ({k}) are not allowed"))?;
            lengths.push(0);
            nulls.push(false);
            continue;
        }
        for (k, vs) in &seen {
            keys.append_value(k);
            if multi {
                for v in vs {
                    lists.values().append_value(v);
                }
                lists.append(true);
            } else {
                values.append_value(vs[0]);
            }
        }
        lengths.push(seen.len());
        nulls.push(true);
    }
    let v: ArrayRef = if multi {
        Arc::new(lists.finish())
    } else {
        Arc::new(values.finish())
    };
    let k: ArrayRef = Arc::new(keys.finish());
    Ok(Arc::new(map_array(call.ret, &k, &v, lengths, Some(nulls))?))
}

/// A map column of type `ret`: its entries' keys and values (cast to the type's own), each
/// row's number of entries, and which rows are valid (`None`: all).
pub(super) fn map_array(
    ret: &DataType,
    keys: &ArrayRef,
    values: &ArrayRef,
    lengths: Vec<usize>,
    valid: Option<Vec<bool>>,
) -> Result<MapArray> {
    let DataType::Map(entries, sorted) = ret else {
        return Err(DataFusionError::Internal(format!("a map type, not {ret}")));
    };
    let DataType::Struct(kv) = entries.data_type() else {
        return Err(DataFusionError::Internal(
            "map entries are a struct".to_string(),
        ));
    };
    let k = arrow::compute::cast(keys, kv[0].data_type())?;
    let v = arrow::compute::cast(values, kv[1].data_type())?;
    Ok(MapArray::try_new(
        Arc::clone(entries),
        OffsetBuffer::from_lengths(lengths),
        StructArray::try_new(kv.clone(), vec![k, v], None)?,
        valid.map(Into::into),
        *sorted,
    )?)
}

/// A map built from chosen entries: `(source, index)` pairs into the sources' keys and values.
fn build_map(
    ret: &DataType,
    keys: &[&dyn Array],
    values: &[&dyn Array],
    picks: &[(usize, usize)],
    lengths: Vec<usize>,
    nulls: Vec<bool>,
) -> Result<ArrayRef> {
    let k = arrow::compute::interleave(keys, picks)?;
    let v = arrow::compute::interleave(values, picks)?;
    Ok(Arc::new(map_array(ret, &k, &v, lengths, Some(nulls))?))
}

fn map_concat(call: &super::fun::Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let DataType::Map(entries, _) = call.ret else {
        return Err(DataFusionError::Internal(
            "map_concat returns a map".to_string(),
        ));
    };
    let maps: Vec<ArrayRef> = a
        .iter()
        .map(|m| {
            Ok(arrow::compute::cast(
                m,
                &DataType::Map(Arc::clone(entries), false),
            )?)
        })
        .collect::<Result<_>>()?;
    let maps: Vec<&MapArray> = maps.iter().map(|m| m.as_map()).collect();
    let key_type = maps[0].key_type().clone();
    let converter = arrow::row::RowConverter::new(vec![arrow::row::SortField::new(key_type)])?;
    let rows = maps
        .iter()
        .map(|m| Ok(converter.convert_columns(&[Arc::clone(m.keys())])?))
        .collect::<Result<Vec<_>>>()?;
    let n = maps[0].len();
    let (mut picks, mut lengths, mut nulls) = (Vec::new(), Vec::with_capacity(n), Vec::new());
    let mut at: HashMap<arrow::row::Row<'_>, usize> = HashMap::new();
    for i in 0..n {
        if maps.iter().any(|m| m.is_null(i)) {
            lengths.push(0);
            nulls.push(false);
            continue;
        }
        at.clear();
        let start = picks.len();
        for (s, m) in maps.iter().enumerate() {
            let o = m.offsets();
            for j in o[i] as usize..o[i + 1] as usize {
                match at.get(&rows[s].row(j)) {
                    Some(&p) => picks[p] = (s, j),
                    None => {
                        at.insert(rows[s].row(j), picks.len());
                        picks.push((s, j));
                    }
                }
            }
        }
        lengths.push(picks.len() - start);
        nulls.push(true);
    }
    let keys: Vec<&dyn Array> = maps.iter().map(|m| m.keys().as_ref()).collect();
    let values: Vec<&dyn Array> = maps.iter().map(|m| m.values().as_ref()).collect();
    build_map(call.ret, &keys, &values, &picks, lengths, nulls)
}

fn array_histogram(call: &super::fun::Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let x = super::arrays::list(call.name, &a[0])?;
    let values = x.values();
    let converter = arrow::row::RowConverter::new(vec![arrow::row::SortField::new(
        values.data_type().clone(),
    )])?;
    let rows = converter.convert_columns(&[Arc::clone(values)])?;
    let null = super::arrays::nulls_of(values.as_ref());
    let o = x.offsets();
    let (mut picks, mut counts, mut lengths, mut nulls) = (
        Vec::new(),
        Vec::new(),
        Vec::with_capacity(x.len()),
        Vec::new(),
    );
    let mut at: HashMap<arrow::row::Row<'_>, usize> = HashMap::new();
    for i in 0..x.len() {
        if x.is_null(i) {
            lengths.push(0);
            nulls.push(false);
            continue;
        }
        at.clear();
        let start = picks.len();
        for j in o[i] as usize..o[i + 1] as usize {
            if null(j) {
                continue;
            }
            match at.get(&rows.row(j)) {
                Some(&p) => counts[p] += 1,
                None => {
                    at.insert(rows.row(j), picks.len());
                    picks.push((0, j));
                    counts.push(1_i64);
                }
            }
        }
        lengths.push(picks.len() - start);
        nulls.push(true);
    }
    // The counts are the values: entry p's count sits at index p of the second source.
    let counts = arrow::array::Int64Array::from(counts);
    let value_picks: Vec<(usize, usize)> = (0..picks.len()).map(|p| (0, p)).collect();
    let k = arrow::compute::interleave(&[values.as_ref()], &picks)?;
    let v = arrow::compute::interleave(&[&counts as &dyn Array], &value_picks)?;
    Ok(Arc::new(map_array(call.ret, &k, &v, lengths, Some(nulls))?))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn map_concat_and_array_histogram_row_by_row() {
        let sql = "SELECT id, format('%s', map_concat(m, MAP(ARRAY['b'], ARRAY[n]))), \
                   format('%s', array_histogram(a)) \
                   FROM (VALUES (1, MAP(ARRAY['a', 'b'], ARRAY[1, 2]), 9, ARRAY['x', 'y', 'x']), \
                   (2, MAP(ARRAY['c'], ARRAY[3]), 8, ARRAY[NULL, 'z']), \
                   (3, CAST(NULL AS MAP(VARCHAR, BIGINT)), 7, CAST(NULL AS ARRAY(VARCHAR)))) \
                   AS t(id, m, n, a) ORDER BY id";
        assert_eq!(
            crate::trino::csv_rows(sql).await.unwrap(),
            [
                "1,\"{a=1, b=9}\",\"{x=2, y=1}\"",
                "2,\"{c=3, b=8}\",{z=1}",
                "3,null,null",
            ]
        );
    }

    #[tokio::test]
    async fn map_from_entries_row_by_row_and_a_row_read_by_subscript() {
        let rows = crate::trino::csv_rows(
            "SELECT id, format('%s', map_from_entries(e)), e[1][2] \
             FROM (VALUES (1, ARRAY[('a', 1), ('b', 2)]), (2, CAST(NULL AS ARRAY(ROW(c0 VARCHAR, c1 BIGINT)))), \
             (3, ARRAY[('c', 3)])) AS t(id, e) ORDER BY id",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["1,\"{a=1, b=2}\",1", "2,null,", "3,{c=3},3"]);
        let e = crate::trino::csv_rows("SELECT map_from_entries(ARRAY[(NULL, 1)])")
            .await
            .unwrap_err();
        assert!(e.contains("map key cannot be null"), "{e}");
        let e = crate::trino::csv_rows("SELECT (ROW(1, 2))[3]")
            .await
            .unwrap_err();
        assert!(e.contains("between 1 and the row's 2 fields"), "{e}");
    }
}

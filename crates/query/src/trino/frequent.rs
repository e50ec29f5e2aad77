//! Athena's approximate summaries of a column:
//!
//! - `approx_most_frequent(buckets, x, capacity)`: the `buckets` most frequent values of `x` and
//!   their counts, as a map. Up to `capacity` values are counted at a time: the counts are exact
//!   while the column has at most that many distinct values (as Athena's are); past it, the
//!   least counted values are dropped to make room, so a rare value's count may start late.
//! - `numeric_histogram(buckets, x[, weight])`: a histogram of at most `buckets` bins, as a map
//!   from each bin's centre (the weighted mean of its values) to its weight: equal values are
//!   one bin, and the two closest bins are merged until `buckets` remain, as in Athena.
//!
//! NULL values (and weights) are skipped; a group without any gives NULL.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};

use super::maps::{map_array, map_type};

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t.clone(), true)))
}

/// One field of an aggregate's partial state, named after the aggregate's column.
fn state_field(args: &StateFieldsArgs, part: &str, t: DataType) -> FieldRef {
    Arc::new(Field::new(format!("{}_{part}", args.name), t, true))
}

fn int_arg(a: &ArrayRef, i: usize) -> Result<Option<i64>> {
    let v = arrow::compute::cast(a, &DataType::Int64)?;
    let v = v.as_primitive::<Int64Type>();
    Ok(v.is_valid(i).then(|| v.value(i)))
}

/// `approx_most_frequent`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MostFrequent {
    signature: Signature,
}

impl AggregateUDFImpl for MostFrequent {
    fn name(&self) -> &str {
        "approx_most_frequent"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(map_type(&args[1], &DataType::Int64))
    }
    fn accumulator(&self, a: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MostFrequentAcc::new(
            a.return_field.data_type().clone(),
            a.exprs[1].data_type(a.schema)?,
        )))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    /// Each group's rows in bulk (`buffered.rs`).
    fn create_groups_accumulator(
        &self,
        a: AccumulatorArgs,
    ) -> Result<Box<dyn datafusion::logical_expr::GroupsAccumulator>> {
        let result = a.return_field.data_type().clone();
        let (map_type, value_type) = (result.clone(), a.exprs[1].data_type(a.schema)?);
        Ok(super::buffered::grouped(
            move || Ok(MostFrequentAcc::new(map_type.clone(), value_type.clone())),
            result,
        ))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let value = args.input_fields[1].data_type();
        Ok(vec![
            state_field(&args, "buckets", DataType::Int64),
            state_field(&args, "capacity", DataType::Int64),
            state_field(&args, "values", list_of(value)),
            state_field(&args, "counts", list_of(&DataType::Int64)),
        ])
    }
}

impl MostFrequentAcc {
    fn new(map_type: DataType, value_type: DataType) -> Self {
        Self {
            map_type,
            value_type,
            buckets: None,
            capacity: None,
            counts: HashMap::new(),
            seen: 0,
        }
    }
}

#[derive(Debug)]
struct MostFrequentAcc {
    map_type: DataType,
    value_type: DataType,
    buckets: Option<i64>,
    capacity: Option<i64>,
    /// Each value's count and when it was first counted (ties keep that order).
    counts: HashMap<ScalarValue, (i64, u64)>,
    seen: u64,
}

impl MostFrequentAcc {
    fn settings(&mut self, buckets: Option<i64>, capacity: Option<i64>) -> Result<()> {
        if self.buckets.is_none()
            && let Some(b) = buckets
        {
            if b < 1 {
                return Err(DataFusionError::Execution(format!(
                    "approx_most_frequent: buckets must be at least 1, not {b}"
                )));
            }
            self.buckets = Some(b);
        }
        if self.capacity.is_none()
            && let Some(c) = capacity
        {
            if c < self.buckets.unwrap_or(1) {
                return Err(DataFusionError::Execution(format!(
                    "approx_most_frequent: capacity ({c}) must be at least buckets ({})",
                    self.buckets.unwrap_or(1)
                )));
            }
            self.capacity = Some(c);
        }
        Ok(())
    }

    fn add(&mut self, value: ScalarValue, n: i64) {
        if value.is_null() {
            return;
        }
        let seen = self.seen;
        let e = self.counts.entry(value).or_insert((0, seen));
        e.0 += n;
        self.seen += 1;
        let capacity = self.capacity.unwrap_or(i64::MAX).max(1) as usize;
        if self.counts.len() > capacity.saturating_mul(4) {
            self.keep(capacity);
        }
    }

    /// The `n` most counted values, most counted first, ties in the order first counted.
    fn top(&self, n: usize) -> Vec<(ScalarValue, i64, u64)> {
        let mut all: Vec<_> = self
            .counts
            .iter()
            .map(|(v, &(c, s))| (v.clone(), c, s))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        all.truncate(n);
        all
    }

    fn keep(&mut self, n: usize) {
        let kept = self.top(n);
        self.counts = kept.into_iter().map(|(v, c, s)| (v, (c, s))).collect();
    }

    fn list(&self, items: Vec<ScalarValue>, t: &DataType) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list(&items, t, true))
    }
}

impl Accumulator for MostFrequentAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for i in 0..values[1].len() {
            self.settings(int_arg(&values[0], i)?, int_arg(&values[2], i)?)?;
            self.add(ScalarValue::try_from_array(&values[1], i)?, 1);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (vals, counts) = (states[2].as_list::<i32>(), states[3].as_list::<i32>());
        for row in 0..vals.len() {
            self.settings(int_arg(&states[0], row)?, int_arg(&states[1], row)?)?;
            if vals.is_null(row) {
                continue;
            }
            let (v, c) = (vals.value(row), counts.value(row));
            let c = c.as_primitive::<Int64Type>();
            for j in 0..v.len() {
                self.add(ScalarValue::try_from_array(&v, j)?, c.value(j));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let entries = self.top(usize::MAX);
        let (vals, counts): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .map(|(v, c, _)| (v, ScalarValue::Int64(Some(c))))
            .unzip();
        Ok(vec![
            ScalarValue::Int64(self.buckets),
            ScalarValue::Int64(self.capacity),
            self.list(vals, &self.value_type),
            self.list(counts, &DataType::Int64),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.counts.is_empty() {
            return ScalarValue::try_from(&self.map_type);
        }
        let top = self.top(self.buckets.unwrap_or(1) as usize);
        let n = top.len();
        let keys = ScalarValue::iter_to_array(top.iter().map(|t| t.0.clone()))?;
        let counts: ArrayRef = Arc::new(Int64Array::from_iter_values(top.iter().map(|t| t.1)));
        let map = map_array(&self.map_type, &keys, &counts, vec![n], None)?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.counts.keys().map(ScalarValue::size).sum::<usize>()
            + self.counts.capacity() * 24
    }
}

/// `numeric_histogram`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NumericHistogram {
    signature: Signature,
}

impl AggregateUDFImpl for NumericHistogram {
    fn name(&self) -> &str {
        "numeric_histogram"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(map_type(&DataType::Float64, &DataType::Float64))
    }
    fn accumulator(&self, a: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(HistogramAcc {
            map_type: a.return_field.data_type().clone(),
            buckets: None,
            bins: Vec::new(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            state_field(&args, "buckets", DataType::Int64),
            state_field(&args, "values", list_of(&DataType::Float64)),
            state_field(&args, "weights", list_of(&DataType::Float64)),
        ])
    }
}

#[derive(Debug)]
struct HistogramAcc {
    map_type: DataType,
    buckets: Option<i64>,
    /// (value, weight), compacted to `buckets` bins whenever it grows past a buffer.
    bins: Vec<(f64, f64)>,
}

/// How many entries per bin are held before they are merged.
const BUFFER_PER_BIN: usize = 100;

/// A gap between two neighbouring bins, smallest first (then leftmost).
#[derive(PartialEq)]
struct Gap {
    width: f64,
    left: usize,
    /// The versions of the two bins when the gap was measured; a newer bin makes it stale.
    versions: (u32, u32),
    right: usize,
}

impl Eq for Gap {}
impl Ord for Gap {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .width
            .total_cmp(&self.width)
            .then(other.left.cmp(&self.left))
    }
}
impl PartialOrd for Gap {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorts `bins`, merges equal values, then merges the two closest neighbours (into their
/// weighted mean) until at most `buckets` remain.
fn compact(bins: &mut Vec<(f64, f64)>, buckets: usize) {
    bins.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(bins.len());
    for &(v, w) in bins.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == v => last.1 += w,
            _ => merged.push((v, w)),
        }
    }
    if merged.len() > buckets {
        let n = merged.len();
        let mut alive = vec![true; n];
        let mut version = vec![0_u32; n];
        let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
        let mut next: Vec<Option<usize>> = (0..n).map(|i| (i + 1 < n).then_some(i + 1)).collect();
        let gap = |m: &[(f64, f64)], v: &[u32], l: usize, r: usize| Gap {
            width: m[r].0 - m[l].0,
            left: l,
            versions: (v[l], v[r]),
            right: r,
        };
        let mut heap: BinaryHeap<Gap> = (0..n - 1)
            .map(|i| gap(&merged, &version, i, i + 1))
            .collect();
        let mut count = n;
        while count > buckets {
            let Some(g) = heap.pop() else { break };
            let (l, r) = (g.left, g.right);
            if !alive[l]
                || !alive[r]
                || next[l] != Some(r)
                || g.versions != (version[l], version[r])
            {
                continue;
            }
            let (lv, lw) = merged[l];
            let (rv, rw) = merged[r];
            let w = lw + rw;
            merged[l] = ((lv * lw + rv * rw) / w, w);
            version[l] += 1;
            alive[r] = false;
            next[l] = next[r];
            if let Some(nn) = next[r] {
                prev[nn] = Some(l);
                heap.push(gap(&merged, &version, l, nn));
            }
            if let Some(p) = prev[l] {
                heap.push(gap(&merged, &version, p, l));
            }
            count -= 1;
        }
        merged = merged
            .into_iter()
            .zip(alive)
            .filter_map(|(b, a)| a.then_some(b))
            .collect();
    }
    *bins = merged;
}

impl HistogramAcc {
    fn set_buckets(&mut self, b: Option<i64>) -> Result<()> {
        if self.buckets.is_none()
            && let Some(b) = b
        {
            if b < 2 {
                return Err(DataFusionError::Execution(format!(
                    "numeric_histogram: the number of buckets must be at least 2, not {b}"
                )));
            }
            self.buckets = Some(b);
        }
        Ok(())
    }

    fn push(&mut self, v: f64, w: f64) {
        self.bins.push((v, w));
        let buckets = self.buckets.unwrap_or(2) as usize;
        if self.bins.len() >= buckets.saturating_mul(BUFFER_PER_BIN).max(1_000) {
            compact(&mut self.bins, buckets);
        }
    }
}

fn floats(a: &ArrayRef) -> Result<Float64Array> {
    Ok(arrow::compute::cast(a, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

impl Accumulator for HistogramAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let x = floats(&values[1])?;
        let w = values.get(2).map(floats).transpose()?;
        for i in 0..x.len() {
            self.set_buckets(int_arg(&values[0], i)?)?;
            let weight = match &w {
                Some(w) if w.is_null(i) => continue,
                Some(w) => w.value(i),
                None => 1.0,
            };
            if x.is_valid(i) {
                self.push(x.value(i), weight);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (vals, weights) = (states[1].as_list::<i32>(), states[2].as_list::<i32>());
        for row in 0..vals.len() {
            self.set_buckets(int_arg(&states[0], row)?)?;
            if vals.is_null(row) {
                continue;
            }
            let (v, w) = (floats(&vals.value(row))?, floats(&weights.value(row))?);
            for j in 0..v.len() {
                self.push(v.value(j), w.value(j));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |xs: Vec<f64>| {
            ScalarValue::List(ScalarValue::new_list(
                &xs.into_iter()
                    .map(|x| ScalarValue::Float64(Some(x)))
                    .collect::<Vec<_>>(),
                &DataType::Float64,
                true,
            ))
        };
        Ok(vec![
            ScalarValue::Int64(self.buckets),
            list(self.bins.iter().map(|b| b.0).collect()),
            list(self.bins.iter().map(|b| b.1).collect()),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.bins.is_empty() {
            return ScalarValue::try_from(&self.map_type);
        }
        compact(&mut self.bins, self.buckets.unwrap_or(2) as usize);
        let n = self.bins.len();
        let keys: ArrayRef = Arc::new(Float64Array::from_iter_values(
            self.bins.iter().map(|b| b.0),
        ));
        let weights: ArrayRef = Arc::new(Float64Array::from_iter_values(
            self.bins.iter().map(|b| b.1),
        ));
        let map = map_array(&self.map_type, &keys, &weights, vec![n], None)?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bins.capacity() * 16
    }
}

/// The two aggregates, to register on a session.
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(MostFrequent {
            signature: Signature::any(3, Volatility::Immutable),
        }),
        AggregateUDF::new_from_impl(NumericHistogram {
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_bins_merge_first() {
        let mut bins = vec![(1.0, 1.0), (2.0, 1.0), (10.0, 1.0), (10.5, 1.0), (2.0, 1.0)];
        compact(&mut bins, 3);
        // 2.0 twice is one bin of weight 2; then 10 and 10.5 (0.5 apart) merge.
        assert_eq!(bins, vec![(1.0, 1.0), (2.0, 2.0), (10.25, 2.0)]);
        compact(&mut bins, 2);
        assert_eq!(bins, vec![(5.0 / 3.0, 3.0), (10.25, 2.0)]);
    }
}

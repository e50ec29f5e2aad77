//! Athena's `approx_percentile`, on DataFusion's t-digest:
//!
//! - `approx_percentile(x, p)` and `approx_percentile(x, w, p)` (each value weighted by `w`);
//! - `p` one percentile, or an array of them (`ARRAY[0.5, 0.9, 0.99]`), which gives an array of
//!   answers in the same order from one digest;
//! - the answer has `x`'s type, as in Athena: an integer column gives an integer (the estimate
//!   rounded to the nearest), a double a double;
//! - a percentile outside [0, 1] is an error, as in Athena; NULL values (and NULL weights) are
//!   skipped, and no values give NULL.
//!
//! DataFusion's `approx_percentile_cont` returns a double for any input and takes neither an
//! array of percentiles nor, under one name, weights.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::kernels::boolean::and;
use arrow::compute::{cast, filter, is_not_null};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion_functions_aggregate_common::tdigest::{Centroid, DEFAULT_MAX_SIZE, TDigest};

pub fn approx_percentile() -> AggregateUDF {
    AggregateUDF::new_from_impl(ApproxPercentile {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ApproxPercentile {
    signature: Signature,
}

fn percentiles_type(t: &DataType) -> Result<DataType> {
    match t {
        t if t.is_numeric() || t == &DataType::Null => Ok(DataType::Float64),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if f.data_type().is_numeric() || f.data_type() == &DataType::Null =>
        {
            Ok(DataType::new_list(DataType::Float64, true))
        }
        other => plan_err!(
            "approx_percentile: the percentile must be a double or an array of doubles, not {}",
            super::trino_type(other)
        ),
    }
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (x, rest) = match arg_types {
            [x, p] => (x, vec![percentiles_type(p)?]),
            [x, w, p] if w.is_numeric() || w == &DataType::Null => {
                (x, vec![DataType::Float64, percentiles_type(p)?])
            }
            [_, w, _] => {
                return plan_err!("approx_percentile: the weight must be a number, not {w}");
            }
            _ => {
                return plan_err!(
                    "approx_percentile takes (x, percentile) or (x, weight, percentile), not {} arguments",
                    arg_types.len()
                );
            }
        };
        let x = match x {
            DataType::Null => DataType::Float64,
            x if x.is_numeric() => x.clone(),
            other => {
                return plan_err!(
                    "approx_percentile: x must be a number, not {}",
                    super::trino_type(other)
                );
            }
        };
        Ok(std::iter::once(x).chain(rest).collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let (Some(x), Some(p)) = (arg_types.first(), arg_types.last()) else {
            return plan_err!("approx_percentile takes (x, percentile)");
        };
        Ok(match p {
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                DataType::new_list(x.clone(), true)
            }
            _ => x.clone(),
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let f = |name: &str, t: DataType| {
            Arc::new(Field::new(format_state_name(args.name, name), t, false))
        };
        Ok(vec![
            f("max_size", DataType::UInt64),
            f("sum", DataType::Float64),
            f("count", DataType::Float64),
            f("max", DataType::Float64),
            f("min", DataType::Float64),
            f("centroids", DataType::new_list(DataType::Float64, true)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(p) = args.exprs.last().and_then(|e| e.downcast_ref::<Literal>()) else {
            return plan_err!("approx_percentile: the percentile must be a constant");
        };
        let (percentiles, many) = match p.value() {
            ScalarValue::List(l) if l.len() == 1 && l.is_valid(0) => {
                let v = cast(&l.value(0), &DataType::Float64)?;
                let v = v.as_primitive::<Float64Type>();
                if v.null_count() > 0 {
                    return exec_err!("approx_percentile: a percentile is NULL");
                }
                (v.values().to_vec(), true)
            }
            s => match s.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(p)) => (vec![p], false),
                _ => return exec_err!("approx_percentile: the percentile is NULL"),
            },
        };
        if let Some(p) = percentiles.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return exec_err!("approx_percentile: percentile must be between 0 and 1, not {p}");
        }
        Ok(Box::new(Digest {
            digest: TDigest::new(DEFAULT_MAX_SIZE),
            pending: Vec::new(),
            weighted: args.exprs.len() == 3,
            percentiles,
            many,
            value_type: args.expr_fields[0].data_type().clone(),
        }))
    }
}

/// Values gathered before they are merged into a digest: in an aggregation with many groups,
/// each group gets a value or two from a batch, and merging each such handful compressed the
/// whole digest every time (approx_percentile by user, 5,000 users, took four times as long as
/// by team).
const PENDING: usize = 128;

#[derive(Debug)]
struct Digest {
    digest: TDigest,
    /// Unweighted values not yet in `digest` (fewer than [`PENDING`] between calls).
    pending: Vec<f64>,
    weighted: bool,
    percentiles: Vec<f64>,
    many: bool,
    value_type: DataType,
}

impl Digest {
    /// Merges the pending values into the digest.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.pending.sort_by(f64::total_cmp);
            self.digest = self.digest.merge_sorted_f64(&self.pending);
            self.pending.clear();
        }
    }

    /// One estimate as `x`'s type.
    fn estimate(&self, p: f64) -> Result<ScalarValue> {
        let q = self.digest.estimate_quantile(p);
        let q = if self.value_type.is_integer() {
            q.round()
        } else {
            q
        };
        ScalarValue::Float64(Some(q)).cast_to(&self.value_type)
    }
}

impl Accumulator for Digest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let mut x = cast(&values[0], &DataType::Float64)?;
        if self.weighted {
            let mut w = cast(&values[1], &DataType::Float64)?;
            if x.null_count() > 0 || w.null_count() > 0 {
                let keep: BooleanArray = and(&is_not_null(&x)?, &is_not_null(&w)?)?;
                x = filter(&x, &keep)?;
                w = filter(&w, &keep)?;
            }
            let (x, w) = (
                x.as_primitive::<Float64Type>(),
                w.as_primitive::<Float64Type>(),
            );
            let one: Vec<TDigest> = x
                .values()
                .iter()
                .zip(w.values())
                .filter(|(_, w)| **w > 0.0)
                .map(|(x, w)| TDigest::new_with_centroid(DEFAULT_MAX_SIZE, Centroid::new(*x, *w)))
                .collect();
            self.digest = TDigest::merge_digests(one.iter().chain(std::iter::once(&self.digest)));
        } else {
            if x.null_count() > 0 {
                x = filter(&x, &is_not_null(&x)?)?;
            }
            self.pending
                .extend_from_slice(x.as_primitive::<Float64Type>().values());
            if self.pending.len() >= PENDING {
                self.flush();
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.flush();
        let Some(first) = states.first() else {
            return Ok(());
        };
        let digests = (0..first.len())
            .map(|i| {
                states
                    .iter()
                    .map(|a| ScalarValue::try_from_array(a, i))
                    .collect::<Result<Vec<_>>>()
                    .map(|s| TDigest::from_scalar_state(&s))
            })
            .collect::<Result<Vec<_>>>()?;
        self.digest = TDigest::merge_digests(digests.iter().chain(std::iter::once(&self.digest)));
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.flush();
        Ok(self.digest.to_scalar_state())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.flush();
        let empty = self.digest.count() == 0.0;
        if !self.many {
            return if empty {
                ScalarValue::try_from(&self.value_type)
            } else {
                self.estimate(self.percentiles[0])
            };
        }
        if empty {
            return ScalarValue::try_from(&DataType::new_list(self.value_type.clone(), true));
        }
        let v = self
            .percentiles
            .iter()
            .map(|p| self.estimate(*p))
            .collect::<Result<Vec<_>>>()?;
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &v,
            &self.value_type,
        )))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.digest.size() - size_of_val(&self.digest)
            + (self.percentiles.capacity() + self.pending.capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use crate::trino::csv_rows as csv;

    #[tokio::test]
    async fn groups_merge_their_digests_and_keep_the_value_type() {
        // Two groups of 5,000 integers each, split over several partitions.
        let rows = crate::trino::csv_rows_over_series(
            10_000,
            "SELECT g, approx_percentile(v, 0.5) AS p50, \
             array_join(approx_percentile(v, ARRAY[0.1, 0.9]), ';') AS p, \
             typeof(approx_percentile(v, 0.5)) AS t \
             FROM (SELECT value % 2 AS g, value AS v FROM series) \
             GROUP BY g ORDER BY g",
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 2);
        for (row, g) in rows.iter().zip(["0", "1"]) {
            let f: Vec<&str> = row.split(',').collect();
            assert_eq!(f[0], g);
            let p50: i64 = f[1].parse().unwrap();
            assert!((4_900..=5_100).contains(&p50), "{row}");
            let p: Vec<i64> = f[2].split(';').map(|x| x.parse().unwrap()).collect();
            assert!(
                (900..=1_100).contains(&p[0]) && (8_900..=9_100).contains(&p[1]),
                "{row}"
            );
            assert_eq!(f[3], "bigint");
        }
    }

    #[tokio::test]
    async fn nulls_are_skipped_and_no_values_give_null() {
        let rows = csv(
            "SELECT approx_percentile(x, 0.5), approx_percentile(x, w, 0.5) \
             FROM (VALUES (1.0, NULL), (NULL, 3), (2.0, 1)) AS t(x, w)",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["1.5,2.0"]);
        let rows =
            csv("SELECT approx_percentile(x, 0.5) IS NULL FROM (VALUES (1)) AS t(x) WHERE x > 1")
                .await
                .unwrap();
        assert_eq!(rows, ["true"]);
    }

    #[tokio::test]
    async fn a_percentile_outside_zero_to_one_is_an_error() {
        for p in ["1.5", "-0.1", "ARRAY[0.5, 2]"] {
            let e = csv(&format!(
                "SELECT approx_percentile(x, {p}) FROM (VALUES (1), (2)) AS t(x)"
            ))
            .await
            .unwrap_err();
            assert!(e.contains("between 0 and 1"), "{p}: {e}");
        }
    }
}

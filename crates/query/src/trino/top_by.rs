//! `max_by(x, y, n)` and `min_by(x, y, n)`: the `x` of the `n` rows with the largest (smallest)
//! `y`, as an array in that order of `y`; rows whose `y` is NULL are skipped, and no rows give
//! NULL. `n` is a constant from 1 to 10,000, as in Athena.
//!
//! The two-argument forms are planned as `pick.rs`'s aggregates (see `conditional.rs`); these
//! take both forms so that the planner finds one function under each name.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::kernels::sort::{SortOptions, sort_to_indices};
use arrow::compute::{filter, is_not_null};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

const MAX_N: i64 = 10_000;

pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(TopBy::new("max_by", true)),
        AggregateUDF::new_from_impl(TopBy::new("min_by", false)),
    ]
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TopBy {
    name: &'static str,
    largest: bool,
    signature: Signature,
}

impl TopBy {
    fn new(name: &'static str, largest: bool) -> Self {
        Self {
            name,
            largest,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for TopBy {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match t {
            [x, _] => Ok(x.clone()),
            [x, _, n] if n.is_integer() => Ok(DataType::new_list(x.clone(), true)),
            [_, _, n] => plan_err!("{}: n must be an integer, not {n}", self.name),
            _ => plan_err!(
                "{} takes (x, y) or (x, y, n), not {} arguments",
                self.name,
                t.len()
            ),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let x = args.input_fields[0].data_type().clone();
        let y = args.input_fields[1].data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "y"),
                DataType::new_list(y, true),
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "x"),
                DataType::new_list(x, true),
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let n = match args.exprs.get(2) {
            // The two-argument form over a window (in an aggregation it is planned as
            // `pick.rs`'s aggregate).
            None => return super::pick::by(self.largest).accumulator(args),
            Some(e) => match e.downcast_ref::<Literal>().map(|l| l.value()) {
                Some(v) => match v.cast_to(&DataType::Int64)? {
                    ScalarValue::Int64(Some(n)) if (1..=MAX_N).contains(&n) => n as usize,
                    ScalarValue::Int64(Some(n)) => {
                        return exec_err!(
                            "{}: n must be between 1 and {MAX_N}, not {n}",
                            self.name
                        );
                    }
                    _ => return exec_err!("{}: n is NULL", self.name),
                },
                None => return plan_err!("{}: n must be a constant", self.name),
            },
        };
        Ok(Box::new(Top {
            n,
            largest: self.largest,
            x_type: args.expr_fields[0].data_type().clone(),
            y_type: args.expr_fields[1].data_type().clone(),
            best: Vec::new(),
        }))
    }
}

#[derive(Debug)]
struct Top {
    n: usize,
    largest: bool,
    x_type: DataType,
    y_type: DataType,
    /// At most `n` (y, x), best first.
    best: Vec<(ScalarValue, ScalarValue)>,
}

impl Top {
    fn order(&self, a: &ScalarValue, b: &ScalarValue) -> Ordering {
        let o = a.partial_cmp(b).unwrap_or(Ordering::Equal);
        if self.largest { o.reverse() } else { o }
    }

    /// Adds candidates and keeps the best `n`.
    fn add(&mut self, y: &ArrayRef, x: &ArrayRef) -> Result<()> {
        let keep = is_not_null(y)?;
        let (y, x) = (filter(y, &keep)?, filter(x, &keep)?);
        if y.is_empty() {
            return Ok(());
        }
        let options = SortOptions {
            descending: self.largest,
            nulls_first: false,
        };
        let top = sort_to_indices(&y, Some(options), Some(self.n))?;
        for i in top.values() {
            let i = *i as usize;
            self.best.push((
                ScalarValue::try_from_array(&y, i)?,
                ScalarValue::try_from_array(&x, i)?,
            ));
        }
        let mut best = std::mem::take(&mut self.best);
        best.sort_by(|a, b| self.order(&a.0, &b.0));
        best.truncate(self.n);
        self.best = best;
        Ok(())
    }

    fn list(values: Vec<ScalarValue>, t: &DataType) -> ScalarValue {
        ScalarValue::List(ScalarValue::new_list_nullable(&values, t))
    }
}

impl Accumulator for Top {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[1], &values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (ys, xs) = (states[0].as_ref(), states[1].as_ref());
        let (Some(ys), Some(xs)) = (
            ys.as_any().downcast_ref::<arrow::array::ListArray>(),
            xs.as_any().downcast_ref::<arrow::array::ListArray>(),
        ) else {
            return Err(DataFusionError::Internal(
                "top-n state is two lists".to_string(),
            ));
        };
        for i in 0..ys.len() {
            if ys.is_valid(i) {
                self.add(&ys.value(i), &xs.value(i))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (y, x): (Vec<_>, Vec<_>) = self.best.iter().cloned().unzip();
        Ok(vec![
            Self::list(y, &self.y_type),
            Self::list(x, &self.x_type),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.best.is_empty() {
            return ScalarValue::try_from(&DataType::new_list(self.x_type.clone(), true));
        }
        let x = self.best.iter().map(|(_, x)| x.clone()).collect();
        Ok(Self::list(x, &self.x_type))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .best
                .iter()
                .map(|(y, x)| y.size() + x.size())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use crate::trino::csv_rows as csv;

    #[tokio::test]
    async fn the_n_best_rows_of_each_group_in_order_of_y() {
        // 20,000 rows over several batches and partitions: each group's best survive merging.
        let rows = crate::trino::csv_rows_over_series(
            20_000,
            "SELECT g, array_join(max_by(v, v * 7 % 1000, 3), ';') AS hi, \
             array_join(min_by(v, v, 2), ';') AS lo, max_by(v, v) AS one \
             FROM (SELECT value % 2 AS g, value AS v FROM series) \
             GROUP BY g ORDER BY g",
        )
        .await
        .unwrap();
        // v * 7 % 1000 is 999 for v = 857 + 1000k (odd) and 998 for v = 714 + 1000k (even).
        let f: Vec<Vec<&str>> = rows.iter().map(|r| r.split(',').collect()).collect();
        assert_eq!(f[0][2], "2;4");
        assert_eq!(f[1][2], "1;3");
        assert_eq!((f[0][3], f[1][3]), ("20000", "19999"));
        for (row, score) in [(&f[0], 998), (&f[1], 999)] {
            let hi: Vec<i64> = row[1].split(';').map(|x| x.parse().unwrap()).collect();
            assert_eq!(hi.len(), 3, "{row:?}");
            assert!(hi.iter().all(|v| v * 7 % 1000 == score), "{row:?}");
        }
    }

    #[tokio::test]
    async fn null_ys_are_skipped_and_n_is_checked() {
        let rows = csv(
            "SELECT array_join(max_by(x, y, 5), ';') FROM (VALUES ('a', 1), ('b', NULL), ('c', 2)) AS t(x, y)",
        )
        .await
        .unwrap();
        assert_eq!(rows, ["c;a"]);
        let rows =
            csv("SELECT max_by(x, y, 2) IS NULL FROM (VALUES ('a', 1)) AS t(x, y) WHERE y > 1")
                .await
                .unwrap();
        assert_eq!(rows, ["true"]);
        for n in ["0", "10001"] {
            let e = csv(&format!(
                "SELECT max_by(x, y, {n}) FROM (VALUES ('a', 1)) AS t(x, y)"
            ))
            .await
            .unwrap_err();
            assert!(e.contains("n must be between 1 and 10000"), "{n}: {e}");
        }
    }
}

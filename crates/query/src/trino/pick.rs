//! Aggregates that pick one value of each group: `arbitrary(x)` (also `any_value`), a non-NULL
//! `x` if there is one, and `min_by(x, y)` / `max_by(x, y)`, the `x` of the row with the
//! smallest (largest) `y`, rows whose `y` is NULL skipped (that row's `x` may be NULL). Of rows
//! that tie, the first one seen is kept.
//!
//! DataFusion's `first_value`, as which these were planned, keeps a row-by-row accumulator per
//! group for any value that is not a number, so that grouping 3,000,000 events by session with
//! `arbitrary(source)` spent most of its time in those. Here every group's pick lives in one
//! accumulator: a batch's best row per group is found with the column's own comparison, and a
//! group's value is copied out only when that row beats the one it holds.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, new_empty_array};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

/// Which row of a group gives its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The first with a non-NULL `x`.
    First,
    /// The one with the smallest `y`.
    Smallest,
    /// The one with the largest `y`.
    Largest,
}

/// `arbitrary` (and its other name, `any_value`), registered as a function.
pub fn aggregates() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_impl(Pick::new("arbitrary", Rule::First))
            .with_aliases(["any_value"]),
    ]
}

/// `min_by(x, y)` or `max_by(x, y)`: what the two-argument forms are planned as (the names
/// themselves belong to the aggregates that also take `n`, `top_by.rs`).
pub fn by(largest: bool) -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::new_from_impl(if largest {
        Pick::new("max_by", Rule::Largest)
    } else {
        Pick::new("min_by", Rule::Smallest)
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Pick {
    name: &'static str,
    rule: Rule,
    signature: Signature,
}

impl Pick {
    fn new(name: &'static str, rule: Rule) -> Self {
        let arity = if rule == Rule::First { 1 } else { 2 };
        Self {
            name,
            rule,
            signature: Signature::any(arity, Volatility::Immutable),
        }
    }

    fn picks(&self, args: &AccumulatorArgs) -> Picks {
        Picks {
            rule: self.rule,
            x_type: args.return_field.data_type().clone(),
            y_type: (self.rule != Rule::First).then(|| args.expr_fields[1].data_type().clone()),
            x: Vec::new(),
            y: Keys::of(
                args.expr_fields
                    .get(1)
                    .map(|f| f.data_type())
                    .filter(|_| self.rule != Rule::First),
            ),
            best: Vec::new(),
            touched: Vec::new(),
            bytes: 0,
        }
    }
}

impl AggregateUDFImpl for Pick {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, t: &[DataType]) -> Result<DataType> {
        match t.first() {
            Some(x) => Ok(x.clone()),
            None => plan_err!("{} takes a value", self.name),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let mut fields = vec![Arc::new(Field::new(
            format_state_name(args.name, "x"),
            args.return_field.data_type().clone(),
            true,
        ))];
        if self.rule != Rule::First {
            fields.push(Arc::new(Field::new(
                format_state_name(args.name, "y"),
                args.input_fields[1].data_type().clone(),
                true,
            )));
        }
        Ok(fields)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One(self.picks(&args))))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.picks(&args)))
    }
}

const NONE: usize = usize::MAX;

/// Every group's pick: its `x`, `None` before a row gave one, and for the rules by `y`, the
/// `y` it was picked by.
struct Picks {
    rule: Rule,
    x_type: DataType,
    y_type: Option<DataType>,
    x: Vec<Option<ScalarValue>>,
    y: Keys,
    /// Within the batch being read: each group's best row so far ([`NONE`] for none), and the
    /// groups that have one.
    best: Vec<usize>,
    touched: Vec<usize>,
    /// The heap the held values take.
    bytes: usize,
}

/// The `y` each group was picked by: as integers for integers, dates, times and timestamps
/// (compared as the numbers they are stored as), as doubles for real and double (in the total
/// order arrow sorts by), and as values for any other type.
enum Keys {
    Integers(Vec<i64>, Vec<bool>),
    Doubles(Vec<f64>, Vec<bool>),
    Values(Vec<Option<ScalarValue>>),
}

impl Keys {
    fn of(t: Option<&DataType>) -> Self {
        use DataType as T;
        match t {
            Some(
                T::Int8
                | T::Int16
                | T::Int32
                | T::Int64
                | T::UInt8
                | T::UInt16
                | T::UInt32
                | T::Date32
                | T::Date64
                | T::Time32(_)
                | T::Time64(_)
                | T::Duration(_),
            ) => Keys::Integers(Vec::new(), Vec::new()),
            Some(T::Timestamp(..)) => Keys::Integers(Vec::new(), Vec::new()),
            Some(T::Float32 | T::Float64) => Keys::Doubles(Vec::new(), Vec::new()),
            _ => Keys::Values(Vec::new()),
        }
    }
}

/// The rule by `y` over keys held as numbers: each row whose key `compare`s as `wanted`
/// against its group's (or whose group has none) becomes the group's pick.
#[allow(clippy::too_many_arguments)]
fn native<T: arrow::datatypes::ArrowPrimitiveType>(
    keys: &mut Vec<T::Native>,
    has: &mut Vec<bool>,
    ys: &arrow::array::PrimitiveArray<T>,
    groups: &[usize],
    total: usize,
    keep: &dyn Fn(usize) -> bool,
    compare: impl Fn(&T::Native, &T::Native) -> Ordering,
    wanted: Ordering,
    won: &mut dyn FnMut(usize, usize),
) {
    keys.resize(total, T::Native::default());
    has.resize(total, false);
    for (row, &g) in groups.iter().enumerate() {
        if ys.is_null(row) || !keep(row) {
            continue;
        }
        let k = ys.value(row);
        if !has[g] || compare(&k, &keys[g]) == wanted {
            keys[g] = k;
            has[g] = true;
            won(g, row);
        }
    }
}

impl Picks {
    fn read(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.x.resize(total, None);
        let keep = |row: usize| filter.is_none_or(|f| f.is_valid(row) && f.value(row));
        let x = &values[0];
        if self.rule == Rule::First {
            for (row, &g) in groups.iter().enumerate() {
                if self.x[g].is_none() && x.is_valid(row) && keep(row) {
                    let v = ScalarValue::try_from_array(x, row)?;
                    self.bytes += v.size();
                    self.x[g] = Some(v);
                }
            }
            return Ok(());
        }
        self.best.resize(total, NONE);
        let y = &values[1];
        let smallest = self.rule == Rule::Smallest;
        let wanted = if smallest {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        // Each row is compared with its group's pick as it stands, which moves to the row that
        // beats it: the rows left to copy `x` from are the batch's last winners.
        let (best, touched) = (&mut self.best, &mut self.touched);
        let mut won = |g: usize, row: usize| {
            if best[g] == NONE {
                touched.push(g);
            }
            best[g] = row;
        };
        match &mut self.y {
            Keys::Integers(keys, has) => {
                let ys = arrow::compute::cast(y, &DataType::Int64)?;
                let ys = ys.as_primitive::<Int64Type>();
                let compare = |a: &i64, b: &i64| a.cmp(b);
                native(
                    keys, has, ys, groups, total, &keep, compare, wanted, &mut won,
                );
            }
            Keys::Doubles(keys, has) => {
                let ys = arrow::compute::cast(y, &DataType::Float64)?;
                let ys = ys.as_primitive::<Float64Type>();
                let compare = |a: &f64, b: &f64| a.total_cmp(b);
                native(
                    keys, has, ys, groups, total, &keep, compare, wanted, &mut won,
                );
            }
            Keys::Values(held) => {
                held.resize(total, None);
                let compare = arrow::array::make_comparator(y, y, SortOptions::default())?;
                let mut candidates = Vec::new();
                for (row, &g) in groups.iter().enumerate() {
                    if y.is_null(row) || !keep(row) {
                        continue;
                    }
                    match best[g] {
                        NONE => {
                            best[g] = row;
                            candidates.push(g);
                        }
                        b if compare(row, b) == wanted => best[g] = row,
                        _ => {}
                    }
                }
                // Only the batch's best row of a group is set against the value it holds.
                for g in candidates {
                    let row = std::mem::replace(&mut best[g], NONE);
                    let candidate = ScalarValue::try_from_array(y, row)?;
                    let better = match &held[g] {
                        None => true,
                        Some(h) => candidate.partial_cmp(h) == Some(wanted),
                    };
                    if better {
                        self.bytes += candidate.size();
                        if let Some(old) = held[g].replace(candidate) {
                            self.bytes -= old.size();
                        }
                        best[g] = row;
                        touched.push(g);
                    }
                }
            }
        }
        for g in std::mem::take(&mut self.touched) {
            let row = std::mem::replace(&mut self.best[g], NONE);
            let v = ScalarValue::try_from_array(x, row)?;
            self.bytes += v.size();
            if let Some(old) = self.x[g].replace(v) {
                self.bytes -= old.size();
            }
        }
        Ok(())
    }

    /// The picks of the groups `emit_to` names, as an array of `t` (NULL for none).
    fn column(
        held: &mut Vec<Option<ScalarValue>>,
        bytes: &mut usize,
        emit_to: EmitTo,
        t: &DataType,
    ) -> Result<ArrayRef> {
        let taken = emit_to.take_needed(held);
        if taken.is_empty() {
            return Ok(new_empty_array(t));
        }
        let null = ScalarValue::try_from(t)?;
        let values = taken.into_iter().map(|v| match v {
            Some(v) => {
                *bytes = bytes.saturating_sub(v.size());
                v
            }
            None => null.clone(),
        });
        let array = ScalarValue::iter_to_array(values)?;
        if array.data_type() == t {
            Ok(array)
        } else {
            Ok(arrow::compute::cast(&array, t)?)
        }
    }

    /// The `y`s of the groups `emit_to` names, as an array of `y`'s type.
    fn keys(&mut self, emit_to: EmitTo) -> Result<Option<ArrayRef>> {
        let Some(t) = self.y_type.clone() else {
            return Ok(None);
        };
        let array: ArrayRef = match &mut self.y {
            Keys::Integers(keys, has) => {
                let (keys, has) = (emit_to.take_needed(keys), emit_to.take_needed(has));
                let a = arrow::array::Int64Array::new(keys.into(), Some(has.into()));
                arrow::compute::cast(&a, &t)?
            }
            Keys::Doubles(keys, has) => {
                let (keys, has) = (emit_to.take_needed(keys), emit_to.take_needed(has));
                let a = arrow::array::Float64Array::new(keys.into(), Some(has.into()));
                arrow::compute::cast(&a, &t)?
            }
            Keys::Values(held) => Self::column(held, &mut self.bytes, emit_to, &t)?,
        };
        let _ = emit_to.take_needed(&mut self.best);
        Ok(Some(array))
    }
}

impl GroupsAccumulator for Picks {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.read(values, groups, filter, total)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], groups: &[usize], total: usize) -> Result<()> {
        self.read(values, groups, None, total)
    }

    /// Each row as a group of its own: its `x` and `y`, the ones the filter drops as no pick.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let hidden = |a: &ArrayRef| -> Result<ArrayRef> {
            match filter {
                None => Ok(a.clone()),
                Some(f) => {
                    let dropped = arrow::compute::not(&super::buffered::kept(f))?;
                    Ok(arrow::compute::nullif(a, &dropped)?)
                }
            }
        };
        Ok(match self.rule {
            Rule::First => vec![hidden(&values[0])?],
            _ => vec![values[0].clone(), hidden(&values[1])?],
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let x = Self::column(&mut self.x, &mut self.bytes, emit_to, &self.x_type)?;
        self.keys(emit_to)?;
        Ok(x)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let x = Self::column(&mut self.x, &mut self.bytes, emit_to, &self.x_type)?;
        Ok(std::iter::once(x).chain(self.keys(emit_to)?).collect())
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.x.capacity() * size_of::<Option<ScalarValue>>()
            + match &self.y {
                Keys::Integers(k, h) => k.capacity() * 8 + h.capacity(),
                Keys::Doubles(k, h) => k.capacity() * 8 + h.capacity(),
                Keys::Values(v) => v.capacity() * size_of::<Option<ScalarValue>>(),
            }
            + (self.best.capacity() + self.touched.capacity()) * size_of::<usize>()
            + self.bytes
    }
}

/// The same for an aggregation without groups: one group.
struct One(Picks);

impl std::fmt::Debug for One {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("One").field(&self.0.rule).finish()
    }
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; values[0].len()];
        self.0.read(values, &groups, None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; states[0].len()];
        self.0.read(states, &groups, None, 1)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut out = vec![
            self.0
                .x
                .first()
                .cloned()
                .flatten()
                .map_or_else(|| ScalarValue::try_from(&self.0.x_type), Ok)?,
        ];
        if let Some(t) = &self.0.y_type {
            let held = match &self.0.y {
                Keys::Integers(k, h) if h.first() == Some(&true) => {
                    Some(ScalarValue::Int64(Some(k[0])).cast_to(t)?)
                }
                Keys::Doubles(k, h) if h.first() == Some(&true) => {
                    Some(ScalarValue::Float64(Some(k[0])).cast_to(t)?)
                }
                Keys::Values(v) => v.first().cloned().flatten(),
                _ => None,
            };
            out.push(held.map_or_else(|| ScalarValue::try_from(t), Ok)?);
        }
        Ok(out)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.0.x.first().cloned().flatten() {
            Some(v) => Ok(v),
            None => ScalarValue::try_from(&self.0.x_type),
        }
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

#[cfg(test)]
mod tests {
    async fn csv(sql: &str) -> Vec<String> {
        crate::trino::csv_rows(sql).await.unwrap()
    }

    #[tokio::test]
    async fn picks_per_group_and_without_groups() {
        let rows = "(VALUES ('a', 'x', 3), ('a', NULL, 1), ('a', 'z', NULL), ('b', NULL, NULL), \
                    ('b', 'w', 2), ('b', 'v', 2), ('c', NULL, 5)) AS t(g, x, y)";
        // The row with the smallest y gives x even when x is NULL; a NULL y is skipped; of two
        // rows that tie, the first.
        assert_eq!(
            csv(&format!(
                "SELECT g, coalesce(min_by(x, y), '-'), coalesce(max_by(x, y), '-'), \
                 coalesce(arbitrary(x), '-') FROM {rows} GROUP BY g ORDER BY g"
            ))
            .await,
            ["a,-,x,x", "b,w,w,w", "c,-,-,-"]
        );
        assert_eq!(
            csv(&format!(
                "SELECT min_by(y, x), coalesce(CAST(max_by(y, x) AS varchar), '-'), \
                 any_value(x) IS NOT NULL FROM {rows}"
            ))
            .await,
            ["2,-,true"]
        );
        // By doubles, timestamps and dates, grouped (partial states merged) and not.
        for by in [
            "CAST(y AS double)",
            "CAST(y AS real)",
            "from_unixtime(y)",
            "date_add('day', y, DATE '2020-01-01')",
            "CAST(y AS varchar)",
        ] {
            assert_eq!(
                csv(&format!(
                    "SELECT min_by(g, {by}), max_by(g, {by}) FROM {rows}"
                ))
                .await,
                ["a,c"],
                "{by}"
            );
            assert_eq!(
                csv(&format!(
                    "SELECT g, max_by(y, {by}) FROM {rows} GROUP BY g ORDER BY g"
                ))
                .await,
                ["a,3", "b,2", "c,5"],
                "{by}"
            );
        }
        // Over a window.
        assert_eq!(
            csv(&format!(
                "SELECT DISTINCT g, max_by(y, y) OVER (PARTITION BY g) FROM {rows} ORDER BY g"
            ))
            .await,
            ["a,3", "b,2", "c,5"]
        );
        // A FILTER, and no rows at all.
        assert_eq!(
            csv(&format!(
                "SELECT g, coalesce(max_by(x, y) FILTER (WHERE y < 3), '-') FROM {rows} \
                 GROUP BY g ORDER BY g"
            ))
            .await,
            ["a,-", "b,w", "c,-"]
        );
        assert_eq!(
            csv(&format!(
                "SELECT min_by(x, y) IS NULL, arbitrary(y) IS NULL FROM {rows} WHERE g = 'none'"
            ))
            .await,
            ["true,true"]
        );
    }

    /// Many groups over many batches, merged from partial results: the same picks as sorting.
    #[tokio::test]
    async fn many_groups_agree_with_a_sort() {
        let rows = crate::trino::MANY_ROWS;
        let sql = format!(
            "WITH t AS (SELECT x % 997 AS g, CAST(x AS varchar) AS v, (x * 7919) % 100003 AS k \
                   FROM {rows}) \
                   SELECT count(*) FROM (SELECT g, min_by(v, k) AS lo, max_by(v, k) AS hi FROM t GROUP BY g) p \
                   JOIN (SELECT g, k, v, row_number() OVER (PARTITION BY g ORDER BY k) AS a, \
                   row_number() OVER (PARTITION BY g ORDER BY k DESC) AS d FROM t) s \
                   ON p.g = s.g AND ((s.a = 1 AND s.v = p.lo) OR (s.d = 1 AND s.v = p.hi))"
        );
        assert_eq!(csv(&sql).await, ["1994"]);
        // A group per row (the partial aggregation passes rows on as states), with a filter.
        let sql = format!(
            "WITH t AS {rows} \
                   SELECT count(*) FROM (SELECT x, min_by(x, x) FILTER (WHERE x % 3 = 0) AS p, \
                   min(x) FILTER (WHERE x % 3 = 0) AS m, arbitrary(x) AS a FROM t GROUP BY x) \
                   WHERE p IS NOT DISTINCT FROM m AND a = x"
        );
        assert_eq!(csv(&sql).await, ["200000"]);
    }
}

//! The Athena (Trino) functions the saved queries use, with Athena's semantics, so that one SQL
//! text runs on Athena and on `etl query`:
//!
//! - `json_extract_scalar(json, path)`: the scalar at a JSONPath (`$.a.b`, `$["a"]`, `$.a[0]`) as
//!   varchar: a string unescaped, a number or boolean as written; NULL when the path is missing,
//!   names an object, an array or `null`, or the text is not JSON.
//! - `from_iso8601_timestamp(text)`: an ISO 8601 date or date-time (an offset or `Z`, or none for
//!   UTC) as `timestamp(3) with time zone` (milliseconds, UTC).
//! - `approx_percentile(x, [w,] p)`: DataFusion's t-digest with Athena's types (`percentile.rs`).
//! - `approx_distinct` and `date_trunc` are built into DataFusion with the same meaning.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, StringArray, StringBuilder, StringViewArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::common::{DFSchema, DataFusionError, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::BinaryExpr;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::logical_expr::{Expr, ExprSchemable, Operator};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::BinaryOperator;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub(crate) mod aliases;
pub(crate) mod arrays;
pub(crate) mod athena_strings;
mod binary;
mod buffered;
mod conditional;
#[cfg(test)]
mod conformance;
pub mod datetime;
mod decimals;
pub mod dialect;
pub(crate) mod durations;
pub mod foreign;
mod frequent;
mod fun;
pub(crate) mod guarded;
pub(crate) mod hidden;
mod json;
mod json_cast;
pub mod json_types;
mod lambda;
pub(crate) mod local_only;
mod maps;
pub mod missing;
pub(crate) mod mixed_types;
mod moments;
mod numbers;
mod ordered_agg;
pub mod overflow;
mod percentile;
mod pick;
pub mod render;
pub(crate) mod select;
pub(crate) mod set_all;
pub mod set_doubles;
mod sql_json;
mod subscript;
pub(crate) mod syntax;
mod text;
mod top_by;
pub mod unnest;
pub(crate) mod using;
pub use conditional::trino_type;

/// For tests: the rows of `sql`, prepared and planned as a query is, as the lines of a table
/// (the header first), each line's cells separated by single spaces; or the error's text.
#[cfg(test)]
pub(crate) async fn table_lines(sql: &str) -> std::result::Result<Vec<String>, String> {
    let ctx = crate::session::functions_session().map_err(|e| e.to_string())?;
    let sql = crate::session::prepare(&ctx, sql).map_err(|e| e.to_string())?;
    let df = crate::session::dataframe(&ctx, &sql)
        .await
        .map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    let table = arrow::util::pretty::pretty_format_batches(&batches).map_err(|e| e.to_string())?;
    Ok(table
        .to_string()
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect())
}
pub use json_cast::FuseJsonCast;

/// 200,000 rows of one column `x` (1 to 200,000): more than a batch holds, and more than one
/// `sequence` makes. The tests' table of many groups.
#[cfg(test)]
pub(crate) const MANY_ROWS: &str = "(SELECT (i - 1) * 400 + j AS x FROM UNNEST(sequence(1, 500)) AS a(i) \
     CROSS JOIN UNNEST(sequence(1, 400)) AS b(j))";

/// One query's rows as CSV lines (header dropped) on a session with Athena's functions, or its
/// error as text: the tests' view of an answer.
#[cfg(test)]
pub(crate) async fn csv_rows(sql: &str) -> std::result::Result<Vec<String>, String> {
    let ctx = crate::functions_session().map_err(|e| e.to_string())?;
    csv_rows_in(&ctx, sql).await
}

/// [`csv_rows`] over a view `series(value)` of the integers 1 to `n`, made by DataFusion's
/// `generate_series` (which Athena's SQL lacks, so queries cannot name it): several batches,
/// as a table's scan gives.
#[cfg(test)]
pub(crate) async fn csv_rows_over_series(
    n: u64,
    sql: &str,
) -> std::result::Result<Vec<String>, String> {
    let ctx = crate::functions_session().map_err(|e| e.to_string())?;
    ctx.sql(&format!(
        "CREATE VIEW series AS SELECT value FROM generate_series(1, {n})"
    ))
    .await
    .map_err(|e| e.to_string())?;
    csv_rows_in(&ctx, sql).await
}

/// [`csv_rows`] on a given session (one with test tables registered).
#[cfg(test)]
pub(crate) async fn csv_rows_in(
    ctx: &SessionContext,
    sql: &str,
) -> std::result::Result<Vec<String>, String> {
    use crate::session::{Format, render, run_sql};
    let (schema, batches) = run_sql(ctx, sql).await.map_err(|e| e.to_string())?;
    let out = render(&schema, &batches, Format::Csv).map_err(|e| e.to_string())?;
    Ok(out.lines().skip(1).map(str::to_string).collect())
}

/// Registers the functions above on a session, and the planning of `timestamp ± INTERVAL` below.
pub fn register(ctx: &mut SessionContext) {
    datafusion::execution::FunctionRegistry::register_expr_planner(ctx, Arc::new(FixedIntervals))
        .expect("a planner registers");
    datafusion::execution::FunctionRegistry::register_expr_planner(
        ctx,
        Arc::new(decimals::DecimalDivision),
    )
    .expect("a planner registers");
    datafusion::execution::FunctionRegistry::register_expr_planner(
        ctx,
        Arc::new(durations::IntervalScaling),
    )
    .expect("a planner registers");
    datafusion::execution::FunctionRegistry::register_expr_planner(
        ctx,
        Arc::new(athena_strings::TextConcat),
    )
    .expect("a planner registers");
    ctx.register_udf(ScalarUDF::from(DateTrunc::new()));
    ctx.register_udf(ScalarUDF::from(JsonExtractScalar::new()));
    ctx.register_udf(ScalarUDF::from(FromIso8601Timestamp::new()));
    ctx.register_udaf(percentile::approx_percentile());
    for f in datetime::functions()
        .into_iter()
        .chain(text::functions())
        .chain(binary::functions())
        .chain(json::functions())
        .chain(conditional::functions())
        .chain(athena_strings::functions())
        .chain(numbers::functions())
        .chain(arrays::functions())
        .chain(durations::functions())
        .chain(maps::functions())
        .chain(sql_json::functions())
    {
        ctx.register_udf(f.udf());
    }
    for a in conditional::aggregates()
        .into_iter()
        .chain(maps::aggregates())
        .chain(top_by::aggregates())
        .chain(pick::aggregates())
        .chain(moments::aggregates())
        .chain(frequent::aggregates())
    {
        ctx.register_udaf(a);
    }
    // DataFusion's own, under Athena's names.
    ctx.register_udf(
        datafusion::functions_nested::string::array_to_string_udf()
            .as_ref()
            .clone()
            .with_aliases(["array_join"]),
    );
    ctx.register_udf(
        datafusion::functions::math::trunc()
            .as_ref()
            .clone()
            .with_aliases(["truncate"]),
    );
    // DataFusion's aggregates and string functions with Athena's meaning, under Athena's names.
    let state = ctx.state();
    for (name, athena) in [
        ("var_samp", "variance"),
        ("bit_and", "bitwise_and_agg"),
        ("bit_or", "bitwise_or_agg"),
        ("bit_xor", "bitwise_xor_agg"),
    ] {
        if let Some(f) = state.aggregate_functions().get(name) {
            ctx.register_udaf(f.as_ref().clone().with_aliases([athena]));
        }
    }
    for (name, athena) in [
        ("levenshtein", "levenshtein_distance"),
        ("ceil", "ceiling"),
        ("array_remove_all", "array_remove"),
    ] {
        if let Some(f) = state.scalar_functions().get(name) {
            ctx.register_udf(f.as_ref().clone().with_aliases([athena]));
        }
    }
    // DataFusion's higher-order functions, under Athena's names, and Athena's own.
    for (f, names) in [
        (
            datafusion::functions_nested::array_transform::array_transform_higher_order_function(),
            &["transform"][..],
        ),
        (
            datafusion::functions_nested::array_filter::array_filter_higher_order_function(),
            &["filter"][..],
        ),
    ] {
        ctx.register_higher_order_function(Arc::new(
            f.as_ref().clone().with_aliases(names.iter().copied()),
        ));
    }
    for f in lambda::functions() {
        ctx.register_higher_order_function(f);
    }
    datafusion::execution::FunctionRegistry::register_function_rewrite(
        &mut *ctx.state_ref().write(),
        Arc::new(conditional::Rewrites),
    )
    .expect("a rewrite registers");
    // After the rewrites above, so that it sees the `CASE` an `if` became.
    datafusion::execution::FunctionRegistry::register_function_rewrite(
        &mut *ctx.state_ref().write(),
        Arc::new(decimals::AthenaDecimals),
    )
    .expect("a rewrite registers");
}

/// Plans `timestamp ± INTERVAL '…' DAY|HOUR|MINUTE|SECOND` (no months) as a fixed duration. The
/// table's timestamps are UTC, where a day is always 86,400 s, so the answer is Athena's; and a
/// duration is one integer operation a row where a calendar interval is date arithmetic a row
/// (an order of magnitude slower on a scan's worth of rows).
#[derive(Debug)]
struct FixedIntervals;

impl ExprPlanner for FixedIntervals {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> datafusion::error::Result<PlannerResult<RawBinaryExpr>> {
        let op = match expr.op {
            BinaryOperator::Plus => Operator::Plus,
            BinaryOperator::Minus => Operator::Minus,
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(iv)), _) = &expr.right else {
            return Ok(PlannerResult::Original(expr));
        };
        let is_utc_timestamp = matches!(
            expr.left.get_type(schema),
            Ok(DataType::Timestamp(_, Some(ref tz))) if tz.as_ref() == "UTC" || tz.as_ref() == "+00:00"
        );
        if iv.months != 0 || !is_utc_timestamp {
            return Ok(PlannerResult::Original(expr));
        }
        let nanos = i64::from(iv.days) * 86_400_000_000_000 + iv.nanoseconds;
        Ok(PlannerResult::Planned(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(expr.left),
            op,
            Box::new(Expr::Literal(
                ScalarValue::DurationNanosecond(Some(nanos)),
                None,
            )),
        ))))
    }
}

/// The session's expression planners: ours that must see an expression before DataFusion's
/// own (a subscript), then DataFusion's.
pub fn expr_planners() -> Vec<Arc<dyn ExprPlanner>> {
    let mut v: Vec<Arc<dyn ExprPlanner>> = vec![Arc::new(RowSubscript), Arc::new(AthenaSubstring)];
    v.extend(datafusion::execution::SessionStateDefaults::default_expr_planners());
    v
}

/// `substr(s, i[, n])` and `substring(s FROM i [FOR n])`: the SQL parser makes both a syntax node
/// of its own, which DataFusion's planner gives to its `substr`, whose negative start counts
/// from before the string (`substr('Quadratically', -5)` is the whole string there, `cally` in
/// Athena). Athena's `substr` takes them; where DataFusion's gives the same answer (a positive
/// literal start), the function rewrites hand the call back to it for its speed.
#[derive(Debug)]
struct AthenaSubstring;

impl ExprPlanner for AthenaSubstring {
    fn plan_substring(
        &self,
        args: Vec<Expr>,
    ) -> datafusion::error::Result<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                Arc::new(athena_strings::substr_fun().udf()),
                args,
            ),
        )))
    }
}

/// Subscripts as Athena reads them: `row[i]`, a row's `i`-th field (1-based) by a constant
/// index, where DataFusion subscripts arrays and maps only; `a[i]` and `m[k]` failing where
/// Athena's fail (`subscript.rs`), and `m[k]` with a key that is not a constant, which
/// DataFusion refuses.
#[derive(Debug)]
struct RowSubscript;

impl ExprPlanner for RowSubscript {
    fn plan_field_access(
        &self,
        expr: datafusion::logical_expr::planner::RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> datafusion::error::Result<
        PlannerResult<datafusion::logical_expr::planner::RawFieldAccessExpr>,
    > {
        use datafusion::logical_expr::GetFieldAccess;
        // A string key is read as a field's name (`m['k']`): on a map it is a key.
        if let GetFieldAccess::NamedStructField { name } = &expr.field_access
            && let Ok(DataType::Map(..)) = expr.expr.get_type(schema)
        {
            let key = Expr::Literal(name.clone(), None);
            return Ok(PlannerResult::Planned(subscript::map_value(
                expr.expr, key, true,
            )));
        }
        if let GetFieldAccess::ListIndex { key } = &expr.field_access {
            match expr.expr.get_type(schema) {
                Ok(DataType::Map(..)) => {
                    return Ok(PlannerResult::Planned(subscript::map_value(
                        expr.expr,
                        key.as_ref().clone(),
                        true,
                    )));
                }
                Ok(DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)) => {
                    return Ok(PlannerResult::Planned(subscript::array_subscript(
                        expr.expr,
                        key.as_ref().clone(),
                    )));
                }
                _ => {}
            }
        }
        if let GetFieldAccess::ListIndex { key } = &expr.field_access
            && let Expr::Literal(v, _) = key.as_ref()
            && let Ok(ScalarValue::Int64(Some(i))) = v.cast_to(&DataType::Int64)
            && let Ok(DataType::Struct(fields)) = expr.expr.get_type(schema)
        {
            let Some(field) = usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| fields.get(i))
            else {
                return plan_err!(
                    "a row subscript must be between 1 and the row's {} fields, not {i}",
                    fields.len()
                );
            };
            return Ok(PlannerResult::Planned(
                datafusion::functions::core::expr_fn::get_field(expr.expr, field.name().as_str()),
            ));
        }
        Ok(PlannerResult::Original(expr))
    }
}

/// `date_trunc` with a fast path for the table's timestamps: on UTC timestamps (and timestamps
/// without a zone, which DataFusion truncates as UTC), truncating to a millisecond, second,
/// minute, hour, day or week is integer arithmetic (floor to a multiple of the unit; a week
/// starts on a Monday, as in Athena, and 1970-01-05, four days after the epoch, was one), and
/// truncating to a month, quarter or year finds the calendar period once and keeps it for the
/// following values that fall in it. Anything else goes to DataFusion's own `date_trunc`, whose
/// signature and result types it keeps.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateTrunc {
    inner: Arc<ScalarUDF>,
}

impl DateTrunc {
    pub fn new() -> Self {
        Self {
            inner: datafusion::functions::datetime::date_trunc(),
        }
    }
}

impl Default for DateTrunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        "date_trunc"
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::error::Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        // The unit, and where its multiples start, in microseconds after the epoch.
        let unit = match args.args.first() {
            Some(ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(g))
                | ScalarValue::Utf8View(Some(g))
                | ScalarValue::LargeUtf8(Some(g)),
            )) => g.to_ascii_lowercase(),
            _ => String::new(),
        };
        let months = match unit.as_str() {
            "month" => Some(1),
            "quarter" => Some(3),
            "year" => Some(12),
            _ => None,
        };
        let unit_micros = match unit.as_str() {
            "millisecond" => Some((1_000_i64, 0_i64)),
            "second" => Some((1_000_000_i64, 0_i64)),
            "minute" => Some((60_000_000, 0)),
            "hour" => Some((3_600_000_000, 0)),
            "day" => Some((86_400_000_000, 0)),
            "week" => Some((7 * 86_400_000_000, 4 * 86_400_000_000)),
            _ => None,
        };
        let utc =
            |tz: &Option<Arc<str>>| tz.as_deref().is_none_or(|tz| tz == "UTC" || tz == "+00:00");
        if let (Some(months), Some(ColumnarValue::Array(a))) = (months, args.args.get(1))
            && let DataType::Timestamp(tu, tz) = a.data_type()
            && utc(tz)
            && let Some(out) = calendar_trunc(a, *tu, months)?
        {
            return Ok(ColumnarValue::Array(out));
        }
        if let (Some((unit, start)), Some(ColumnarValue::Array(a))) =
            (unit_micros, args.args.get(1))
            && let DataType::Timestamp(tu, tz) = a.data_type()
            && utc(tz)
        {
            // Units in the array's own resolution (second timestamps take the general path).
            let own = |micros: i64| match tu {
                TimeUnit::Second => None,
                TimeUnit::Millisecond => Some(micros / 1_000),
                TimeUnit::Microsecond => Some(micros),
                TimeUnit::Nanosecond => Some(micros * 1_000),
            };
            if let (Some(step), Some(start)) = (own(unit), own(start)) {
                let ints = arrow::compute::cast(a, &DataType::Int64)?;
                let ints = ints
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .expect("cast to Int64");
                let floored: arrow::array::Int64Array =
                    arrow::compute::kernels::arity::unary(ints, |v| {
                        // In i128: `v - start` must not overflow for the earliest timestamps.
                        let r = (i128::from(v) - i128::from(start)).rem_euclid(i128::from(step));
                        v - r as i64
                    });
                let out = arrow::compute::cast(&floored, a.data_type())?;
                return Ok(ColumnarValue::Array(out));
            }
        }
        self.inner.invoke_with_args(args)
    }
}

/// Truncates timestamps (as UTC) to the first instant of their month, quarter or year
/// (`months` = 1, 3 or 12). Rows of one period usually come together, so the period of the last
/// value is kept and a value inside it costs two comparisons. `None` when a period's start or end
/// does not fit the array's resolution: DataFusion's own `date_trunc` then answers.
fn calendar_trunc(
    a: &ArrayRef,
    tu: TimeUnit,
    months: u32,
) -> datafusion::error::Result<Option<ArrayRef>> {
    use chrono::{Datelike, Months, NaiveDate};
    let per_day: i64 = match tu {
        TimeUnit::Second => 86_400,
        TimeUnit::Millisecond => 86_400_000,
        TimeUnit::Microsecond => 86_400_000_000,
        TimeUnit::Nanosecond => 86_400_000_000_000,
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch");
    // The period around one value, as [start, end) in the array's unit.
    let period = |v: i64| -> Option<(i64, i64)> {
        let day = epoch.checked_add_signed(chrono::TimeDelta::try_days(v.div_euclid(per_day))?)?;
        let first_month = (day.month0() / months) * months + 1;
        let start = NaiveDate::from_ymd_opt(day.year(), first_month, 1)?;
        let end = start.checked_add_months(Months::new(months))?;
        let at = |d: NaiveDate| (d - epoch).num_days().checked_mul(per_day);
        Some((at(start)?, at(end)?))
    };
    let ints = arrow::compute::cast(a, &DataType::Int64)?;
    let ints = ints
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("cast to Int64");
    let mut out = Vec::with_capacity(ints.len());
    let mut current: Option<(i64, i64)> = None;
    for (i, &v) in ints.values().iter().enumerate() {
        if ints.is_null(i) {
            out.push(0);
            continue;
        }
        match current {
            Some((lo, hi)) if lo <= v && v < hi => out.push(lo),
            _ => match period(v) {
                Some((lo, hi)) => {
                    current = Some((lo, hi));
                    out.push(lo);
                }
                None => return Ok(None),
            },
        }
    }
    let floored = arrow::array::Int64Array::new(out.into(), ints.nulls().cloned());
    Ok(Some(arrow::compute::cast(&floored, a.data_type())?))
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Parses the JSONPath subset Athena's `json_extract_scalar` is used with.
pub fn parse_json_path(path: &str) -> Result<Vec<Step>, String> {
    let bad = |why: &str| format!("invalid JSON path {path:?}: {why}");
    let mut rest = path
        .trim()
        .strip_prefix('$')
        .ok_or_else(|| bad("it must start with $"))?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("empty key"));
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| bad("unclosed ["))?;
            let inner = r[..end].trim();
            if let Some(q) = inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            {
                steps.push(Step::Key(q.to_owned()));
            } else {
                let i = inner.parse().map_err(|_| bad("index is not a number"))?;
                steps.push(Step::Index(i));
            }
            rest = &r[end + 1..];
        } else {
            return Err(bad("expected . or ["));
        }
    }
    Ok(steps)
}

/// The scalar at `steps` in `json`, as Athena's `json_extract_scalar` returns it.
pub fn extract_scalar(json: &str, steps: &[Step]) -> Option<String> {
    let mut out = None;
    extract_scalar_with(json, steps, |v| out = Some(v.to_owned()));
    out
}

/// Like [`extract_scalar`], handing the value to `found` without copying it when it can (a
/// number, a boolean, a string without escapes).
fn extract_scalar_with(json: &str, steps: &[Step], found: impl FnOnce(&str)) {
    if let [Step::Key(key)] = steps
        && let Some(value) = scan_key(json.as_bytes(), key.as_bytes())
    {
        match value {
            KeyValue::Plain(start, end) => found(&json[start..end]),
            KeyValue::Null => {}
            KeyValue::ParseAt(at) => {
                // Escapes to undo or an unusual form: the full parser reads the value.
                let mut values = serde_json::Deserializer::from_str(&json[at..])
                    .into_iter::<&serde_json::value::RawValue>();
                let Some(Ok(raw)) = values.next() else { return };
                let t = raw.get();
                match t.as_bytes().first() {
                    Some(b'"') => {
                        if let Ok(v) = serde_json::from_str::<String>(t) {
                            found(&v)
                        }
                    }
                    Some(b'{' | b'[' | b'n') | None => {}
                    Some(_) => found(t),
                }
            }
        }
        return;
    }
    let mut de = serde_json::Deserializer::from_str(json);
    if let Ok(Some(v)) = (Nav { steps }).deserialize(&mut de) {
        found(&v)
    }
}

/// What the key scan finds for a one-key path.
enum KeyValue {
    /// The value's text is `json[start..end]` as it is (see [`Scalar::Plain`]).
    Plain(usize, usize),
    /// No such key, or its value is `null`, an object or an array: NULL.
    Null,
    /// The value starting at this offset needs the full parser (escapes, an unusual form).
    ParseAt(usize),
}

/// The value of top-level `key` in `b` by [`top_level_scan`] and [`scalar_at`], or `None` when
/// the whole document needs the full parser.
fn scan_key(b: &[u8], key: &[u8]) -> Option<KeyValue> {
    let Some(at) = top_level_scan(b, key)? else {
        return Some(KeyValue::Null);
    };
    Some(match scalar_at(b, at) {
        Some(Scalar::Plain(start, end)) => KeyValue::Plain(start, end),
        Some(Scalar::Other) => KeyValue::Null,
        Some(Scalar::Escaped) | None => KeyValue::ParseAt(at),
    })
}

/// What [`scalar_at`] found where a value starts.
enum Scalar {
    /// The value's text is `json[start..end]` as it is (a number, `true`, `false`, or the inside
    /// of a string without escapes).
    Plain(usize, usize),
    /// A string with escapes: the full parser must undo them.
    Escaped,
    /// `null`, an object or an array: Athena's `json_extract_scalar` gives NULL.
    Other,
}

/// Reads the value that starts at `i` without a parser, for the common shapes. `None` for
/// anything unexpected, which then goes to the full parser (and its verdict).
fn scalar_at(b: &[u8], i: usize) -> Option<Scalar> {
    // A number or literal ending at `j` counts only if a well-formed end of value follows; `1x`
    // and the like go to the parser.
    let bare = |j: usize| match b.get(j) {
        Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') => Some(Scalar::Plain(i, j)),
        _ => None,
    };
    match *b.get(i)? {
        b'"' => {
            let (end, escaped) = string_end(b, i)?;
            if escaped {
                Some(Scalar::Escaped)
            } else {
                Some(Scalar::Plain(i + 1, end - 1))
            }
        }
        b'-' | b'0'..=b'9' => bare(number_end(b, i)?),
        b't' if b[i..].starts_with(b"true") => bare(i + 4),
        b'f' if b[i..].starts_with(b"false") => bare(i + 5),
        b'n' if b[i..].starts_with(b"null") => Some(Scalar::Other),
        b'{' | b'[' => Some(Scalar::Other),
        _ => None,
    }
}

/// The end of the JSON number that starts at `i`, if it is one by JSON's grammar
/// (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`).
fn number_end(b: &[u8], i: usize) -> Option<usize> {
    let digits = |j: usize| j + b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut j = i;
    if b.get(j) == Some(&b'-') {
        j += 1;
    }
    match b.get(j)? {
        b'0' => j += 1,
        b'1'..=b'9' => j = digits(j),
        _ => return None,
    }
    if b.get(j) == Some(&b'.') {
        let k = digits(j + 1);
        if k == j + 1 {
            return None;
        }
        j = k;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let k = digits(j);
        if k == j {
            return None;
        }
        j = k;
    }
    Some(j)
}

/// The end of the string whose opening quote is at `i` (the index after its closing quote), and
/// whether it holds a backslash. Eight bytes at a time: most strings in `properties` (paths,
/// URLs) are longer than a word.
#[inline]
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` equal to `n` (exact for the lowest one, which is the one
    // used).
    let eq = |x: u64, n: u8| {
        let y = x ^ (ONES * u64::from(n));
        y.wrapping_sub(ONES) & !y & HIGHS
    };
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        if let Some(word) = b.get(j..j + 8) {
            let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            let hits = eq(x, b'"') | eq(x, b'\\');
            if hits == 0 {
                j += 8;
                continue;
            }
            j += (hits.trailing_zeros() / 8) as usize;
        }
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// The fast path of a one-key path (`$.amount_cents`): walks the top-level object's keys, skipping
/// the values it does not want without parsing them, like a streaming JSON reader that stops at
/// the first match. `Some(Some(offset))` is where the value starts, `Some(None)` means the object
/// has no such key; `None` (an escaped key, anything unexpected) leaves the document to the full
/// parser.
fn top_level_scan(b: &[u8], key: &[u8]) -> Option<Option<usize>> {
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        ws(&mut i);
        match b.get(i)? {
            b'}' => return Some(None),
            b'"' => {}
            _ => return None,
        }
        let (end, escaped) = string_end(b, i)?;
        if escaped {
            return None;
        }
        let name = &b[i + 1..end - 1];
        i = end;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        ws(&mut i);
        if name == key {
            return Some(Some(i));
        }
        // Skip the value.
        match b.get(i)? {
            b'"' => i = string_end(b, i)?.0,
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match b.get(i)? {
                        b'"' => {
                            i = string_end(b, i)?.0;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {
                while i < b.len() && !matches!(b[i], b',' | b'}') && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
        }
        ws(&mut i);
        match b.get(i)? {
            b',' => i += 1,
            b'}' => return Some(None),
            _ => return None,
        }
    }
}

/// Walks a JSON document along a path without building it, borrowing what it can.
struct Nav<'p> {
    steps: &'p [Step],
}

fn scalar_of(raw: &serde_json::value::RawValue) -> Option<String> {
    let t = raw.get();
    match t.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(t).ok(),
        b'{' | b'[' | b'n' => None,
        _ => Some(t.to_owned()),
    }
}

impl<'de> DeserializeSeed<'de> for Nav<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.steps.is_empty() {
            let raw: &'de serde_json::value::RawValue = serde::Deserialize::deserialize(d)?;
            return Ok(scalar_of(raw));
        }
        d.deserialize_any(self)
    }
}

/// Compares a map key with the wanted one, borrowing when the key has no escapes.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

macro_rules! not_container {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E>(self, _: $t) -> Result<Self::Value, E> { Ok(None) })*
    };
}

impl<'de> Visitor<'de> for Nav<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    not_container!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (first, rest) = self.steps.split_first().expect("steps are not empty");
        let mut found = None;
        while let Some(is_key) = match first {
            Step::Key(k) => map.next_key_seed(KeyIs(k))?,
            Step::Index(_) => map.next_key::<IgnoredAny>()?.map(|_| false),
        } {
            if is_key && found.is_none() {
                found = map.next_value_seed(Nav { steps: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (first, rest) = self.steps.split_first().expect("steps are not empty");
        let mut found = None;
        let mut i = 0;
        loop {
            let got = match first {
                Step::Index(want) if *want == i => seq.next_element_seed(Nav { steps: rest })?,
                _ => seq.next_element::<IgnoredAny>()?.map(|_| None),
            };
            match got {
                None => break,
                Some(v) => {
                    if v.is_some() {
                        found = v;
                    }
                }
            }
            i += 1;
        }
        Ok(found)
    }
}

/// A string argument, read in place when it is `Utf8View` (how the table's strings are read) or
/// `Utf8`, cast otherwise.
enum Strings {
    Plain(StringArray),
    View(StringViewArray),
}

impl Strings {
    fn len(&self) -> usize {
        match self {
            Strings::Plain(a) => a.len(),
            Strings::View(a) => a.len(),
        }
    }
    fn is_null(&self, i: usize) -> bool {
        match self {
            Strings::Plain(a) => a.is_null(i),
            Strings::View(a) => a.is_null(i),
        }
    }
    fn value(&self, i: usize) -> &str {
        match self {
            Strings::Plain(a) => a.value(i),
            Strings::View(a) => a.value(i),
        }
    }
}

fn strings(v: &ColumnarValue, rows: usize) -> datafusion::error::Result<Strings> {
    let a = v.to_array(rows)?;
    if let Some(view) = a.as_any().downcast_ref::<StringViewArray>() {
        return Ok(Strings::View(view.clone()));
    }
    let a = arrow::compute::cast(&a, &DataType::Utf8)?;
    Ok(Strings::Plain(
        a.as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8")
            .clone(),
    ))
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonExtractScalar {
    signature: Signature,
}

impl JsonExtractScalar {
    pub fn new() -> Self {
        Self {
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}

impl Default for JsonExtractScalar {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for JsonExtractScalar {
    fn name(&self) -> &str {
        "json_extract_scalar"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let [json, path] = args.args.as_slice() else {
            return plan_err!("json_extract_scalar takes (json, path)");
        };
        extract_column(json, path, args.number_rows)
    }
}

/// `json_extract_scalar` over a batch: `json` and `path` are each a column or a literal.
fn extract_column(
    json: &ColumnarValue,
    path: &ColumnarValue,
    n: usize,
) -> datafusion::error::Result<ColumnarValue> {
    // The path is nearly always a literal: parse it once.
    let fixed = match path {
        ColumnarValue::Scalar(s) => match s {
            ScalarValue::Utf8(p) | ScalarValue::Utf8View(p) | ScalarValue::LargeUtf8(p) => {
                match p {
                    Some(p) => Some(Some(
                        parse_json_path(p).map_err(DataFusionError::Execution)?,
                    )),
                    None => Some(None),
                }
            }
            _ => return exec_err!("json_extract_scalar: the path must be a string"),
        },
        ColumnarValue::Array(_) => None,
    };
    let docs = strings(json, n)?;
    let paths = if fixed.is_none() {
        Some(strings(path, n)?)
    } else {
        None
    };
    let mut out = StringBuilder::with_capacity(docs.len(), docs.len() * 8);
    for i in 0..docs.len() {
        if docs.is_null(i) {
            out.append_null();
            continue;
        }
        let steps_owned;
        let steps = match (&fixed, &paths) {
            (Some(Some(s)), _) => s.as_slice(),
            (Some(None), _) => {
                out.append_null();
                continue;
            }
            (None, Some(p)) if p.is_null(i) => {
                out.append_null();
                continue;
            }
            (None, Some(p)) => {
                steps_owned = parse_json_path(p.value(i)).map_err(DataFusionError::Execution)?;
                steps_owned.as_slice()
            }
            (None, None) => unreachable!("paths are read when not fixed"),
        };
        let mut appended = false;
        extract_scalar_with(docs.value(i), steps, |v| {
            out.append_value(v);
            appended = true;
        });
        if !appended {
            out.append_null();
        }
    }
    let array: ArrayRef = Arc::new(out.finish());
    Ok(match json {
        ColumnarValue::Scalar(_) if matches!(path, ColumnarValue::Scalar(_)) => {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
        }
        _ => ColumnarValue::Array(array),
    })
}

/// Parses an ISO 8601 date or date-time into milliseconds since the epoch (UTC when it has no
/// offset).
pub fn parse_iso8601_millis(s: &str) -> Option<i64> {
    parse_iso8601(s).map(|t| t.timestamp_millis())
}

/// Each of `n` rows' text (`value`, None for NULL) as an ISO 8601 instant in the unit `to`
/// counts; `bad` answers for a text that is not one (an error, or NULL inside `try`).
pub fn iso8601_instants<'a>(
    n: usize,
    value: impl Fn(usize) -> Option<&'a str>,
    to: impl Fn(DateTime<chrono::Utc>) -> Option<i64>,
    mut bad: impl FnMut(&str) -> datafusion::error::Result<Option<i64>>,
) -> datafusion::error::Result<Vec<Option<i64>>> {
    (0..n)
        .map(|i| match value(i) {
            None => Ok(None),
            Some(v) => match parse_iso8601(v).and_then(&to) {
                Some(x) => Ok(Some(x)),
                None => bad(v),
            },
        })
        .collect()
}

/// The zone of a `timestamp with time zone` type (UTC for any other).
pub fn zone_of(t: &DataType) -> Arc<str> {
    match t {
        DataType::Timestamp(_, Some(z)) => Arc::clone(z),
        _ => "UTC".into(),
    }
}

/// The zone an ISO 8601 literal's value keeps, as Athena prints it: its offset (`+01:00`), or
/// `UTC` for `Z`, no offset, or an argument that is not a literal (a column's values are kept
/// as UTC instants: one column has one zone here).
pub fn iso8601_literal_zone(arg: Option<&Option<&ScalarValue>>) -> String {
    let text = match arg {
        Some(Some(
            ScalarValue::Utf8(Some(t))
            | ScalarValue::Utf8View(Some(t))
            | ScalarValue::LargeUtf8(Some(t)),
        )) => t.trim(),
        _ => return "UTC".into(),
    };
    let with_offset = DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        [
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%dT%H:%M%z",
            "%Y-%m-%d %H:%M:%S%.f%z",
        ]
        .iter()
        .find_map(|f| DateTime::parse_from_str(text, f).ok())
    });
    match with_offset {
        Some(t) if !text.ends_with(['Z', 'z']) && t.offset().local_minus_utc() != 0 => {
            let secs = t.offset().local_minus_utc();
            let sign = if secs < 0 { '-' } else { '+' };
            let m = secs.abs() / 60;
            format!("{sign}{:02}:{:02}", m / 60, m % 60)
        }
        _ => "UTC".into(),
    }
}

/// Parses an ISO 8601 date or date-time into an instant (UTC when it has no offset).
pub fn parse_iso8601(s: &str) -> Option<DateTime<chrono::Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.to_utc());
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FromIso8601Timestamp {
    signature: Signature,
}

impl FromIso8601Timestamp {
    pub fn new() -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for FromIso8601Timestamp {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for FromIso8601Timestamp {
    fn name(&self) -> &str {
        "from_iso8601_timestamp"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into()),
        ))
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::error::Result<arrow::datatypes::FieldRef> {
        Ok(Arc::new(arrow::datatypes::Field::new(
            self.name(),
            DataType::Timestamp(
                TimeUnit::Millisecond,
                Some(iso8601_literal_zone(args.scalar_arguments.first()).into()),
            ),
            true,
        )))
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let [text] = args.args.as_slice() else {
            return plan_err!("from_iso8601_timestamp takes one argument");
        };
        let texts = strings(text, args.number_rows)?;
        let out = iso8601_instants(
            texts.len(),
            |i| (!texts.is_null(i)).then(|| texts.value(i)),
            |t| Some(t.timestamp_millis()),
            |v| exec_err!("from_iso8601_timestamp: {v:?} is not an ISO 8601 timestamp"),
        )?;
        let zone = zone_of(args.return_field.data_type());
        let array: ArrayRef = Arc::new(TimestampMillisecondArray::from(out).with_timezone(zone));
        Ok(match text {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(array),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(json: &str, path: &str) -> Option<String> {
        extract_scalar(json, &parse_json_path(path).unwrap())
    }

    #[test]
    fn json_extract_scalar_matches_athena() {
        let doc = r#"{"a": {"b": [10, {"c": "x\"y"}]}, "n": 1.50, "t": true, "z": null, "s": "é"}"#;
        assert_eq!(x(doc, "$.n").as_deref(), Some("1.50"));
        assert_eq!(x(doc, "$.t").as_deref(), Some("true"));
        assert_eq!(x(doc, "$.s").as_deref(), Some("é"));
        assert_eq!(x(doc, "$.z"), None);
        assert_eq!(x(doc, "$.a"), None, "an object is not a scalar");
        assert_eq!(x(doc, "$.a.b"), None, "an array is not a scalar");
        assert_eq!(x(doc, "$.a.b[0]").as_deref(), Some("10"));
        assert_eq!(x(doc, "$.a.b[1].c").as_deref(), Some("x\"y"));
        assert_eq!(x(doc, "$[\"a\"]['b'][1][\"c\"]").as_deref(), Some("x\"y"));
        assert_eq!(x(doc, "$.missing"), None);
        assert_eq!(x(doc, "$.a.b[7]"), None);
        assert_eq!(x("not json", "$.a"), None);
        assert_eq!(x("[1,2]", "$[1]").as_deref(), Some("2"));
        // The one-key fast path and the full parser agree.
        for (doc, key) in [
            (
                r#"{"a":"x","b":{"c":[1,"}",{"d":"]"}]},"k":"v\"w","n":-1.5e3}"#,
                "k",
            ),
            (
                r#"{"a":"x","b":{"c":[1,"}",{"d":"]"}]},"k":"v\"w","n":-1.5e3}"#,
                "n",
            ),
            (r#" { "a" : [ ] , "k" : true } "#, "k"),
            (r#"{"a\"k":1,"k":2}"#, "k"),
            (r#"{"k":1,"k":2}"#, "k"),
            (r#"{"a":1}"#, "k"),
            (r#"{"k":{"x":1}}"#, "k"),
            (r#"{"k":null}"#, "k"),
            (r#"{"k":01}"#, "k"),
            (r#"{"k":1.}"#, "k"),
            (r#"{"k":-}"#, "k"),
            (r#"{"k":1e+7 }"#, "k"),
            (r#"{"k":0.5E-3,"z":1}"#, "k"),
            (r#"{"k":1x}"#, "k"),
            (r#"{"k":false}"#, "k"),
            (r#"{"k":tru}"#, "k"),
            (r#"{"k":truex}"#, "k"),
            (
                r#"{"k":"a long value past one word \u00e9 with escapes"}"#,
                "k",
            ),
            (
                r#"{"long key past one word":"x","k":"a value longer than eight bytes"}"#,
                "k",
            ),
            (r#"[1,2]"#, "k"),
        ] {
            let steps = parse_json_path(&format!("$.{key}")).unwrap();
            let mut de = serde_json::Deserializer::from_str(doc);
            let full = Nav { steps: &steps }.deserialize(&mut de).ok().flatten();
            assert_eq!(extract_scalar(doc, &steps), full, "{doc} {key}");
        }
        assert_eq!(
            x(r#"{"p":"/x","k":"v\"w"}"#, "$.k").as_deref(),
            Some("v\"w")
        );
        assert!(parse_json_path("a.b").is_err());
        assert!(parse_json_path("$.a[").is_err());
    }

    #[test]
    fn iso8601_forms() {
        let z = parse_iso8601_millis("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(parse_iso8601_millis("2026-11-25T11:00:00+01:00"), Some(z));
        assert_eq!(parse_iso8601_millis("2026-11-25T10:00:00"), Some(z));
        assert_eq!(
            parse_iso8601_millis("2026-11-25T10:00:00.123456Z"),
            Some(z + 123)
        );
        assert_eq!(parse_iso8601_millis("2026-11-25"), Some(z - 10 * 3_600_000));
        assert_eq!(parse_iso8601_millis("25/11/2026"), None);
    }
}

#[cfg(test)]
mod date_trunc_tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};

    use super::DateTrunc;

    fn call(f: &dyn Fn(ScalarFunctionArgs) -> ColumnarValue, unit: &str, a: &ArrayRef) -> ArrayRef {
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit.to_string()))),
                ColumnarValue::Array(Arc::clone(a)),
            ],
            arg_fields: vec![
                Arc::new(Field::new("u", DataType::Utf8, false)),
                Arc::new(Field::new("t", a.data_type().clone(), true)),
            ],
            number_rows: a.len(),
            return_field: Arc::new(Field::new("r", a.data_type().clone(), true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        f(args).into_array(a.len()).unwrap()
    }

    /// The integer fast path answers as DataFusion's own `date_trunc` does, before and after
    /// the epoch, on unit boundaries and beside them, in every resolution.
    #[test]
    fn the_fast_path_matches_datafusion() {
        let day = 86_400_000_000_i64;
        let mut micros: Vec<Option<i64>> = vec![None];
        for d in -20..20 {
            for extra in [0, 1, 999_999, 3_600_000_000, day - 1] {
                micros.push(Some(d * day + extra));
            }
        }
        // Around Mondays of 2026 (2026-11-16 and 2026-11-23) and a Sunday before one.
        micros.extend(
            [1_794_787_200_000_000_i64, 1_795_392_000_000_000]
                .iter()
                .flat_map(|m| [m - 1, *m, m + 1, m - day])
                .map(Some),
        );
        let us = TimestampMicrosecondArray::from(micros).with_timezone("UTC");
        let fast = DateTrunc::new();
        let slow = datafusion::functions::datetime::date_trunc();
        for tu in [
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ] {
            let a: ArrayRef =
                arrow::compute::cast(&us, &DataType::Timestamp(tu, Some("UTC".into()))).unwrap();
            for unit in ["second", "minute", "hour", "day", "week"] {
                let got = call(&|args| fast.invoke_with_args(args).unwrap(), unit, &a);
                let want = call(&|args| slow.invoke_with_args(args).unwrap(), unit, &a);
                assert_eq!(got.as_ref(), want.as_ref(), "{unit} {tu:?}");
            }
        }
    }

    /// Months, quarters and years, and every unit on timestamps without a zone: the same
    /// answers as DataFusion's own `date_trunc`, over period boundaries before and after the
    /// epoch, leap days, values that come in and out of order, and NULLs.
    #[test]
    fn calendar_units_and_zoneless_timestamps_match_datafusion() {
        let day = 86_400_000_000_i64;
        let mut micros: Vec<Option<i64>> = vec![None];
        // Every 13th day over 1967 to 1973 (crossing the epoch, 1968's and 1972's leap days),
        // each at midnight, a microsecond before and a microsecond after.
        for d in (-1200..1300).step_by(13) {
            for extra in [-1, 0, 1, day / 2] {
                micros.push(Some(d * day + extra));
            }
            if d % 91 == 0 {
                micros.push(None);
            }
        }
        // 2026's months and quarters, then back to 1969 out of order.
        micros.extend(
            [
                1_793_491_200_000_000_i64, // 2026-11-01
                1_796_083_200_000_000,     // 2026-12-01
                1_798_761_600_000_000,     // 2027-01-01
                1_790_812_800_000_000,     // 2026-10-01
            ]
            .iter()
            .flat_map(|m| [m - 1, *m, m + 1])
            .chain([-1, 5, 1_796_083_199_999_999])
            .map(Some),
        );
        let us = TimestampMicrosecondArray::from(micros);
        let fast = DateTrunc::new();
        let slow = datafusion::functions::datetime::date_trunc();
        for tz in [None, Some("UTC")] {
            for tu in [
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
                TimeUnit::Nanosecond,
            ] {
                let a: ArrayRef = arrow::compute::cast(
                    &us,
                    &DataType::Timestamp(tu, tz.map(std::sync::Arc::from)),
                )
                .unwrap();
                for unit in [
                    "millisecond",
                    "second",
                    "minute",
                    "hour",
                    "day",
                    "week",
                    "month",
                    "quarter",
                    "year",
                ] {
                    let got = call(&|args| fast.invoke_with_args(args).unwrap(), unit, &a);
                    let want = call(&|args| slow.invoke_with_args(args).unwrap(), unit, &a);
                    assert_eq!(got.as_ref(), want.as_ref(), "{unit} {tu:?} {tz:?}");
                }
            }
        }
    }
}

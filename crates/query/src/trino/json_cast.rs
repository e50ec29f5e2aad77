//! `CAST(json_extract_scalar(json, '$.key') AS BIGINT | DOUBLE | DECIMAL(p, s))` in one pass.
//!
//! Reading a number out of `properties` is how analysts sum or rank a property (the saved
//! revenue and duration queries do). Planned as written, every row's number is first copied into
//! a string column, which the cast then parses back. [`FuseJsonCast`] plans the pair as one
//! function instead: it finds the key as `json_extract_scalar` does and parses the digits where
//! they lie. It gives exactly what the pair gives: any batch holding a value it does not read as
//! plain digits (a decimal for `BIGINT` or `DECIMAL`, an exponent, `true`, an escaped string,
//! JSON the key scan leaves to the full parser, a number too long for the `DECIMAL`) is computed
//! the written way instead, errors included.

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::builder::NullBufferBuilder;
use arrow::array::{ArrayRef, PrimitiveArray};
use arrow::datatypes::DataType;
use arrow::datatypes::{ArrowPrimitiveType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::format::DEFAULT_CAST_OPTIONS;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::{
    JsonExtractScalar, KeyValue, Step, Strings, extract_column, parse_json_path, scan_key, strings,
};

/// The optimizer rule that plans `CAST(json_extract_scalar(..) AS BIGINT | DOUBLE | DECIMAL)` as
/// [`JsonExtractScalarAs`]. Output names stay those of the written expressions.
#[derive(Debug, Default)]
pub struct FuseJsonCast;

impl OptimizerRule for FuseJsonCast {
    fn name(&self) -> &str {
        "fuse_json_extract_cast"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> datafusion::error::Result<Transformed<LogicalPlan>> {
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|e| {
            let name = names.save(&e);
            let fused = e.transform_up(fuse)?;
            Ok(if fused.transformed {
                fused.update_data(|e| name.restore(e))
            } else {
                fused
            })
        })
    }
}

fn fuse(e: Expr) -> datafusion::error::Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr, field }) = e else {
        return Ok(Transformed::no(e));
    };
    let to = field.data_type();
    let fusable = (matches!(to, DataType::Int64 | DataType::Float64)
        || matches!(to, DataType::Decimal128(_, scale) if (0..=18).contains(scale)))
        && matches!(expr.as_ref(), Expr::ScalarFunction(f)
            if f.func.inner().is::<JsonExtractScalar>() && f.args.len() == 2);
    if !fusable {
        return Ok(Transformed::no(Expr::Cast(Cast { expr, field })));
    }
    let Expr::ScalarFunction(f) = *expr else {
        unreachable!("checked above")
    };
    let udf = ScalarUDF::new_from_impl(JsonExtractScalarAs::new(to.clone()));
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(Arc::new(udf), f.args),
    )))
}

/// `CAST(json_extract_scalar(json, path) AS <to>)` for `to` `BIGINT` (`Int64`) or `DOUBLE`
/// (`Float64`). Only planned by [`FuseJsonCast`]; not callable by name from SQL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonExtractScalarAs {
    to: DataType,
    name: String,
    signature: Signature,
}

impl JsonExtractScalarAs {
    pub fn new(to: DataType) -> Self {
        let name = match to {
            DataType::Int64 => "json_extract_scalar_as_bigint".to_string(),
            DataType::Float64 => "json_extract_scalar_as_double".to_string(),
            DataType::Decimal128(p, s) => format!("json_extract_scalar_as_decimal({p}, {s})"),
            ref other => format!("json_extract_scalar_as_{other}"),
        };
        Self {
            to,
            name,
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonExtractScalarAs {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.to.clone())
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let [json, path] = args.args.as_slice() else {
            return plan_err!("json_extract_scalar takes (json, path)");
        };
        let n = args.number_rows;
        if let (ColumnarValue::Array(_), ColumnarValue::Scalar(p)) = (json, path)
            && let ScalarValue::Utf8(Some(p))
            | ScalarValue::Utf8View(Some(p))
            | ScalarValue::LargeUtf8(Some(p)) = p
            && let Ok(steps) = parse_json_path(p)
            && let [Step::Key(key)] = steps.as_slice()
            && let Some(array) = read_numbers(&strings(json, n)?, key.as_bytes(), &self.to)
        {
            return Ok(ColumnarValue::Array(array));
        }
        extract_column(json, path, n)?.cast_to(&self.to, Some(&DEFAULT_CAST_OPTIONS))
    }
}

/// The numbers at top-level `key` of each document, or `None` when a value needs the written
/// path (see the module's documentation).
fn read_numbers(docs: &Strings, key: &[u8], to: &DataType) -> Option<ArrayRef> {
    match to {
        DataType::Int64 => read_as::<Int64Type>(docs, key, |t| plain_i64(t.as_bytes())),
        DataType::Float64 => read_as::<Float64Type>(docs, key, plain_f64),
        DataType::Decimal128(precision, scale) => {
            // Integers only: a fraction would need the cast's rounding. A value of more digits
            // than the type holds takes the written path, which fails as the cast fails.
            let unit = 10_i128.pow(u32::try_from(*scale).ok()?);
            let limit = 10_i128.checked_pow(u32::from(*precision))?;
            let array = read_as::<Decimal128Type>(docs, key, |t| {
                let v = i128::from(plain_i64(t.as_bytes())?) * unit;
                (v.abs() < limit).then_some(v)
            })?;
            let array = array
                .as_primitive::<Decimal128Type>()
                .clone()
                .with_precision_and_scale(*precision, *scale)
                .ok()?;
            Some(Arc::new(array))
        }
        _ => None,
    }
}

fn read_as<T: ArrowPrimitiveType>(
    docs: &Strings,
    key: &[u8],
    parse: impl Fn(&str) -> Option<T::Native>,
) -> Option<ArrayRef> {
    let mut nulls = NullBufferBuilder::new(docs.len());
    let mut values = Vec::with_capacity(docs.len());
    for i in 0..docs.len() {
        let value = if docs.is_null(i) {
            None
        } else {
            let doc = docs.value(i);
            match scan_key(doc.as_bytes(), key)? {
                KeyValue::Plain(start, end) => Some(parse(&doc[start..end])?),
                KeyValue::Null => None,
                KeyValue::ParseAt(_) => return None,
            }
        };
        nulls.append(value.is_some());
        values.push(value.unwrap_or_default());
    }
    Some(Arc::new(PrimitiveArray::<T>::new(
        values.into(),
        nulls.finish(),
    )))
}

/// `-?[0-9]{1,18}` as an `i64` (18 digits always fit); anything else is `None`.
fn plain_i64(t: &[u8]) -> Option<i64> {
    let (negative, digits) = match t.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(if negative { -v } else { v })
}

/// `-?[0-9]+(\.[0-9]+)?` as an `f64`, correctly rounded as the cast rounds it; anything else
/// (exponents, `NaN`, spaces) is `None`.
fn plain_f64(t: &str) -> Option<f64> {
    if let Some(v) = plain_i64(t.as_bytes())
        && v.unsigned_abs() < (1 << 53)
    {
        // Exact in an f64.
        return Some(v as f64);
    }
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "1"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !(digits(int) && digits(frac)) {
        return None;
    }
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Float64Array, StringArray};
    use arrow::datatypes::Field;

    fn written(docs: &StringArray, path: &str, to: &DataType) -> Option<ArrayRef> {
        let json = ColumnarValue::Array(Arc::new(docs.clone()));
        let path = ColumnarValue::Scalar(ScalarValue::Utf8(Some(path.into())));
        extract_column(&json, &path, docs.len())
            .unwrap()
            .cast_to(to, Some(&DEFAULT_CAST_OPTIONS))
            .ok()
            .map(|v| v.to_array(docs.len()).unwrap())
    }

    fn fused(docs: &StringArray, path: &str, to: &DataType) -> Option<ArrayRef> {
        let f = JsonExtractScalarAs::new(to.clone());
        let args = ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Array(Arc::new(docs.clone())),
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(path.into()))),
            ],
            arg_fields: vec![
                Arc::new(Field::new("json", DataType::Utf8, true)),
                Arc::new(Field::new("path", DataType::Utf8, false)),
            ],
            number_rows: docs.len(),
            return_field: Arc::new(Field::new("out", to.clone(), true)),
            config_options: Arc::default(),
        };
        f.invoke_with_args(args)
            .ok()
            .map(|v| v.to_array(docs.len()).unwrap())
    }

    const DOCS: &[&str] = &[
        r#"{"path":"/p/1","amount_cents":1234,"currency":"EUR"}"#,
        r#"{"amount_cents":-7}"#,
        r#"{ "amount_cents" : 0 , "x": 1}"#,
        r#"{"amount_cents":"42"}"#,
        r#"{"amount_cents":"007"}"#,
        r#"{"amount_cents":null}"#,
        r#"{"amount_cents":{"v":1}}"#,
        r#"{"amount_cents":[1]}"#,
        r#"{"other":1}"#,
        r#"{"a":{"amount_cents":5},"amount_cents":6}"#,
        r#"{"amount_cents":1,"amount_cents":2}"#,
        r#"{"amount_cents":999999999999999999}"#,
    ];

    /// Values the fast path leaves to the written path, each with the documents above.
    const ODD: &[&str] = &[
        r#"{"amount_cents":12.5}"#,
        r#"{"amount_cents":1e3}"#,
        r#"{"amount_cents":"12.50"}"#,
        r#"{"amount_cents":" 12"}"#,
        r#"{"amount_cents":true}"#,
        r#"{"amount_cents":"\u0034\u0032"}"#,
        r#"{"amount_cents":9223372036854775807}"#,
        r#"{"amount_cents":9223372036854775808}"#,
        r#"{"amount_cents":-0.0}"#,
        r#"{"amount_cents":"NaN"}"#,
        r#"{"amount_cents":""}"#,
        r#"{"amount_cents":1x}"#,
        r#"{"am\u006fount_cents":3}"#,
        r#"not json"#,
        r#"[1,2]"#,
    ];

    #[test]
    fn fused_cast_gives_what_the_written_pair_gives() {
        // A decimal too narrow for the documents' longest number takes the written path, and
        // fails as it does.
        let docs = StringArray::from(DOCS.to_vec());
        let narrow = DataType::Decimal128(12, 2);
        assert!(read_numbers(&Strings::Plain(docs.clone()), b"amount_cents", &narrow).is_none());
        assert_eq!(
            fused(&docs, "$.amount_cents", &narrow),
            written(&docs, "$.amount_cents", &narrow)
        );
        for to in [
            DataType::Int64,
            DataType::Float64,
            DataType::Decimal128(38, 2),
            DataType::Decimal128(18, 0),
            DataType::Decimal128(38, 18),
        ] {
            let mut batch: Vec<Option<&str>> = DOCS.iter().copied().map(Some).collect();
            batch.push(None);
            let docs = StringArray::from(batch.clone());
            let want = written(&docs, "$.amount_cents", &to);
            assert!(want.is_some(), "{to}: the plain batch casts");
            assert!(
                read_numbers(&Strings::Plain(docs.clone()), b"amount_cents", &to).is_some(),
                "{to}: the plain batch takes the fast path"
            );
            assert_eq!(
                fused(&docs, "$.amount_cents", &to),
                want,
                "{to}: plain batch"
            );
            for odd in ODD {
                let mut b = batch.clone();
                b.push(Some(odd));
                let docs = StringArray::from(b);
                assert_eq!(
                    fused(&docs, "$.amount_cents", &to),
                    written(&docs, "$.amount_cents", &to),
                    "{to}: batch with {odd}"
                );
                let one = StringArray::from(vec![*odd]);
                assert_eq!(
                    fused(&one, "$.amount_cents", &to),
                    written(&one, "$.amount_cents", &to),
                    "{to}: {odd} alone"
                );
            }
            // Paths other than one key go the written way too.
            for path in [
                "$.a.amount_cents",
                "$[\"amount_cents\"]",
                "$.amount_cents[0]",
            ] {
                assert_eq!(fused(&docs, path, &to), written(&docs, path, &to), "{path}");
            }
        }
    }

    #[test]
    fn only_a_cast_of_json_extract_scalar_is_fused() {
        use datafusion::logical_expr::{cast, col, lit};
        let extract = Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(ScalarUDF::from(super::super::JsonExtractScalar::new())),
            vec![col("properties"), lit("$.amount_cents")],
        ));
        for to in [
            DataType::Int64,
            DataType::Float64,
            DataType::Decimal128(12, 2),
        ] {
            let fused = fuse(cast(extract.clone(), to.clone())).unwrap();
            assert!(fused.transformed, "{to}");
            let other = datafusion::functions::unicode::expr_fn::character_length(col("user_id"));
            assert!(!fuse(cast(other, to.clone())).unwrap().transformed, "{to}");
        }
        // A scale the fast path's 18 digits cannot be scaled by is left as written.
        let wide = DataType::Decimal128(38, 20);
        assert!(!fuse(cast(extract.clone(), wide)).unwrap().transformed);
        assert!(!fuse(cast(extract, DataType::Int32)).unwrap().transformed);
    }

    #[test]
    fn fast_path_reads_numbers_as_the_cast_does() {
        let docs = StringArray::from(vec![
            r#"{"v":1234}"#,
            r#"{"v":"-42"}"#,
            r#"{"v":0.1}"#,
            r#"{"v":123456789012345678}"#,
            r#"{"v":-9007199254740993}"#,
            r#"{"v":3.141592653589793238}"#,
        ]);
        let f = fused(&docs, "$.v", &DataType::Float64).unwrap();
        let w = written(&docs, "$.v", &DataType::Float64).unwrap();
        assert_eq!(f.to_data(), w.to_data());
        let f = f.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(f.value(0), 1234.0);
        assert_eq!(f.value(2), 0.1);
        assert_eq!(f.value(4), -9007199254740992.0);
        assert_eq!(plain_i64(b"123456789012345678"), Some(123456789012345678));
        assert_eq!(plain_i64(b"-"), None);
        assert_eq!(plain_i64(b"1234567890123456789"), None);
        assert_eq!(plain_f64("1."), None);
        assert_eq!(plain_f64(".5"), None);
        assert_eq!(plain_f64("-1.25"), Some(-1.25));
    }
}

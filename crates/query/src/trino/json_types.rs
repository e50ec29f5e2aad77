//! Athena's SQL types in casts, and the casts to and from `JSON`.
//!
//! - [`AthenaTypes`] plans Athena's type names: `TIMESTAMP` is `timestamp(3)` (milliseconds),
//!   `TIMESTAMP(p)` has `p` digits, `TIMESTAMP WITH TIME ZONE` is in UTC, `VARBINARY`,
//!   `ARRAY(T)`, `MAP(K, V)`, `ROW(name T, …)`, and `JSON`, held as `LargeUtf8` so that a cast
//!   knows a JSON value from a `varchar`.
//! - [`athena_type_syntax`] rewrites `ARRAY(…)`, `MAP(…)` and `ROW(…)` in a cast's type to the
//!   angle brackets the SQL parser reads, keeping every line and column.
//! - [`json_cast`] gives a cast's expression with Athena's semantics when JSON is on either
//!   side: `CAST(json AS ARRAY(BIGINT))` parses, `CAST(x AS JSON)` writes JSON, `CAST(json AS
//!   VARCHAR)` is a JSON string's value.

use std::sync::Arc;

use crate::trino::dialect::AthenaDialect;
use arrow::array::{Array, ArrayRef, LargeStringArray, ListBuilder, MapBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};
use datafusion::common::DataFusionError;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    expr::ScalarFunction,
};
use datafusion::sql::sqlparser::ast::{self, ArrayElemTypeDef, TimezoneInfo};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde_json::Value;

use super::fun::Result;

/// Athena's JSON type, as the engine holds it.
pub const JSON: DataType = DataType::LargeUtf8;

#[derive(Debug, Default)]
pub struct AthenaTypes;

fn unit_of(p: Option<u64>) -> TimeUnit {
    match p {
        Some(0) => TimeUnit::Second,
        None | Some(1..=3) => TimeUnit::Millisecond,
        Some(4..=6) => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

impl AthenaTypes {
    fn plan(&self, t: &ast::DataType) -> Result<Option<DataType>> {
        Ok(Some(match t {
            ast::DataType::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
                DataType::Timestamp(unit_of(*p), None)
            }
            ast::DataType::Timestamp(p, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
                DataType::Timestamp(unit_of(*p), Some("UTC".into()))
            }
            ast::DataType::JSON => JSON,
            ast::DataType::Varbinary(_) => DataType::Binary,
            ast::DataType::Array(
                ArrayElemTypeDef::AngleBracket(e) | ArrayElemTypeDef::Parenthesis(e),
            ) => {
                let Some(e) = self.plan_or_default(e)? else {
                    return Ok(None);
                };
                DataType::List(Arc::new(Field::new_list_field(e, true)))
            }
            ast::DataType::Map(k, v) => {
                let (Some(k), Some(v)) = (self.plan_or_default(k)?, self.plan_or_default(v)?)
                else {
                    return Ok(None);
                };
                map_type(k, v)
            }
            ast::DataType::Struct(fields, _) => {
                let mut fs = Vec::with_capacity(fields.len());
                for (i, f) in fields.iter().enumerate() {
                    let Some(t) = self.plan_or_default(&f.field_type)? else {
                        return Ok(None);
                    };
                    let name = f
                        .field_name
                        .as_ref()
                        .map_or_else(|| format!("field{i}"), |n| n.value.clone());
                    fs.push(Field::new(name, t, true));
                }
                DataType::Struct(Fields::from(fs))
            }
            _ => return Ok(None),
        }))
    }

    /// A type inside another: ours, or the few plain ones DataFusion would give.
    fn plan_or_default(&self, t: &ast::DataType) -> Result<Option<DataType>> {
        if let Some(d) = self.plan(t)? {
            return Ok(Some(d));
        }
        Ok(Some(match t {
            ast::DataType::BigInt(_) => DataType::Int64,
            ast::DataType::Int(_) | ast::DataType::Integer(_) => DataType::Int32,
            ast::DataType::SmallInt(_) => DataType::Int16,
            ast::DataType::TinyInt(_) => DataType::Int8,
            ast::DataType::Double(_) | ast::DataType::DoublePrecision => DataType::Float64,
            ast::DataType::Real | ast::DataType::Float(_) => DataType::Float32,
            ast::DataType::Boolean | ast::DataType::Bool => DataType::Boolean,
            ast::DataType::Varchar(_) | ast::DataType::String(_) | ast::DataType::Text => {
                DataType::Utf8
            }
            ast::DataType::Char(_) | ast::DataType::Character(_) => DataType::Utf8,
            ast::DataType::Date => DataType::Date32,
            ast::DataType::Decimal(info) | ast::DataType::Numeric(info) => match info {
                ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
                    DataType::Decimal128(*p as u8, *s as i8)
                }
                ast::ExactNumberInfo::Precision(p) => DataType::Decimal128(*p as u8, 0),
                ast::ExactNumberInfo::None => DataType::Decimal128(38, 0),
            },
            _ => return Ok(None),
        }))
    }
}

pub fn map_type(k: DataType, v: DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(Fields::from(vec![
                Field::new("key", k, false),
                Field::new("value", v, true),
            ])),
            false,
        )),
        false,
    )
}

impl TypePlanner for AthenaTypes {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        Ok(self
            .plan(sql_type)?
            .map(|t| Arc::new(Field::new("", t, true))))
    }
}

/// The zone of a `TIMESTAMP '2001-08-22 03:04:05.321 America/Los_Angeles'` literal (a name or
/// an offset after the time), and the text before it.
pub fn literal_zone(v: &str) -> Option<(&str, &str)> {
    let (when, zone) = v.trim().rsplit_once(' ')?;
    let when = when.trim();
    let date_time = when.len() >= 10
        && when.as_bytes()[4] == b'-'
        && when.as_bytes()[7] == b'-'
        && when[..4].bytes().all(|b| b.is_ascii_digit());
    let offset =
        zone.starts_with(['+', '-']) && zone[1..].bytes().all(|b| b.is_ascii_digit() || b == b':');
    let name = zone.starts_with(|c: char| c.is_ascii_alphabetic())
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
    let zone_like = offset || name;
    (date_time && zone_like).then_some((when, zone))
}

/// Athena's syntax the SQL parser does not read, rewritten keeping every line and column:
/// `ARRAY(T)` and `ROW(a T, …)` after a cast's `AS` (as `ARRAY<T>`, `STRUCT<…>`), `JSON '…'`
/// literals (`json_parse('…')`) and `TIMESTAMP '… zone'` literals. Text without them comes
/// back as it is.
/// The precision and scale of a decimal literal's text (`1.00`: 3 and 2; `0.5`: 1 and 1), or
/// None for text that is not a plain decimal number.
pub(crate) fn decimal_type(v: &str) -> Option<(usize, usize)> {
    let v = v.trim();
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let precision = (int.len() + frac.len()).max(1);
    (precision <= 38).then_some((precision, frac.len()))
}

pub fn athena_type_syntax(sql: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&AthenaDialect, sql).tokenize() else {
        return sql.to_string();
    };
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.value.eq_ignore_ascii_case(w));
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    // Depth of parentheses, and the depths at which a cast's type began.
    let mut depth = 0usize;
    let mut casts: Vec<usize> = Vec::new();
    let mut in_type: Vec<usize> = Vec::new();
    // Parentheses turned into angle brackets, by depth.
    let mut angled: Vec<usize> = Vec::new();
    let mut changed = false;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let next = tokens[i + 1..]
            .iter()
            .find(|x| !matches!(x, Token::Whitespace(_)));
        match t {
            Token::Word(_)
                if (word(t, "CAST") || word(t, "TRY_CAST")) && next == Some(&Token::LParen) =>
            {
                casts.push(depth + 1);
                out.push(t.to_string());
            }
            Token::Word(_)
                if word(t, "AS")
                    && casts.last() == Some(&depth)
                    && in_type.last() != Some(&depth) =>
            {
                in_type.push(depth);
                out.push(t.to_string());
            }
            // `JSON '…'` is the parsed text (a cast of a string to JSON is a JSON string).
            Token::Word(_)
                if word(t, "JSON")
                    && in_type.is_empty()
                    && matches!(next, Some(Token::SingleQuotedString(_))) =>
            {
                out.push("json_parse".into());
                i += 1;
                while !matches!(tokens[i], Token::SingleQuotedString(_)) {
                    keep_lines(&mut out, &tokens[i]);
                    i += 1;
                }
                out.push(format!("({})", tokens[i]));
                changed = true;
            }
            // `DECIMAL '1.00'` has the literal's own precision and scale, decimal(3,2).
            Token::Word(_)
                if word(t, "DECIMAL")
                    && in_type.is_empty()
                    && matches!(next, Some(Token::SingleQuotedString(v)) if decimal_type(v).is_some()) =>
            {
                i += 1;
                while !matches!(tokens[i], Token::SingleQuotedString(_)) {
                    keep_lines(&mut out, &tokens[i]);
                    i += 1;
                }
                let Token::SingleQuotedString(v) = &tokens[i] else {
                    unreachable!("matched above")
                };
                let (p, s) = decimal_type(v).expect("matched above");
                out.push(format!("CAST({} AS DECIMAL({p},{s}))", tokens[i]));
                changed = true;
            }
            // `TIMESTAMP '… zone'` is a timestamp with that time zone.
            Token::Word(_)
                if word(t, "TIMESTAMP")
                    && in_type.is_empty()
                    && matches!(next, Some(Token::SingleQuotedString(v)) if literal_zone(v).is_some()) =>
            {
                out.push("timestamp_with_zone_literal".into());
                i += 1;
                while !matches!(tokens[i], Token::SingleQuotedString(_)) {
                    keep_lines(&mut out, &tokens[i]);
                    i += 1;
                }
                out.push(format!("({})", tokens[i]));
                changed = true;
            }
            Token::Word(_)
                if !in_type.is_empty()
                    && (word(t, "ARRAY") || word(t, "ROW"))
                    && next == Some(&Token::LParen) =>
            {
                out.push(if word(t, "ROW") {
                    "STRUCT".into()
                } else {
                    t.to_string()
                });
                // Skip to the parenthesis and open an angle bracket.
                i += 1;
                while !matches!(tokens[i], Token::LParen) {
                    out.push(tokens[i].to_string());
                    i += 1;
                }
                depth += 1;
                angled.push(depth);
                out.push("<".into());
                changed = true;
            }
            Token::LParen => {
                depth += 1;
                out.push("(".into());
            }
            Token::RParen => {
                if angled.last() == Some(&depth) {
                    angled.pop();
                    out.push(">".into());
                } else {
                    out.push(")".into());
                }
                if casts.last() == Some(&depth) {
                    casts.pop();
                    if in_type.last() == Some(&depth) {
                        in_type.pop();
                    }
                }
                depth = depth.saturating_sub(1);
            }
            other => out.push(other.to_string()),
        }
        i += 1;
    }
    if changed {
        out.concat()
    } else {
        sql.to_string()
    }
}

/// Between a literal's type and its text: only line breaks are kept (so later lines keep their
/// numbers).
fn keep_lines(out: &mut Vec<String>, t: &Token) {
    let s = t.to_string();
    out.extend(
        s.contains('\n')
            .then(|| "\n".repeat(s.matches('\n').count())),
    );
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

fn holds_json(t: &DataType) -> bool {
    match t {
        DataType::LargeUtf8 => true,
        DataType::List(f) | DataType::LargeList(f) => holds_json(f.data_type()),
        DataType::Map(f, _) => holds_json(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| holds_json(f.data_type())),
        _ => false,
    }
}

/// The expression for `CAST(e AS target)` (`TRY_CAST` when `lenient`) where `e` has type
/// `from`, when JSON is on either side; None leaves the cast to DataFusion.
pub fn json_cast(e: Expr, from: &DataType, target: &DataType, lenient: bool) -> Option<Expr> {
    let kind = if from == &JSON && target == &JSON {
        return None;
    } else if from == &JSON
        || (is_text(from)
            && matches!(
                target,
                DataType::List(_) | DataType::Map(..) | DataType::Struct(_)
            ))
    {
        Kind::FromJson
    } else if holds_json(target) {
        Kind::ToJson
    } else {
        return None;
    };
    Some(Expr::ScalarFunction(ScalarFunction {
        func: Arc::new(ScalarUDF::new_from_impl(JsonCast {
            target: target.clone(),
            kind,
            lenient,
            signature: Signature::any(1, Volatility::Immutable),
        })),
        args: vec![e],
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    FromJson,
    ToJson,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonCast {
    target: DataType,
    kind: Kind,
    lenient: bool,
    signature: Signature,
}

impl ScalarUDFImpl for JsonCast {
    fn name(&self) -> &str {
        "json_cast"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let a = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
        let out = match self.kind {
            Kind::FromJson => from_json(&a, &self.target, self.lenient)?,
            Kind::ToJson => to_json(&a, &self.target)?,
        };
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

fn err(msg: String) -> DataFusionError {
    DataFusionError::Execution(msg)
}

/// A JSON value as Athena casts it to a scalar type's text, for the arrow decoder.
fn values_of(a: &ArrayRef) -> Result<Vec<Option<std::result::Result<Value, String>>>> {
    let s = super::fun::text(a)?;
    Ok(s.iter()
        .map(|v| {
            v.map(|t| {
                serde_json::from_str::<Value>(t).map_err(|e| format!("{t:?} is not JSON: {e}"))
            })
        })
        .collect())
}

/// A JSON array read as a row takes the row's fields in order (Athena casts
/// `JSON '[1, "a"]'` to `ROW(x BIGINT, y VARCHAR)` by position), at any depth.
fn by_position(v: Value, t: &DataType) -> Value {
    match (v, t) {
        (Value::Array(xs), DataType::Struct(fields)) if xs.len() == fields.len() => Value::Object(
            fields
                .iter()
                .zip(xs)
                .map(|(f, x)| (f.name().clone(), by_position(x, f.data_type())))
                .collect(),
        ),
        (Value::Object(m), DataType::Struct(fields)) => Value::Object(
            m.into_iter()
                .map(|(k, x)| {
                    let t = fields
                        .iter()
                        .find(|f| f.name() == &k)
                        .map(|f| f.data_type().clone());
                    let x = match t {
                        Some(t) => by_position(x, &t),
                        None => x,
                    };
                    (k, x)
                })
                .collect(),
        ),
        (Value::Array(xs), DataType::List(f) | DataType::LargeList(f)) => Value::Array(
            xs.into_iter()
                .map(|x| by_position(x, f.data_type()))
                .collect(),
        ),
        (Value::Object(m), DataType::Map(entries, _)) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Value::Object(
                m.into_iter()
                    .map(|(k, x)| (k, by_position(x, kv[1].data_type())))
                    .collect(),
            ),
            _ => Value::Object(m),
        },
        (v, _) => v,
    }
}

fn from_json(a: &ArrayRef, target: &DataType, lenient: bool) -> Result<ArrayRef> {
    let docs = values_of(a)?;
    // ARRAY(JSON) and MAP(VARCHAR, JSON): the elements stay JSON text.
    match target {
        DataType::List(f) if f.data_type() == &JSON => {
            let mut b =
                ListBuilder::new(arrow::array::LargeStringBuilder::new()).with_field(Arc::clone(f));
            for d in docs {
                match d {
                    Some(Ok(Value::Array(xs))) => {
                        for x in xs {
                            b.values().append_value(super::json::canonical(&x));
                        }
                        b.append(true);
                    }
                    None | Some(Ok(Value::Null)) => b.append(false),
                    Some(Ok(other)) if !lenient => {
                        return Err(err(format!(
                            "cannot cast {} to array(json)",
                            super::json::canonical(&other)
                        )));
                    }
                    Some(Err(e)) if !lenient => return Err(err(e)),
                    _ => b.append(false),
                }
            }
            return Ok(Arc::new(b.finish()));
        }
        DataType::Map(f, _) if holds_json(f.data_type()) => {
            let mut b = MapBuilder::new(
                None,
                StringBuilder::new(),
                arrow::array::LargeStringBuilder::new(),
            );
            for d in docs {
                match d {
                    Some(Ok(Value::Object(m))) => {
                        for (k, v) in m {
                            b.keys().append_value(k);
                            b.values().append_value(super::json::canonical(&v));
                        }
                        b.append(true)?;
                    }
                    None | Some(Ok(Value::Null)) => b.append(false)?,
                    Some(Ok(other)) if !lenient => {
                        return Err(err(format!(
                            "cannot cast {} to map(varchar, json)",
                            super::json::canonical(&other)
                        )));
                    }
                    Some(Err(e)) if !lenient => return Err(err(e)),
                    _ => b.append(false)?,
                }
            }
            let m: ArrayRef = Arc::new(b.finish());
            return Ok(arrow::compute::cast(&m, target)?);
        }
        _ => {}
    }
    // Anything else: arrow's JSON decoder, one row `{"v": value}` at a time when a row fails.
    let schema = Arc::new(Schema::new(vec![Field::new("v", target.clone(), true)]));
    let decode = |rows: &[Value]| -> std::result::Result<ArrayRef, String> {
        let mut d = arrow::json::ReaderBuilder::new(Arc::clone(&schema))
            // A JSON number or boolean casts to varchar as its text, at any depth
            // (`CAST(JSON '{"a": 1}' AS MAP(VARCHAR, VARCHAR))` is `{a=1}`).
            .with_coerce_primitive(true)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        d.serialize(rows).map_err(|e| e.to_string())?;
        let b = d.flush().map_err(|e| e.to_string())?.ok_or("no rows")?;
        Ok(Arc::clone(b.column(0)))
    };
    let mut rows = Vec::with_capacity(docs.len());
    let mut bad = None;
    for d in &docs {
        rows.push(serde_json::json!({ "v": match d {
            Some(Ok(v)) => by_position(v.clone(), target),
            Some(Err(e)) => {
                bad.get_or_insert_with(|| e.clone());
                Value::Null
            }
            None => Value::Null,
        }}));
    }
    if let (Some(e), false) = (&bad, lenient) {
        return Err(err(e.clone()));
    }
    match decode(&rows) {
        Ok(a) => Ok(a),
        Err(e) if !lenient => {
            // The first value that does not cast is named, not the decoder's field.
            let ty = super::conditional::trino_type(target);
            let first = rows
                .iter()
                .find(|r| decode(std::slice::from_ref(r)).is_err())
                .and_then(|r| r.get("v"));
            Err(err(match first {
                Some(v) => format!("cannot cast {} to {ty}", super::json::canonical(v)),
                None => format!("cannot cast JSON to {ty}: {e}"),
            }))
        }
        Err(_) => {
            let parts: Vec<ArrayRef> = rows
                .iter()
                .map(|r| {
                    decode(std::slice::from_ref(r)).or_else(|_| {
                        Ok::<_, DataFusionError>(arrow::array::new_null_array(target, 1))
                    })
                })
                .collect::<Result<_>>()?;
            let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
            Ok(arrow::compute::concat(&refs)?)
        }
    }
}

/// Each row of `a` as a JSON value, written by arrow's JSON writer.
fn json_values(a: &ArrayRef) -> Result<Vec<Option<Value>>> {
    // SQL NULL stays NULL (`CAST(NULL AS JSON)`); only a NULL inside a value is JSON `null`.
    if a.data_type() == &DataType::Null {
        return Ok(vec![None; a.len()]);
    }
    if is_text(a.data_type()) && a.data_type() != &JSON {
        let s = super::fun::text(a)?;
        return Ok(s
            .iter()
            .map(|v| v.map(|t| Value::String(t.to_string())))
            .collect());
    }
    if a.data_type() == &JSON {
        let s = super::fun::text(a)?;
        return Ok(s
            .iter()
            .map(|v| v.and_then(|t| serde_json::from_str(t).ok()))
            .collect());
    }
    let batch = arrow::array::RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "v",
            a.data_type().clone(),
            true,
        )])),
        vec![Arc::clone(a)],
    )?;
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut buf);
        w.write(&batch)?;
        w.finish()?;
    }
    let rows: Vec<Value> = serde_json::from_slice(&buf).map_err(|e| err(e.to_string()))?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            if a.is_null(i) {
                None
            } else {
                r.get("v").cloned()
            }
        })
        .collect())
}

fn to_json(a: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if target == &JSON {
        let vals = json_values(a)?;
        return Ok(Arc::new(LargeStringArray::from(
            vals.into_iter()
                .map(|v| v.map(|v| super::json::canonical(&v)))
                .collect::<Vec<_>>(),
        )));
    }
    // A container of JSON (ARRAY(JSON) from an array): each element to JSON text.
    match (a.data_type(), target) {
        (DataType::List(_), DataType::List(f)) if f.data_type() == &JSON => {
            let vals = json_values(a)?;
            let mut b =
                ListBuilder::new(arrow::array::LargeStringBuilder::new()).with_field(Arc::clone(f));
            for v in vals {
                match v {
                    Some(Value::Array(xs)) => {
                        for x in xs {
                            b.values().append_value(super::json::canonical(&x));
                        }
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Ok(Arc::new(b.finish()))
        }
        _ => Err(err(format!(
            "cannot cast {} to {}",
            super::conditional::trino_type(a.data_type()),
            super::conditional::trino_type(target)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_syntax_keeps_lines() {
        let sql = "SELECT CAST(x AS ARRAY(JSON)),\n CAST(y AS MAP(VARCHAR, ARRAY(BIGINT))) FROM t";
        assert_eq!(
            athena_type_syntax(sql),
            "SELECT CAST(x AS ARRAY<JSON>),\n CAST(y AS MAP(VARCHAR, ARRAY<BIGINT>)) FROM t"
        );
        assert_eq!(
            athena_type_syntax("SELECT JSON '[1]', TIMESTAMP '2001-08-22 03:04:05 UTC'"),
            "SELECT json_parse('[1]'), timestamp_with_zone_literal('2001-08-22 03:04:05 UTC')"
        );
        assert_eq!(literal_zone("2001-08-22 03:04:05.321"), None);
        assert_eq!(
            literal_zone("2001-08-22 03:04:05 +07:09"),
            Some(("2001-08-22 03:04:05", "+07:09"))
        );
        assert_eq!(
            athena_type_syntax("SELECT ARRAY[1], map(ARRAY['a'], ARRAY[1])"),
            "SELECT ARRAY[1], map(ARRAY['a'], ARRAY[1])"
        );
    }

    /// A JSON value that does not cast is named in the error, among values that do.
    #[tokio::test]
    async fn a_value_that_does_not_cast_is_named() {
        let err = crate::trino::csv_rows(
            "SELECT CAST(j AS VARCHAR) FROM (VALUES (JSON '\"a\"'), (JSON '[1, 2]')) AS t(j)",
        )
        .await
        .expect_err("an array is no varchar");
        assert!(err.contains("cannot cast [1,2] to varchar"), "{err}");
    }
}

//! Athena's JSON functions. A JSON value is held as its text, in Athena's canonical form
//! (no spaces, object keys sorted): `json_parse`, `json_format`, `json_extract`,
//! `json_array_length`, `json_array_get`, `json_array_contains`, `json_size`, `is_json_scalar`.
//! (`json_extract_scalar` is in the parent module, with its fast path.)

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow::datatypes::DataType;
use serde_json::Value;

use super::fun::{Call, Fun, Result, arc, arity, text};
use super::json_types::JSON;
use super::{Step, parse_json_path};

/// The canonical text of a value (sorted keys: `serde_json`'s map is ordered by key).
pub fn canonical(v: &Value) -> String {
    serde_json::to_string(v).expect("a value serializes")
}

pub fn at<'a>(v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let mut cur = v;
    for s in steps {
        cur = match (s, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Each row's JSON parsed (None for NULL or text that is not JSON), with `f` applied.
fn per_doc<T>(a: &ArrayRef, mut f: impl FnMut(Option<Value>) -> T) -> Result<Vec<T>> {
    let s = text(a)?;
    Ok(s.iter()
        .map(|v| f(v.and_then(|v| serde_json::from_str::<Value>(v).ok())))
        .collect())
}

fn json_parse(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        out.push(match v {
            None => None,
            Some(t) => match serde_json::from_str::<Value>(t) {
                Ok(j) => Some(canonical(&j)),
                Err(e) => call.row_err(format!("cannot convert {t:?} to JSON: {e}"))?,
            },
        });
    }
    Ok(arc(StringArray::from(out)))
}

fn with_path<T>(
    call: &Call,
    a: &[ArrayRef],
    mut f: impl FnMut(&Value) -> Option<T>,
) -> Result<Vec<Option<T>>> {
    let docs = text(&a[0])?;
    let paths = text(&a[1])?;
    let mut cache: Option<(String, Vec<Step>)> = None;
    let mut out = Vec::with_capacity(docs.len());
    for i in 0..docs.len() {
        if docs.is_null(i) || paths.is_null(i) {
            out.push(None);
            continue;
        }
        let p = paths.value(i);
        if cache.as_ref().is_none_or(|(k, _)| k != p) {
            match parse_json_path(p) {
                Ok(steps) => cache = Some((p.to_string(), steps)),
                Err(e) => {
                    out.push(call.row_err(e)?);
                    continue;
                }
            }
        }
        let steps = &cache.as_ref().expect("cached").1;
        out.push(value_at(docs.value(i), steps, &mut f));
    }
    Ok(out)
}

/// `f` of the value at `steps` in `doc`, None when there is none. A one-key path (`$.items`)
/// is found as `json_extract_scalar` finds it: the top-level keys are walked without parsing
/// the values skipped, and only the value found is parsed (the first of a repeated key, as
/// Athena's streaming reader takes it). Parsing every document whole made `json_extract` six
/// times as slow as `json_extract_scalar` on the same path.
fn value_at<T>(doc: &str, steps: &[Step], f: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
    if let [Step::Key(key)] = steps {
        match super::top_level_scan(doc.as_bytes(), key.as_bytes()) {
            Some(None) => return None,
            Some(Some(start)) => {
                let mut values = serde_json::Deserializer::from_str(&doc[start..]).into_iter();
                if let Some(Ok(v)) = values.next() {
                    return f(&v);
                }
            }
            None => {}
        }
    }
    serde_json::from_str::<Value>(doc)
        .ok()
        .and_then(|d| at(&d, steps).and_then(f))
}

fn json_extract(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let out = with_path(call, a, |v| Some(canonical(v)))?;
    Ok(arc(StringArray::from(out)))
}

fn json_size(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let out = with_path(call, a, |v| {
        Some(match v {
            Value::Object(m) => m.len() as i64,
            Value::Array(x) => x.len() as i64,
            _ => 0,
        })
    })?;
    Ok(arc(Int64Array::from(out)))
}

fn json_array_length(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = text(&a[0])?;
    // Only an array has a length: a document that does not start with `[` is NULL unparsed,
    // as Athena's reader stops at a first token that does not open an array.
    let out: Vec<Option<i64>> = s
        .iter()
        .map(|v| {
            let v = v?;
            if v.trim_start().as_bytes().first() != Some(&b'[') {
                return None;
            }
            match serde_json::from_str::<Value>(v) {
                Ok(Value::Array(x)) => Some(x.len() as i64),
                _ => None,
            }
        })
        .collect();
    Ok(arc(Int64Array::from(out)))
}

fn json_array_get(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let idx = arrow::compute::cast(&a[1], &DataType::Int64)?;
    let idx = idx.as_any().downcast_ref::<Int64Array>().expect("int64");
    let docs = per_doc(&a[0], |v| v)?;
    let out: Vec<Option<String>> = docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let Some(Value::Array(x)) = d else {
                return None;
            };
            if idx.is_null(i) {
                return None;
            }
            let k = idx.value(i);
            let k = if k < 0 { x.len() as i64 + k } else { k };
            usize::try_from(k)
                .ok()
                .and_then(|k| x.get(k))
                .map(|v| match v {
                    // Athena's documented quirk: a string element comes back unquoted.
                    Value::String(s) => s.clone(),
                    other => canonical(other),
                })
        })
        .collect();
    Ok(arc(StringArray::from(out)))
}

fn json_array_contains(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let docs = per_doc(&a[0], |v| v)?;
    let needle = &a[1];
    let mut out = Vec::with_capacity(docs.len());
    for (i, d) in docs.into_iter().enumerate() {
        let Some(Value::Array(x)) = d else {
            out.push(None);
            continue;
        };
        if needle.is_null(i) {
            out.push(None);
            continue;
        }
        let n = datafusion::common::ScalarValue::try_from_array(needle, i)?;
        use datafusion::common::ScalarValue as S;
        // A decimal (`1.5` as written) is looked for as the number it is.
        let n = match n {
            S::Decimal128(..) => n.cast_to(&arrow::datatypes::DataType::Float64)?,
            n => n,
        };
        let hit = x.iter().any(|e| match (&n, e) {
            (S::Boolean(Some(b)), Value::Bool(c)) => b == c,
            (S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)), Value::String(t)) => {
                s == t
            }
            (S::Int64(Some(v)), Value::Number(m)) => m.as_i64() == Some(*v),
            (S::Int32(Some(v)), Value::Number(m)) => m.as_i64() == Some(i64::from(*v)),
            (S::Float64(Some(v)), Value::Number(m)) => m.as_f64() == Some(*v),
            _ => false,
        });
        out.push(Some(hit));
    }
    Ok(arc(BooleanArray::from(out)))
}

fn is_json_scalar(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        out.push(match v {
            None => None,
            Some(t) => match serde_json::from_str::<Value>(t) {
                Ok(j) => Some(!matches!(j, Value::Array(_) | Value::Object(_))),
                Err(e) => call.row_err(format!("{t:?} is not JSON: {e}"))?,
            },
        });
    }
    Ok(arc(BooleanArray::from(out)))
}

fn one(t: DataType) -> impl Fn(&str, &[DataType]) -> Result<DataType> {
    move |n, types| {
        arity(n, types, &[1])?;
        Ok(t.clone())
    }
}

fn two(t: DataType) -> impl Fn(&str, &[DataType]) -> Result<DataType> {
    move |n, types| {
        arity(n, types, &[2])?;
        Ok(t.clone())
    }
}

/// The functions above.
pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new("json_parse", |n, t| one(JSON)(n, t), json_parse),
        Fun::new("json_format", |n, t| one(DataType::Utf8)(n, t), json_parse),
        Fun::new("json_extract", |n, t| two(JSON)(n, t), json_extract),
        Fun::new("json_size", |n, t| two(DataType::Int64)(n, t), json_size),
        Fun::new(
            "json_array_length",
            |n, t| one(DataType::Int64)(n, t),
            json_array_length,
        ),
        Fun::new("json_array_get", |n, t| two(JSON)(n, t), json_array_get),
        Fun::new(
            "json_array_contains",
            |n, t| two(DataType::Boolean)(n, t),
            json_array_contains,
        ),
        Fun::new(
            "is_json_scalar",
            |n, t| one(DataType::Boolean)(n, t),
            is_json_scalar,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{at, canonical, value_at};
    use crate::trino::parse_json_path;

    /// On valid documents, the key scan finds what parsing the whole document finds (but for a
    /// repeated key, where it takes the first as Athena does, and the whole parse the last).
    #[test]
    fn one_key_paths_agree_with_the_whole_document() {
        let docs = [
            r#"{"a": 1, "b": {"y": [1, {"z": null}], "x": "t"}, "c": "q\"r", "d": -2.5e3}"#,
            r#"  {"b":[] , "a" : true}  "#,
            r#"{"a\u0062": 1, "ab": 2}"#,
            r#"{"n": null, "e": {}, "s": "\u00e9\\"}"#,
            r#"[{"a": 1}]"#,
            r#""a""#,
            r#"{}"#,
        ];
        for doc in docs {
            let whole: Value = serde_json::from_str(doc).unwrap();
            for key in ["a", "b", "c", "d", "ab", "n", "e", "s", "missing"] {
                let steps = parse_json_path(&format!("$.{key}")).unwrap();
                let want = at(&whole, &steps).map(canonical);
                let got = value_at(doc, &steps, |v| Some(canonical(v)));
                assert_eq!(got, want, "{doc} at {key}");
            }
        }
        let steps = parse_json_path("$.a").unwrap();
        assert_eq!(
            value_at(r#"{"a": 1, "a": 2}"#, &steps, |v| Some(canonical(v))),
            Some("1".to_string())
        );
        // The value found is enough: the rest of the document is not read.
        assert_eq!(
            value_at(r#"{"a": [3], "b": oops"#, &steps, |v| Some(canonical(v))),
            Some("[3]".to_string())
        );
        assert_eq!(value_at("not json", &steps, |v| Some(canonical(v))), None);
    }
}

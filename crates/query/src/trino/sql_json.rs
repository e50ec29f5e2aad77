//! Athena's SQL/JSON path functions, over JSON text or `varchar`:
//!
//! - `json_exists(json, path)`: whether the path finds anything (false on an error);
//! - `json_value(json, path)`: the one scalar the path finds, as `varchar` (NULL when it finds
//!   nothing, several items, an object or an array, or JSON `null`, and on an error);
//! - `json_query(json, path)`: the one item the path finds, as JSON text (NULL when it finds
//!   nothing or several items, and on an error).
//!
//! A path starts with its mode, `lax` or `strict`, then `$` and accessors: `.key`, `."key"`,
//! `.*`, `[*]` and subscripts `[0]`, `[1 to 3]`, `[last]`, `[last - 1]`, `[0, 2]` (0-based). In
//! lax mode an accessor on the wrong kind of item finds nothing (a member of an array is looked
//! up in each of its elements, a subscript of a scalar reads it as a one-element array); in
//! strict mode it is an error. Filters, item methods and variables fail with a clear message.
//! The `RETURNING`, `WRAPPER` and `ON EMPTY`/`ON ERROR` clauses are not parsed: the defaults
//! above are Athena's.

use arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::DataType;
use serde_json::Value;

use super::fun::{Call, Fun, Result, arc, arity, text};
use super::json::canonical;

#[derive(Debug, Clone, PartialEq)]
enum Index {
    At(i64),
    /// `last - n`.
    FromLast(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    AnyMember,
    AnyElement,
    Elements(Vec<(Index, Option<Index>)>),
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    strict: bool,
    steps: Vec<Step>,
}

fn unsupported(what: &str) -> String {
    format!("the JSON path feature {what} is not supported by the local engine yet (Athena has it)")
}

fn parse_index(s: &str) -> std::result::Result<Index, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("last") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(Index::FromLast(0));
        }
        let n = rest
            .strip_prefix('-')
            .and_then(|n| n.trim().parse::<i64>().ok())
            .ok_or_else(|| unsupported(&format!("'{s}'")))?;
        return Ok(Index::FromLast(n));
    }
    s.parse::<i64>()
        .map(Index::At)
        .map_err(|_| unsupported(&format!("'{s}'")))
}

fn parse_path(text: &str) -> std::result::Result<Path, String> {
    let t = text.trim_start();
    let (strict, rest) = if let Some(r) = t.strip_prefix("strict") {
        (true, r)
    } else if let Some(r) = t.strip_prefix("lax") {
        (false, r)
    } else {
        return Err(format!(
            "a JSON path starts with its mode, lax or strict: {text:?}"
        ));
    };
    let rest = rest.trim();
    let Some(mut rest) = rest.strip_prefix('$') else {
        return Err(format!(
            "a JSON path starts with $ after its mode: {text:?}"
        ));
    };
    let mut steps = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(Path { strict, steps });
        }
        if let Some(r) = rest.strip_prefix(".*") {
            steps.push(Step::AnyMember);
            rest = r;
        } else if rest.starts_with("..") {
            return Err(unsupported("'..' (any depth)"));
        } else if let Some(r) = rest.strip_prefix(".\"") {
            let end = r
                .find('"')
                .ok_or_else(|| format!("an unterminated quoted key in the JSON path {text:?}"))?;
            steps.push(Step::Member(r[..end].to_string()));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(r.len());
            if end == 0 {
                return Err(format!(
                    "a key is missing after '.' in the JSON path {text:?}"
                ));
            }
            if r[end..].trim_start().starts_with('(') {
                return Err(unsupported(&format!("the item method {}()", &r[..end])));
            }
            steps.push(Step::Member(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("an unterminated subscript in the JSON path {text:?}"))?;
            let inside = r[..end].trim();
            if inside == "*" {
                steps.push(Step::AnyElement);
            } else {
                let mut subs = Vec::new();
                for part in inside.split(',') {
                    let sub = match part.split_once(" to ") {
                        Some((a, b)) => (parse_index(a)?, Some(parse_index(b)?)),
                        None => (parse_index(part)?, None),
                    };
                    subs.push(sub);
                }
                steps.push(Step::Elements(subs));
            }
            rest = &r[end + 1..];
        } else if rest.starts_with('?') {
            return Err(unsupported("'?(…)' (a filter)"));
        } else {
            return Err(unsupported(&format!("{rest:?}")));
        }
    }
}

/// A structural error, which strict mode reports and lax mode never meets.
struct Structural;

fn resolve(i: &Index, len: usize) -> i64 {
    match i {
        Index::At(n) => *n,
        Index::FromLast(n) => len as i64 - 1 - n,
    }
}

fn eval<'a>(doc: &'a Value, path: &Path) -> std::result::Result<Vec<&'a Value>, Structural> {
    let mut items = vec![doc];
    for step in &path.steps {
        let mut next = Vec::new();
        for item in items {
            match (step, item) {
                (Step::Member(k), Value::Object(m)) => match m.get(k) {
                    Some(v) => next.push(v),
                    None if path.strict => return Err(Structural),
                    None => {}
                },
                (Step::AnyMember, Value::Object(m)) => next.extend(m.values()),
                (Step::Member(_) | Step::AnyMember, Value::Array(a)) if !path.strict => {
                    for e in a {
                        match (step, e) {
                            (Step::Member(k), Value::Object(m)) => next.extend(m.get(k)),
                            (Step::AnyMember, Value::Object(m)) => next.extend(m.values()),
                            _ => {}
                        }
                    }
                }
                (Step::AnyElement, Value::Array(a)) => next.extend(a.iter()),
                (Step::Elements(subs), Value::Array(a)) => {
                    elements(a.iter().collect(), subs, path.strict, &mut next)?
                }
                (Step::AnyElement, v) if !path.strict => next.push(v),
                (Step::Elements(subs), v) if !path.strict => {
                    elements(vec![v], subs, false, &mut next)?
                }
                _ if path.strict => return Err(Structural),
                _ => {}
            }
        }
        items = next;
    }
    Ok(items)
}

fn elements<'a>(
    a: Vec<&'a Value>,
    subs: &[(Index, Option<Index>)],
    strict: bool,
    out: &mut Vec<&'a Value>,
) -> std::result::Result<(), Structural> {
    let len = a.len();
    for (from, to) in subs {
        let from = resolve(from, len);
        let to = to.as_ref().map_or(from, |t| resolve(t, len));
        if strict && (from < 0 || to >= len as i64 || from > to) {
            return Err(Structural);
        }
        for i in from.max(0)..=to.min(len as i64 - 1) {
            out.push(a[i as usize]);
        }
    }
    Ok(())
}

/// What the path finds in a row, or the error the function's default turns into its answer.
type Found<'a> = std::result::Result<Vec<&'a Value>, Structural>;

/// Each row's items at its path, None for a NULL argument.
fn each_row(call: &Call, a: &[ArrayRef], mut f: impl FnMut(Option<Found>)) -> Result<()> {
    let docs = text(&a[0])?;
    let paths = text(&a[1])?;
    let mut parsed: Option<(String, Path)> = None;
    for i in 0..docs.len() {
        if docs.is_null(i) || paths.is_null(i) {
            f(None);
            continue;
        }
        let p = paths.value(i);
        if parsed.as_ref().is_none_or(|(t, _)| t != p) {
            match parse_path(p) {
                Ok(path) => parsed = Some((p.to_string(), path)),
                Err(e) => {
                    // A path that does not parse is the query's error, not the row's.
                    return Err(datafusion::common::DataFusionError::Execution(format!(
                        "{}: {e}",
                        call.name
                    )));
                }
            }
        }
        let path = &parsed.as_ref().expect("parsed above").1;
        match serde_json::from_str::<Value>(docs.value(i)) {
            Ok(doc) => f(Some(eval(&doc, path))),
            Err(_) => f(Some(Err(Structural))),
        }
    }
    Ok(())
}

fn json_exists(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let mut out = Vec::new();
    each_row(call, a, |r| {
        out.push(r.map(|r| r.is_ok_and(|items| !items.is_empty())));
    })?;
    Ok(arc(BooleanArray::from(out)))
}

fn json_value(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let mut out: Vec<Option<String>> = Vec::new();
    each_row(call, a, |r| {
        out.push(match r.as_ref().map(|r| r.as_deref()) {
            Some(Ok([Value::String(s)])) => Some(s.clone()),
            Some(Ok([Value::Number(n)])) => Some(n.to_string()),
            Some(Ok([Value::Bool(b)])) => Some(b.to_string()),
            _ => None,
        })
    })?;
    Ok(arc(StringArray::from(out)))
}

fn json_query(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let mut out: Vec<Option<String>> = Vec::new();
    each_row(call, a, |r| {
        out.push(match r.as_ref().map(|r| r.as_deref()) {
            Some(Ok([v])) => Some(canonical(v)),
            _ => None,
        })
    })?;
    Ok(arc(StringArray::from(out)))
}

pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new(
            "json_exists",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Boolean)
            },
            json_exists,
        ),
        Fun::new(
            "json_value",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Utf8)
            },
            json_value,
        ),
        Fun::new(
            "json_query",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Utf8)
            },
            json_query,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(doc: &str, path: &str) -> std::result::Result<Vec<String>, ()> {
        let doc: Value = serde_json::from_str(doc).unwrap();
        let path = parse_path(path).unwrap();
        eval(&doc, &path)
            .map(|v| v.into_iter().map(canonical).collect())
            .map_err(|_| ())
    }

    #[test]
    fn lax_and_strict_paths() {
        let arr = r#"["a","b","c"]"#;
        assert_eq!(run(arr, "lax $[1]"), Ok(vec!["\"b\"".into()]));
        assert_eq!(run(arr, "lax $[2 to 100]"), Ok(vec!["\"c\"".into()]));
        assert_eq!(run(arr, "strict $[100]"), Err(()));
        assert_eq!(run(arr, "lax $[last]"), Ok(vec!["\"c\"".into()]));
        assert_eq!(
            run(arr, "lax $[last - 1, 0]"),
            Ok(vec!["\"b\"".into(), "\"a\"".into()])
        );
        let obj = r#"{"a":[{"b":1},{"b":2},{"c":3}],"d":"x"}"#;
        assert_eq!(run(obj, "lax $.a.b"), Ok(vec!["1".into(), "2".into()]));
        assert_eq!(run(obj, "strict $.a.b"), Err(()));
        assert_eq!(run(obj, "strict $.a[*].c"), Err(()));
        assert_eq!(run(obj, "lax $.missing"), Ok(vec![]));
        assert_eq!(run(obj, "strict $.missing"), Err(()));
        assert_eq!(run(obj, "lax $.d[0]"), Ok(vec!["\"x\"".into()]));
        assert_eq!(run(obj, r#"lax $."d""#), Ok(vec!["\"x\"".into()]));
        assert!(parse_path("$.a").is_err());
        assert!(
            parse_path("lax $.a ? (@ > 1)")
                .unwrap_err()
                .contains("filter")
        );
        assert!(parse_path("lax $.a.size()").unwrap_err().contains("size"));
    }
}

//! Athena's string, regular expression and URL functions that DataFusion lacks or answers
//! differently: `split`, `regexp_extract`, `regexp_extract_all`, `regexp_replace` (every match,
//! `$1` references), `regexp_like` (a match anywhere), `regexp_count`, `regexp_position`,
//! `regexp_split`, `format` (Java's format strings), `url_extract_*`, `url_encode`,
//! `url_decode`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, ListBuilder, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use datafusion::common::DataFusionError;
use regex::Regex;

use super::fun::{Call, Fun, Result, arc, arity, text};

fn list_of_varchar() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// A compiled pattern, reused while consecutive rows share it.
pub(super) struct Patterns {
    last: Option<(String, Regex)>,
}

impl Patterns {
    pub(super) fn new() -> Self {
        Self { last: None }
    }
    pub(super) fn get(&mut self, p: &str) -> std::result::Result<&Regex, String> {
        if self.last.as_ref().is_none_or(|(k, _)| k != p) {
            let r = Regex::new(p).map_err(|e| format!("invalid regular expression {p:?}: {e}"))?;
            self.last = Some((p.to_string(), r));
        }
        Ok(&self.last.as_ref().expect("compiled").1)
    }
}

fn group_arg(a: &[ArrayRef], i: usize) -> Result<Option<Int64Array>> {
    a.get(i)
        .map(|g| {
            let g = arrow::compute::cast(g, &DataType::Int64)?;
            Ok(g.as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64")
                .clone())
        })
        .transpose()
}

fn check_group(call: &Call, re: &Regex, g: i64) -> Result<Option<usize>> {
    if g < 0 || g as usize >= re.captures_len() {
        return call.row_err(format!(
            "pattern has {} groups, cannot access group {g}",
            re.captures_len() - 1
        ));
    }
    Ok(Some(g as usize))
}

fn regexp_extract(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let groups = group_arg(a, 2)?;
    let mut cache = Patterns::new();
    let mut out = StringBuilder::new();
    // Capture locations belong to the pattern they were made for.
    let mut locations: Option<(String, regex::CaptureLocations)> = None;
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) || groups.as_ref().is_some_and(|g| g.is_null(i)) {
            out.append_null();
            continue;
        }
        let re = match cache.get(p.value(i)) {
            Ok(r) => r,
            Err(e) => {
                call.row_err::<()>(e)?;
                out.append_null();
                continue;
            }
        };
        let Some(g) = check_group(call, re, groups.as_ref().map_or(0, |g| g.value(i)))? else {
            out.append_null();
            continue;
        };
        let text = s.value(i);
        // The whole match needs no capture groups; a group reuses one set of locations.
        let found = if g == 0 {
            re.find(text).map(|m| (m.start(), m.end()))
        } else {
            let pattern = p.value(i);
            let (_, locs) = match &mut locations {
                Some(l) if l.0 == pattern => l,
                slot => slot.insert((pattern.to_string(), re.capture_locations())),
            };
            re.captures_read(locs, text).and_then(|_| locs.get(g))
        };
        match found {
            Some((from, to)) => out.append_value(&text[from..to]),
            None => out.append_null(),
        }
    }
    Ok(arc(out.finish()))
}

fn regexp_extract_all(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let groups = group_arg(a, 2)?;
    let mut cache = Patterns::new();
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) || groups.as_ref().is_some_and(|g| g.is_null(i)) {
            out.append_null();
            continue;
        }
        let re = match cache.get(p.value(i)) {
            Ok(r) => r,
            Err(e) => {
                call.row_err::<()>(e)?;
                out.append_null();
                continue;
            }
        };
        let Some(g) = check_group(call, re, groups.as_ref().map_or(0, |g| g.value(i)))? else {
            out.append_null();
            continue;
        };
        for c in re.captures_iter(s.value(i)) {
            match c.get(g) {
                Some(m) => out.values().append_value(m.as_str()),
                None => out.values().append_null(),
            }
        }
        out.append(true);
    }
    Ok(arc(out.finish()))
}

fn regexp_like(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let mut cache = Patterns::new();
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) {
            out.push(None);
            continue;
        }
        match cache.get(p.value(i)) {
            Ok(re) => out.push(Some(re.is_match(s.value(i)))),
            Err(e) => out.push(call.row_err(e)?),
        }
    }
    Ok(arc(BooleanArray::from(out)))
}

/// `regexp_like(x, p)` with a pattern that is text to find, at the start (`'^/checkout/'`) or
/// anywhere (`'iPhone'`), as `x LIKE 'text%'` or `x LIKE '%text%'`: a match found without
/// running a pattern, and one that a scan can skip row groups with (by their least and greatest
/// `x`) or run once per distinct value. A pattern with anything else (a class, a repetition, a
/// `$`, whose Java reading also matches before a final line break, a flag) stays a pattern.
pub(super) fn regexp_like_as_like(
    args: &[datafusion::logical_expr::Expr],
    schema: &datafusion::common::DFSchema,
) -> Option<datafusion::logical_expr::Expr> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{Expr, ExprSchemable, Like};
    let [x, Expr::Literal(pattern, _)] = args else {
        return None;
    };
    let (ScalarValue::Utf8(Some(pattern))
    | ScalarValue::Utf8View(Some(pattern))
    | ScalarValue::LargeUtf8(Some(pattern))) = pattern
    else {
        return None;
    };
    if !matches!(
        x.get_type(schema).ok()?,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    ) {
        return None;
    }
    let (anchored, body) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern.as_str()),
    };
    let mut text = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                // An escaped punctuation mark is itself; `\d`, `\b`, `\Q` and the like are not.
                Some(e) if e.is_ascii_punctuation() => text.push(e),
                _ => return None,
            },
            '.' | '^' | '$' | '|' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}' => {
                return None;
            }
            c => text.push(c),
        }
    }
    if text.is_empty() {
        return None;
    }
    let mut like = String::with_capacity(text.len() + 2);
    if !anchored {
        like.push('%');
    }
    let mut escaped = false;
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            like.push('\\');
            escaped = true;
        }
        like.push(c);
    }
    like.push('%');
    Some(Expr::Like(Like::new(
        false,
        Box::new(x.clone()),
        Box::new(Expr::Literal(ScalarValue::Utf8(Some(like)), None)),
        escaped.then_some('\\'),
        false,
    )))
}

fn regexp_count(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let mut cache = Patterns::new();
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) {
            out.push(None);
            continue;
        }
        match cache.get(p.value(i)) {
            Ok(re) => out.push(Some(re.find_iter(s.value(i)).count() as i64)),
            Err(e) => out.push(call.row_err(e)?),
        }
    }
    Ok(arc(Int64Array::from(out)))
}

/// `regexp_position(s, pattern[, start[, occurrence]])`: the 1-based character position of
/// a match, or -1.
fn regexp_position(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let start = group_arg(a, 2)?;
    let nth = group_arg(a, 3)?;
    let mut cache = Patterns::new();
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) {
            out.push(None);
            continue;
        }
        let re = match cache.get(p.value(i)) {
            Ok(r) => r,
            Err(e) => {
                out.push(call.row_err(e)?);
                continue;
            }
        };
        let from = start.as_ref().map_or(1, |x| x.value(i));
        let n = nth.as_ref().map_or(1, |x| x.value(i));
        if from < 1 || n < 1 {
            out.push(call.row_err("start and occurrence must be positive")?);
            continue;
        }
        let v = s.value(i);
        let byte = v.char_indices().nth(from as usize - 1).map(|(b, _)| b);
        let Some(byte) = byte else {
            out.push(Some(-1));
            continue;
        };
        let hit = re.find_iter(&v[byte..]).nth(n as usize - 1);
        out.push(Some(match hit {
            Some(m) => (v[..byte + m.start()].chars().count() + 1) as i64,
            None => -1,
        }));
    }
    Ok(arc(Int64Array::from(out)))
}

fn regexp_split(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let mut cache = Patterns::new();
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) {
            out.append_null();
            continue;
        }
        match cache.get(p.value(i)) {
            Ok(re) => {
                for part in re.split(s.value(i)) {
                    out.values().append_value(part);
                }
                out.append(true);
            }
            Err(e) => {
                call.row_err::<()>(e)?;
                out.append_null();
            }
        }
    }
    Ok(arc(out.finish()))
}

/// A Java replacement (`$1`, `${name}`, `\$`) as the regex crate writes it (`${1}`, `$$`).
fn replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len() + 4);
    let cs: Vec<char> = r.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '\\' if i + 1 < cs.len() => {
                if cs[i + 1] == '$' {
                    out.push_str("$$");
                } else {
                    out.push(cs[i + 1]);
                }
                i += 2;
            }
            '$' if cs.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let mut j = i + 1;
                while j < cs.len() && cs[j].is_ascii_digit() {
                    j += 1;
                }
                out.push_str("${");
                out.extend(&cs[i + 1..j]);
                out.push('}');
                i = j;
            }
            '$' if cs.get(i + 1) == Some(&'{') => {
                let end = cs[i..].iter().position(|&c| c == '}').map(|p| i + p);
                match end {
                    Some(e) => {
                        out.extend(&cs[i..=e]);
                        i = e + 1;
                    }
                    None => {
                        out.push_str("$$");
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn regexp_replace(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let p = text(&a[1])?;
    let r = a.get(2).map(text).transpose()?;
    let mut cache = Patterns::new();
    let mut out = StringBuilder::new();
    for i in 0..s.len() {
        if s.is_null(i) || p.is_null(i) || r.as_ref().is_some_and(|r| r.is_null(i)) {
            out.append_null();
            continue;
        }
        let re = match cache.get(p.value(i)) {
            Ok(re) => re,
            Err(e) => {
                call.row_err::<()>(e)?;
                out.append_null();
                continue;
            }
        };
        let with = r
            .as_ref()
            .map_or(String::new(), |r| replacement(r.value(i)));
        out.append_value(re.replace_all(s.value(i), with.as_str()));
    }
    Ok(arc(out.finish()))
}

/// `split(s, delimiter[, limit])`: the parts between delimiters; with a limit, the last part
/// holds the rest.
fn split(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let d = text(&a[1])?;
    let limit = group_arg(a, 2)?;
    let mut out = ListBuilder::new(StringBuilder::new());
    for i in 0..s.len() {
        if s.is_null(i) || d.is_null(i) || limit.as_ref().is_some_and(|l| l.is_null(i)) {
            out.append_null();
            continue;
        }
        let (v, delim) = (s.value(i), d.value(i));
        if delim.is_empty() {
            call.row_err::<()>("the delimiter is empty")?;
            out.append_null();
            continue;
        }
        match limit.as_ref().map(|l| l.value(i)) {
            Some(n) if n < 1 => {
                call.row_err::<()>("the limit must be positive")?;
                out.append_null();
                continue;
            }
            Some(n) => v
                .splitn(n as usize, delim)
                .for_each(|p| out.values().append_value(p)),
            None => v.split(delim).for_each(|p| out.values().append_value(p)),
        }
        out.append(true);
    }
    Ok(arc(out.finish()))
}

/// The parts of a URI (RFC 3986, as `java.net.URI` splits it), or None when it is not one.
#[derive(Debug, Default, PartialEq)]
pub struct Url<'a> {
    pub scheme: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<i64>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub fragment: Option<&'a str>,
}

pub fn parse_url(u: &str) -> Option<Url<'_>> {
    // What java.net.URI refuses.
    if u.chars().any(|c| {
        c.is_whitespace() || matches!(c, '"' | '<' | '>' | '^' | '`' | '{' | '}' | '|' | '\\')
    }) {
        return None;
    }
    let mut out = Url::default();
    let mut rest = u;
    if let Some(h) = rest.find('#') {
        out.fragment = Some(&rest[h + 1..]);
        rest = &rest[..h];
    }
    if let Some(colon) = rest.find(':') {
        let scheme = &rest[..colon];
        if !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            out.scheme = Some(scheme);
            rest = &rest[colon + 1..];
        }
    }
    if let Some(q) = rest.find('?') {
        out.query = Some(&rest[q + 1..]);
        rest = &rest[..q];
    }
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find('/').unwrap_or(r.len());
        let authority = &r[..end];
        out.path = &r[end..];
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let close = h.find(']')?;
            let after = &h[close + 1..];
            (&hostport[..close + 2], after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if let Some(p) = port.filter(|p| !p.is_empty()) {
            out.port = Some(p.parse().ok()?);
        }
        out.host = (!host.is_empty()).then_some(host);
    } else {
        out.path = rest;
    }
    Some(out)
}

fn url_part(a: &[ArrayRef], f: impl Fn(&Url) -> Option<String>) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let out: Vec<Option<String>> = s
        .iter()
        .map(|v| v.and_then(parse_url).and_then(|u| f(&u)))
        .collect();
    Ok(arc(StringArray::from(out)))
}

fn url_parameter(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let names = text(&a[1])?;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || names.is_null(i) {
            out.push(None);
            continue;
        }
        let name = names.value(i);
        let v = parse_url(s.value(i)).and_then(|u| {
            u.query?.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name).then(|| v.to_string())
            })
        });
        out.push(v);
    }
    Ok(arc(StringArray::from(out)))
}

/// `url_encode`: `application/x-www-form-urlencoded`, as Java's `URLEncoder` writes it.
fn url_encode(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let out: Vec<Option<String>> = s
        .iter()
        .map(|v| {
            v.map(|v| {
                let mut o = String::with_capacity(v.len());
                for b in v.bytes() {
                    match b {
                        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                            o.push(b as char)
                        }
                        b' ' => o.push('+'),
                        _ => o.push_str(&format!("%{b:02X}")),
                    }
                }
                o
            })
        })
        .collect();
    Ok(arc(StringArray::from(out)))
}

fn url_decode(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        let b = v.as_bytes();
        let mut bytes = Vec::with_capacity(b.len());
        let mut i = 0;
        let mut bad = false;
        while i < b.len() {
            match b[i] {
                b'+' => bytes.push(b' '),
                b'%' => {
                    match b
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(x) => bytes.push(x),
                        None => {
                            bad = true;
                            break;
                        }
                    }
                    i += 2;
                }
                c => bytes.push(c),
            }
            i += 1;
        }
        if bad {
            out.push(call.row_err(format!("{v:?} has an incomplete % escape"))?);
        } else {
            out.push(Some(String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok(arc(StringArray::from(out)))
}

/// One argument of `format`, as Java's formatter sees it.
fn format_one(
    spec: &Spec,
    v: &datafusion::common::ScalarValue,
) -> std::result::Result<String, String> {
    use datafusion::common::ScalarValue as S;
    let is_null = v.is_null();
    let body = match spec.conv {
        's' | 'S' => {
            let s = if is_null {
                "null".to_string()
            } else {
                super::render::value(v)
            };
            let s = match spec.precision {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            };
            if spec.conv == 'S' {
                s.to_uppercase()
            } else {
                s
            }
        }
        'b' | 'B' => match v {
            S::Boolean(Some(b)) => b.to_string(),
            _ => (!is_null).to_string(),
        },
        'd' => {
            if is_null {
                "null".into()
            } else {
                let n = match v {
                    S::Int8(Some(x)) => i128::from(*x),
                    S::Int16(Some(x)) => i128::from(*x),
                    S::Int32(Some(x)) => i128::from(*x),
                    S::Int64(Some(x)) => i128::from(*x),
                    S::UInt8(Some(x)) => i128::from(*x),
                    S::UInt16(Some(x)) => i128::from(*x),
                    S::UInt32(Some(x)) => i128::from(*x),
                    S::UInt64(Some(x)) => i128::from(*x),
                    other => return Err(format!("%d needs an integer, not {other}")),
                };
                let mut s = n.abs().to_string();
                if spec.flags.contains(',') {
                    s = group_thousands(&s);
                }
                sign(n < 0, &spec.flags) + &s
            }
        }
        'x' | 'X' => match v {
            S::Int8(Some(_)) | S::Int16(Some(_)) | S::Int32(Some(_)) | S::Int64(Some(_)) => {
                let n = match v {
                    S::Int64(Some(x)) => *x,
                    S::Int32(Some(x)) => i64::from(*x),
                    S::Int16(Some(x)) => i64::from(*x),
                    S::Int8(Some(x)) => i64::from(*x),
                    _ => 0,
                };
                let s = format!("{n:x}");
                if spec.conv == 'X' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            _ if is_null => "null".into(),
            other => return Err(format!("%x needs an integer, not {other}")),
        },
        'f' | 'e' | 'E' => {
            if is_null {
                "null".into()
            } else {
                let x = match v.cast_to(&DataType::Float64) {
                    Ok(S::Float64(Some(x))) => x,
                    _ => return Err(format!("%{} needs a number, not {v}", spec.conv)),
                };
                let p = spec.precision.unwrap_or(6);
                let s = match spec.conv {
                    'f' => format!("{:.p$}", x.abs()),
                    _ => {
                        let s = format!("{:.p$e}", x.abs());
                        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                        let e: i32 = e.parse().unwrap_or(0);
                        let s = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
                        if spec.conv == 'E' {
                            s.to_uppercase()
                        } else {
                            s
                        }
                    }
                };
                let s = if spec.flags.contains(',') && spec.conv == 'f' {
                    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
                    let g = group_thousands(int);
                    if frac.is_empty() {
                        g
                    } else {
                        format!("{g}.{frac}")
                    }
                } else {
                    s
                };
                sign(x < 0.0, &spec.flags) + &s
            }
        }
        'c' => match v {
            S::Utf8(Some(s)) if s.chars().count() == 1 => s.clone(),
            S::Int32(Some(c)) => char::from_u32(*c as u32)
                .map(String::from)
                .unwrap_or_default(),
            S::Int64(Some(c)) => char::from_u32(*c as u32)
                .map(String::from)
                .unwrap_or_default(),
            _ if is_null => "null".into(),
            other => return Err(format!("%c needs a character, not {other}")),
        },
        other => return Err(format!("the conversion %{other} is not supported")),
    };
    Ok(pad(body, spec))
}

fn sign(neg: bool, flags: &str) -> String {
    if neg {
        "-".into()
    } else if flags.contains('+') {
        "+".into()
    } else if flags.contains(' ') {
        " ".into()
    } else {
        String::new()
    }
}

fn group_thousands(digits: &str) -> String {
    let n = digits.len();
    let mut s = String::with_capacity(n + n / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

fn pad(s: String, spec: &Spec) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.flags.contains('-') {
        s + &" ".repeat(fill)
    } else if spec.flags.contains('0') && matches!(spec.conv, 'd' | 'f' | 'x' | 'X' | 'e' | 'E') {
        let (sign, digits) = match s.strip_prefix(['-', '+', ' ']) {
            Some(d) => (&s[..1], d),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        " ".repeat(fill) + &s
    }
}

#[derive(Debug, Default)]
struct Spec {
    index: Option<usize>,
    flags: String,
    width: Option<usize>,
    precision: Option<usize>,
    conv: char,
}

enum Piece {
    Lit(String),
    Arg(Spec),
}

/// Parses Java's `%[index$][flags][width][.precision]conversion`.
fn parse_format(f: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let cs: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] != '%' {
            lit.push(cs[i]);
            i += 1;
            continue;
        }
        i += 1;
        let start = i;
        let mut j = i;
        while j < cs.len() && cs[j].is_ascii_digit() {
            j += 1;
        }
        let mut spec = Spec::default();
        if j < cs.len() && cs[j] == '$' && j > start {
            spec.index = Some(
                cs[start..j]
                    .iter()
                    .collect::<String>()
                    .parse()
                    .map_err(|_| "bad index")?,
            );
            i = j + 1;
        }
        while i < cs.len() && "-#+ 0,(".contains(cs[i]) {
            spec.flags.push(cs[i]);
            i += 1;
        }
        let w0 = i;
        while i < cs.len() && cs[i].is_ascii_digit() {
            i += 1;
        }
        if i > w0 {
            spec.width = cs[w0..i].iter().collect::<String>().parse().ok();
        }
        if i < cs.len() && cs[i] == '.' {
            let p0 = i + 1;
            i += 1;
            while i < cs.len() && cs[i].is_ascii_digit() {
                i += 1;
            }
            spec.precision = cs[p0..i].iter().collect::<String>().parse().ok();
        }
        let Some(&conv) = cs.get(i) else {
            return Err(format!("format {f:?} ends inside a conversion"));
        };
        i += 1;
        match conv {
            '%' => lit.push('%'),
            'n' => lit.push('\n'),
            _ => {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                spec.conv = conv;
                pieces.push(Piece::Arg(spec));
            }
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// `format(fmt, args…)`: Java's `String.format` (the common conversions).
fn format(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let fmts = text(&a[0])?;
    let mut out = Vec::with_capacity(fmts.len());
    for i in 0..fmts.len() {
        if fmts.is_null(i) {
            out.push(None);
            continue;
        }
        let pieces = match parse_format(fmts.value(i)) {
            Ok(p) => p,
            Err(e) => {
                out.push(call.row_err(e)?);
                continue;
            }
        };
        let mut s = String::new();
        let mut next = 0;
        let mut failed = None;
        for p in &pieces {
            match p {
                Piece::Lit(l) => s.push_str(l),
                Piece::Arg(spec) => {
                    let k = match spec.index {
                        Some(k) => k,
                        None => {
                            next += 1;
                            next
                        }
                    };
                    let Some(arg) = a.get(k) else {
                        failed = Some(format!("format needs argument {k}, which is missing"));
                        break;
                    };
                    let v = datafusion::common::ScalarValue::try_from_array(arg, i)?;
                    match format_one(spec, &v) {
                        Ok(x) => s.push_str(&x),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        match failed {
            Some(e) => out.push(call.row_err(e)?),
            None => out.push(Some(s)),
        }
    }
    Ok(arc(StringArray::from(out)))
}

fn ret(t: DataType, allowed: &'static [usize]) -> impl Fn(&str, &[DataType]) -> Result<DataType> {
    move |n, types| {
        arity(n, types, allowed)?;
        Ok(t.clone())
    }
}

macro_rules! fixed {
    ($t:expr, $($n:expr),+) => {
        |n, types| {
            ret($t, &[$($n),+])(n, types)
        }
    };
}

/// The functions above.
pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new("split", fixed!(list_of_varchar(), 2, 3), split),
        Fun::new(
            "regexp_extract",
            fixed!(DataType::Utf8, 2, 3),
            regexp_extract,
        ),
        Fun::new(
            "regexp_extract_all",
            fixed!(list_of_varchar(), 2, 3),
            regexp_extract_all,
        ),
        Fun::new("regexp_like", fixed!(DataType::Boolean, 2), regexp_like),
        Fun::new(
            "regexp_replace",
            fixed!(DataType::Utf8, 2, 3),
            regexp_replace,
        ),
        Fun::new("regexp_count", fixed!(DataType::Int64, 2), regexp_count),
        Fun::new(
            "regexp_position",
            fixed!(DataType::Int64, 2, 3, 4),
            regexp_position,
        ),
        Fun::new("regexp_split", fixed!(list_of_varchar(), 2), regexp_split),
        Fun::new(
            "format",
            |n, t| {
                if t.is_empty() {
                    return Err(DataFusionError::Plan(format!("{n} needs a format")));
                }
                Ok(DataType::Utf8)
            },
            format,
        ),
        Fun::new("url_extract_host", fixed!(DataType::Utf8, 1), |_, a| {
            url_part(a, |u| Some(u.host.unwrap_or_default().to_string()))
        }),
        Fun::new("url_extract_path", fixed!(DataType::Utf8, 1), |_, a| {
            url_part(a, |u| Some(u.path.to_string()))
        }),
        Fun::new("url_extract_protocol", fixed!(DataType::Utf8, 1), |_, a| {
            url_part(a, |u| Some(u.scheme.unwrap_or_default().to_string()))
        }),
        Fun::new("url_extract_query", fixed!(DataType::Utf8, 1), |_, a| {
            url_part(a, |u| Some(u.query.unwrap_or_default().to_string()))
        }),
        Fun::new("url_extract_fragment", fixed!(DataType::Utf8, 1), |_, a| {
            url_part(a, |u| Some(u.fragment.unwrap_or_default().to_string()))
        }),
        Fun::new("url_extract_port", fixed!(DataType::Int64, 1), |_, a| {
            let s = text(&a[0])?;
            Ok(arc(Int64Array::from(
                s.iter()
                    .map(|v| v.and_then(parse_url).and_then(|u| u.port))
                    .collect::<Vec<_>>(),
            )))
        }),
        Fun::new(
            "url_extract_parameter",
            fixed!(DataType::Utf8, 2),
            url_parameter,
        ),
        Fun::new("url_encode", fixed!(DataType::Utf8, 1), url_encode),
        Fun::new("url_decode", fixed!(DataType::Utf8, 1), url_decode),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern that is text to find runs as a LIKE, with the answers of the pattern; any
    /// other pattern stays one.
    #[tokio::test]
    async fn regexp_like_of_plain_text_is_a_like() {
        let rows = "(VALUES ('a%b'), ('ab'), ('a_b'), ('axb'), ('a\\b'), ('/p/1?x'), ('x/p/1'), \
                    ('a.b'), (CAST(NULL AS varchar))) AS t(s)";
        for (pattern, like) in [
            ("a%", true),
            ("^a_", true),
            ("a\\\\", true),
            ("^/p/1\\?", true),
            ("/p/1", true),
            ("a\\.b", true),
            ("a.b", false),
            ("^ab$", false),
            ("(?i)AB", false),
            ("a[_]", false),
            ("\\d", false),
        ] {
            let sql = format!("SELECT s, regexp_like(s, '{pattern}') FROM {rows}");
            let ctx = crate::session::functions_session().unwrap();
            let plan = crate::session::dataframe(&ctx, &format!("EXPLAIN {sql}"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let text = arrow::util::pretty::pretty_format_batches(&plan)
                .unwrap()
                .to_string();
            assert_eq!(text.contains(" LIKE "), like, "{pattern}: {text}");
            // The same answers as the pattern, run row by row on text that is not a literal.
            let by_pattern =
                format!("SELECT s, regexp_like(s, concat('{pattern}', '')) FROM {rows}");
            assert_eq!(
                crate::trino::csv_rows(&sql).await.unwrap(),
                crate::trino::csv_rows(&by_pattern).await.unwrap(),
                "{pattern}"
            );
        }
    }

    #[test]
    fn urls_split_like_java() {
        let u = parse_url("http://user@example.com:8080/path1/p.php?k1=v1&k2=v2#Ref1").unwrap();
        assert_eq!(u.scheme, Some("http"));
        assert_eq!(u.host, Some("example.com"));
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, "/path1/p.php");
        assert_eq!(u.query, Some("k1=v1&k2=v2"));
        assert_eq!(u.fragment, Some("Ref1"));
        assert_eq!(parse_url("http://example.com").unwrap().path, "");
        assert_eq!(parse_url("not a url"), None);
        assert_eq!(parse_url("http://example.com/^"), None);
    }

    #[test]
    fn java_replacements() {
        assert_eq!(replacement("$1-$2"), "${1}-${2}");
        assert_eq!(replacement("\\$1"), "$$1");
        assert_eq!(replacement("${name}x"), "${name}x");
    }
}

//! String functions DataFusion has under the same name with other answers; Athena's win:
//!
//! - `concat(…)`: NULL when any argument is NULL (DataFusion skips NULLs); on arrays, the arrays
//!   joined.
//! - `substr(s, start[, length])` / `substring`: 1-based, a negative start counts from the end,
//!   a start of 0 or past the end gives `''`; on `varbinary` too.
//! - `split_part(s, delimiter, n)`: NULL past the last part (DataFusion gives `''`).
//! - `strpos(s, sub[, instance])`: the instance-th occurrence, from the end when negative; 0 when
//!   there is none.
//! - `replace(s, search[, with])`: without `with`, removes `search`; an empty `search` inserts
//!   `with` between characters.
//! - `lpad`/`rpad`: an empty pad or a negative size is an error.
//! - `from_utf8(b[, replacement])`, `length` of `varbinary` (bytes), `concat_ws` over an array.
//! - Athena's own: `codepoint(c)` (a one-character string's code point) and
//!   `hamming_distance(a, b)` (characters that differ; strings of different lengths are an error).
//! - `normalize(s[, NFC | NFD | NFKC | NFKD])` (NFC by default), `word_stem(word[, lang])`
//!   (Snowball stemmers; English by default) and `soundex(s)` (American Soundex).
//! - `upper`/`lower`: code point by code point, each by its one-to-one mapping (`upper('straße')`
//!   is `STRAßE`, `lower('İ')` is `i`, a final `Σ` is `σ`); DataFusion applies Unicode's full,
//!   context-sensitive mappings (`STRASSE`, `i̇`, `ς`). ASCII columns are changed a byte at a
//!   time.
//! - `trim`/`ltrim`/`rtrim` of one argument remove Java's whitespace (tabs, line breaks, the
//!   Unicode spaces but the no-break ones), where DataFusion removes spaces only; with a second
//!   argument, any of its characters (DataFusion's own trims, but for a table's column without
//!   characters, whose views are moved in here).

use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, Int64Array, StringArray, StringBuilder,
    StringViewArray,
};
use arrow::buffer::{Buffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::fun::{Call, Fun, Result, arc, arity, ints, text};

pub(crate) fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

pub(crate) fn is_list(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..)
    )
}

/// Text of any of arrow's string types.
pub(crate) fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// Whether Athena joins values of these types with `concat` or `||` (arrays aside): all text,
/// or all varbinary (NULL literals fit either). Athena refuses `'a' || 1` and `concat('a', 1)`
/// ("Cannot apply operator"); DataFusion casts the number to text.
fn joinable(types: &[&DataType]) -> bool {
    let known = types.iter().filter(|t| ***t != DataType::Null);
    known.clone().all(|t| is_text(t)) || known.clone().all(|t| is_binary(t))
}

fn cannot_join(types: &[&DataType], how: &str) -> DataFusionError {
    let names: Vec<String> = types.iter().map(|t| super::trino_type(t)).collect();
    DataFusionError::Plan(format!(
        "{how}({}): Athena joins varchar to varchar, varbinary to varbinary, or arrays; cast the \
         others first (CAST(x AS varchar))",
        names.join(", ")
    ))
}

/// Plans `a || b` of text and a value of another kind (`'a' || 1`) as the error Athena gives;
/// any other `||` as DataFusion plans it.
#[derive(Debug)]
pub struct TextConcat;

impl datafusion::logical_expr::planner::ExprPlanner for TextConcat {
    fn plan_binary_op(
        &self,
        expr: datafusion::logical_expr::planner::RawBinaryExpr,
        schema: &datafusion::common::DFSchema,
    ) -> Result<
        datafusion::logical_expr::planner::PlannerResult<
            datafusion::logical_expr::planner::RawBinaryExpr,
        >,
    > {
        use datafusion::logical_expr::ExprSchemable;
        use datafusion::logical_expr::planner::PlannerResult;
        if !matches!(
            expr.op,
            datafusion::sql::sqlparser::ast::BinaryOperator::StringConcat
        ) {
            return Ok(PlannerResult::Original(expr));
        }
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        if is_list(&l) || is_list(&r) || joinable(&[&l, &r]) {
            return Ok(PlannerResult::Original(expr));
        }
        let names = [super::trino_type(&l), super::trino_type(&r)];
        Err(DataFusionError::Plan(format!(
            "Cannot apply operator: {} || {}: Athena joins varchar to varchar, varbinary to \
             varbinary, or arrays; cast the other side first (CAST(x AS varchar))",
            names[0], names[1]
        )))
    }
}

/// The 0-based range Athena's `substr` takes from `len` items.
fn substr_range(len: usize, start: i64, length: Option<i64>) -> Option<(usize, usize)> {
    let len = len as i64;
    let from = if start > 0 {
        start - 1
    } else if start < 0 {
        len + start
    } else {
        return None;
    };
    if from < 0 || from >= len {
        return None;
    }
    let to = match length {
        Some(l) if l < 0 => return None,
        Some(l) => (from + l).min(len),
        None => len,
    };
    Some((from as usize, to as usize))
}

fn substr(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let start = ints(&a[1])?;
    let length = a.get(2).map(ints).transpose()?;
    let null = |i: usize| start.is_null(i) || length.as_ref().is_some_and(|l| l.is_null(i));
    if is_binary(a[0].data_type()) {
        let b = arrow::compute::cast(&a[0], &DataType::Binary)?;
        let b = b.as_binary::<i32>();
        let mut out = BinaryBuilder::new();
        for i in 0..b.len() {
            if b.is_null(i) || null(i) {
                out.append_null();
                continue;
            }
            let v = b.value(i);
            match substr_range(v.len(), start.value(i), length.as_ref().map(|l| l.value(i))) {
                Some((f, t)) => out.append_value(&v[f..t]),
                None => out.append_value([]),
            }
        }
        return Ok(arc(out.finish()));
    }
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = StringBuilder::new();
    for i in 0..s.len() {
        if s.is_null(i) || null(i) {
            out.append_null();
            continue;
        }
        let v = s.value(i);
        let chars = v.chars().count();
        match substr_range(chars, start.value(i), length.as_ref().map(|l| l.value(i))) {
            Some((f, t)) => {
                let piece: String = v.chars().skip(f).take(t - f).collect();
                out.append_value(piece);
            }
            None => out.append_value(""),
        }
    }
    Ok(arc(out.finish()))
}

fn concat(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    if is_binary(a[0].data_type()) {
        let parts: Vec<BinaryArray> = a
            .iter()
            .map(|x| {
                arrow::compute::cast(x, &DataType::Binary).map(|b| b.as_binary::<i32>().clone())
            })
            .collect::<std::result::Result<_, _>>()?;
        let mut out = BinaryBuilder::new();
        for i in 0..a[0].len() {
            if parts.iter().any(|p| p.is_null(i)) {
                out.append_null();
            } else {
                let v: Vec<u8> = parts.iter().flat_map(|p| p.value(i).to_vec()).collect();
                out.append_value(v);
            }
        }
        return Ok(arc(out.finish()));
    }
    let parts: Vec<StringArray> = a.iter().map(text).collect::<Result<_>>()?;
    let mut out = StringBuilder::new();
    for i in 0..a[0].len() {
        if parts.iter().any(|p| p.is_null(i)) {
            out.append_null();
        } else {
            let v: String = parts.iter().map(|p| p.value(i)).collect();
            out.append_value(v);
        }
    }
    Ok(arc(out.finish()))
}

fn split_part(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let d = text(&a[1])?;
    let n = ints(&a[2])?;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || d.is_null(i) || n.is_null(i) {
            out.push(None);
            continue;
        }
        let k = n.value(i);
        if k < 1 {
            out.push(call.row_err("the index must be greater than zero")?);
            continue;
        }
        let (v, delim) = (s.value(i), d.value(i));
        let part = if delim.is_empty() {
            v.chars().nth(k as usize - 1).map(String::from)
        } else {
            v.split(delim).nth(k as usize - 1).map(str::to_string)
        };
        out.push(part);
    }
    Ok(arc(StringArray::from(out)))
}

fn strpos(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let sub = text(&a[1])?;
    let inst = a.get(2).map(ints).transpose()?;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || sub.is_null(i) || inst.as_ref().is_some_and(|x| x.is_null(i)) {
            out.push(None);
            continue;
        }
        let k = inst.as_ref().map_or(1, |x| x.value(i));
        if k == 0 {
            out.push(call.row_err("the instance must not be zero")?);
            continue;
        }
        let (v, needle) = (s.value(i), sub.value(i));
        let hits: Vec<usize> = if needle.is_empty() {
            (0..=v.len()).filter(|b| v.is_char_boundary(*b)).collect()
        } else {
            v.match_indices(needle).map(|(b, _)| b).collect()
        };
        let hit = if k > 0 {
            hits.get(k as usize - 1)
        } else {
            hits.len()
                .checked_sub(k.unsigned_abs() as usize)
                .and_then(|j| hits.get(j))
        };
        out.push(Some(hit.map_or(0, |b| v[..*b].chars().count() as i64 + 1)));
    }
    Ok(arc(Int64Array::from(out)))
}

fn replace(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let from = text(&a[1])?;
    let with = a.get(2).map(text).transpose()?;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || from.is_null(i) || with.as_ref().is_some_and(|w| w.is_null(i)) {
            out.push(None);
            continue;
        }
        let w = with.as_ref().map_or("", |w| w.value(i));
        out.push(Some(s.value(i).replace(from.value(i), w)));
    }
    Ok(arc(StringArray::from(out)))
}

fn pad(call: &Call, a: &[ArrayRef], left: bool) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let size = ints(&a[1])?;
    let fill = text(&a[2])?;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || size.is_null(i) || fill.is_null(i) {
            out.push(None);
            continue;
        }
        let (v, n, f) = (s.value(i), size.value(i), fill.value(i));
        if n < 0 {
            out.push(call.row_err("the target size must be zero or more")?);
            continue;
        }
        if f.is_empty() {
            out.push(call.row_err("the padding string must not be empty")?);
            continue;
        }
        let n = n as usize;
        let len = v.chars().count();
        if len >= n {
            out.push(Some(v.chars().take(n).collect()));
            continue;
        }
        let padding: String = f.chars().cycle().take(n - len).collect();
        out.push(Some(if left {
            padding + v
        } else {
            v.to_string() + &padding
        }));
    }
    Ok(arc(StringArray::from(out)))
}

fn from_utf8(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let b = arrow::compute::cast(&a[0], &DataType::Binary)?;
    let b = b.as_binary::<i32>();
    let repl = a.get(1).map(text).transpose()?;
    let mut out = Vec::with_capacity(b.len());
    for i in 0..b.len() {
        if b.is_null(i) {
            out.push(None);
            continue;
        }
        let r = repl
            .as_ref()
            .map_or("\u{FFFD}", |r| if r.is_null(i) { "" } else { r.value(i) });
        let mut s = String::new();
        for chunk in b.value(i).utf8_chunks() {
            s.push_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                s.push_str(r);
            }
        }
        out.push(Some(s));
    }
    Ok(arc(StringArray::from(out)))
}

fn length(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    if is_binary(a[0].data_type()) {
        let b = arrow::compute::cast(&a[0], &DataType::Binary)?;
        let b = b.as_binary::<i32>();
        return Ok(arc(Int64Array::from(
            b.iter()
                .map(|v| v.map(|v| v.len() as i64))
                .collect::<Vec<_>>(),
        )));
    }
    let s = super::fun::Texts::of(&a[0])?;
    Ok(arc(Int64Array::from(
        s.iter()
            .map(|v| v.map(|v| v.chars().count() as i64))
            .collect::<Vec<_>>(),
    )))
}

fn concat_ws(_: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let sep = text(&a[0])?;
    let mut out = Vec::with_capacity(sep.len());
    // One array argument, or strings.
    let lists = a.len() == 2 && is_list(a[1].data_type());
    let parts: Vec<StringArray> = if lists {
        vec![]
    } else {
        a[1..].iter().map(text).collect::<Result<_>>()?
    };
    for i in 0..sep.len() {
        if sep.is_null(i) {
            out.push(None);
            continue;
        }
        let items: Vec<String> = if lists {
            let l = arrow::compute::cast(
                &a[1],
                &DataType::List(Arc::new(arrow::datatypes::Field::new_list_field(
                    DataType::Utf8,
                    true,
                ))),
            )?;
            let l = l.as_list::<i32>();
            if l.is_null(i) {
                out.push(None);
                continue;
            }
            let v = l.value(i);
            let v = v.as_string::<i32>();
            v.iter().flatten().map(str::to_string).collect()
        } else {
            parts
                .iter()
                .filter(|p| !p.is_null(i))
                .map(|p| p.value(i).to_string())
                .collect()
        };
        out.push(Some(items.join(sep.value(i))));
    }
    Ok(arc(StringArray::from(out)))
}

fn same_kind(n: &str, t: &[DataType]) -> Result<DataType> {
    if t.is_empty() {
        return Err(DataFusionError::Plan(format!("{n} needs arguments")));
    }
    Ok(if is_binary(&t[0]) {
        DataType::Binary
    } else {
        DataType::Utf8
    })
}

/// Java's `Character.isWhitespace`, what Athena's one-argument `trim`, `ltrim` and `rtrim`
/// remove: the Unicode space, line and paragraph separators but the no-break ones (U+00A0,
/// U+2007, U+202F), and the controls U+0009 to U+000D and U+001C to U+001F.
const JAVA_WHITESPACE: &str = "\t\n\u{b}\u{c}\r\u{1c}\u{1d}\u{1e}\u{1f} \u{1680}\
    \u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2008}\u{2009}\u{200a}\
    \u{2028}\u{2029}\u{205f}\u{3000}";

/// `c`'s one-to-one uppercase mapping (Unicode's simple mapping, Java's
/// `Character.toUpperCase(int)`): Rust's mapping where it is one character; where Rust's is
/// several (`ß` to `SS`), `c` itself, but for the Greek letters with ypogegrammeni, whose simple
/// mapping is the titlecase letter with prosgegrammeni (`ᾳ` to `ᾼ`).
fn simple_upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => match c {
            '\u{1f80}'..='\u{1f87}' | '\u{1f90}'..='\u{1f97}' | '\u{1fa0}'..='\u{1fa7}' => {
                char::from_u32(u32::from(c) + 8).unwrap_or(c)
            }
            '\u{1fb3}' => '\u{1fbc}',
            '\u{1fc3}' => '\u{1fcc}',
            '\u{1ff3}' => '\u{1ffc}',
            _ => c,
        },
    }
}

/// `c`'s one-to-one lowercase mapping (Java's `Character.toLowerCase(int)`): Rust's where it is
/// one character; `İ`, the only letter Rust maps to two (`i̇`), is `i`.
fn simple_lower(c: char) -> char {
    let mut low = c.to_lowercase();
    match (low.next(), low.next()) {
        (Some(l), None) => l,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// DataFusion's own `f` of `args` (columns of one length, or literals), where it answers as
/// Athena does (the trims, given their characters): it keeps a column's string type.
fn datafusion_own(f: &ScalarUDF, args: Vec<ColumnarValue>, rows: usize) -> Result<ArrayRef> {
    let types: Vec<DataType> = args.iter().map(ColumnarValue::data_type).collect();
    let arg_fields = types
        .iter()
        .map(|t| Arc::new(Field::new("a", t.clone(), true)))
        .collect();
    let ret = f.return_type(&types)?;
    f.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: rows,
        return_field: Arc::new(Field::new(f.name(), ret, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })?
    .into_array(rows)
}

/// `upper(s)` or `lower(s)` as Athena computes them: `map` applied to each code point. ASCII
/// text, where the one-to-one mappings are Unicode's full ones, is changed a byte at a time
/// (`ascii`), and a table's column keeps its string type (views) and nulls.
fn case_map(a: &[ArrayRef], ascii: fn(&mut [u8]), map: fn(char) -> char) -> Result<ArrayRef> {
    if let Some(out) = ascii_case(&a[0], ascii) {
        return Ok(out);
    }
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = StringBuilder::with_capacity(s.len(), 0);
    let mut buf = String::new();
    for v in s.iter() {
        let Some(v) = v else {
            out.append_null();
            continue;
        };
        buf.clear();
        buf.extend(v.chars().map(map));
        out.append_value(&buf);
    }
    Ok(arc(out.finish()))
}

/// `a` with `ascii` applied to each value's bytes, when every value is ASCII (so the bytes stay
/// valid UTF-8 of the same lengths); None otherwise. Only the values' own bytes are read and
/// copied, not the whole buffers a batch shares with others.
fn ascii_case(a: &ArrayRef, ascii: fn(&mut [u8])) -> Option<ArrayRef> {
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            let offsets = s.value_offsets();
            let (first, last) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
            let bytes = &s.values()[first..last];
            if first != 0 || !bytes.is_ascii() {
                return None;
            }
            let mut mapped = bytes.to_vec();
            ascii(&mut mapped);
            let mapped = Buffer::from_vec(mapped);
            StringArray::try_new(s.offsets().clone(), mapped, s.nulls().cloned())
                .ok()
                .map(arc)
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            let mut views = Vec::with_capacity(s.len());
            let mut data: Vec<u8> = Vec::new();
            for (i, &v) in s.views().iter().enumerate() {
                let len = v as u32 as usize;
                if s.is_null(i) || len == 0 {
                    views.push(0);
                } else if len <= 12 {
                    // The value is held in the view, after its length.
                    let mut bytes = v.to_le_bytes();
                    let value = &mut bytes[4..4 + len];
                    if !value.is_ascii() {
                        return None;
                    }
                    ascii(value);
                    views.push(u128::from_le_bytes(bytes));
                } else {
                    let value = s.value(i).as_bytes();
                    if !value.is_ascii() {
                        return None;
                    }
                    let at = data.len();
                    data.extend_from_slice(value);
                    ascii(&mut data[at..]);
                    views.push(make_view(&data[at..], 0, u32::try_from(at).ok()?));
                }
            }
            let buffers = vec![Buffer::from_vec(data)];
            StringViewArray::try_new(ScalarBuffer::from(views), buffers, s.nulls().cloned())
                .ok()
                .map(arc)
        }
        _ => None,
    }
}

/// Whether Athena's one-argument trims remove `c`: Java's `Character.isWhitespace`, the
/// characters of [`JAVA_WHITESPACE`].
fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{1f}'
            | ' '
            | '\u{1680}'
            | '\u{2000}'..='\u{2006}'
            | '\u{2008}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// `trim(s[, chars])` and its one-sided forms (`left`, `right`): DataFusion's `btrim`, `ltrim`
/// or `rtrim` (`side`), which remove any of `chars`, given Java's whitespace when `chars` is
/// left out. A table's column (`Utf8View`) without `chars` is trimmed here instead, each view
/// kept or moved in: DataFusion searches the 24 characters of the set for every character it
/// looks at, which took 1.41 times as long as its trim of spaces alone.
fn trim(a: &[ArrayRef], side: &ScalarUDF, left: bool, right: bool) -> Result<ArrayRef> {
    let chars = match a.get(1) {
        Some(c) => ColumnarValue::Array(Arc::clone(c)),
        None if a[0].data_type() == &DataType::Utf8View => {
            return trim_views(a[0].as_string_view(), left, right);
        }
        None => ColumnarValue::Scalar(ScalarValue::Utf8(Some(JAVA_WHITESPACE.to_string()))),
    };
    datafusion_own(
        side,
        vec![ColumnarValue::Array(Arc::clone(&a[0])), chars],
        a[0].len(),
    )
}

/// `s` without Java's whitespace on the `left` and `right`: a value that loses none keeps its
/// view, one that does gets a view of what is left, in the same buffer.
fn trim_views(s: &StringViewArray, left: bool, right: bool) -> Result<ArrayRef> {
    let views: Vec<u128> = s
        .views()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if s.is_null(i) {
                return v;
            }
            let value = s.value(i);
            let mut kept = value;
            if left {
                kept = kept.trim_start_matches(is_java_whitespace);
            }
            if right {
                kept = kept.trim_end_matches(is_java_whitespace);
            }
            if kept.len() == value.len() {
                return v;
            }
            if v as u32 <= 12 {
                // A short value is held in its view, and so is what is left of it.
                return make_view(kept.as_bytes(), 0, 0);
            }
            let start = kept.as_ptr() as usize - value.as_ptr() as usize;
            let (buffer, offset) = ((v >> 64) as u32, (v >> 96) as u32);
            make_view(kept.as_bytes(), buffer, offset + start as u32)
        })
        .collect();
    StringViewArray::try_new(
        ScalarBuffer::from(views),
        s.data_buffers().to_vec(),
        s.nulls().cloned(),
    )
    .map(arc)
    .map_err(DataFusionError::from)
}

/// The result type of `upper` and `lower`: the argument's string type.
fn same_text(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[1])?;
    Ok(match &t[0] {
        DataType::Utf8View => DataType::Utf8View,
        _ => DataType::Utf8,
    })
}

/// The result type of the trims: the first argument's string type.
fn trimmed_text(n: &str, t: &[DataType]) -> Result<DataType> {
    arity(n, t, &[1, 2])?;
    same_text(n, &t[..1])
}

/// Each row of the string columns `a` through `f`, NULL when any is NULL; `f` may refuse a row.
fn texts_map(
    call: &Call,
    a: &[ArrayRef],
    f: impl Fn(&[&str]) -> std::result::Result<String, String>,
) -> Result<ArrayRef> {
    let cols: Vec<StringArray> = a.iter().map(text).collect::<Result<_>>()?;
    let rows = cols.first().map_or(0, Array::len);
    let mut out = StringBuilder::new();
    let mut args = Vec::with_capacity(cols.len());
    for i in 0..rows {
        if cols.iter().any(|c| c.is_null(i)) {
            out.append_null();
            continue;
        }
        args.clear();
        args.extend(cols.iter().map(|c| c.value(i)));
        match f(&args) {
            Ok(v) => out.append_value(v),
            Err(e) => {
                call.row_err::<()>(e)?;
                out.append_null();
            }
        }
    }
    Ok(arc(out.finish()))
}

/// `soundex(s)`: American Soundex of the letters of `s` (other characters dropped): the first
/// letter, then up to three digits, padded with 0. H and W neither count nor separate; vowels
/// separate. No letters give `''`; a letter outside A to Z is an error.
fn soundex(s: &str) -> std::result::Result<String, String> {
    let code = |c: char| -> std::result::Result<char, String> {
        Ok(match c {
            'A' | 'E' | 'I' | 'O' | 'U' | 'Y' | 'H' | 'W' => '0',
            'B' | 'F' | 'P' | 'V' => '1',
            'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => '2',
            'D' | 'T' => '3',
            'L' => '4',
            'M' | 'N' => '5',
            'R' => '6',
            other => return Err(format!("The character is not mapped: {other}")),
        })
    };
    let mut letters = s
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_uppercase);
    let Some(first) = letters.next() else {
        return Ok(String::new());
    };
    let mut out = String::with_capacity(4);
    out.push(first);
    let mut last = code(first)?;
    for c in letters {
        if out.len() >= 4 {
            break;
        }
        if c == 'H' || c == 'W' {
            continue;
        }
        let digit = code(c)?;
        if digit != '0' && digit != last {
            out.push(digit);
        }
        last = digit;
    }
    while out.chars().count() < 4 {
        out.push('0');
    }
    Ok(out)
}

/// `normalize(s[, form])`: the Unicode normal form NFC (the default), NFD, NFKC or NFKD.
fn normalize(s: &str, form: &str) -> std::result::Result<String, String> {
    use unicode_normalization::UnicodeNormalization;
    Ok(match form.to_ascii_uppercase().as_str() {
        "NFC" => s.nfc().collect(),
        "NFD" => s.nfd().collect(),
        "NFKC" => s.nfkc().collect(),
        "NFKD" => s.nfkd().collect(),
        other => {
            return Err(format!(
                "the normal form must be NFC, NFD, NFKC or NFKD, not {other}"
            ));
        }
    })
}

/// `word_stem(word[, language])`: the Snowball stem of a word, in English by default.
fn word_stem(word: &str, language: &str) -> std::result::Result<String, String> {
    use rust_stemmers::{Algorithm as A, Stemmer};
    let algorithm = match language.to_ascii_lowercase().as_str() {
        "da" => A::Danish,
        "de" => A::German,
        "en" => A::English,
        "es" => A::Spanish,
        "fi" => A::Finnish,
        "fr" => A::French,
        "hu" => A::Hungarian,
        "it" => A::Italian,
        "nl" => A::Dutch,
        "no" => A::Norwegian,
        "pt" => A::Portuguese,
        "ro" => A::Romanian,
        "ru" => A::Russian,
        "sv" => A::Swedish,
        "tr" => A::Turkish,
        other => return Err(format!("Unknown stemmer language: {other}")),
    };
    Ok(Stemmer::create(algorithm).stem(word).into_owned())
}

/// The functions above (`concat` on arrays is planned as `array_concat`).
fn codepoint(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let s = super::fun::Texts::of(&a[0])?;
    let mut out = Vec::with_capacity(s.len());
    for v in s.iter() {
        let Some(v) = v else {
            out.push(None);
            continue;
        };
        let mut chars = v.chars();
        out.push(match (chars.next(), chars.next()) {
            (Some(c), None) => Some(i64::from(u32::from(c))),
            _ => call.row_err(format!("codepoint takes one character, not {v:?}"))?,
        });
    }
    Ok(arc(arrow::array::Int64Array::from(out)))
}

fn hamming_distance(call: &Call, a: &[ArrayRef]) -> Result<ArrayRef> {
    let (x, y) = (text(&a[0])?, text(&a[1])?);
    let mut out = Vec::with_capacity(x.len());
    for (x, y) in x.iter().zip(y.iter()) {
        let (Some(x), Some(y)) = (x, y) else {
            out.push(None);
            continue;
        };
        let (mut xs, mut ys) = (x.chars(), y.chars());
        let mut d = 0_i64;
        let same_length = loop {
            match (xs.next(), ys.next()) {
                (Some(p), Some(q)) => d += i64::from(p != q),
                (None, None) => break true,
                _ => break false,
            }
        };
        out.push(if same_length {
            Some(d)
        } else {
            call.row_err("the input strings to hamming_distance must have the same length")?
        });
    }
    Ok(arc(arrow::array::Int64Array::from(out)))
}

/// `substr`, also reached from `substring(s FROM i FOR n)` and `substr(…)`, which the SQL parser
/// turns into its own syntax node (see `trino::AthenaSubstring`).
pub fn substr_fun() -> Fun {
    Fun::new(
        "substr",
        |n, t| {
            arity(n, t, &[2, 3])?;
            same_kind(n, t)
        },
        substr,
    )
    .alias("substring")
}

pub fn functions() -> Vec<Fun> {
    vec![
        Fun::new(
            "codepoint",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Int64)
            },
            codepoint,
        ),
        Fun::new(
            "hamming_distance",
            |n, t| {
                arity(n, t, &[2])?;
                Ok(DataType::Int64)
            },
            hamming_distance,
        ),
        substr_fun(),
        Fun::new(
            "normalize",
            |n, t| {
                arity(n, t, &[1, 2])?;
                Ok(DataType::Utf8)
            },
            |c, a| {
                texts_map(c, a, |v| {
                    normalize(v[0], v.get(1).copied().unwrap_or("NFC"))
                })
            },
        ),
        Fun::new(
            "soundex",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Utf8)
            },
            |c, a| texts_map(c, a, |v| soundex(v[0])),
        ),
        Fun::new(
            "word_stem",
            |n, t| {
                arity(n, t, &[1, 2])?;
                Ok(DataType::Utf8)
            },
            |c, a| texts_map(c, a, |v| word_stem(v[0], v.get(1).copied().unwrap_or("en"))),
        ),
        Fun::new(
            "concat",
            |n, t| {
                if t.iter().any(is_list) {
                    return Ok(t.iter().find(|x| is_list(x)).cloned().expect("a list"));
                }
                let types: Vec<&DataType> = t.iter().collect();
                if !joinable(&types) {
                    return Err(cannot_join(&types, n));
                }
                same_kind(n, t)
            },
            concat,
        ),
        Fun::new(
            "split_part",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(DataType::Utf8)
            },
            split_part,
        ),
        Fun::new(
            "strpos",
            |n, t| {
                arity(n, t, &[2, 3])?;
                Ok(DataType::Int64)
            },
            strpos,
        ),
        Fun::new(
            "replace",
            |n, t| {
                arity(n, t, &[2, 3])?;
                Ok(DataType::Utf8)
            },
            replace,
        ),
        Fun::new(
            "lpad",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(DataType::Utf8)
            },
            |c, a| pad(c, a, true),
        ),
        Fun::new(
            "rpad",
            |n, t| {
                arity(n, t, &[3])?;
                Ok(DataType::Utf8)
            },
            |c, a| pad(c, a, false),
        ),
        Fun::new(
            "from_utf8",
            |n, t| {
                arity(n, t, &[1, 2])?;
                Ok(DataType::Utf8)
            },
            from_utf8,
        ),
        Fun::new(
            "length",
            |n, t| {
                arity(n, t, &[1])?;
                Ok(DataType::Int64)
            },
            length,
        ),
        Fun::new("upper", same_text, |_, a| {
            case_map(a, <[u8]>::make_ascii_uppercase, simple_upper)
        }),
        Fun::new("lower", same_text, |_, a| {
            case_map(a, <[u8]>::make_ascii_lowercase, simple_lower)
        }),
        Fun::new("trim", trimmed_text, |_, a| {
            trim(a, &datafusion::functions::string::btrim(), true, true)
        })
        .alias("btrim"),
        Fun::new("ltrim", trimmed_text, |_, a| {
            trim(a, &datafusion::functions::string::ltrim(), true, false)
        }),
        Fun::new("rtrim", trimmed_text, |_, a| {
            trim(a, &datafusion::functions::string::rtrim(), false, true)
        }),
        Fun::new(
            "concat_ws",
            |n, t| {
                if t.len() < 2 {
                    return Err(DataFusionError::Plan(format!(
                        "{n} needs a separator and values"
                    )));
                }
                Ok(DataType::Utf8)
            },
            concat_ws,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substr_positions_are_athenas() {
        assert_eq!(substr_range(13, -5, None), Some((8, 13)));
        assert_eq!(substr_range(13, -5, Some(4)), Some((8, 12)));
        assert_eq!(substr_range(13, 0, None), None);
        assert_eq!(substr_range(3, 5, None), None);
    }

    /// The one-argument trims remove the same characters on either path.
    #[test]
    fn java_whitespace_is_one_set() {
        let all: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|&c| is_java_whitespace(c))
            .collect();
        let listed: Vec<char> = JAVA_WHITESPACE.chars().collect();
        assert_eq!(all, listed);
    }

    /// A table's columns are `Utf8View`: ASCII ones are changed where they lie, trims move
    /// the views in, and the answers are Athena's either way.
    #[tokio::test]
    async fn a_tables_columns_get_athenas_case_and_trims() {
        // A table of one `Utf8View` column, as the curated table's text columns are read.
        let view = |name: &str, rows: &[Option<&str>]| {
            let ctx = crate::functions_session().unwrap();
            let column: arrow::array::StringViewArray = rows.iter().copied().collect();
            let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("v", DataType::Utf8View, true),
            ]));
            let batch =
                arrow::array::RecordBatch::try_new(schema, vec![std::sync::Arc::new(column)])
                    .unwrap();
            ctx.register_batch(name, batch).unwrap();
            ctx
        };
        let ascii = view(
            "ascii",
            &[
                Some("a long value of text past twelve"),
                Some("short"),
                None,
            ],
        );
        let rows = crate::trino::csv_rows_in(&ascii, "SELECT upper(v), lower(upper(v)) FROM ascii")
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                "A LONG VALUE OF TEXT PAST TWELVE,a long value of text past twelve",
                "SHORT,short",
                ",",
            ]
        );
        let mixed = view(
            "mixed",
            &[Some("short"), Some("straße"), Some("ΟΔΟΣ"), Some("İ")],
        );
        let rows = crate::trino::csv_rows_in(&mixed, "SELECT upper(v), lower(v) FROM mixed")
            .await
            .unwrap();
        assert_eq!(rows, ["SHORT,short", "STRAßE,straße", "ΟΔΟΣ,οδοσ", "İ,i"]);
        let padded = view(
            "padded",
            &[
                Some("\t a long value of text past twelve  "),
                Some(" short\u{3000}"),
                Some("none"),
                Some("\u{a0}nbsp"),
                None,
            ],
        );
        let rows = crate::trino::csv_rows_in(
            &padded,
            "SELECT '[' || trim(v) || ']', '[' || ltrim(v) || ']', '[' || rtrim(v) || ']' \
             FROM padded",
        )
        .await
        .unwrap();
        assert_eq!(
            rows,
            [
                "[a long value of text past twelve],[a long value of text past twelve  ],\
                 [\t a long value of text past twelve]",
                "[short],[short\u{3000}],[ short]",
                "[none],[none],[none]",
                "[\u{a0}nbsp],[\u{a0}nbsp],[\u{a0}nbsp]",
                ",,",
            ]
        );
    }
}

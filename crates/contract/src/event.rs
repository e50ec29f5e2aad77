//! Validation of one raw line (contract sections 1 and 2) into a curated row, or a typed reason.
//!
//! [`parse_raw_line`] never panics and never gives up on the line silently: it returns either a
//! [`ValidEvent`] that borrows from the line, or a [`Rejection`] whose [`Reason`] is a stable code
//! (it names the quarantine record) and whose detail says what was wrong, and where in the line.

use std::borrow::Cow;
use std::fmt;

use chrono::DateTime;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::names::PartitionKey;
use crate::scan;
use crate::{MAX_RAW_LINE_BYTES, SCHEMA_VERSION};

/// Why a raw line (or a whole raw object) could not become a row. The `snake_case` names are
/// stable: they appear in quarantine records, manifests and metrics.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The line's bytes are not UTF-8.
    InvalidUtf8,
    /// The line is empty or whitespace only.
    BlankLine,
    /// The line is longer than [`MAX_RAW_LINE_BYTES`].
    LineTooLarge,
    /// The line is not JSON.
    InvalidJson,
    /// The line is JSON cut short (for example a partial write).
    TruncatedJson,
    /// The line is JSON but not an object.
    NotAnObject,
    /// The line is `{}`.
    EmptyObject,
    /// A required field is missing or null.
    MissingField,
    /// A required string field is empty.
    EmptyField,
    /// A field has the wrong JSON type.
    WrongType,
    /// `event_id` is longer than 128 characters.
    InvalidEventId,
    /// `event_type` does not match `[a-z0-9_.:-]{1,64}`.
    InvalidEventType,
    /// A timestamp is not RFC 3339.
    InvalidTimestamp,
    /// `schema_version` is not one this job reads.
    UnsupportedSchemaVersion,
    /// The line's `team` is not the team of the raw prefix it was found under.
    TeamMismatch,
    /// The line's `received_at` falls on another day than the raw prefix it was found under.
    PartitionMismatch,
    /// A raw object named `.gz` is not gzip (object level: no line of it was read).
    NotGzip,
    /// A gzip stream broke off or is corrupt (object level: the lines before the break are kept).
    CorruptGzip,
    /// A raw object compressed otherwise than with gzip: zstd, bzip2, xz, zip, LZ4 or Snappy,
    /// by its magic bytes (object level: no line of it was read).
    UnsupportedCompression,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::BlankLine => "blank_line",
            Reason::LineTooLarge => "line_too_large",
            Reason::InvalidJson => "invalid_json",
            Reason::TruncatedJson => "truncated_json",
            Reason::NotAnObject => "not_an_object",
            Reason::EmptyObject => "empty_object",
            Reason::MissingField => "missing_field",
            Reason::EmptyField => "empty_field",
            Reason::WrongType => "wrong_type",
            Reason::InvalidEventId => "invalid_event_id",
            Reason::InvalidEventType => "invalid_event_type",
            Reason::InvalidTimestamp => "invalid_timestamp",
            Reason::UnsupportedSchemaVersion => "unsupported_schema_version",
            Reason::TeamMismatch => "team_mismatch",
            Reason::PartitionMismatch => "partition_mismatch",
            Reason::NotGzip => "not_gzip",
            Reason::CorruptGzip => "corrupt_gzip",
            Reason::UnsupportedCompression => "unsupported_compression",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line that cannot become a row: the reason and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// A valid raw line: the curated row it becomes. Strings borrow from the line unless they had
/// JSON escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent<'a> {
    pub event_id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    /// Microseconds since the epoch, UTC.
    pub event_time: i64,
    /// Microseconds since the epoch, UTC.
    pub received_at: i64,
    pub user_id: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    pub source: Option<Cow<'a, str>>,
    pub schema_version: i32,
    /// The `properties` object as JSON text, exactly as it was sent.
    pub properties: Option<&'a str>,
    pub context_ip: Option<Cow<'a, str>>,
    pub context_user_agent: Option<Cow<'a, str>>,
    pub context_locale: Option<Cow<'a, str>>,
    pub context_app_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event_time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    received_at: Option<&'a RawValue>,
    #[serde(borrow, default)]
    team: Option<&'a RawValue>,
    #[serde(borrow, default)]
    schema_version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    properties: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawContext<'a> {
    #[serde(borrow, default)]
    ip: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow, default)]
    locale: Option<&'a RawValue>,
    #[serde(borrow, default)]
    app_version: Option<&'a RawValue>,
}

/// The fields the contract reads from a raw line, in the order [`read_envelope`] gives them.
const ENVELOPE_KEYS: [&str; 11] = [
    "event_id",
    "event_type",
    "event_time",
    "received_at",
    "team",
    "schema_version",
    "user_id",
    "session_id",
    "source",
    "properties",
    "context",
];

/// The fields of `context` the contract reads, in the order [`context_fields`] gives them.
const CONTEXT_KEYS: [&str; 4] = ["ip", "user_agent", "locale", "app_version"];

/// What [`read_envelope`] gives: the raw JSON text of each of [`ENVELOPE_KEYS`] (`None`: absent or
/// `null`), the fields of `context` when the scanner read them in the same pass, and whether the
/// line is plain.
type Envelope<'a> = (
    [Option<&'a str>; ENVELOPE_KEYS.len()],
    Option<[Option<&'a str>; CONTEXT_KEYS.len()]>,
    bool,
);

/// The raw JSON text of each of [`ENVELOPE_KEYS`] (`None`: absent or `null`), `context`'s fields
/// when it is an object the scanner read, and whether the line is plain (no escape, no control
/// character: see [`scan::is_plain`]). The one-pass scanner reads a plain line; `serde_json` reads
/// any other, and every line the scanner is unsure of (it decides what is invalid, and why).
fn read_envelope(text: &str) -> Result<Envelope<'_>, Rejection> {
    let plain = scan::is_plain(text);
    let mut f = [None; ENVELOPE_KEYS.len()];
    let mut context = [None; CONTEXT_KEYS.len()];
    // `context` is the last of the envelope's keys.
    let nested = (ENVELOPE_KEYS.len() - 1, &CONTEXT_KEYS[..], &mut context[..]);
    if plain && let Some(scanned) = scan::object_with(text, &ENVELOPE_KEYS, &mut f, Some(nested)) {
        return Ok((f, scanned.then_some(context), plain));
    }
    let env: RawEnvelope<'_> = serde_json::from_str(text).map_err(|e| json_error(&e))?;
    f = [
        env.event_id,
        env.event_type,
        env.event_time,
        env.received_at,
        env.team,
        env.schema_version,
        env.user_id,
        env.session_id,
        env.source,
        env.properties,
        env.context,
    ]
    .map(|v| v.map(RawValue::get));
    Ok((f, None, plain))
}

/// `context`'s `ip`, `user_agent`, `locale` and `app_version`, as raw JSON text.
fn context_fields(raw: &str, plain: bool) -> Result<[Option<&str>; 4], Rejection> {
    let mut f = [None; 4];
    if plain && scan::object(raw, &CONTEXT_KEYS, &mut f).is_some() {
        return Ok(f);
    }
    let ctx: RawContext<'_> = serde_json::from_str(raw).map_err(|e| json_error(&e))?;
    Ok([ctx.ip, ctx.user_agent, ctx.locale, ctx.app_version].map(|v| v.map(RawValue::get)))
}

/// Strips what is not part of the line's content: a UTF-8 byte order mark in front and the `\r`
/// of a CRLF line ending. Both are fine in the raw zone, not errors.
pub fn trim_line(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
        line = rest;
    }
    if let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

/// Validates one raw line found under the raw prefix of `partition`.
///
/// The line may still carry its `\r` or a BOM ([`trim_line`] is applied here).
pub fn parse_raw_line<'a>(
    line: &'a [u8],
    partition: &PartitionKey,
) -> Result<ValidEvent<'a>, Rejection> {
    let line = trim_line(line);
    if line.len() > MAX_RAW_LINE_BYTES {
        return Err(Rejection::new(
            Reason::LineTooLarge,
            format!(
                "line is {} bytes, the limit is {MAX_RAW_LINE_BYTES}",
                line.len()
            ),
        ));
    }
    // The SIMD check first (nearly every line passes it); the standard one says where a line
    // that fails it stops being UTF-8.
    let text = match simdutf8::basic::from_utf8(line) {
        Ok(text) => text,
        Err(_) => std::str::from_utf8(line).map_err(|e| {
            Rejection::new(
                Reason::InvalidUtf8,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?,
    };
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err(Rejection::new(Reason::BlankLine, "empty line"));
    }
    if !trimmed.starts_with('{') {
        return Err(
            match serde_json::from_str::<serde::de::IgnoredAny>(trimmed) {
                Ok(_) => Rejection::new(
                    Reason::NotAnObject,
                    format!("a JSON {} where an object was expected", json_kind(trimmed)),
                ),
                Err(e) => json_error(&e),
            },
        );
    }
    let (
        [
            event_id,
            event_type,
            event_time,
            received_at,
            team,
            schema_version,
            user_id,
            session_id,
            source,
            properties,
            context,
        ],
        scanned_context,
        plain,
    ) = read_envelope(trimmed)?;
    if trimmed[1..].trim_ascii_start().starts_with('}') {
        return Err(Rejection::new(
            Reason::EmptyObject,
            "the object has no fields",
        ));
    }

    let event_id = required_str(event_id, "event_id", plain)?;
    // A string of at most 128 bytes has at most 128 characters: only longer ones are counted.
    if event_id.len() > 128 && event_id.chars().count() > 128 {
        return Err(Rejection::new(
            Reason::InvalidEventId,
            "event_id is longer than 128 characters",
        ));
    }
    let event_type = required_str(event_type, "event_type", plain)?;
    if !valid_event_type(&event_type) {
        return Err(Rejection::new(
            Reason::InvalidEventType,
            format!("event_type {event_type:?} does not match [a-z0-9_.:-]{{1,64}}"),
        ));
    }
    let event_time = timestamp(event_time, "event_time", plain)?;
    let received_at = received_timestamp(received_at, plain)?;

    let schema_version = match schema_version {
        None => SCHEMA_VERSION,
        Some(raw) => match raw.parse::<i32>() {
            Ok(SCHEMA_VERSION) => SCHEMA_VERSION,
            Ok(v) => {
                return Err(Rejection::new(
                    Reason::UnsupportedSchemaVersion,
                    format!("schema_version {v} is not {SCHEMA_VERSION}"),
                ));
            }
            Err(_) => return Err(wrong_type("schema_version", raw, "an integer")),
        },
    };

    if let Some(team) = optional_str(team, "team", plain)?
        && team != partition.team.as_str()
    {
        return Err(Rejection::new(
            Reason::TeamMismatch,
            format!(
                "team {team:?} found under the raw prefix of team {:?}",
                partition.team.as_str()
            ),
        ));
    }
    let received_day = DateTime::from_timestamp_micros(received_at)
        .map(|t| t.date_naive())
        .ok_or_else(|| Rejection::new(Reason::InvalidTimestamp, "received_at is out of range"))?;
    if received_day != partition.dt.date() {
        return Err(Rejection::new(
            Reason::PartitionMismatch,
            format!(
                "received_at falls on {received_day}, found under the raw prefix of dt={}",
                partition.dt
            ),
        ));
    }

    let properties = match properties {
        None => None,
        Some(raw) if raw.starts_with('{') => Some(raw),
        Some(raw) => return Err(wrong_type("properties", raw, "an object")),
    };
    let (context_ip, context_user_agent, context_locale, context_app_version) = match context {
        None => (None, None, None, None),
        Some(raw) if raw.starts_with('{') => {
            let [ip, user_agent, locale, app_version] = match scanned_context {
                Some(fields) => fields,
                None => context_fields(raw, plain)?,
            };
            (
                optional_str(ip, "context.ip", plain)?,
                optional_str(user_agent, "context.user_agent", plain)?,
                optional_str(locale, "context.locale", plain)?,
                optional_str(app_version, "context.app_version", plain)?,
            )
        }
        Some(raw) => return Err(wrong_type("context", raw, "an object")),
    };

    Ok(ValidEvent {
        event_id,
        event_type,
        event_time,
        received_at,
        user_id: optional_str(user_id, "user_id", plain)?,
        session_id: optional_str(session_id, "session_id", plain)?,
        source: optional_str(source, "source", plain)?,
        schema_version,
        properties,
        context_ip,
        context_user_agent,
        context_locale,
        context_app_version,
    })
}

/// `[a-z0-9_.:-]{1,64}`
pub fn valid_event_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-')
        })
}

/// Parses an RFC 3339 timestamp with any offset into microseconds since the epoch, UTC (digits
/// past the microsecond are dropped).
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    // Two timestamps a line, millions of lines: the common shape is read directly, anything else
    // goes through chrono, which decides what is valid.
    fast_rfc3339_micros(s.as_bytes()).or_else(|| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros())
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, or `None` for anything else.
fn fast_rfc3339_micros(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digit = |i: usize| -> Option<i64> {
        let c = b[i].wrapping_sub(b'0');
        (c < 10).then_some(c as i64)
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let year = two(0)? * 100 + two(2)?;
    let (month, day, hour, min, sec) = (two(5)?, two(8)?, two(11)?, two(14)?, two(17)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (two(i + 1)?, two(i + 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + min * 60 + sec - offset) * 1_000_000 + micros)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

fn json_error(e: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let reason = match e.classify() {
        Category::Eof => Reason::TruncatedJson,
        _ => Reason::InvalidJson,
    };
    Rejection::new(reason, e.to_string())
}

fn wrong_type(field: &str, raw: &str, expected: &str) -> Rejection {
    Rejection::new(
        Reason::WrongType,
        format!("{field} is a JSON {}, expected {expected}", json_kind(raw)),
    )
}

/// A JSON string's value (`raw` is its JSON text), borrowed when it has no escapes. `plain`: the
/// line holds no backslash at all ([`scan::is_plain`]), so no string of it has an escape.
fn string_value<'a>(raw: &'a str, field: &str, plain: bool) -> Result<Cow<'a, str>, Rejection> {
    if !raw.starts_with('"') {
        return Err(wrong_type(field, raw, "a string"));
    }
    let inner = &raw[1..raw.len() - 1];
    if plain || !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|e| json_error(&e))
}

fn optional_str<'a>(
    raw: Option<&'a str>,
    field: &str,
    plain: bool,
) -> Result<Option<Cow<'a, str>>, Rejection> {
    raw.map(|r| string_value(r, field, plain)).transpose()
}

fn required_str<'a>(
    raw: Option<&'a str>,
    field: &str,
    plain: bool,
) -> Result<Cow<'a, str>, Rejection> {
    let raw =
        raw.ok_or_else(|| Rejection::new(Reason::MissingField, format!("{field} is missing")))?;
    let s = string_value(raw, field, plain)?;
    if s.is_empty() {
        return Err(Rejection::new(
            Reason::EmptyField,
            format!("{field} is empty"),
        ));
    }
    Ok(s)
}

thread_local! {
    /// The last `received_at` text read on this thread and its value: the lines of one accepted
    /// batch share one, so most lines need only a comparison.
    static LAST_RECEIVED: std::cell::RefCell<(String, i64)> =
        const { std::cell::RefCell::new((String::new(), 0)) };
}

/// [`timestamp`] for `received_at`, remembering the last text parsed.
fn received_timestamp(raw: Option<&str>, plain: bool) -> Result<i64, Rejection> {
    let s = required_str(raw, "received_at", plain)?;
    let known = LAST_RECEIVED.with_borrow(|(text, micros)| (*text == *s).then_some(*micros));
    if let Some(micros) = known {
        return Ok(micros);
    }
    let micros = timestamp_value(&s, "received_at")?;
    LAST_RECEIVED.with_borrow_mut(|(text, value)| {
        text.clear();
        text.push_str(&s);
        *value = micros;
    });
    Ok(micros)
}

fn timestamp(raw: Option<&str>, field: &str, plain: bool) -> Result<i64, Rejection> {
    let s = required_str(raw, field, plain)?;
    timestamp_value(&s, field)
}

fn timestamp_value(s: &str, field: &str) -> Result<i64, Rejection> {
    parse_rfc3339_micros(s).ok_or_else(|| {
        Rejection::new(
            Reason::InvalidTimestamp,
            format!("{field} {s:?} is not an RFC 3339 timestamp"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{PartitionDate, TeamName};

    fn part() -> PartitionKey {
        PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-20").unwrap(),
        }
    }

    const GOOD: &str = r#"{"event_id":"e1","event_type":"page_view","event_time":"2026-11-20T13:45:12.345Z","user_id":"u-1","session_id":"s-9","source":"web","properties":{"path":"/pricing","n":[1,2]},"context":{"ip":"203.0.113.7","user_agent":"UA","locale":"fr-FR","app_version":"3.2.1","extra":1},"team":"checkout","received_at":"2026-11-20T13:45:13.000Z","schema_version":1}"#;

    fn reason(line: &[u8]) -> Reason {
        parse_raw_line(line, &part()).unwrap_err().reason
    }

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    fn without(field: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v.as_object_mut().unwrap().remove(field);
        v.to_string()
    }

    #[test]
    fn good_line_becomes_a_row() {
        let e = parse_raw_line(GOOD.as_bytes(), &part()).unwrap();
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.event_time, 1_795_182_312_345_000);
        assert_eq!(e.properties, Some(r#"{"path":"/pricing","n":[1,2]}"#));
        assert_eq!(e.context_locale.as_deref(), Some("fr-FR"));
        assert_eq!(e.schema_version, 1);
    }

    #[test]
    fn a_repeated_received_at_reads_as_a_fresh_one() {
        let later = with("received_at", r#""2026-11-20T14:00:00+01:00""#);
        let bad = with("received_at", r#""2026-11-20T25:00:00Z""#);
        let received = |line: &str| parse_raw_line(line.as_bytes(), &part()).map(|e| e.received_at);
        for _ in 0..2 {
            assert_eq!(received(GOOD).unwrap(), 1_795_182_313_000_000);
            assert_eq!(received(GOOD).unwrap(), 1_795_182_313_000_000);
            assert_eq!(received(&later).unwrap(), 1_795_179_600_000_000);
            assert_eq!(received(&bad).unwrap_err().reason, Reason::InvalidTimestamp);
        }
    }

    #[test]
    fn bom_and_crlf_are_fine() {
        let line = format!("\u{FEFF}{GOOD}\r");
        assert!(parse_raw_line(line.as_bytes(), &part()).is_ok());
    }

    #[test]
    fn offsets_are_normalised_to_utc() {
        let line = with("event_time", r#""2026-11-20T14:45:12.345+01:00""#);
        let a = parse_raw_line(line.as_bytes(), &part()).unwrap();
        let b = parse_raw_line(GOOD.as_bytes(), &part()).unwrap();
        assert_eq!(a.event_time, b.event_time);
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let line = with("user_id", r#""u\"1\u00e9""#);
        let e = parse_raw_line(line.as_bytes(), &part()).unwrap();
        assert_eq!(e.user_id.as_deref(), Some("u\"1é"));
    }

    #[test]
    fn invalid_utf8_is_placed_at_its_byte() {
        // Valid multi-byte characters before it, and the bad byte well past the first block a
        // SIMD check reads, in a line that is otherwise a good event.
        let mut line =
            with("properties", &format!(r#"{{"note":"{}"}}"#, "é".repeat(80))).into_bytes();
        let at = line.len() - 20;
        line[at] = 0xff;
        let e = parse_raw_line(&line, &part()).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidUtf8);
        assert_eq!(e.detail, format!("invalid UTF-8 at byte {at}"));
        // A character cut short at the very end.
        let mut line = GOOD.as_bytes().to_vec();
        line.extend_from_slice(&[b' ', 0xc3]);
        let e = parse_raw_line(&line, &part()).unwrap_err();
        assert_eq!(
            e.detail,
            format!("invalid UTF-8 at byte {}", GOOD.len() + 1)
        );
    }

    #[test]
    fn bad_lines_have_typed_reasons() {
        assert_eq!(reason(b"not json"), Reason::InvalidJson);
        assert_eq!(reason(&GOOD.as_bytes()[..60]), Reason::TruncatedJson);
        assert_eq!(reason(b"[1,2]"), Reason::NotAnObject);
        assert_eq!(reason(b"42"), Reason::NotAnObject);
        assert_eq!(reason(b" { } "), Reason::EmptyObject);
        assert_eq!(reason(b""), Reason::BlankLine);
        assert_eq!(reason(b"{\"event_id\":\"\xff\"}"), Reason::InvalidUtf8);
        assert_eq!(reason(without("event_id").as_bytes()), Reason::MissingField);
        assert_eq!(
            reason(with("event_id", "null").as_bytes()),
            Reason::MissingField
        );
        assert_eq!(
            reason(with("event_id", r#""""#).as_bytes()),
            Reason::EmptyField
        );
        assert_eq!(reason(with("event_id", "17").as_bytes()), Reason::WrongType);
        assert_eq!(
            reason(with("event_id", &format!("\"{}\"", "x".repeat(129))).as_bytes()),
            Reason::InvalidEventId
        );
        assert_eq!(
            reason(with("event_type", r#""Page View""#).as_bytes()),
            Reason::InvalidEventType
        );
        assert_eq!(
            reason(with("event_time", r#""20/11/2026""#).as_bytes()),
            Reason::InvalidTimestamp
        );
        assert_eq!(
            reason(without("received_at").as_bytes()),
            Reason::MissingField
        );
        assert_eq!(
            reason(with("properties", "[1]").as_bytes()),
            Reason::WrongType
        );
        assert_eq!(
            reason(with("context", r#"{"ip":5}"#).as_bytes()),
            Reason::WrongType
        );
        assert_eq!(
            reason(with("user_id", "true").as_bytes()),
            Reason::WrongType
        );
        assert_eq!(
            reason(with("schema_version", "2").as_bytes()),
            Reason::UnsupportedSchemaVersion
        );
        assert_eq!(
            reason(with("team", r#""search""#).as_bytes()),
            Reason::TeamMismatch
        );
        assert_eq!(
            reason(with("received_at", r#""2026-11-21T00:00:00Z""#).as_bytes()),
            Reason::PartitionMismatch
        );
        let big = with(
            "properties",
            &format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_RAW_LINE_BYTES)),
        );
        assert_eq!(reason(big.as_bytes()), Reason::LineTooLarge);
    }

    #[test]
    fn rejection_detail_names_the_field() {
        let r = parse_raw_line(with("session_id", "[]").as_bytes(), &part()).unwrap_err();
        assert_eq!(
            r.to_string(),
            "wrong_type: session_id is a JSON array, expected a string"
        );
        let r = parse_raw_line(b"{\"a\":", &part()).unwrap_err();
        assert!(r.detail.contains("line 1 column 5"), "{}", r.detail);
    }

    #[test]
    fn missing_team_and_version_follow_the_path() {
        let line = without("team");
        let e = parse_raw_line(line.as_bytes(), &part()).unwrap();
        assert_eq!(e.schema_version, 1);
    }

    #[test]
    fn the_fast_timestamp_path_agrees_with_chrono() {
        let chrono_micros = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_micros())
        };
        let mut cases: Vec<String> = vec![
            "2026-11-20T13:45:12.345Z".into(),
            "2026-11-20T13:45:12Z".into(),
            "2026-11-20T13:45:12.1Z".into(),
            "2026-11-20T13:45:12.123456789Z".into(),
            "2026-11-20T13:45:12.1234567891Z".into(),
            "2026-11-20T13:45:12.Z".into(),
            "2026-11-20T14:45:12.345+01:00".into(),
            "2026-11-20T01:00:00-09:30".into(),
            "2024-02-29T00:00:00Z".into(),
            "2023-02-29T00:00:00Z".into(),
            "2100-02-29T00:00:00Z".into(),
            "2000-02-29T23:59:59.999999Z".into(),
            "1969-12-31T23:59:59.5Z".into(),
            "0001-01-01T00:00:00Z".into(),
            "2026-13-01T00:00:00Z".into(),
            "2026-11-31T00:00:00Z".into(),
            "2026-11-20T24:00:00Z".into(),
            "2026-11-20T13:45:60Z".into(),
            "2026-11-20T13:45:12+24:00".into(),
            "2026-11-20T13:45:12+0100".into(),
            "2026-11-20t13:45:12z".into(),
            "2026-11-20 13:45:12Z".into(),
            "2026-11-20T13:45:12".into(),
            "2026-11-20T13:45:12Zjunk".into(),
            "2026-1-20T13:45:12Z".into(),
            "yesterday".into(),
        ];
        // A sweep over days, times and offsets.
        for i in 0..5000i64 {
            let y = 1900 + (i * 7) % 300;
            let m = 1 + (i % 12);
            let d = 1 + (i * 13) % 31;
            let off = ["Z", "+05:30", "-11:00", "+00:00"][(i % 4) as usize];
            let frac = [".", ".1", ".12", ".123456", ""][(i % 5) as usize];
            let frac = if frac == "." { ".9" } else { frac };
            cases.push(format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}{off}",
                i % 24,
                (i * 7) % 60,
                (i * 11) % 60
            ));
        }
        for c in &cases {
            assert_eq!(parse_rfc3339_micros(c), chrono_micros(c), "{c}");
        }
    }

    #[test]
    fn event_types() {
        assert!(valid_event_type("page_view"));
        assert!(valid_event_type("checkout.step:2-a"));
        assert!(!valid_event_type(""));
        assert!(!valid_event_type(&"a".repeat(65)));
        assert!(!valid_event_type("Page"));
    }
}

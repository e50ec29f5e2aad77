//! From a request body to raw lines: decoding, splitting into events, the body's fingerprint, and
//! stamping each event with the server's fields. Pure functions, no I/O.
//!
//! Events are stored as the client sent them: every value keeps its JSON text (a number such as
//! `123456789012345678901234567890` or `1e5` is never re-printed through a float), only the
//! whitespace between tokens goes. The compaction job validates the same lines with the same
//! contract code, so an event accepted here is a row there.

use std::collections::BTreeMap;
use std::io::Read;

use eventlake_contract::{PartitionKey, SCHEMA_VERSION, TeamName, parse_raw_line};
use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::api::ApiError;

const BOM: &str = "\u{feff}";

/// Gunzips with a cap on the output, so a gzip bomb costs at most the cap.
pub fn gunzip(body: &[u8], cap: usize) -> Result<Vec<u8>, ApiError> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Err(ApiError::bad_request(
            "Content-Encoding is gzip but the body is not gzip",
        ));
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    MultiGzDecoder::new(body)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("the gzip body is corrupt: {e}")))?;
    if out.len() > cap {
        return Err(ApiError::too_large(format!(
            "body is larger than {cap} bytes after decompression"
        )));
    }
    Ok(out)
}

/// The body as text, without a leading byte order mark (which is fine, as it is in the raw zone).
pub fn body_text(body: &[u8]) -> Result<&str, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!("body is not UTF-8 (at byte {})", e.valid_up_to()))
    })?;
    Ok(text.strip_prefix(BOM).unwrap_or(text))
}

/// What identifies a request's content for idempotency: the same events in the same format give
/// the same fingerprint whatever the transfer encoding (gzip or not) or a byte order mark.
pub fn fingerprint(text: &str, ndjson: bool) -> String {
    let mut h = Sha256::new();
    h.update(if ndjson { b"ndjson\0" } else { b"json\0\0\0" });
    h.update(text.as_bytes());
    hex(&h.finalize()[..16])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// The events of a body, as JSON texts (an NDJSON line that is not JSON stays as it is: it is
/// rejected by index later).
pub fn split_events(text: &str, ndjson: bool) -> Result<Vec<&str>, ApiError> {
    if ndjson {
        return Ok(text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .map(|l| l.strip_prefix(BOM).unwrap_or(l))
            .filter(|l| !l.trim().is_empty())
            .collect());
    }
    // One pass: a syntax or end-of-input error is not JSON at all; a data error is JSON of
    // another shape.
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(
            "body is not the event envelope: expected {\"events\": [ ... ]} (or send application/x-ndjson)",
        ),
        _ => ApiError::bad_request(format!("body is not valid JSON: {e}")),
    })?;
    Ok(env.events.into_iter().map(RawValue::get).collect())
}

/// Valid JSON text without the whitespace between tokens; strings and numbers are kept as they
/// are written.
pub fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
            in_string = c == '"';
        }
    }
    out
}

/// The fields the server sets: a client's own values for them are replaced.
const STAMPED: [&str; 3] = ["team", "received_at", "schema_version"];

/// Why one event was rejected: (reason, detail).
pub type EventRejection = (String, String);

/// Adds the server's stamps to one client event and validates the resulting raw line exactly as
/// the compaction job will. Returns the line and the event's id.
pub fn stamp(
    text: &str,
    team: &TeamName,
    received_at: &str,
    partition: &PartitionKey,
) -> Result<(String, String), EventRejection> {
    let trimmed = text.trim_ascii();
    if !trimmed.starts_with('{') {
        return Err(
            match serde_json::from_str::<serde::de::IgnoredAny>(trimmed) {
                Ok(_) => (
                    "not_an_object".into(),
                    "the event is not a JSON object".into(),
                ),
                Err(e) => (
                    "invalid_json".into(),
                    format!("the event is not valid JSON: {e}"),
                ),
            },
        );
    }
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(trimmed).map_err(|e| {
        (
            "invalid_json".to_owned(),
            format!("the event is not valid JSON: {e}"),
        )
    })?;
    if let Some(body_team) = fields.get("team")
        && serde_json::from_str::<&str>(body_team.get()).ok() != Some(team.as_str())
    {
        return Err((
            "team_mismatch".into(),
            format!(
                "the event names team {}, the token belongs to another team",
                body_team.get()
            ),
        ));
    }
    let mut line = String::with_capacity(trimmed.len() + 96);
    line.push('{');
    for (name, value) in &fields {
        if STAMPED.contains(&name.as_str()) {
            continue;
        }
        line.push_str(&serde_json::to_string(name).expect("a string serialises"));
        line.push(':');
        line.push_str(&minify(value.get()));
        line.push(',');
    }
    line.push_str(&format!(
        "\"team\":{},\"received_at\":\"{received_at}\",\"schema_version\":{SCHEMA_VERSION}}}",
        serde_json::to_string(team.as_str()).expect("a string serialises")
    ));
    match parse_raw_line(line.as_bytes(), partition) {
        Ok(e) => {
            let id = e.event_id.into_owned();
            Ok((line, id))
        }
        Err(r) => Err((r.reason.to_string(), r.detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlake_contract::PartitionDate;

    fn partition() -> PartitionKey {
        PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-25").unwrap(),
        }
    }

    fn stamped(text: &str) -> Result<String, EventRejection> {
        let p = partition();
        stamp(text, &p.team, "2026-11-25T10:00:00.000Z", &p).map(|(l, _)| l)
    }

    #[test]
    fn numbers_and_strings_keep_the_text_the_client_sent() {
        let line = stamped(
            r#"{"event_id":"e1","event_type":"t","event_time":"2026-11-25T09:00:00Z",
               "properties": {"big": 123456789012345678901234567890, "exp": 1e5, "neg": -0.0,
               "s": "a \" b\\", "u": "\u00e9 é", "nested": [ 1 , { "x" : 2.50 } ]}}"#,
        )
        .unwrap();
        assert!(
            line.contains(
                r#""properties":{"big":123456789012345678901234567890,"exp":1e5,"neg":-0.0,"s":"a \" b\\","u":"\u00e9 é","nested":[1,{"x":2.50}]}"#
            ),
            "{line}"
        );
        assert!(line.ends_with(
            r#""team":"checkout","received_at":"2026-11-25T10:00:00.000Z","schema_version":1}"#
        ));
    }

    #[test]
    fn the_server_stamps_replace_the_clients() {
        let line = stamped(
            r#"{"event_id":"e1","event_type":"t","event_time":"2026-11-25T09:00:00Z","received_at":"1999-01-01T00:00:00Z","schema_version":7,"team":"checkout"}"#,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["received_at"], "2026-11-25T10:00:00.000Z");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(line.matches("\"team\"").count(), 1);
        let other = stamped(
            r#"{"event_id":"e1","event_type":"t","event_time":"2026-11-25T09:00:00Z","team":"search"}"#,
        )
        .unwrap_err();
        assert_eq!(other.0, "team_mismatch");
    }

    #[test]
    fn what_is_not_an_object_is_named() {
        assert_eq!(stamped("[1]").unwrap_err().0, "not_an_object");
        assert_eq!(stamped("{\"a\":").unwrap_err().0, "invalid_json");
        assert_eq!(stamped("nope").unwrap_err().0, "invalid_json");
        assert_eq!(
            stamped("{\"event_id\":\"x\"}").unwrap_err().0,
            "missing_field"
        );
    }

    #[test]
    fn a_byte_order_mark_is_fine_in_both_formats() {
        let ev = r#"{"event_id":"e1","event_type":"t","event_time":"2026-11-25T09:00:00Z"}"#;
        let nd = format!("\u{feff}{ev}\r\n\u{feff}{ev}\n");
        let text = body_text(nd.as_bytes()).unwrap();
        assert_eq!(split_events(text, true).unwrap(), vec![ev, ev]);
        let js = format!("\u{feff}{{\"events\":[{ev}]}}");
        let text = body_text(js.as_bytes()).unwrap();
        assert_eq!(split_events(text, false).unwrap(), vec![ev]);
        assert_eq!(
            fingerprint(body_text(js.as_bytes()).unwrap(), false),
            fingerprint(&js[3..], false)
        );
        assert_ne!(fingerprint(ev, false), fingerprint(ev, true));
    }

    #[test]
    fn minify_leaves_strings_alone() {
        assert_eq!(
            minify(" { \"a b\" : [ 1 ,\n 2 ] , \"c\":\"\\\\\" , \"d\" : \" x \\\" y \" } "),
            r#"{"a b":[1,2],"c":"\\","d":" x \" y "}"#
        );
    }
}

//! The HTTP app: `POST /v1/events` and `GET /healthz`, as one axum [`Router`] that the Lambda and
//! the local server both run.

use std::io::Read;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use eventlake_contract::{
    MAX_EVENT_BYTES, PartitionDate, PartitionKey, SCHEMA_VERSION, TeamName, layout, parse_raw_line,
};
use flate2::read::MultiGzDecoder;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::auth::{AuthError, TokenStore};
use crate::sink::{Landed, RawSink};

/// The contract's limits (section 1).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Body size after decompression (and before it).
    pub max_body_bytes: usize,
    pub max_events: usize,
    pub max_event_bytes: usize,
    /// Events a team may send per second, sustained (bursts up to one second's worth).
    pub events_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_events: 1000,
            max_event_bytes: MAX_EVENT_BYTES,
            events_per_sec: 2000,
        }
    }
}

/// Where the per-request log lines (with their embedded CloudWatch metrics) go.
pub trait LogSink: Send + Sync {
    fn emit(&self, line: String);
}

/// Standard output: Lambda ships it to CloudWatch Logs, which extracts the EMF metrics.
#[derive(Debug, Default)]
pub struct StdoutLog;

impl LogSink for StdoutLog {
    fn emit(&self, line: String) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
    }
}

/// Keeps the lines in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryLog(pub Mutex<Vec<String>>);

impl LogSink for MemoryLog {
    fn emit(&self, line: String) {
        self.0.lock().expect("log lock").push(line);
    }
}

pub struct AppState {
    pub tokens: TokenStore,
    pub sink: RawSink,
    pub limits: Limits,
    pub log: Arc<dyn LogSink>,
    limiter: DefaultKeyedRateLimiter<TeamName>,
}

impl AppState {
    pub fn new(tokens: TokenStore, sink: RawSink, limits: Limits, log: Arc<dyn LogSink>) -> Self {
        let rate = NonZeroU32::new(limits.events_per_sec.max(1)).expect("non-zero");
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate)),
            tokens,
            sink,
            limits,
            log,
        }
    }
}

/// The app. Both routes answer JSON.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
        .into_response()
}

/// A request refused as a whole.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub rejected: Vec<Rejected>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            rejected: Vec::new(),
            retry_after: None,
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
    fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if !self.rejected.is_empty() {
            body["rejected"] = serde_json::to_value(&self.rejected).expect("serialises");
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// One rejected event: its 0-based index in the request and why.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
    pub detail: String,
}

/// The `202` answer. A retried request with the same `Idempotency-Key` gets the same answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Accepted {
    pub batch_id: String,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    /// `raw` (in the raw zone) or `dead_letter_queue` (storage was down; redriven later).
    pub durable_in: String,
}

struct Outcome {
    team: Option<TeamName>,
    accepted: usize,
    rejected: usize,
    batch_id: Option<String>,
}

async fn post_events(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let mut outcome = Outcome {
        team: None,
        accepted: 0,
        rejected: 0,
        batch_id: None,
    };
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, s.limits.max_body_bytes).await;
    let bytes = body.as_ref().map(|b| b.len()).unwrap_or(0);
    let resp = match body {
        Err(_) => ApiError::too_large(format!(
            "body is larger than {} bytes",
            s.limits.max_body_bytes
        ))
        .into_response(),
        Ok(body) => match handle(&s, &parts.headers, body, &mut outcome).await {
            Ok(r) => r,
            Err(e) => {
                if !e.rejected.is_empty() {
                    outcome.rejected = e.rejected.len();
                }
                e.into_response()
            }
        },
    };
    log_request(&s, &request_id, &outcome, resp.status(), bytes, started);
    let mut resp = resp;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// One JSON line per request, which is also a CloudWatch embedded-metric document. Never a token.
fn log_request(
    s: &AppState,
    request_id: &str,
    o: &Outcome,
    status: StatusCode,
    bytes: usize,
    started: Instant,
) {
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let team = o
        .team
        .as_ref()
        .map(|t| t.as_str())
        .unwrap_or("unauthenticated");
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "eventlake/ingest",
                "Dimensions": [["team"]],
                "Metrics": [
                    {"Name": "EventsAccepted", "Unit": "Count"},
                    {"Name": "EventsRejected", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"}
                ]
            }]
        },
        "message": "request",
        "request_id": request_id,
        "team": team,
        "status": status.as_u16(),
        "bytes": bytes,
        "batch_id": o.batch_id,
        "EventsAccepted": o.accepted,
        "EventsRejected": o.rejected,
        "Latency": (latency_ms * 1000.0).round() / 1000.0,
    });
    s.log.emit(line.to_string());
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Gunzips with a cap on the output, so a gzip bomb costs at most the cap.
fn gunzip(body: &[u8], cap: usize) -> Result<Vec<u8>, ApiError> {
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

#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// The events of a body, as JSON texts (an NDJSON line that is not JSON stays as it is: it is
/// rejected by index later).
fn split_events<'a>(text: &'a str, ndjson: bool) -> Result<Vec<&'a str>, ApiError> {
    if ndjson {
        return Ok(text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.trim().is_empty())
            .collect());
    }
    // One pass: a syntax or end-of-input error is not JSON at all; a data error is JSON of
    // another shape.
    let env: Envelope<'a> = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(
            "body is not the event envelope: expected {\"events\": [ ... ]} (or send application/x-ndjson)",
        ),
        _ => ApiError::bad_request(format!("body is not valid JSON: {e}")),
    })?;
    Ok(env.events.into_iter().map(RawValue::get).collect())
}

/// Adds the server's stamps to one client event and validates the resulting raw line exactly as
/// the compaction job will.
fn stamp(
    text: &str,
    team: &TeamName,
    received_at: &str,
    partition: &PartitionKey,
) -> Result<(String, String), (String, String)> {
    let mut obj: Map<String, Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err((
                "not_an_object".into(),
                "the event is not a JSON object".into(),
            ));
        }
        Err(e) => {
            return Err((
                "invalid_json".into(),
                format!("the event is not valid JSON: {e}"),
            ));
        }
    };
    if let Some(body_team) = obj.get("team")
        && body_team.as_str() != Some(team.as_str())
    {
        return Err((
            "team_mismatch".into(),
            format!("the event names team {body_team}, the token belongs to another team"),
        ));
    }
    obj.insert("team".into(), Value::String(team.to_string()));
    obj.insert("received_at".into(), Value::String(received_at.to_owned()));
    obj.insert("schema_version".into(), Value::from(SCHEMA_VERSION));
    let line = Value::Object(obj).to_string();
    match parse_raw_line(line.as_bytes(), partition) {
        Ok(e) => {
            let id = e.event_id.into_owned();
            Ok((line, id))
        }
        Err(r) => Err((r.reason.to_string(), r.detail)),
    }
}

fn batch_id(team: &TeamName, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(k) => {
            let h = Sha256::digest(format!("{team}\0{k}").as_bytes());
            let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!("k{hex}")
        }
        None => format!("r{:032x}", rand::random::<u128>()),
    }
}

fn marker_key(team: &TeamName, batch_id: &str) -> String {
    format!("_ingest/idempotency/team={team}/{batch_id}.json")
}

async fn handle(
    s: &AppState,
    headers: &HeaderMap,
    body: Bytes,
    outcome: &mut Outcome,
) -> Result<Response, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let team = s.tokens.authenticate(auth).map_err(|e| {
        let msg = match e {
            AuthError::Missing => "missing Authorization: Bearer <token>",
            AuthError::Malformed => "Authorization must be Bearer <token>",
            AuthError::Unknown => "unknown token",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    })?;
    outcome.team = Some(team.clone());

    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Some(k.to_owned()),
            _ => {
                return Err(ApiError::bad_request(
                    "Idempotency-Key must be 1-255 visible ASCII characters",
                ));
            }
        },
    };

    let ndjson = match media_type(headers).as_deref() {
        Some("application/json") => false,
        Some("application/x-ndjson") | Some("application/ndjson") => true,
        other => {
            return Err(ApiError::unsupported(format!(
                "Content-Type must be application/json or application/x-ndjson, not {}",
                other.unwrap_or("(none)")
            )));
        }
    };
    let body: Vec<u8> = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => body.to_vec(),
        Some("gzip") => gunzip(&body, s.limits.max_body_bytes)?,
        Some(other) => {
            return Err(ApiError::unsupported(format!(
                "Content-Encoding {other} is not supported (use gzip)"
            )));
        }
    };
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::bad_request(format!("body is not UTF-8 (at byte {})", e.valid_up_to()))
    })?;
    let events = split_events(text, ndjson)?;
    if events.is_empty() {
        return Err(ApiError::bad_request("the request holds no events"));
    }
    if events.len() > s.limits.max_events {
        return Err(ApiError::too_large(format!(
            "{} events in one request; the limit is {}",
            events.len(),
            s.limits.max_events
        )));
    }
    if let Some((i, e)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| e.len() > s.limits.max_event_bytes)
    {
        return Err(ApiError::too_large(format!(
            "event {i} is {} bytes; the limit is {} bytes an event",
            e.len(),
            s.limits.max_event_bytes
        )));
    }

    let batch_id = batch_id(&team, key.as_deref());
    outcome.batch_id = Some(batch_id.clone());
    if key.is_some()
        && let Ok(Some(prior)) = s.sink.get(&marker_key(&team, &batch_id)).await
        && let Ok(prior) = serde_json::from_slice::<Accepted>(&prior)
    {
        outcome.accepted = prior.accepted;
        outcome.rejected = prior.rejected.len();
        let mut resp = (StatusCode::ACCEPTED, axum::Json(prior)).into_response();
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }

    let now: DateTime<Utc> = Utc::now();
    let received_at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let partition = PartitionKey {
        team: team.clone(),
        dt: PartitionDate::new(now.date_naive()),
    };
    let mut lines = Vec::with_capacity(events.len());
    let mut rejected = Vec::new();
    let mut ids = std::collections::HashSet::with_capacity(events.len());
    for (index, e) in events.iter().enumerate() {
        match stamp(e, &team, &received_at, &partition) {
            Ok((line, id)) => {
                if ids.insert(id.clone()) {
                    lines.push(line);
                } else {
                    rejected.push(Rejected {
                        index,
                        reason: "duplicate_event_id".into(),
                        detail: format!("event_id {id:?} appears earlier in this request"),
                    });
                }
            }
            Err((reason, detail)) => rejected.push(Rejected {
                index,
                reason,
                detail,
            }),
        }
    }
    outcome.rejected = rejected.len();
    if lines.is_empty() {
        let mut e = ApiError::bad_request("no event in the request is valid");
        e.rejected = rejected;
        return Err(e);
    }

    let n = NonZeroU32::new(lines.len() as u32).expect("non-empty");
    match s.limiter.check_key_n(&team, n) {
        Ok(Ok(())) => {}
        Ok(Err(not_until)) => {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(s.limiter.clock().now());
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!(
                    "team {team} is over its rate of {} events per second",
                    s.limits.events_per_sec
                ),
            );
            e.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(e);
        }
        Err(_) => {
            return Err(ApiError::too_large(format!(
                "{} valid events in one request exceed the team's rate of {} events per second",
                lines.len(),
                s.limits.events_per_sec
            )));
        }
    }
    outcome.accepted = lines.len();

    let mut ndjson_out = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in &lines {
        ndjson_out.extend_from_slice(l.as_bytes());
        ndjson_out.push(b'\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &ndjson_out).expect("in-memory");
    let object = gz.finish().expect("in-memory");
    let raw_key = layout::raw_object_key(&partition, now.hour(), &batch_id);
    let landed = s
        .sink
        .land(&raw_key, Bytes::from(object))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "batch not durable");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the events could not be stored; retry with the same Idempotency-Key",
            );
            err.retry_after = Some(1);
            err
        })?;
    let answer = Accepted {
        batch_id: batch_id.clone(),
        accepted: lines.len(),
        rejected,
        durable_in: match landed {
            Landed::DeadLettered => "dead_letter_queue".into(),
            _ => "raw".into(),
        },
    };
    if key.is_some() && landed != Landed::DeadLettered {
        let marker = serde_json::to_vec(&answer).expect("serialises");
        if let Err(e) = s
            .sink
            .put_if_absent(&marker_key(&team, &batch_id), Bytes::from(marker))
            .await
        {
            tracing::warn!(error = %e, "idempotency marker not written");
        }
    }
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

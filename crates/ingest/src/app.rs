//! The HTTP app: `POST /v1/events` and `GET /healthz`, as one axum [`Router`] that the Lambda and
//! the local server both run.
//!
//! A request is authenticated before its body is read, its body is read within the body timeout,
//! and everything after that (claiming the idempotency key, storing, the dead-letter queue,
//! recording the answer) happens within one [`Deadline`]. A `2xx` is given only for events that
//! are durable in the raw zone or the dead-letter queue.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use eventlake_contract::{MAX_EVENT_BYTES, PartitionDate, PartitionKey, TeamName, layout};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::api::{Accepted, ApiError, Rejected};
use crate::auth::{AuthError, TokenStore};
use crate::body::{body_text, fingerprint, gunzip, split_events, stamp};
use crate::deadline::{DEFAULT_DEADLINE, Deadline, Phase};
use crate::idempotency::{Answer, Claim, Claimed, IdempotencyStore, batch_id};
use crate::sink::{Landed, RawSink};

/// The contract's limits (section 1) and the request's time limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Body size after decompression (and before it).
    pub max_body_bytes: usize,
    pub max_events: usize,
    pub max_event_bytes: usize,
    /// Events a team may send per second, sustained.
    pub events_per_sec: u32,
    /// Events a team may send at once. Never less than `max_events` (one full batch is always
    /// admissible, whatever the rate) nor than `events_per_sec`.
    pub burst_events: u32,
    /// Storage, the dead-letter queue and the answer all happen within this time of the body's
    /// arrival. Keep it well inside the function timeout.
    pub deadline: Duration,
    /// The whole body must arrive within this time of the headers.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_events: 1000,
            max_event_bytes: MAX_EVENT_BYTES,
            events_per_sec: 2000,
            burst_events: 1000,
            deadline: DEFAULT_DEADLINE,
            body_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The burst actually allowed (see [`Limits::burst_events`]).
    pub fn effective_burst(&self) -> u32 {
        self.burst_events
            .max(self.events_per_sec)
            .max(self.max_events as u32)
            .max(1)
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
    pub claims: Arc<dyn IdempotencyStore>,
    pub limits: Limits,
    pub log: Arc<dyn LogSink>,
    limiter: DefaultKeyedRateLimiter<TeamName>,
}

impl AppState {
    pub fn new(
        tokens: TokenStore,
        sink: RawSink,
        claims: Arc<dyn IdempotencyStore>,
        limits: Limits,
        log: Arc<dyn LogSink>,
    ) -> Self {
        let rate = NonZeroU32::new(limits.events_per_sec.max(1)).expect("non-zero");
        let burst = NonZeroU32::new(limits.effective_burst()).expect("non-zero");
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            tokens,
            sink,
            claims,
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

/// What the request's log line reports.
#[derive(Default)]
struct Outcome {
    team: Option<TeamName>,
    bytes: usize,
    /// Events this request made durable (a replayed answer made nothing durable).
    accepted: usize,
    rejected: usize,
    batch_id: Option<String>,
    replayed: bool,
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
    let mut outcome = Outcome::default();
    let (parts, body) = req.into_parts();
    let mut resp = match handle(&s, &parts.headers, body, &mut outcome).await {
        Ok(r) => r,
        Err(e) => {
            if !e.rejected.is_empty() {
                outcome.rejected = e.rejected.len();
            }
            e.into_response()
        }
    };
    log_request(&s, &request_id, &outcome, resp.status(), started);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// One JSON line per request, which is also a CloudWatch embedded-metric document. Never a token.
fn log_request(s: &AppState, request_id: &str, o: &Outcome, status: StatusCode, started: Instant) {
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
        "bytes": o.bytes,
        "batch_id": o.batch_id,
        "replayed": o.replayed,
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

fn authenticate(s: &AppState, headers: &HeaderMap) -> Result<TeamName, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    s.tokens.authenticate(auth).map_err(|e| {
        ApiError::unauthorized(match e {
            AuthError::Missing => "missing Authorization: Bearer <token>",
            AuthError::Malformed => "Authorization must be Bearer <token>",
            AuthError::Unknown => "unknown token",
        })
    })
}

/// Reads the whole body within the body timeout and the size limit.
async fn read_body(body: Body, limits: &Limits) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "body is larger than {} bytes",
            limits.max_body_bytes
        ))
    };
    match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let e = e.into_inner();
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large())
            } else {
                Err(ApiError::bad_request(format!(
                    "the body could not be read: {e}"
                )))
            }
        }
        Err(_) => Err(ApiError::timeout(format!(
            "the body did not arrive within {:?}",
            limits.body_timeout
        ))),
    }
}

/// The stamped lines of one request and what was rejected, by index.
struct Batch {
    lines: Vec<String>,
    rejected: Vec<Rejected>,
    received_at: DateTime<Utc>,
}

impl Batch {
    fn build(events: &[&str], team: &TeamName, received_at: DateTime<Utc>) -> Self {
        let stamp_text = received_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let partition = partition_of(team, received_at);
        let mut lines = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        let mut ids = std::collections::HashSet::with_capacity(events.len());
        for (index, e) in events.iter().enumerate() {
            match stamp(e, team, &stamp_text, &partition) {
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
        Self {
            lines,
            rejected,
            received_at,
        }
    }

    /// The raw object: the lines as gzip NDJSON. The same lines always give the same bytes.
    fn object(&self) -> Bytes {
        let mut ndjson = Vec::with_capacity(self.lines.iter().map(|l| l.len() + 1).sum());
        for l in &self.lines {
            ndjson.extend_from_slice(l.as_bytes());
            ndjson.push(b'\n');
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &ndjson).expect("in-memory");
        Bytes::from(gz.finish().expect("in-memory"))
    }

    fn raw_key(&self, team: &TeamName, batch_id: &str) -> String {
        layout::raw_object_key(
            &partition_of(team, self.received_at),
            self.received_at.hour(),
            batch_id,
        )
    }
}

fn partition_of(team: &TeamName, at: DateTime<Utc>) -> PartitionKey {
    PartitionKey {
        team: team.clone(),
        dt: PartitionDate::new(at.date_naive()),
    }
}

fn accepted_response(answer: Accepted, replayed: bool) -> Response {
    let mut resp = (StatusCode::ACCEPTED, axum::Json(answer)).into_response();
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

async fn handle(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
    outcome: &mut Outcome,
) -> Result<Response, ApiError> {
    // Who is asking comes first: an unauthenticated body is never read.
    let team = authenticate(s, headers)?;
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
    let gzipped = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(ApiError::unsupported(format!(
                "Content-Encoding {other} is not supported (use gzip)"
            )));
        }
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > s.limits.max_body_bytes as u64
    {
        return Err(ApiError::too_large(format!(
            "body is larger than {} bytes",
            s.limits.max_body_bytes
        )));
    }

    let body = read_body(body, &s.limits).await?;
    outcome.bytes = body.len();
    // The deadline starts once the request is whole: from here on only the server decides.
    let deadline = Deadline::starting_now(s.limits.deadline);
    let body: Vec<u8> = if gzipped {
        gunzip(&body, s.limits.max_body_bytes)?
    } else {
        body.to_vec()
    };
    let text = body_text(&body)?;
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
    let now = Utc::now();
    let batch = Batch::build(&events, &team, now);
    outcome.rejected = batch.rejected.len();
    if batch.lines.is_empty() {
        let mut e = ApiError::bad_request("no event in the request is valid");
        e.rejected = batch.rejected;
        return Err(e);
    }
    throttle(s, &team, batch.lines.len())?;

    if key.is_none() {
        let (answer, stored_at) = land(s, &team, &batch_id, &batch, &deadline, outcome).await?;
        if s.claims.commits() {
            let record = Answer {
                fingerprint: String::new(),
                answer,
                stored_at,
            };
            if let Err(e) = record_answer(s, &team, &batch_id, &record, &deadline).await {
                return Err(not_committed(&batch_id, &e, outcome, "retry the request"));
            }
            return Ok(accepted_response(record.answer, false));
        }
        return Ok(accepted_response(answer, false));
    }
    let fp = fingerprint(text, ndjson);
    let claim = Claim {
        fingerprint: fp.clone(),
        received_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        deadline_ms: now.timestamp_millis() + s.limits.deadline.as_millis() as i64,
    };
    let batch = match claim_key(s, &team, &batch_id, &claim, &deadline).await? {
        Claimed::Won => batch,
        Claimed::Held(held) => {
            match settle_held(s, &team, &batch_id, &fp, &held, &deadline).await? {
                Settled::Replay(answer) => {
                    outcome.replayed = true;
                    return Ok(accepted_response(answer, true));
                }
                // The claimant gave up or died: finish its work exactly as it would have.
                Settled::TakeOver(received_at) => Batch::build(&events, &team, received_at),
            }
        }
    };
    let (answer, stored_at) = land(s, &team, &batch_id, &batch, &deadline, outcome).await?;
    let record = Answer {
        fingerprint: fp,
        answer,
        stored_at,
    };
    // Every request answers with the recorded answer; when it cannot be recorded, the events
    // are durable all the same and a retry rebuilds the same answer from the claim.
    let answer = match record_answer(s, &team, &batch_id, &record, &deadline).await {
        Ok(recorded) if recorded.fingerprint == record.fingerprint => recorded.answer,
        // An answer recorded before claims existed: this request's own answer is the truth.
        Ok(_) => record.answer,
        // The ledger is the commit point: not recorded, not acknowledged; a retry with the
        // same key takes the claim over and records the same answer.
        Err(e) if s.claims.commits() => {
            return Err(not_committed(
                &batch_id,
                &e,
                outcome,
                "retry with the same Idempotency-Key",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, batch_id, "answer not recorded");
            record.answer
        }
    };
    Ok(accepted_response(answer, false))
}

/// Records `record` within the deadline's answer phase: the recorded answer, or why not.
async fn record_answer(
    s: &AppState,
    team: &TeamName,
    batch_id: &str,
    record: &Answer,
    deadline: &Deadline,
) -> Result<Answer, String> {
    match deadline
        .run(Phase::Answer, s.claims.record(team, batch_id, record))
        .await
    {
        Ok(Ok(recorded)) => Ok(recorded),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A batch stored but not committed to the ledger: not acknowledged, and not counted.
fn not_committed(batch_id: &str, error: &str, outcome: &mut Outcome, what_to_do: &str) -> ApiError {
    tracing::error!(
        error,
        batch_id,
        "batch stored but not committed to the ledger"
    );
    outcome.accepted = 0;
    ApiError::unavailable(
        format!("the events could not be committed to the ledger; {what_to_do}"),
        1,
    )
}

fn throttle(s: &AppState, team: &TeamName, events: usize) -> Result<(), ApiError> {
    let n = NonZeroU32::new(events as u32).expect("non-empty");
    match s.limiter.check_key_n(team, n) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(s.limiter.clock().now());
            Err(ApiError::throttled(
                format!(
                    "team {team} is over its rate of {} events per second",
                    s.limits.events_per_sec
                ),
                wait.as_secs_f64().ceil() as u64,
            ))
        }
        // Unreachable while the burst is at least one full batch; said plainly if configured
        // otherwise.
        Err(_) => Err(ApiError::throttled(
            format!(
                "{events} events in one request exceed team {team}'s burst of {} events: send smaller batches or raise EVENTLAKE_BURST_EVENTS",
                s.limits.effective_burst()
            ),
            1,
        )),
    }
}

/// Claims the key, trying again within the storage phase. A key that cannot be claimed is not
/// acknowledged: without the claim, another body could be stored under the same key.
async fn claim_key(
    s: &AppState,
    team: &TeamName,
    batch_id: &str,
    claim: &Claim,
    deadline: &Deadline,
) -> Result<Claimed, ApiError> {
    let mut pause = Duration::from_millis(25);
    loop {
        let error = match deadline
            .run(Phase::Storage, s.claims.claim(team, batch_id, claim))
            .await
        {
            Ok(Ok(claimed)) => return Ok(claimed),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        if deadline.left_in(Phase::Storage) <= pause {
            tracing::error!(error, batch_id, "idempotency key not claimed");
            return Err(ApiError::unavailable(
                "the Idempotency-Key could not be claimed, nothing was stored; retry with the same key",
                1,
            ));
        }
        tracing::warn!(
            error,
            batch_id,
            "claiming the idempotency key failed; trying again"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(400));
    }
}

enum Settled {
    Replay(Accepted),
    TakeOver(DateTime<Utc>),
}

/// Another request holds the key: refuse another body, replay the recorded answer, wait for it
/// while the claimant is within its deadline, or take over once it is past it.
async fn settle_held(
    s: &AppState,
    team: &TeamName,
    batch_id: &str,
    fp: &str,
    held: &Claim,
    deadline: &Deadline,
) -> Result<Settled, ApiError> {
    let reused = || {
        ApiError::key_reused(
            "this Idempotency-Key was already used with another body; send new events with a new key",
        )
    };
    if held.fingerprint != fp {
        return Err(reused());
    }
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, batch_id, "idempotency store unavailable");
        ApiError::unavailable(
            "the idempotency key could not be checked; retry with the same Idempotency-Key",
            1,
        )
    };
    // Wait at most half of this request's own deadline, so that a takeover still has time.
    let wait_until = tokio::time::Instant::now() + deadline.total() / 2;
    let mut poll = Duration::from_millis(20);
    loop {
        match deadline
            .run(Phase::Storage, s.claims.answer(team, batch_id))
            .await
        {
            Ok(Ok(Some(a))) if a.matches(fp) => return Ok(Settled::Replay(a.answer)),
            Ok(Ok(Some(_))) => return Err(reused()),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(unavailable(&e)),
            Err(e) => return Err(unavailable(&e)),
        }
        let claimant_left = held.deadline_ms - Utc::now().timestamp_millis();
        if claimant_left <= 0 {
            let at = DateTime::parse_from_rfc3339(&held.received_at)
                .map_err(|e| unavailable(&e))?
                .with_timezone(&Utc);
            return Ok(Settled::TakeOver(at));
        }
        let next =
            tokio::time::Instant::now() + poll.min(Duration::from_millis(claimant_left as u64 + 1));
        if next > wait_until {
            return Err(ApiError::in_progress(
                "a request with this Idempotency-Key is still being processed; retry with the same key",
                (claimant_left as u64).div_ceil(1000),
            ));
        }
        tokio::time::sleep_until(next).await;
        poll = (poll * 2).min(Duration::from_millis(200));
    }
}

/// Stores the batch (raw zone, else dead-letter queue) within the deadline; the answer to give
/// and the raw object that holds the batch (`None` when it went to the dead-letter queue).
async fn land(
    s: &AppState,
    team: &TeamName,
    batch_id: &str,
    batch: &Batch,
    deadline: &Deadline,
    outcome: &mut Outcome,
) -> Result<(Accepted, Option<String>), ApiError> {
    let raw_key = batch.raw_key(team, batch_id);
    let object = batch.object();
    let landed = s
        .sink
        .land(&raw_key, object.clone(), deadline)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, batch_id, "batch not durable");
            ApiError::unavailable(
                "the events could not be stored; retry with the same Idempotency-Key",
                1,
            )
        })?;
    outcome.accepted = batch.lines.len();
    let stored_at = match landed {
        Landed::Written | Landed::AlreadyThere => Some(raw_key),
        Landed::KeptApart => Some(crate::sink::apart_key(&raw_key, &object)),
        Landed::DeadLettered => None,
    };
    let accepted = Accepted {
        batch_id: batch_id.to_owned(),
        accepted: batch.lines.len(),
        rejected: batch.rejected.clone(),
        durable_in: match landed {
            Landed::DeadLettered => "dead_letter_queue".into(),
            _ => "raw".into(),
        },
    };
    Ok((accepted, stored_at))
}

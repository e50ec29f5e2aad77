//! The ingestion app, driven through its router as API Gateway and the local server drive it.

mod aws_standins;
mod claims;
mod deadline;
mod requests;
mod server;
mod tokens;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eventlake_contract::TeamName;
use eventlake_ingest::app::{AppState, Limits, MemoryLog, router};
use eventlake_ingest::auth::{TokenFile, TokenStore, create_token};
use eventlake_ingest::idempotency::{IdempotencyStore, ObjectClaims};
use eventlake_ingest::sink::{DirDlq, Dlq, RawSink, redrive};
use futures::TryStreamExt;
use http_body_util::BodyExt;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};
use tower::ServiceExt;

/// An app over a lake in any object store, with a folder for the dead-letter queue.
struct Env {
    dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    root: String,
    state: Arc<AppState>,
    log: Arc<MemoryLog>,
    token_a: String,
    token_b: String,
}

/// A short deadline, so that outages are quick to test.
fn test_limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(800),
        ..Limits::default()
    }
}

fn env_on(
    store: Arc<dyn ObjectStore>,
    root: &str,
    limits: Limits,
    dir: tempfile::TempDir,
    dlq: Option<Arc<dyn Dlq>>,
) -> Env {
    let claims = Arc::new(ObjectClaims::new(store.clone(), root));
    env_with_claims(store, root, limits, dir, dlq, claims)
}

/// As [`env_on`], with idempotency claims kept in `claims`.
fn env_with_claims(
    store: Arc<dyn ObjectStore>,
    root: &str,
    limits: Limits,
    dir: tempfile::TempDir,
    dlq: Option<Arc<dyn Dlq>>,
    claims: Arc<dyn IdempotencyStore>,
) -> Env {
    let (token_a, ea) = create_token(&TeamName::new("checkout").unwrap());
    let (token_b, eb) = create_token(&TeamName::new("search").unwrap());
    let tokens = TokenStore::from_file(&TokenFile {
        tokens: vec![ea, eb],
    })
    .unwrap();
    let sink = RawSink::new(store.clone(), root, dlq);
    let log = Arc::new(MemoryLog::default());
    let state = Arc::new(AppState::new(tokens, sink, claims, limits, log.clone()));
    Env {
        dir,
        store,
        root: root.trim_matches('/').to_owned(),
        state,
        log,
        token_a,
        token_b,
    }
}

/// A local lake at `<tmp>/<lake_sub>` and a dead-letter folder at `<tmp>/<dlq_sub>`.
fn env_with(limits: Limits, lake_sub: &str, dlq_sub: Option<&str>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(lake_sub);
    let dlq: Option<Arc<dyn Dlq>> =
        dlq_sub.map(|d| Arc::new(DirDlq::new(dir.path().join(d))) as Arc<dyn Dlq>);
    let root = root.to_str().unwrap().to_owned();
    env_on(Arc::new(LocalFileSystem::new()), &root, limits, dir, dlq)
}

fn env() -> Env {
    let e = env_with(test_limits(), "lake", Some("dlq"));
    std::fs::create_dir_all(e.dir.path().join("lake")).unwrap();
    e
}

impl Env {
    fn dlq(&self) -> DirDlq {
        DirDlq::new(self.dir.path().join("dlq"))
    }

    /// A sink on the same lake without a dead-letter queue, as `ingest redrive` opens it.
    fn redrive_sink(&self) -> RawSink {
        RawSink::new(self.store.clone(), &self.root, None)
    }
}

fn event(id: &str) -> Value {
    json!({
        "event_id": id,
        "event_type": "page_view",
        "event_time": "2026-11-20T13:45:12.345Z",
        "user_id": "u-1",
        "properties": {"path": "/pricing", "duration_ms": 1234},
        "context": {"ip": "203.0.113.7", "locale": "fr-FR"}
    })
}

struct Sent {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(
    e: &Env,
    token: Option<&str>,
    ctype: &str,
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> Sent {
    let mut req = Request::post("/v1/events").header("content-type", ctype);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = router(e.state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Sent {
        status,
        headers,
        body,
    }
}

async fn send_json(e: &Env, token: &str, body: Value) -> Sent {
    send(
        e,
        Some(token),
        "application/json",
        &[],
        body.to_string().into_bytes(),
    )
    .await
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

/// Every raw object written, as (key relative to the lake, decompressed lines).
async fn raw_objects(e: &Env) -> Vec<(String, Vec<Value>)> {
    let prefix = eventlake_store::key_path(&e.root, "raw");
    let metas: Vec<_> = e
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in metas {
        let data = e
            .store
            .get(&m.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&data[..]), &mut text)
            .unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let key = m.location.as_ref();
        let key = key[key.find("raw/").unwrap()..].to_owned();
        out.push((key, lines));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The event ids in the raw zone, sorted, one per line found.
async fn raw_event_ids(e: &Env) -> Vec<String> {
    let mut ids: Vec<String> = raw_objects(e)
        .await
        .iter()
        .flat_map(|(_, lines)| lines.iter())
        .map(|l| l["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_batch_lands_once_in_the_raw_layout_with_server_stamps() {
    let e = env();
    let r = send_json(
        &e,
        &e.token_a,
        json!({"events": [event("e1"), event("e2")]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    assert_eq!(r.body["rejected"], json!([]));
    assert_eq!(r.body["durable_in"], "raw");
    let objects = raw_objects(&e).await;
    assert_eq!(objects.len(), 1);
    let (key, lines) = &objects[0];
    let batch = r.body["batch_id"].as_str().unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        key.starts_with(&format!("raw/team=checkout/dt={today}/hour=")),
        "{key}"
    );
    assert!(key.ends_with(&format!("/{batch}.ndjson.gz")), "{key}");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["team"], "checkout");
    assert_eq!(lines[0]["schema_version"], 1);
    assert_eq!(
        lines[0]["properties"],
        json!({"path": "/pricing", "duration_ms": 1234})
    );
    let received = lines[0]["received_at"].as_str().unwrap();
    assert_eq!(received.len(), "2026-11-20T13:45:12.345Z".len());
    assert!(received.starts_with(&today) && received.ends_with('Z'));
}

#[tokio::test]
async fn ndjson_and_gzip_bodies() {
    let e = env();
    let body = format!("{}\r\n{}\n\n", event("n1"), event("n2"));
    let r = send(
        &e,
        Some(&e.token_a),
        "application/x-ndjson",
        &[("content-encoding", "gzip")],
        gzip(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
}

#[tokio::test]
async fn a_mix_of_good_and_bad_events_lands_the_good_ones_and_reports_the_bad_by_index() {
    let e = env();
    let mut bad_type = event("b1");
    bad_type["event_type"] = json!("Page View");
    let mut bad_time = event("b2");
    bad_time["event_time"] = json!("yesterday");
    let mut other_team = event("b3");
    other_team["team"] = json!("search");
    let mut same_team = event("g3");
    same_team["team"] = json!("checkout");
    let r = send_json(
        &e,
        &e.token_a,
        json!({"events": [event("g1"), bad_type, bad_time, event("g1"), other_team, json!([1]), same_team, {"event_id": "x"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    let reasons: Vec<(u64, String)> = r.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["index"].as_u64().unwrap(),
                x["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            (1, "invalid_event_type".into()),
            (2, "invalid_timestamp".into()),
            (3, "duplicate_event_id".into()),
            (4, "team_mismatch".into()),
            (5, "not_an_object".into()),
            (7, "missing_field".into()),
        ]
    );
    let lines = &raw_objects(&e).await[0].1;
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["g1", "g3"]);
    assert!(lines.iter().all(|l| l["team"] == "checkout"));
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_message() {
    let e = env();
    let t = e.token_a.clone();
    let cases: Vec<(Sent, StatusCode, &str)> = vec![
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[],
                b"{\"events\": [".to_vec(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "body is not valid JSON",
        ),
        (
            send(&e, Some(&t), "application/json", &[], b"[1, 2]".to_vec()).await,
            StatusCode::BAD_REQUEST,
            "body is not the event envelope",
        ),
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[],
                b"{\"data\": []}".to_vec(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "body is not the event envelope",
        ),
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[],
                b"{\"events\": []}".to_vec(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "the request holds no events",
        ),
        (
            send(&e, Some(&t), "text/plain", &[], b"hello".to_vec()).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json or application/x-ndjson, not text/plain",
        ),
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[("content-encoding", "br")],
                b"x".to_vec(),
            )
            .await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Encoding br is not supported",
        ),
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[("content-encoding", "gzip")],
                b"{\"events\":[]}".to_vec(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "Content-Encoding is gzip but the body is not gzip",
        ),
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[],
                b"{\"events\": [\"\xff\"]}".to_vec(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "body is not UTF-8 (at byte 13)",
        ),
        (
            send(&e, None, "application/json", &[], b"{}".to_vec()).await,
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer <token>",
        ),
        (
            send(
                &e,
                Some("elt_0000"),
                "application/json",
                &[],
                b"{}".to_vec(),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unknown token",
        ),
        (
            send(
                &e,
                Some(&t),
                "application/json",
                &[("idempotency-key", "")],
                b"{}".to_vec(),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be",
        ),
    ];
    for (i, (sent, status, msg)) in cases.iter().enumerate() {
        assert_eq!(sent.status, *status, "case {i}: {}", sent.body);
        assert!(
            sent.body["message"].as_str().unwrap().starts_with(msg),
            "case {i}: {}",
            sent.body
        );
    }
    assert_eq!(cases[8].0.headers["www-authenticate"], "Bearer");
    // All bad: 400 with the reasons.
    let mut bad = event("z");
    bad["event_time"] = json!(5);
    let r = send_json(&e, &e.token_a, json!({"events": [bad]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["rejected"][0]["reason"], "wrong_type");
    assert!(raw_objects(&e).await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn size_limits_answer_413_and_write_nothing() {
    let e = env();
    let t = e.token_a.clone();
    // Over the event count.
    let many: Vec<Value> = (0..1001).map(|i| event(&format!("m{i}"))).collect();
    let r = send_json(&e, &t, json!({ "events": many })).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body["message"],
        "1001 events in one request; the limit is 1000"
    );
    // Over the event size.
    let mut big = event("big");
    big["properties"]["pad"] = json!("x".repeat(33 * 1024));
    let r = send_json(&e, &t, json!({ "events": [event("ok"), big] })).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("event 1 is "),
        "{}",
        r.body
    );
    // Over the body size, as sent.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let r = send(&e, Some(&t), "application/json", &[], huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["message"], "body is larger than 1048576 bytes");
    // A gzip bomb: 1 KiB that inflates past the limit; decompression stops at the cap.
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < 100 * 1024);
    let r = send(
        &e,
        Some(&t),
        "application/json",
        &[("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body["message"],
        "body is larger than 1048576 bytes after decompression"
    );
    assert!(raw_objects(&e).await.is_empty());
}

#[tokio::test]
async fn a_retried_request_lands_nothing_new_and_gets_the_same_answer() {
    let e = env();
    let body = json!({"events": [event("i1"), event("i2")]})
        .to_string()
        .into_bytes();
    let key = [("idempotency-key", "order-42")];
    let first = send(&e, Some(&e.token_a), "application/json", &key, body.clone()).await;
    let second = send(&e, Some(&e.token_a), "application/json", &key, body.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.body, second.body);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(raw_objects(&e).await.len(), 1);
    // The same key from another team is another batch.
    let other = send(&e, Some(&e.token_b), "application/json", &key, body).await;
    assert_ne!(other.body["batch_id"], first.body["batch_id"]);
    assert_eq!(raw_objects(&e).await.len(), 2);
}

#[tokio::test]
async fn a_team_over_its_rate_gets_429_with_retry_after() {
    // 10 events a second, and a burst of one full batch (1,000 events).
    let e = env_with(
        Limits {
            events_per_sec: 10,
            ..test_limits()
        },
        "lake",
        Some("dlq"),
    );
    let batch = |p: &str| -> Vec<Value> { (0..600).map(|i| event(&format!("{p}{i}"))).collect() };
    let r = send_json(&e, &e.token_a, json!({ "events": batch("r") })).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = send_json(&e, &e.token_a, json!({ "events": batch("s") })).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // 200 events short at 10 a second: about 20 s.
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((19..=21).contains(&wait), "{wait}");
    assert_eq!(r.body["error"], "throttled");
    // Another team is not affected.
    let r = send_json(&e, &e.token_b, json!({ "events": batch("s") })).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn storage_down_means_dead_letter_then_redrive_lands_each_batch_once() {
    // The lake root is a file: every raw write fails.
    let e = env_with(test_limits(), "lake", Some("dlq"));
    std::fs::write(e.dir.path().join("lake"), b"in the way").unwrap();
    let r = send_json(&e, &e.token_a, json!({"events": [event("d1")]})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["durable_in"], "dead_letter_queue");

    // Storage is back: redrive, twice.
    std::fs::remove_file(e.dir.path().join("lake")).unwrap();
    std::fs::create_dir_all(e.dir.path().join("lake")).unwrap();
    let (sink, dlq) = (e.redrive_sink(), e.dlq());
    let first = redrive(&sink, &dlq, None).await.unwrap();
    assert_eq!((first.written, first.already_there), (1, 0));
    let second = redrive(&sink, &dlq, None).await.unwrap();
    assert_eq!((second.written, second.already_there), (0, 0));
    let objects = raw_objects(&e).await;
    assert_eq!(objects.len(), 1);
    assert!(objects[0].0.ends_with(&format!(
        "{}.ndjson.gz",
        r.body["batch_id"].as_str().unwrap()
    )));
    assert_eq!(objects[0].1[0]["event_id"], "d1");
}

#[tokio::test]
async fn storage_and_dead_letter_queue_down_means_503() {
    let e = env_with(test_limits(), "lake", Some("dlq/blocked"));
    std::fs::write(e.dir.path().join("lake"), b"in the way").unwrap();
    std::fs::write(e.dir.path().join("dlq"), b"in the way too").unwrap();
    let r = send_json(&e, &e.token_a, json!({"events": [event("d1")]})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.body["message"],
        "the events could not be stored; retry with the same Idempotency-Key"
    );
    assert_eq!(r.headers["retry-after"], "1");
}

#[tokio::test]
async fn one_json_log_line_per_request_with_emf_metrics_and_no_token() {
    let e = env();
    send_json(
        &e,
        &e.token_a,
        json!({"events": [event("l1"), {"event_id": "bad"}]}),
    )
    .await;
    send(
        &e,
        Some("elt_wrong_secret"),
        "application/json",
        &[],
        b"{}".to_vec(),
    )
    .await;
    let lines = e.log.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(
            !l.contains(&e.token_a) && !l.contains("elt_wrong_secret"),
            "{l}"
        );
    }
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["team"], "checkout");
    assert_eq!(v["status"], 202);
    assert_eq!(v["EventsAccepted"], 1);
    assert_eq!(v["EventsRejected"], 1);
    assert!(v["request_id"].as_str().unwrap().len() >= 8);
    assert!(v["bytes"].as_u64().unwrap() > 100);
    assert!(v["Latency"].as_f64().unwrap() >= 0.0);
    // The embedded metric format: every metric named in the directive is a number at top level.
    let directive = &v["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "eventlake/ingest");
    assert_eq!(directive["Dimensions"], json!([["team"]]));
    for m in directive["Metrics"].as_array().unwrap() {
        assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
    }
    assert!(v["_aws"]["Timestamp"].is_i64());
    let unauth: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(
        (unauth["status"].as_u64(), unauth["team"].as_str()),
        (Some(401), Some("unauthenticated"))
    );
}

#[tokio::test]
async fn healthz_answers() {
    let e = env();
    let resp = router(e.state.clone())
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// The OpenAPI description names exactly the routes the router serves, and every answer the
/// router gives is documented.
#[tokio::test]
async fn openapi_matches_the_router() {
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (p, ops) in paths {
        for m in ops.as_object().unwrap().keys() {
            documented.push((m.to_uppercase(), p.clone()));
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        vec![
            ("GET".into(), "/healthz".into()),
            ("POST".into(), "/v1/events".into())
        ]
    );
    let e = env();
    for (method, path) in &documented {
        let resp = router(e.state.clone())
            .oneshot(
                Request::builder()
                    .method(method.as_str())
                    .uri(path.as_str())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let code = resp.status().as_u16().to_string();
        let op = &paths[path][method.to_lowercase()];
        assert!(
            op["responses"].get(&code).is_some(),
            "{method} {path} answered {code}, undocumented"
        );
    }
    // An undocumented route is not served.
    let resp = router(e.state.clone())
        .oneshot(Request::get("/v1/other").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // The error codes the app can send are the documented ones.
    let codes: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let src = include_str!("../../src/api.rs");
    for code in &codes {
        assert!(
            src.contains(&format!("\"{code}\"")),
            "{code} documented but never sent"
        );
    }
    let statuses: Vec<&String> = paths["/v1/events"]["post"]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        statuses,
        vec![
            "202", "400", "401", "408", "409", "413", "415", "422", "429", "503"
        ]
    );
}

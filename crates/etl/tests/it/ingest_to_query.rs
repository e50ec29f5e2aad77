//! From HTTP to Parquet: events posted to the ingestion app land where `etl backfill` picks them
//! up, exactly once even when the client retries.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eventlake_contract::TeamName;
use eventlake_ingest::app::{AppState, Limits, MemoryLog, router};
use eventlake_ingest::auth::{TokenFile, TokenStore, create_token};
use eventlake_ingest::idempotency::ObjectClaims;
use eventlake_ingest::sink::RawSink;
use tower::ServiceExt;

use crate::common::TestLake;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_are_compacted_exactly_once() {
    let t = TestLake::new();
    let (token, entry) = create_token(&TeamName::new("checkout").unwrap());
    let tokens = TokenStore::from_file(&TokenFile {
        tokens: vec![entry],
    })
    .unwrap();
    let root = t.lake.path("");
    let sink = RawSink::new(t.lake.store().clone(), root.as_ref(), None);
    let claims = Arc::new(ObjectClaims::new(t.lake.store().clone(), root.as_ref()));
    let state = Arc::new(AppState::new(
        tokens,
        sink,
        claims,
        Limits::default(),
        Arc::new(MemoryLog::default()),
    ));

    let events: Vec<serde_json::Value> = (0..50)
        .map(|i| {
            serde_json::json!({
                "event_id": format!("h-{i}"),
                "event_type": if i % 5 == 0 { "purchase" } else { "page_view" },
                "event_time": "2026-11-20T13:45:12.345+01:00",
                "properties": {"amount_cents": i},
            })
        })
        .collect();
    let body = serde_json::json!({ "events": events }).to_string();
    // The client retries with the same key, and sends one event again in a new request.
    for (key, body) in [("k1", body.clone()), ("k1", body), ("k2", serde_json::json!({"events": [{"event_id": "h-1", "event_type": "page_view", "event_time": "2026-11-20T13:45:12.345Z"}]}).to_string())] {
        let resp = router(state.clone())
            .oneshot(
                Request::post("/v1/events")
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("idempotency-key", key)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }

    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let c = s.partitions[0].counts.clone().unwrap();
    assert_eq!(
        (c.objects, c.lines, c.rows, c.duplicates, c.quarantined),
        (2, 51, 50, 1, 0)
    );
    assert_eq!(
        t.query("select count(*) as n, sum(case when event_type = 'purchase' then 1 else 0 end) as p, min(cast(event_time as varchar)) as t from events where team = 'checkout'").await,
        "n,p,t\n50,10,2026-11-20 12:45:12.345\n"
    );
}

//! One deadline per request, against a store in a brownout: an S3 endpoint that answers every
//! request `503 SlowDown`, behind object_store's own retry policy (10 retries within 180 s).

use std::sync::atomic::{AtomicUsize, Ordering};

use object_store::RetryConfig;
use object_store::aws::AmazonS3Builder;

use super::*;

/// An S3 endpoint on 127.0.0.1 that slows every request down; counts the requests.
async fn slow_down_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/xml")],
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

async fn browned_out(deadline: Duration, dlq: bool) -> (Env, Arc<AtomicUsize>) {
    let (endpoint, hits) = slow_down_endpoint().await;
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_bucket_name("lake")
        .with_region("us-east-1")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_retry(RetryConfig {
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            ..RetryConfig::default()
        })
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue: Option<Arc<dyn Dlq>> =
        dlq.then(|| Arc::new(DirDlq::new(dir.path().join("dlq"))) as Arc<dyn Dlq>);
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    (env_on(Arc::new(store), "events", limits, dir, queue), hits)
}

fn last_log(e: &Env) -> Value {
    serde_json::from_str(e.log.0.lock().unwrap().last().unwrap()).unwrap()
}

#[tokio::test]
async fn a_brownout_reaches_the_dead_letter_queue_within_the_deadline() {
    let deadline = Duration::from_millis(1500);
    let (e, hits) = browned_out(deadline, true).await;
    let started = std::time::Instant::now();
    let r = send_json(&e, &e.token_a, json!({"events": [event("slow-1")]})).await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["durable_in"], "dead_letter_queue");
    // Storage was retried inside the deadline, and the answer came by its end, not after
    // object_store's 180 s.
    assert!(took < deadline + Duration::from_secs(1), "{took:?}");
    assert!(hits.load(Ordering::Relaxed) >= 3, "storage was retried");
    assert_eq!(last_log(&e)["EventsAccepted"], 1);
    assert_eq!(e.dlq().receive(10).await.unwrap().len(), 1);

    // A keyed request cannot claim its key in the same store: refused within the deadline,
    // nothing counted as accepted.
    let started = std::time::Instant::now();
    let r = send(
        &e,
        Some(&e.token_a),
        "application/json",
        &[("idempotency-key", "brownout-1")],
        json!({"events": [event("slow-2")]})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(last_log(&e)["EventsAccepted"], 0);
}

#[tokio::test]
async fn a_brownout_without_a_dead_letter_queue_is_503_and_counts_nothing() {
    let deadline = Duration::from_millis(1000);
    let (e, _) = browned_out(deadline, false).await;
    let started = std::time::Instant::now();
    let r = send_json(&e, &e.token_a, json!({"events": [event("slow-2")]})).await;
    assert!(started.elapsed() < deadline + Duration::from_secs(1));
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let log = last_log(&e);
    assert_eq!(log["status"], 503);
    assert_eq!(log["EventsAccepted"], 0);
}

//! What a careless client sends: exact numbers, byte order marks, bodies without credentials,
//! bodies that stop, batches larger than the team's rate.

use futures::StreamExt;

use super::*;

/// Every raw object's text, decompressed, in key order.
async fn raw_text(e: &Env) -> String {
    let prefix = eventlake_store::key_path(&e.root, "raw");
    let mut metas: Vec<_> = e.store.list(Some(&prefix)).try_collect().await.unwrap();
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    let mut text = String::new();
    for m in metas {
        let data = e
            .store
            .get(&m.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&data[..]), &mut text)
            .unwrap();
    }
    text
}

#[tokio::test]
async fn numbers_are_stored_as_the_client_wrote_them() {
    let e = env();
    let body = r#"{"events":[{"event_id":"n1","event_type":"purchase","event_time":"2026-11-20T13:45:12Z",
        "properties": {"big": 123456789012345678901234567890, "exp": 1e5, "price": 19.90, "tiny": 1E-7}}]}"#;
    let r = send(
        &e,
        Some(&e.token_a),
        "application/json",
        &[],
        body.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let text = raw_text(&e).await;
    assert!(
        text.contains(
            r#""properties":{"big":123456789012345678901234567890,"exp":1e5,"price":19.90,"tiny":1E-7}"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn the_event_size_limit_applies_to_what_the_client_sent() {
    let e = env();
    // 7,000 numbers written as `1e5`: under 32 KiB as sent, over 33 KiB if re-printed as
    // `100000.0`.
    let numbers = vec!["1e5"; 7000].join(",");
    let ev = format!(
        r#"{{"event_id":"wide","event_type":"t","event_time":"2026-11-20T13:45:12Z","properties":{{"n":[{numbers}]}}}}"#
    );
    assert!(ev.len() < 32 * 1024);
    let r = send(
        &e,
        Some(&e.token_a),
        "application/x-ndjson",
        &[],
        ev.into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
}

#[tokio::test]
async fn a_byte_order_mark_is_fine_in_both_body_formats() {
    let e = env();
    let nd = format!("\u{feff}{}\n{}\n", event("bom1"), event("bom2"));
    let r = send(
        &e,
        Some(&e.token_a),
        "application/x-ndjson",
        &[],
        nd.into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    assert_eq!(r.body["rejected"], json!([]));
    let js = format!("\u{feff}{}", json!({"events": [event("bom3")]}));
    let r = send(
        &e,
        Some(&e.token_a),
        "application/json",
        &[("content-encoding", "gzip")],
        gzip(js.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(raw_event_ids(&e).await, vec!["bom1", "bom2", "bom3"]);
}

#[tokio::test]
async fn credentials_are_checked_before_the_body_is_read() {
    let e = env();
    let huge = vec![b'x'; 2 * 1024 * 1024];
    let r = send(&e, None, "application/json", &[], huge.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = send(
        &e,
        Some("elt_wrong"),
        "application/json",
        &[("content-length", "2097152")],
        huge,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // With a credential, the declared length alone is refused, before any byte is read.
    let r = send(
        &e,
        Some(&e.token_a),
        "application/json",
        &[("content-length", "2097152")],
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
}

#[tokio::test]
async fn a_body_that_breaks_off_is_logged_as_such_for_its_team() {
    let e = env();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"events\": [".to_vec()),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let req = Request::post("/v1/events")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", e.token_a))
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let resp = router(e.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let log: Value = serde_json::from_str(&e.log.0.lock().unwrap()[0]).unwrap();
    assert_eq!(log["status"], 400);
    assert_eq!(log["team"], "checkout");
    assert!(raw_objects(&e).await.is_empty());
}

#[tokio::test]
async fn a_batch_larger_than_the_rate_is_admitted_against_the_burst() {
    let e = env_with(
        Limits {
            events_per_sec: 50,
            ..test_limits()
        },
        "lake",
        Some("dlq"),
    );
    std::fs::create_dir_all(e.dir.path().join("lake")).unwrap();
    let batch: Vec<Value> = (0..51).map(|i| event(&format!("b{i}"))).collect();
    let r = send_json(&e, &e.token_a, json!({ "events": batch })).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 51);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let e = env_with(
        Limits {
            body_timeout: Duration::from_millis(200),
            ..test_limits()
        },
        "lake",
        Some("dlq"),
    );
    let stalled =
        futures::stream::once(async { Ok::<_, std::io::Error>(b"{\"events\": [".to_vec()) })
            .chain(futures::stream::pending());
    let req = Request::post("/v1/events")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", e.token_a))
        .body(Body::from_stream(stalled))
        .unwrap();
    let resp = router(e.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
}

//! Idempotency keys under races and outages. The scenarios are functions over an [`Env`], so the
//! same ones run on a local folder here and on S3 in `aws_standins`; [`conformance`] holds any
//! [`IdempotencyStore`] to the contract the app relies on.

use super::*;
use eventlake_ingest::api::Accepted;
use eventlake_ingest::body::fingerprint;
use eventlake_ingest::idempotency::{Answer, Claim, Claimed, IdempotencyStore};

/// The body of request `n` of a round: `n + 1` events with ids of its own.
fn body_of(round: usize, n: usize) -> String {
    let events: Vec<Value> = (0..=n)
        .map(|i| event(&format!("race{round}-{n}-{i}")))
        .collect();
    json!({ "events": events }).to_string()
}

pub(crate) async fn send_keyed(e: &Env, token: &str, key: &str, body: String) -> Sent {
    send(
        e,
        Some(token),
        "application/json",
        &[("idempotency-key", key)],
        body.into_bytes(),
    )
    .await
}

/// Ten requests with one key and ten different bodies, at once: one is stored and answered 202,
/// the nine others get 422 (or, with `retries_allowed`, a retryable status whose retry gets 422)
/// and store nothing; the raw zone holds exactly what the 202 said; a
/// retry of the winner replays its answer.
pub(crate) async fn one_key_ten_bodies_at_once(e: &Env, rounds: usize, retries_allowed: bool) {
    for round in 0..rounds {
        let key = format!("race-{round}-{:08x}", rand::random::<u32>());
        let sent = futures::future::join_all(
            (0..10).map(|n| send_keyed(e, &e.token_a, &key, body_of(round, n))),
        )
        .await;
        let won: Vec<(usize, &Sent)> = sent
            .iter()
            .enumerate()
            .filter(|(_, s)| s.status == StatusCode::ACCEPTED)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {:?}", statuses(&sent));
        for (n, s) in sent.iter().enumerate() {
            if s.status == StatusCode::ACCEPTED {
                continue;
            }
            // A store that serialises concurrent conditional writes may run a loser out of
            // time: it is told to retry, and its retry is refused.
            if matches!(
                s.status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT
            ) && retries_allowed
            {
                let again = send_keyed(e, &e.token_a, &key, body_of(round, n)).await;
                assert_eq!(
                    again.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{}",
                    again.body
                );
                continue;
            }
            assert_eq!(s.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", s.body);
            assert_eq!(s.body["error"], "idempotency_key_reused");
        }
        let (n, winner) = won[0];
        assert_eq!(winner.body["accepted"], n + 1);
        let batch = winner.body["batch_id"].as_str().unwrap();
        let stored: Vec<(String, Vec<Value>)> = raw_objects(e)
            .await
            .into_iter()
            .filter(|(k, _)| k.contains(batch))
            .collect();
        assert_eq!(stored.len(), 1, "round {round}: {stored:?}");
        let ids: Vec<&str> = stored[0]
            .1
            .iter()
            .map(|l| l["event_id"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..=n).map(|i| format!("race{round}-{n}-{i}")).collect();
        assert_eq!(ids, expected, "round {round}: the answer says {n} + 1");
        let again = send_keyed(e, &e.token_a, &key, body_of(round, n)).await;
        assert_eq!(again.status, StatusCode::ACCEPTED);
        assert_eq!(again.body, winner.body);
        assert_eq!(again.headers["idempotent-replayed"], "true");
    }
}

/// Ten copies of one request at once: every one is told the same, and it is stored once.
pub(crate) async fn one_key_one_body_ten_times_at_once(e: &Env) {
    let key = format!("copies-{:08x}", rand::random::<u32>());
    let body = body_of(99, 4);
    let sent =
        futures::future::join_all((0..10).map(|_| send_keyed(e, &e.token_a, &key, body.clone())))
            .await;
    for s in &sent {
        assert_eq!(s.status, StatusCode::ACCEPTED, "{:?}", statuses(&sent));
        assert_eq!(s.body, sent[0].body);
    }
    let batch = sent[0].body["batch_id"].as_str().unwrap();
    let stored: Vec<_> = raw_objects(e)
        .await
        .into_iter()
        .filter(|(k, _)| k.contains(batch))
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.len(), 5);
}

fn statuses(sent: &[Sent]) -> Vec<u16> {
    sent.iter().map(|s| s.status.as_u16()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_and_different_bodies_store_and_answer_one() {
    let e = env();
    one_key_ten_bodies_at_once(&e, 8, false).await;
    one_key_one_body_ten_times_at_once(&e).await;
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_while_storage_is_down_and_after() {
    let e = env();
    // The raw zone is unwritable, the rest of the lake is not.
    std::fs::write(e.dir.path().join("lake/raw"), b"in the way").unwrap();
    let first = send_keyed(&e, &e.token_a, "outage-1", body_of(1, 1)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["durable_in"], "dead_letter_queue");
    let other = send_keyed(&e, &e.token_a, "outage-1", body_of(2, 3)).await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.body
    );
    let retry = send_keyed(&e, &e.token_a, "outage-1", body_of(1, 1)).await;
    assert_eq!(retry.body, first.body);

    std::fs::remove_file(e.dir.path().join("lake/raw")).unwrap();
    let r = redrive(&e.redrive_sink(), &e.dlq(), None).await.unwrap();
    assert_eq!((r.written, r.already_there, r.kept_apart), (1, 0, 0));
    assert_eq!(raw_event_ids(&e).await, vec!["race1-1-0", "race1-1-1"]);
    let after = send_keyed(&e, &e.token_a, "outage-1", body_of(2, 3)).await;
    assert_eq!(after.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_key_that_cannot_be_claimed_is_not_acknowledged() {
    // The whole lake is unwritable: neither the key nor the raw zone can be written, only the
    // dead-letter queue. A keyed request is refused (its retry will claim the key); a request
    // without a key has nothing to claim and is dead-lettered.
    let e = env_with(test_limits(), "lake", Some("dlq"));
    std::fs::write(e.dir.path().join("lake"), b"in the way").unwrap();
    let keyed = send_keyed(&e, &e.token_a, "dark-1", body_of(1, 1)).await;
    assert_eq!(
        keyed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        keyed.body
    );
    assert!(
        keyed.body["message"]
            .as_str()
            .unwrap()
            .starts_with("the Idempotency-Key could not be claimed"),
        "{}",
        keyed.body
    );
    let log: Value = serde_json::from_str(&e.log.0.lock().unwrap()[0]).unwrap();
    assert_eq!(log["EventsAccepted"], 0);
    let plain = send_json(
        &e,
        &e.token_a,
        serde_json::from_str(&body_of(2, 0)).unwrap(),
    )
    .await;
    assert_eq!(plain.status, StatusCode::ACCEPTED, "{}", plain.body);
    assert_eq!(plain.body["durable_in"], "dead_letter_queue");
    assert_eq!(e.dlq().receive(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_batches_dead_lettered_under_one_key_are_both_redriven() {
    // However two different batches came to share a raw key, redrive keeps both.
    let e = env();
    let key = "raw/team=checkout/dt=2026-11-25/hour=10/kshared.ndjson.gz";
    let batch = |id: &str| gzip(format!("{}\n", event(id)).as_bytes());
    for id in ["one", "two", "one"] {
        e.dlq()
            .send(&eventlake_ingest::sink::DeadLetter::new(key, &batch(id)))
            .await
            .unwrap();
    }
    // The same letter sent twice is kept once.
    assert_eq!(e.dlq().receive(10).await.unwrap().len(), 2);
    let r = redrive(&e.redrive_sink(), &e.dlq(), None).await.unwrap();
    assert_eq!((r.written, r.kept_apart), (1, 1), "{r:?}");
    assert_eq!(raw_event_ids(&e).await, vec!["one", "two"]);
    let keys: Vec<String> = raw_objects(&e).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&key.to_owned()), "{keys:?}");
}

fn team_a() -> TeamName {
    TeamName::new("checkout").unwrap()
}

fn batch_of(key: &str) -> String {
    eventlake_ingest::idempotency::batch_id(&team_a(), Some(key))
}

fn claims_of(e: &Env) -> ObjectClaims {
    ObjectClaims::new(e.store.clone(), &e.root)
}

#[tokio::test]
async fn a_retry_waits_for_the_request_in_flight_then_gets_its_answer() {
    let e = env();
    let body = body_of(3, 2);
    let claim = Claim {
        fingerprint: fingerprint(&body, false),
        received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        deadline_ms: chrono::Utc::now().timestamp_millis() + 30_000,
    };
    let claims = claims_of(&e);
    let batch = batch_of("inflight-1");
    assert_eq!(
        claims.claim(&team_a(), &batch, &claim).await.unwrap(),
        Claimed::Won
    );
    // The claimant is within its deadline and has not answered: come back later.
    let r = send_keyed(&e, &e.token_a, "inflight-1", body.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"], "request_in_progress");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(raw_objects(&e).await.is_empty());
    // It answers while the retry waits: the retry gets that answer.
    let answer = Accepted {
        batch_id: batch.clone(),
        accepted: 3,
        rejected: vec![],
        durable_in: "raw".into(),
    };
    let waiter = {
        let body = body.clone();
        let e = &e;
        async move { send_keyed(e, &e.token_a, "inflight-1", body).await }
    };
    let recorder = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        claims
            .record(
                &team_a(),
                &batch,
                &Answer {
                    fingerprint: claim.fingerprint.clone(),
                    answer: answer.clone(),
                    stored_at: None,
                },
            )
            .await
            .unwrap();
    };
    let (r, ()) = tokio::join!(waiter, recorder);
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body, serde_json::to_value(&answer).unwrap());
}

#[tokio::test]
async fn a_retry_finishes_the_work_of_a_claimant_that_died() {
    let e = env();
    let body = body_of(4, 1);
    let then = chrono::Utc::now() - chrono::Duration::seconds(30);
    let stamp = then.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let claim = Claim {
        fingerprint: fingerprint(&body, false),
        received_at: stamp.clone(),
        deadline_ms: then.timestamp_millis() + 5_000,
    };
    let batch = batch_of("died-1");
    claims_of(&e)
        .claim(&team_a(), &batch, &claim)
        .await
        .unwrap();
    let r = send_keyed(&e, &e.token_a, "died-1", body.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["accepted"], 2);
    let objects = raw_objects(&e).await;
    assert_eq!(objects.len(), 1);
    // Stamped and placed as the claimant would have: a copy it may have written is the same.
    assert!(
        objects[0]
            .0
            .contains(&format!("/hour={}/", then.format("%H"))),
        "{}",
        objects[0].0
    );
    assert!(
        objects[0]
            .1
            .iter()
            .all(|l| l["received_at"] == stamp.as_str())
    );
    let again = send_keyed(&e, &e.token_a, "died-1", body).await;
    assert_eq!(again.body, r.body);
    assert_eq!(raw_objects(&e).await.len(), 1);
}

/// What the app relies on from an idempotency store, for any implementation.
pub(crate) async fn conformance(store: Arc<dyn IdempotencyStore>) {
    let team = team_a();
    let batch = format!("kconf{:08x}", rand::random::<u32>());
    let claim = |fp: &str| Claim {
        fingerprint: fp.into(),
        received_at: "2026-11-25T10:00:00.000Z".into(),
        deadline_ms: 1,
    };
    assert_eq!(store.claim_of(&team, &batch).await.unwrap(), None);
    assert_eq!(store.answer(&team, &batch).await.unwrap(), None);
    assert_eq!(
        store.claim(&team, &batch, &claim("a")).await.unwrap(),
        Claimed::Won
    );
    assert_eq!(
        store.claim(&team, &batch, &claim("b")).await.unwrap(),
        Claimed::Held(claim("a"))
    );
    assert_eq!(
        store.claim_of(&team, &batch).await.unwrap(),
        Some(claim("a"))
    );
    // Another team's key of the same name is another key.
    let other = TeamName::new("search").unwrap();
    assert_eq!(
        store.claim(&other, &batch, &claim("b")).await.unwrap(),
        Claimed::Won
    );
    let answer = |n: usize| Answer {
        fingerprint: "a".into(),
        answer: Accepted {
            batch_id: batch.clone(),
            accepted: n,
            rejected: vec![],
            durable_in: "raw".into(),
        },
        stored_at: Some(format!(
            "raw/team=checkout/dt=2026-11-25/hour=10/{batch}-{n}.ndjson.gz"
        )),
    };
    assert_eq!(
        store.record(&team, &batch, &answer(1)).await.unwrap(),
        answer(1)
    );
    // The first answer recorded stays the answer.
    assert_eq!(
        store.record(&team, &batch, &answer(2)).await.unwrap(),
        answer(1)
    );
    assert_eq!(store.answer(&team, &batch).await.unwrap(), Some(answer(1)));

    // Many claimants at once: exactly one wins, and every loser sees the winner's claim.
    let raced = format!("krace{:08x}", rand::random::<u32>());
    let results = futures::future::join_all((0..16).map(|i| {
        let store = store.clone();
        let team = team.clone();
        let raced = raced.clone();
        async move {
            let c = claim(&format!("fp{i}"));
            (c.clone(), store.claim(&team, &raced, &c).await.unwrap())
        }
    }))
    .await;
    let winners: Vec<&Claim> = results
        .iter()
        .filter(|(_, r)| *r == Claimed::Won)
        .map(|(c, _)| c)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (_, r) in &results {
        if let Claimed::Held(h) = r {
            assert_eq!(h, winners[0]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_claims_on_a_local_folder_conform() {
    let dir = tempfile::tempdir().unwrap();
    conformance(Arc::new(ObjectClaims::new(
        Arc::new(LocalFileSystem::new()),
        dir.path().to_str().unwrap(),
    )))
    .await;
}

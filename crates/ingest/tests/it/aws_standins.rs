//! The AWS side against local stand-ins: S3 (SeaweedFS), SQS and SSM (moto). `tests/run.sh`
//! starts them and runs these tests; without them these tests fail, they never pass silently.

use std::sync::Arc;

use bytes::Bytes;
use eventlake_contract::TeamName;
use eventlake_ingest::app::Limits;
use eventlake_ingest::auth::{TokenFile, create_token};
use eventlake_ingest::aws::{SqsDlq, tokens_from_parameter};
use eventlake_ingest::deadline::Deadline;
use eventlake_ingest::idempotency::ObjectClaims;
use eventlake_ingest::sink::{DeadLetter, Dlq, Landed, RawSink, redrive};
use object_store::local::LocalFileSystem;

/// `s3://bucket/prefix` on the S3 stand-in, unique to this test.
fn s3_lake(name: &str) -> String {
    let base = std::env::var("EVENTLAKE_TEST_S3_LAKE")
        .expect("EVENTLAKE_TEST_S3_LAKE is not set: run tests/run.sh, which starts the stand-ins");
    format!(
        "{base}/{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

async fn sdk() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run tests/run.sh, which starts the stand-ins"
    );
    eventlake_store::sdk_config().await
}

#[tokio::test]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn raw_writes_on_s3_are_create_if_absent() {
    let loc = eventlake_store::open(&s3_lake("cia"), false).unwrap();
    let sink = RawSink::new(loc.store, &loc.root, None);
    let key = "raw/team=checkout/dt=2026-11-25/hour=10/kabc.ndjson.gz";
    assert_eq!(
        sink.put_if_absent(key, Bytes::from_static(b"first"))
            .await
            .unwrap(),
        Landed::Written
    );
    assert_eq!(
        sink.put_if_absent(key, Bytes::from_static(b"second"))
            .await
            .unwrap(),
        Landed::AlreadyThere
    );
    assert_eq!(
        sink.get(key).await.unwrap().unwrap(),
        Bytes::from_static(b"first")
    );
    assert_eq!(sink.get("raw/none").await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn storage_down_goes_to_sqs_and_redrive_lands_each_batch_once_in_s3() {
    let sdk = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name(format!("eventlake-dlq-{:08x}", rand::random::<u32>()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let dlq: Arc<dyn Dlq> = Arc::new(SqsDlq::new(&sdk, &queue));

    // Storage that always fails: the root is a file.
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"in the way").unwrap();
    let down = RawSink::new(
        Arc::new(LocalFileSystem::new()),
        blocked.to_str().unwrap(),
        Some(dlq.clone()),
    );
    let key = "raw/team=checkout/dt=2026-11-25/hour=10/kdlq.ndjson.gz";
    // A deadline that leaves the queue its share even when moto is busy with other tests (a
    // 400 ms one left it 60 ms).
    let deadline = Deadline::starting_now(std::time::Duration::from_secs(3));
    assert_eq!(
        down.land(key, Bytes::from_static(b"batch"), &deadline)
            .await
            .unwrap(),
        Landed::DeadLettered
    );

    let loc = eventlake_store::open(&s3_lake("redrive"), false).unwrap();
    let s3 = RawSink::new(loc.store, &loc.root, None);
    let first = redrive(&s3, dlq.as_ref(), None).await.unwrap();
    assert_eq!((first.written, first.already_there), (1, 0));
    let again = redrive(&s3, dlq.as_ref(), None).await.unwrap();
    assert_eq!((again.written, again.already_there), (0, 0));
    assert_eq!(
        s3.get(key).await.unwrap().unwrap(),
        Bytes::from_static(b"batch")
    );

    // A batch too large for an SQS message is refused, so the request answers 503.
    let huge = DeadLetter {
        key: key.into(),
        data_base64: "A".repeat(300 * 1024),
    };
    let err = dlq.send(&huge).await.unwrap_err().to_string();
    assert!(err.contains("over the queue's 262144 byte limit"), "{err}");
}

#[tokio::test]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn tokens_come_from_an_ssm_parameter() {
    let sdk = sdk().await;
    let team = TeamName::new("checkout").unwrap();
    let (token, entry) = create_token(&team);
    let name = format!("/eventlake/test/tokens-{:08x}", rand::random::<u32>());
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(
            serde_json::to_string(&TokenFile {
                tokens: vec![entry],
            })
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let store = tokens_from_parameter(&sdk, &name).await.unwrap();
    assert_eq!(
        store.authenticate(Some(&format!("Bearer {token}"))),
        Ok(team)
    );
    let missing = tokens_from_parameter(&sdk, "/eventlake/test/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("ssm GetParameter /eventlake/test/none"),
        "{missing}"
    );
    assert!(!missing.contains(&token));
}

/// An app on an S3 lake of its own.
fn s3_env(name: &str, limits: Limits) -> crate::Env {
    let loc = eventlake_store::open(&s3_lake(name), false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dlq: Arc<dyn Dlq> = Arc::new(eventlake_ingest::sink::DirDlq::new(dir.path().join("dlq")));
    crate::env_on(loc.store, &loc.root, limits, dir, Some(dlq))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn object_claims_on_s3_conform() {
    let loc = eventlake_store::open(&s3_lake("claims"), false).unwrap();
    crate::claims::conformance(Arc::new(ObjectClaims::new(loc.store, &loc.root))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn concurrent_requests_with_one_key_on_s3_store_and_answer_one() {
    // The S3 stand-in serialises concurrent conditional writes to one key, a second or more
    // apart: give requests the time a production deadline gives them.
    let limits = Limits {
        deadline: std::time::Duration::from_secs(10),
        ..Limits::default()
    };
    let e = s3_env("race", limits);
    crate::claims::one_key_ten_bodies_at_once(&e, 8, true).await;
    crate::claims::one_key_one_body_ten_times_at_once(&e).await;
}

/// A ledger table on the DynamoDB stand-in, unique to this test, made as Terraform makes it;
/// making it again finds it there.
async fn ledger_table(sdk: &aws_config::SdkConfig, name: &str) -> String {
    use eventlake_ingest::ledger::create_table;
    let table = format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    assert!(create_table(sdk, &table).await.unwrap());
    assert!(!create_table(sdk, &table).await.unwrap());
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn the_dynamodb_ledger_conforms() {
    use eventlake_ingest::idempotency::{Answer, Claim, IdempotencyStore};
    use eventlake_ingest::ledger::{DEFAULT_RETENTION, DynamoLedger};
    let sdk = sdk().await;
    let table = ledger_table(&sdk, "ledger-conf").await;
    let ledger = Arc::new(DynamoLedger::new(&sdk, &table, DEFAULT_RETENTION));
    crate::claims::conformance(ledger.clone()).await;

    // The item says what the fan-out and the TTL need: its state, team and batch, and when it
    // expires.
    let team = TeamName::new("checkout").unwrap();
    let claim = Claim {
        fingerprint: "f".into(),
        received_at: "2026-11-25T10:00:00.000Z".into(),
        deadline_ms: 1,
    };
    ledger.claim(&team, "kitem", &claim).await.unwrap();
    let answer = Answer {
        fingerprint: "f".into(),
        answer: eventlake_ingest::api::Accepted {
            batch_id: "kitem".into(),
            accepted: 3,
            rejected: vec![],
            durable_in: "raw".into(),
        },
        stored_at: Some("raw/team=checkout/dt=2026-11-25/hour=10/kitem.ndjson.gz".into()),
    };
    ledger.record(&team, "kitem", &answer).await.unwrap();
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("checkout#kitem".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let s = |k: &str| item[k].as_s().unwrap().clone();
    assert_eq!(
        (s("state"), s("team"), s("batch_id"), s("durable_in")),
        (
            "accepted".into(),
            "checkout".into(),
            "kitem".into(),
            "raw".into()
        )
    );
    assert_eq!(item["accepted"].as_n().unwrap(), "3");
    assert_eq!(
        s("stored_at"),
        "raw/team=checkout/dt=2026-11-25/hour=10/kitem.ndjson.gz"
    );
    let expires: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now + DEFAULT_RETENTION.as_secs() - 600,
        "{expires}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn concurrent_requests_with_one_key_on_the_ledger_store_and_answer_one() {
    use eventlake_ingest::ledger::{DEFAULT_RETENTION, DynamoLedger};
    let sdk = sdk().await;
    let table = ledger_table(&sdk, "ledger-race").await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.to_str().unwrap().to_owned();
    let dlq: Arc<dyn Dlq> = Arc::new(eventlake_ingest::sink::DirDlq::new(dir.path().join("dlq")));
    let e = crate::env_with_claims(
        Arc::new(LocalFileSystem::new()),
        &root,
        Limits {
            deadline: std::time::Duration::from_secs(5),
            ..Limits::default()
        },
        dir,
        Some(dlq),
        Arc::new(DynamoLedger::new(&sdk, &table, DEFAULT_RETENTION)),
    );
    crate::claims::one_key_ten_bodies_at_once(&e, 8, true).await;
    crate::claims::one_key_one_body_ten_times_at_once(&e).await;
}

/// The ledger, whose first `failing` answers cannot be recorded (a throttled or unreachable
/// table at the commit point).
#[derive(Debug)]
struct FlakyLedger {
    inner: eventlake_ingest::ledger::DynamoLedger,
    failing: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl eventlake_ingest::idempotency::IdempotencyStore for FlakyLedger {
    fn commits(&self) -> bool {
        true
    }
    async fn claim(
        &self,
        team: &TeamName,
        batch_id: &str,
        claim: &eventlake_ingest::idempotency::Claim,
    ) -> Result<
        eventlake_ingest::idempotency::Claimed,
        eventlake_ingest::idempotency::IdempotencyError,
    > {
        self.inner.claim(team, batch_id, claim).await
    }
    async fn claim_of(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<
        Option<eventlake_ingest::idempotency::Claim>,
        eventlake_ingest::idempotency::IdempotencyError,
    > {
        self.inner.claim_of(team, batch_id).await
    }
    async fn answer(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<
        Option<eventlake_ingest::idempotency::Answer>,
        eventlake_ingest::idempotency::IdempotencyError,
    > {
        self.inner.answer(team, batch_id).await
    }
    async fn record(
        &self,
        team: &TeamName,
        batch_id: &str,
        answer: &eventlake_ingest::idempotency::Answer,
    ) -> Result<
        eventlake_ingest::idempotency::Answer,
        eventlake_ingest::idempotency::IdempotencyError,
    > {
        use std::sync::atomic::Ordering;
        if self
            .failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(eventlake_ingest::idempotency::IdempotencyError::Ledger {
                key: batch_id.to_owned(),
                detail: "ProvisionedThroughputExceededException".into(),
                source: "throttled".into(),
            });
        }
        self.inner.record(team, batch_id, answer).await
    }
}

/// The ledger item of a batch, as the bus's stream sees it.
async fn ledger_item(
    sdk: &aws_config::SdkConfig,
    table: &str,
    pk: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn with_the_ledger_every_batch_is_committed_before_it_is_acknowledged() {
    use eventlake_ingest::ledger::{DEFAULT_RETENTION, DynamoLedger};
    let sdk = sdk().await;
    let table = ledger_table(&sdk, "ledger-commit").await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let root = lake.to_str().unwrap().to_owned();
    let dlq: Arc<dyn Dlq> = Arc::new(eventlake_ingest::sink::DirDlq::new(dir.path().join("dlq")));
    let ledger = Arc::new(FlakyLedger {
        inner: DynamoLedger::new(&sdk, &table, DEFAULT_RETENTION),
        failing: 0.into(),
    });
    let e = crate::env_with_claims(
        Arc::new(LocalFileSystem::new()),
        &root,
        Limits {
            deadline: std::time::Duration::from_secs(2),
            ..Limits::default()
        },
        dir,
        Some(dlq),
        ledger.clone(),
    );
    let body = || serde_json::json!({"events": [crate::event("l-1"), crate::event("l-2")]});

    // Without a key: recorded all the same, naming the raw object that holds it.
    let sent = crate::send_json(&e, &e.token_a, body()).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let batch = sent.body["batch_id"].as_str().unwrap().to_owned();
    let item = ledger_item(&sdk, &table, &format!("checkout#{batch}"))
        .await
        .expect("an unkeyed batch is in the ledger");
    assert_eq!(item["state"].as_s().unwrap(), "accepted");
    let stored_at = item["stored_at"].as_s().unwrap();
    assert!(lake.join(stored_at).exists(), "{stored_at}");

    // The commit fails: no 2xx, and nothing counted as accepted.
    ledger.failing.store(1, std::sync::atomic::Ordering::SeqCst);
    let sent = crate::send_json(&e, &e.token_a, body()).await;
    assert_eq!(sent.status, 503, "{}", sent.body);
    assert!(
        sent.body["message"].as_str().unwrap().contains("ledger"),
        "{}",
        sent.body
    );

    // With a key: the failed commit answers 503, and a retry with the same key completes it.
    ledger.failing.store(1, std::sync::atomic::Ordering::SeqCst);
    let first = crate::claims::send_keyed(&e, &e.token_a, "commit-1", body().to_string()).await;
    assert_eq!(first.status, 503, "{}", first.body);
    let mut answered = None;
    for _ in 0..20 {
        let retry = crate::claims::send_keyed(&e, &e.token_a, "commit-1", body().to_string()).await;
        if retry.status == 202 || retry.status == 200 {
            answered = Some(retry);
            break;
        }
        assert!(
            [409, 503].contains(&retry.status.as_u16()),
            "{} {}",
            retry.status,
            retry.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let answered = answered.expect("a retry completes the commit");
    let batch = answered.body["batch_id"].as_str().unwrap().to_owned();
    let item = ledger_item(&sdk, &table, &format!("checkout#{batch}"))
        .await
        .unwrap();
    assert_eq!(item["state"].as_s().unwrap(), "accepted");
    assert_eq!(item["accepted"].as_n().unwrap(), "2");
    assert!(lake.join(item["stored_at"].as_s().unwrap()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_dead_lettered_batch_is_noted_in_the_ledger_when_redriven_once() {
    use eventlake_ingest::ledger::{DEFAULT_RETENTION, DynamoLedger};
    let sdk = sdk().await;
    let table = ledger_table(&sdk, "ledger-redrive").await;
    let dir = tempfile::tempdir().unwrap();
    // Storage that always fails (the lake root is a file): the batch goes to the DLQ folder.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, b"in the way").unwrap();
    let dlq_dir = dir.path().join("dlq");
    let dlq: Arc<dyn Dlq> = Arc::new(eventlake_ingest::sink::DirDlq::new(&dlq_dir));
    let ledger = Arc::new(DynamoLedger::new(&sdk, &table, DEFAULT_RETENTION));
    let e = crate::env_with_claims(
        Arc::new(LocalFileSystem::new()),
        blocked.to_str().unwrap(),
        Limits {
            deadline: std::time::Duration::from_secs(3),
            ..Limits::default()
        },
        dir,
        Some(dlq.clone()),
        ledger.clone(),
    );
    let body = serde_json::json!({"events": [crate::event("dl-1")]}).to_string();
    let sent = crate::claims::send_keyed(&e, &e.token_a, "dl-batch", body).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(
        sent.body["durable_in"], "dead_letter_queue",
        "{}",
        sent.body
    );
    let pk = format!("checkout#{}", sent.body["batch_id"].as_str().unwrap());
    let pk = pk.as_str();
    let item = ledger_item(&sdk, &table, pk).await.unwrap();
    // Accepted, but not yet a batch the bus delivers: no raw object yet.
    assert_eq!(item["state"].as_s().unwrap(), "accepted");
    assert!(item["stored_at"].as_s().is_err(), "{item:?}");

    // Redriven into a working lake: noted once, however often the redrive runs.
    let lake = tempfile::tempdir().unwrap();
    let sink = RawSink::new(
        Arc::new(LocalFileSystem::new()),
        lake.path().to_str().unwrap(),
        None,
    );
    let first = redrive(&sink, dlq.as_ref(), Some(ledger.as_ref()))
        .await
        .unwrap();
    assert_eq!((first.written, first.announced), (1, 1));
    let item = ledger_item(&sdk, &table, pk).await.unwrap();
    let stored_at = item["stored_at"].as_s().unwrap().clone();
    assert!(lake.path().join(&stored_at).exists(), "{stored_at}");
    assert!(item.contains_key("redriven_at"));
    // The same letter again (its acknowledgement was lost): lands as already there, noted no more.
    let letter_key = stored_at.clone();
    dlq.send(&DeadLetter::new(
        &letter_key,
        &std::fs::read(lake.path().join(&stored_at)).unwrap(),
    ))
    .await
    .unwrap();
    let again = redrive(&sink, dlq.as_ref(), Some(ledger.as_ref()))
        .await
        .unwrap();
    assert_eq!((again.already_there, again.announced), (1, 0));
}

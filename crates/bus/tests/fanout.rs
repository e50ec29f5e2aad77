//! The fan-out against the stand-ins: the ledger's stream on moto's DynamoDB, the receiving
//! teams' FIFO queues on moto's SQS, a lake in a folder. `tests/run.sh` starts moto and runs
//! these; without it they fail, they never pass silently.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use eventlake_bus::Subscriptions;
use eventlake_bus::deliver::SqsQueues;
use eventlake_bus::stream::{FanOut, Handled, StreamPoller};
use eventlake_contract::TeamName;
use eventlake_ingest::api::Accepted;
use eventlake_ingest::idempotency::{Answer, IdempotencyStore};
use eventlake_ingest::ledger::{DEFAULT_RETENTION, DynamoLedger};

const SUBS: &str = r#"{"version":1,"teams":["checkout","growth","search"],"subscriptions":[
    {"team":"growth","from":"checkout","event_types":["purchase"]},
    {"team":"search","from":"checkout","event_types":["*"],"sources":["web"]}]}"#;

async fn sdk() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run tests/run.sh, which starts the stand-ins"
    );
    eventlake_store::sdk_config().await
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The ledger table, as Terraform makes it.
async fn ledger_table(sdk: &aws_config::SdkConfig) -> String {
    let table = unique("bus-ledger");
    assert!(
        eventlake_ingest::ledger::create_table(sdk, &table)
            .await
            .unwrap()
    );
    table
}

/// A FIFO queue per team, named `<prefix><team>.fifo`.
async fn queues(sdk: &aws_config::SdkConfig, prefix: &str, teams: &[&str]) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for t in teams {
        sqs.create_queue()
            .queue_name(format!("{prefix}{t}.fifo"))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .unwrap();
    }
}

/// Every message in a team's queue (received, then deleted), as event ids.
async fn drain(sdk: &aws_config::SdkConfig, prefix: &str, team: &str) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .get_queue_url()
        .queue_name(format!("{prefix}{team}.fifo"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let v: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            ids.push(v["event_id"].as_str().unwrap().to_owned());
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    ids.sort();
    ids
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

fn line(id: &str, ty: &str, source: &str, user: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"{ty}","event_time":"2026-12-01T10:00:00.000Z","user_id":"{user}","source":"{source}","properties":{{}},"team":"checkout","received_at":"2026-12-01T10:00:01.000Z","schema_version":1}}"#
    )
}

/// Lands a batch as ingest does: the raw object, then its ledger record.
async fn commit(
    lake: &std::path::Path,
    ledger: &DynamoLedger,
    batch: &str,
    object: Vec<u8>,
    accepted: usize,
) {
    let key = format!("raw/team=checkout/dt=2026-12-01/hour=10/{batch}.ndjson.gz");
    let path = lake.join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, object).unwrap();
    let answer = Answer {
        fingerprint: String::new(),
        answer: Accepted {
            batch_id: batch.into(),
            accepted,
            rejected: vec![],
            durable_in: "raw".into(),
        },
        stored_at: Some(key),
    };
    let team = TeamName::new("checkout").unwrap();
    ledger.record(&team, batch, &answer).await.unwrap();
}

struct Bus {
    sdk: aws_config::SdkConfig,
    dir: tempfile::TempDir,
    ledger: DynamoLedger,
    table: String,
    prefix: String,
}

async fn bus() -> Bus {
    let sdk = sdk().await;
    let table = ledger_table(&sdk).await;
    let prefix = unique("bus") + "-";
    queues(&sdk, &prefix, &["growth", "search"]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lake")).unwrap();
    Bus {
        ledger: DynamoLedger::new(&sdk, &table, DEFAULT_RETENTION),
        sdk,
        dir,
        table,
        prefix,
    }
}

impl Bus {
    fn lake(&self) -> std::path::PathBuf {
        self.dir.path().join("lake")
    }

    async fn fanout(&self, urls: HashMap<TeamName, String>) -> FanOut {
        let subs = Arc::new(Subscriptions::parse(SUBS, "subs").unwrap());
        let queues = SqsQueues::new(&self.sdk, urls);
        let lake = eventlake_store::open(self.lake().to_str().unwrap(), false).unwrap();
        FanOut::new(lake, subs, Arc::new(queues))
    }

    async fn urls(&self) -> HashMap<TeamName, String> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut urls = HashMap::new();
        for t in ["growth", "search"] {
            let url = sqs
                .get_queue_url()
                .queue_name(format!("{}{t}.fifo", self.prefix))
                .send()
                .await
                .unwrap()
                .queue_url
                .unwrap();
            urls.insert(TeamName::new(t).unwrap(), url);
        }
        urls
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins: run tests/run.sh"]
async fn every_committed_event_reaches_each_subscriber_once() {
    let b = bus().await;
    let body = [
        line("e1", "purchase", "web", "u1"),
        line("e2", "page_view", "ios", "u1"),
        line("e3", "page_view", "web", "u2"),
    ]
    .join("\n");
    commit(&b.lake(), &b.ledger, "k1", gzip(body.as_bytes()), 3).await;
    // A claim that never completed is not a batch.
    let claim = eventlake_ingest::idempotency::Claim {
        fingerprint: "f".into(),
        received_at: "2026-12-01T10:00:00.000Z".into(),
        deadline_ms: 1,
    };
    b.ledger
        .claim(&TeamName::new("checkout").unwrap(), "k2", &claim)
        .await
        .unwrap();

    let fanout = b.fanout(b.urls().await).await;
    let mut poller = StreamPoller::for_table(&b.sdk, &b.table).await.unwrap();
    let records = poller.poll().await.unwrap();
    let handled = fanout.records(&records).await.unwrap();
    assert_eq!(
        handled,
        Handled {
            batches: 1,
            messages: 3,
            kept: vec![],
            retry_from: None,
        }
    );
    // The same records again (a retried stream batch): the queues drop the repeats.
    fanout.records(&records).await.unwrap();
    assert_eq!(drain(&b.sdk, &b.prefix, "growth").await, ["e1"]);
    assert_eq!(drain(&b.sdk, &b.prefix, "search").await, ["e1", "e3"]);
    // Nothing new since.
    assert!(poller.poll().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins: run tests/run.sh"]
async fn a_poison_record_is_kept_with_its_reason_and_the_rest_are_delivered() {
    let b = bus().await;
    commit(&b.lake(), &b.ledger, "bad", b"not gzip at all".to_vec(), 1).await;
    let body = line("e9", "purchase", "web", "u9");
    commit(&b.lake(), &b.ledger, "good", gzip(body.as_bytes()), 1).await;

    let fanout = b.fanout(b.urls().await).await;
    let mut poller = StreamPoller::for_table(&b.sdk, &b.table).await.unwrap();
    let handled = fanout.records(&poller.poll().await.unwrap()).await.unwrap();
    assert_eq!((handled.batches, handled.messages), (1, 2));
    assert_eq!(handled.kept.len(), 1, "{handled:?}");
    assert!(handled.kept[0].contains("not gzip"), "{handled:?}");
    let failed: Vec<_> = std::fs::read_dir(b.lake().join("_bus/failed"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(failed.len(), 1);
    let kept: serde_json::Value = serde_json::from_str(&failed[0]).unwrap();
    assert_eq!(kept["batch"]["batch_id"], "bad");
    assert!(kept["reason"].as_str().unwrap().contains("not gzip"));
    assert_eq!(drain(&b.sdk, &b.prefix, "growth").await, ["e9"]);
    assert_eq!(drain(&b.sdk, &b.prefix, "search").await, ["e9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins: run tests/run.sh"]
async fn a_queue_that_refuses_writes_loses_nothing_for_the_other_subscribers() {
    let b = bus().await;
    let body = line("e5", "purchase", "web", "u5");
    commit(&b.lake(), &b.ledger, "k5", gzip(body.as_bytes()), 1).await;
    // growth's queue is gone: every write to it is refused.
    let mut urls = b.urls().await;
    let growth = TeamName::new("growth").unwrap();
    let broken = urls[&growth].replace(".fifo", "-gone.fifo");
    urls.insert(growth, broken);

    let fanout = b.fanout(urls).await;
    let mut poller = StreamPoller::for_table(&b.sdk, &b.table).await.unwrap();
    let handled = fanout.records(&poller.poll().await.unwrap()).await.unwrap();
    assert_eq!(handled.batches, 0);
    assert_eq!(handled.kept.len(), 1);
    assert!(
        handled.kept[0].contains("queue of team growth"),
        "{handled:?}"
    );
    // search got its event; the record is kept for growth's redrive.
    assert_eq!(drain(&b.sdk, &b.prefix, "search").await, ["e5"]);
    assert!(b.lake().join("_bus/failed").read_dir().unwrap().count() == 1);

    // While growth's queue still refuses, a redrive leaves the record where it is.
    let still = fanout.redrive("_bus/failed/").await.unwrap();
    assert_eq!((still.delivered, still.left.len()), (0, 1));
    // Once it is fixed, the redrive delivers the batch and removes the record.
    let fixed = b.fanout(b.urls().await).await;
    let redriven = fixed.redrive("_bus/failed/").await.unwrap();
    assert_eq!((redriven.delivered, redriven.left.len()), (1, 0));
    assert_eq!(drain(&b.sdk, &b.prefix, "growth").await, ["e5"]);
    assert_eq!(b.lake().join("_bus/failed").read_dir().unwrap().count(), 0);
    assert_eq!(fixed.redrive("_bus/failed/").await.unwrap().delivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins: run tests/run.sh"]
async fn a_consumer_hands_each_event_over_once_even_across_restarts() {
    use eventlake_bus::consume::{Consumer, Received, SeenIds};
    let b = bus().await;
    let body = [
        line("c1", "purchase", "web", "u1"),
        line("c2", "purchase", "web", "u2"),
    ]
    .join("\n");
    commit(&b.lake(), &b.ledger, "kc", gzip(body.as_bytes()), 2).await;
    let fanout = b.fanout(b.urls().await).await;
    let mut poller = StreamPoller::for_table(&b.sdk, &b.table).await.unwrap();
    fanout.records(&poller.poll().await.unwrap()).await.unwrap();

    let growth = b.urls().await[&TeamName::new("growth").unwrap()].clone();
    let seen = b.dir.path().join("growth.seen");
    let mut out = Vec::new();
    let mut consumer = Consumer::new(&b.sdk, &growth, SeenIds::open(&seen).unwrap());
    let mut total = Received::default();
    for _ in 0..5 {
        let r = consumer.receive(&mut out).await.unwrap();
        total.events += r.events;
        total.repeats += r.repeats;
        if total.events == 2 {
            break;
        }
    }
    assert_eq!(
        total,
        Received {
            events: 2,
            repeats: 0
        }
    );

    // The same event again after the queue's window (another deduplication id), to a consumer
    // started anew: dropped by its id.
    aws_sdk_sqs::Client::new(&b.sdk)
        .send_message()
        .queue_url(&growth)
        .message_body(line("c1", "purchase", "web", "u1"))
        .message_group_id("checkout:u1")
        .message_deduplication_id("after-the-window")
        .send()
        .await
        .unwrap();
    let mut consumer = Consumer::new(&b.sdk, &growth, SeenIds::open(&seen).unwrap());
    let again = consumer.receive(&mut out).await.unwrap();
    assert_eq!(
        again,
        Received {
            events: 0,
            repeats: 1
        }
    );
    let text = String::from_utf8(out).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"c1".to_owned()) && ids.contains(&"c2".to_owned()));
    assert!(drain(&b.sdk, &b.prefix, "growth").await.is_empty());
}

/// The event a Lambda on the stream receives for ledger items of committed batches, as
/// (sequence number, batch id) pairs.
fn lambda_event(records: &[(&str, &str)]) -> aws_lambda_events::event::dynamodb::Event {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(seq, batch)| {
            serde_json::json!({
                "awsRegion": "eu-west-1",
                "eventID": seq,
                "eventName": "MODIFY",
                "eventSource": "aws:dynamodb",
                "eventVersion": "1.1",
                "dynamodb": {
                    "SequenceNumber": seq,
                    "StreamViewType": "NEW_IMAGE",
                    "SizeBytes": 100,
                    "Keys": {"pk": {"S": format!("checkout#{batch}")}},
                    "NewImage": {
                        "pk": {"S": format!("checkout#{batch}")},
                        "state": {"S": "accepted"},
                        "team": {"S": "checkout"},
                        "batch_id": {"S": batch},
                        "stored_at": {"S": format!("raw/team=checkout/dt=2026-12-01/hour=10/{batch}.ndjson.gz")}
                    }
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins: run tests/run.sh"]
async fn the_lambda_handler_keeps_poison_and_reports_a_refused_queue_for_a_retry() {
    let b = bus().await;
    let one = line("l1", "purchase", "web", "u1");
    let two = line("l2", "page_view", "web", "u2");
    commit(&b.lake(), &b.ledger, "l1", gzip(one.as_bytes()), 1).await;
    commit(&b.lake(), &b.ledger, "poison", b"not gzip".to_vec(), 1).await;
    commit(&b.lake(), &b.ledger, "l2", gzip(two.as_bytes()), 1).await;

    // A poison record in the middle: kept with its reason, the records around it delivered,
    // nothing reported (retrying it cannot help).
    let fan = b.fanout(b.urls().await).await;
    let event = lambda_event(&[("100", "l1"), ("200", "poison"), ("300", "l2")]);
    let (handled, response) = eventlake_bus::lambda::fanout(&fan, event).await.unwrap();
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!((handled.batches, handled.kept.len()), (2, 1), "{handled:?}");
    assert!(b.lake().join("_bus/failed/200.json").exists());
    assert_eq!(drain(&b.sdk, &b.prefix, "growth").await, ["l1"]);
    assert_eq!(drain(&b.sdk, &b.prefix, "search").await, ["l1", "l2"]);

    // growth's queue refuses writes: the record is reported, so the mapping retries from it
    // (and the one after it), and nothing of it is kept yet.
    let mut urls = b.urls().await;
    let growth = TeamName::new("growth").unwrap();
    let broken = urls[&growth].replace(".fifo", "-gone.fifo");
    urls.insert(growth, broken);
    let fan = b.fanout(urls).await;
    let event = lambda_event(&[("400", "l1"), ("500", "l2")]);
    let (handled, response) = eventlake_bus::lambda::fanout(&fan, event).await.unwrap();
    let ids: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(ids, ["400"]);
    assert_eq!(handled.retry_from.as_deref(), Some("400"));
    assert!(!b.lake().join("_bus/failed/400.json").exists());
    // search's copies went out all the same (repeats, with the same deduplication ids, which
    // the queue or the consumer drops): a refusing queue holds back no other team.
    assert_eq!(drain(&b.sdk, &b.prefix, "search").await, ["l1", "l2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins: run tests/run.sh"]
async fn a_team_that_asks_gets_one_sns_notification_per_batch() {
    use eventlake_bus::deliver::SnsNotify;
    let b = bus().await;
    let body = [
        line("n1", "purchase", "web", "u1"),
        line("n2", "purchase", "ios", "u2"),
    ]
    .join("\n");
    commit(&b.lake(), &b.ledger, "n", gzip(body.as_bytes()), 2).await;

    // The notification topic, and growth's subscription to it: a queue that filters on `to`.
    let sns = aws_sdk_sns::Client::new(&b.sdk);
    let topic = sns
        .create_topic()
        .name(unique("bus-notify"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&b.sdk);
    let inbox = sqs
        .create_queue()
        .queue_name(unique("growth-notes"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let inbox_arn = sqs
        .get_queue_attributes()
        .queue_url(&inbox)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&inbox_arn)
        .attributes("FilterPolicy", r#"{"to":["growth"]}"#)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let subs = SUBS.replace(
        r#"["*"],"sources":["web"]}]"#,
        r#"["*"],"sources":["web"]}],"notify":["growth","checkout"]"#,
    );
    let subs = Arc::new(Subscriptions::parse(&subs, "subs").unwrap());
    assert!(subs.notifies(&TeamName::new("growth").unwrap()));
    let lake = eventlake_store::open(b.lake().to_str().unwrap(), false).unwrap();
    let fan = FanOut::new(lake, subs, Arc::new(SqsQueues::new(&b.sdk, b.urls().await)))
        .with_notify(Arc::new(SnsNotify::new(&b.sdk, &topic)));
    let mut poller = StreamPoller::for_table(&b.sdk, &b.table).await.unwrap();
    let handled = fan.records(&poller.poll().await.unwrap()).await.unwrap();
    assert_eq!((handled.batches, handled.messages), (1, 3));

    let got = sqs
        .receive_message()
        .queue_url(&inbox)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let notes: Vec<serde_json::Value> = got
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    // One for growth's batch of two events; search did not ask, checkout received nothing.
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["to"], "growth");
    assert_eq!(notes[0]["from"], "checkout");
    assert_eq!(notes[0]["batch_id"], "n");
    assert_eq!(notes[0]["events"], 2);
}

//! The Kafka bridge and the topic consumer against the stand-ins: a team's FIFO queue on moto's
//! SQS, its topic on the local Kafka-protocol broker. `tests/run.sh` starts both and runs these;
//! without them they fail, they never pass silently.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName as A;
use eventlake_bus::consume::SeenIds;
use eventlake_bus::kafka::{Bridge, KafkaConfig, Moved, TopicConsumer, TopicProducer};
use eventlake_contract::TeamName;

async fn sdk() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run tests/run.sh, which starts the stand-ins"
    );
    eventlake_store::sdk_config().await
}

fn brokers() -> String {
    std::env::var("EVENTLAKE_TEST_KAFKA")
        .expect("EVENTLAKE_TEST_KAFKA is not set: run tests/run.sh, which starts the broker")
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A team's FIFO queue whose unacknowledged messages come back after a second.
async fn queue(sdk: &aws_config::SdkConfig, name: &str) -> String {
    aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(A::FifoQueue, "true")
        .attributes(A::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// Sends events as the fan-out does: one group per user, a deduplication id per event.
async fn send(sdk: &aws_config::SdkConfig, url: &str, events: &[(&str, &str)]) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for (id, user) in events {
        sqs.send_message()
            .queue_url(url)
            .message_body(format!(
                r#"{{"event_id":"{id}","event_type":"purchase","user_id":"{user}","team":"checkout"}}"#
            ))
            .message_group_id(format!("checkout:{user}"))
            .message_deduplication_id(*id)
            .send()
            .await
            .unwrap();
    }
}

/// A fresh topic for team `growth`.
async fn topic() -> (KafkaConfig, TeamName) {
    let config = KafkaConfig {
        brokers: brokers(),
        topic_prefix: format!("{}.", unique("bus-test")),
        security_protocol: None,
        auth: Default::default(),
    };
    let team = TeamName::new("growth").unwrap();
    eventlake_bus::kafka::create_topics(&config, &[config.topic(&team)], 3)
        .await
        .unwrap();
    (config, team)
}

/// Reads the topic as the team's consumer does until `want` events were handed over or 30 s
/// passed; the ids written out, in order, and how many repeats were dropped.
async fn consume(config: &KafkaConfig, team: &TeamName, want: usize) -> (Vec<String>, usize) {
    let mut consumer = TopicConsumer::new(
        config,
        team,
        &unique("group"),
        Duration::from_secs(6),
        SeenIds::in_memory(),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut repeats = 0;
    let mut events = 0;
    for _ in 0..30 {
        let r = consumer
            .receive(&mut out, Duration::from_secs(1), usize::MAX)
            .await
            .unwrap();
        events += r.events;
        repeats += r.repeats;
        if events >= want && r.events + r.repeats == 0 {
            break;
        }
    }
    let ids = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    (ids, repeats)
}

async fn approximate_depth(sdk: &aws_config::SdkConfig, url: &str) -> usize {
    let attrs = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes().unwrap();
    let n = |k: &A| a.get(k).map_or(0, |v| v.parse::<usize>().unwrap());
    n(&A::ApproximateNumberOfMessages) + n(&A::ApproximateNumberOfMessagesNotVisible)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins and the broker: run tests/run.sh"]
async fn a_bridge_stopped_between_the_ack_and_the_delete_costs_a_repeat_not_an_event() {
    let sdk = sdk().await;
    let (config, team) = topic().await;
    let url = queue(&sdk, &unique("bridge-killed")).await;
    send(&sdk, &url, &[("e1", "u1"), ("e2", "u1"), ("e3", "u2")]).await;

    // The first bridge has the broker's acknowledgement and stops before deleting anything.
    let first = Bridge::new(
        &sdk,
        &url,
        TopicProducer::new(&config, &team, Duration::from_secs(10)).unwrap(),
    );
    let (received, acked) = first.produce().await.unwrap();
    assert_eq!((received, acked.len()), (3, 3));
    drop(first);

    // The messages come back after the visibility timeout and the next bridge moves them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = Bridge::new(
        &sdk,
        &url,
        TopicProducer::new(&config, &team, Duration::from_secs(10)).unwrap(),
    );
    let mut moved = 0;
    for _ in 0..10 {
        moved += second.step().await.unwrap().moved;
        if moved == 3 {
            break;
        }
    }
    assert_eq!(moved, 3);
    assert_eq!(approximate_depth(&sdk, &url).await, 0);

    // The topic holds each event twice; the consumer hands each over once, one user's in order.
    let (ids, repeats) = consume(&config, &team, 3).await;
    assert_eq!(repeats, 3, "{ids:?}");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["e1", "e2", "e3"]);
    let u1: Vec<&String> = ids.iter().filter(|i| *i != "e3").collect();
    assert_eq!(u1, ["e1", "e2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the AWS stand-ins and the broker: run tests/run.sh"]
async fn messages_wait_in_the_queue_while_the_broker_is_down() {
    let sdk = sdk().await;
    let (config, team) = topic().await;
    let url = queue(&sdk, &unique("broker-down")).await;
    send(&sdk, &url, &[("d1", "u1"), ("d2", "u2")]).await;

    // Nothing listens at this address: the broker is down, nothing is acknowledged or deleted.
    let down = KafkaConfig {
        brokers: "127.0.0.1:9".into(),
        topic_prefix: config.topic_prefix.clone(),
        security_protocol: None,
        auth: Default::default(),
    };
    let bridge = Bridge::new(
        &sdk,
        &url,
        TopicProducer::new(&down, &team, Duration::from_secs(2)).unwrap(),
    );
    let step = bridge.step().await.unwrap();
    assert_eq!(
        step,
        Moved {
            received: 2,
            moved: 0,
            left: 2
        }
    );
    assert_eq!(approximate_depth(&sdk, &url).await, 2);

    // The broker is back: the same messages move, and arrive once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bridge = Bridge::new(
        &sdk,
        &url,
        TopicProducer::new(&config, &team, Duration::from_secs(10)).unwrap(),
    );
    let mut moved = 0;
    for _ in 0..10 {
        moved += bridge.step().await.unwrap().moved;
        if moved == 2 {
            break;
        }
    }
    assert_eq!(moved, 2);
    let (mut ids, repeats) = consume(&config, &team, 2).await;
    ids.sort();
    assert_eq!((ids, repeats), (vec!["d1".to_owned(), "d2".to_owned()], 0));
}

/// The event a Lambda on `growth`'s queue receives.
fn sqs_event(prefix: &str, messages: &[(&str, &str)]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, user)| {
            serde_json::json!({
                "messageId": format!("m-{id}"),
                "receiptHandle": "h",
                "body": format!(r#"{{"event_id":"{id}","event_type":"purchase","user_id":"{user}","team":"checkout"}}"#),
                "attributes": {"MessageGroupId": format!("checkout:{user}")},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:eu-west-1:123456789012:{prefix}growth.fifo"),
                "awsRegion": "eu-west-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the broker: run tests/run.sh"]
async fn the_bridge_lambda_reports_what_the_broker_did_not_acknowledge() {
    use eventlake_bus::lambda::BridgeHandler;
    let (config, team) = topic().await;
    let handler = BridgeHandler::new(config.clone(), "eventlake-", Duration::from_secs(10));
    assert_eq!(
        handler
            .team_of("arn:aws:sqs:eu-west-1:1:eventlake-growth.fifo")
            .unwrap(),
        team
    );
    assert!(
        handler
            .team_of("arn:aws:sqs:eu-west-1:1:other.fifo")
            .is_err()
    );

    let response = handler
        .handle(sqs_event("eventlake-", &[("s1", "u1"), ("s2", "u2")]))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let (mut ids, _) = consume(&config, &team, 2).await;
    ids.sort();
    assert_eq!(ids, ["s1", "s2"]);

    // The broker down: every message is reported, for the queue to deliver again.
    let down = KafkaConfig {
        brokers: "127.0.0.1:9".into(),
        ..config
    };
    let handler = BridgeHandler::new(down, "eventlake-", Duration::from_secs(2));
    let response = handler
        .handle(sqs_event("eventlake-", &[("s3", "u1"), ("s4", "u1")]))
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-s3", "m-s4"]);
}

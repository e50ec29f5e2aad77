//! Kafka: each team's queue moved into the team's topic, and a team's consumer of that topic.
//!
//! The [`Bridge`] receives up to ten messages from a team's SQS FIFO queue, produces them to the
//! team's topic with an idempotent producer (`acks=all`), and deletes a message from the queue
//! only after the broker acknowledged it. The record key is the message group (producing team and
//! user), so one user's events land in one partition, in order. A message whose produce failed
//! is not deleted, nor is any later message of its group in the same receive: they come back
//! after the queue's visibility timeout, in order, and after `maxReceiveCount` attempts the
//! queue's redrive policy moves them to its DLQ. While the broker is down, messages wait in the
//! queue.
//!
//! A bridge that stops between the acknowledgement and the delete produces the message again
//! when it comes back: the topic then holds the event twice, and the [`TopicConsumer`] drops the
//! second copy by its event id ([`SeenIds`]), as the queue consumer does.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use eventlake_contract::TeamName;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::Error;
use crate::consume::{HandOver, Received, SeenIds};

/// Where the teams' topics are.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// A team's topic is `<prefix><team>`.
    pub topic_prefix: String,
    /// librdkafka's `security.protocol` (`SSL` for a TLS listener); plaintext when not given.
    pub security_protocol: Option<String>,
}

impl KafkaConfig {
    pub fn topic(&self, team: &TeamName) -> String {
        format!("{}{team}", self.topic_prefix)
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "eventlake-bus");
        if let Some(p) = &self.security_protocol {
            c.set("security.protocol", p);
        }
        c
    }
}

fn kafka_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Kafka {
        detail: format!("{what}: {e}"),
    }
}

/// Creates the topics that are missing, with `partitions` partitions each.
pub async fn create_topics(
    config: &KafkaConfig,
    topics: &[String],
    partitions: i32,
) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = config
        .client()
        .create()
        .map_err(|e| kafka_error("admin client", e))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| kafka_error("CreateTopics", e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(kafka_error(&format!("topic {topic}"), code)),
        }
    }
    Ok(())
}

/// A producer to one topic: idempotent, `acks=all`.
pub struct TopicProducer {
    topic: String,
    producer: FutureProducer,
}

impl std::fmt::Debug for TopicProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// One message for a topic: its key (the message group: producing team and user) and the event.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub key: &'a str,
    pub body: &'a str,
}

impl TopicProducer {
    /// A producer to `team`'s topic. `delivery_timeout` bounds how long a message waits for the
    /// broker before it counts as not acknowledged.
    pub fn new(
        config: &KafkaConfig,
        team: &TeamName,
        delivery_timeout: Duration,
    ) -> Result<Self, Error> {
        let producer: FutureProducer = config
            .client()
            // Retries never write a message twice or out of order within a partition.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().max(1).to_string(),
            )
            .create()
            .map_err(|e| kafka_error("producer", e))?;
        Ok(Self {
            topic: config.topic(team),
            producer,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Produces `messages` (all sent, then awaited) and says, for each, whether the broker
    /// acknowledged it. A message after a failed one with the same key counts as not
    /// acknowledged either, so that retrying the failed ones keeps each key's order.
    pub async fn send(&self, messages: &[Outgoing<'_>]) -> Vec<bool> {
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let event_id = serde_json::from_str::<serde_json::Value>(m.body)
                .ok()
                .and_then(|v| {
                    v.get("event_id")
                        .and_then(|i| i.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let record = FutureRecord::to(&self.topic)
                .key(m.key)
                .payload(m.body)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "event_id",
                    value: Some(&event_id),
                }));
            pending.push(self.producer.send_result(record).map_err(|(e, _)| e));
        }
        let mut failed_keys = HashSet::new();
        let mut acked = Vec::with_capacity(messages.len());
        for (m, delivery) in messages.iter().zip(pending) {
            let outcome = match delivery {
                Ok(future) => match future.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("the producer was dropped".to_owned()),
                },
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => acked.push(!failed_keys.contains(m.key)),
                Err(e) => {
                    tracing::warn!(
                        topic = self.topic,
                        error = e,
                        "not acknowledged by the broker"
                    );
                    failed_keys.insert(m.key);
                    acked.push(false);
                }
            }
        }
        acked
    }
}

/// A message acknowledged by the broker, still to be deleted from the queue.
#[derive(Debug, Clone)]
pub struct Acked {
    receipt_handle: String,
}

/// What one step of the bridge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Messages received from the queue.
    pub received: usize,
    /// Messages the broker acknowledged and the queue no longer holds.
    pub moved: usize,
    /// Messages left in the queue for a later attempt (the broker did not acknowledge them).
    pub left: usize,
}

/// Moves one team's queue into its topic (where no Lambda reads the queue: a laptop, a server).
#[derive(Debug)]
pub struct Bridge {
    sqs: SqsClient,
    queue_url: String,
    producer: TopicProducer,
    wait: Duration,
}

impl Bridge {
    /// A bridge from the queue at `queue_url` to `producer`'s topic.
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: &str, producer: TopicProducer) -> Self {
        Self {
            sqs: SqsClient::new(sdk),
            queue_url: queue_url.to_owned(),
            producer,
            wait: Duration::from_secs(1),
        }
    }

    fn queue_error(&self, op: &str, e: &dyn std::fmt::Display) -> Error {
        Error::Queue {
            team: self.producer.topic.clone(),
            detail: format!("{op} {}: {e}", self.queue_url),
        }
    }

    /// Receives up to ten messages and produces them; returns how many were received and those
    /// the broker acknowledged, which stay in the queue until [`Bridge::delete`].
    pub async fn produce(&self) -> Result<(usize, Vec<Acked>), Error> {
        let got = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(|e| self.queue_error("ReceiveMessage", &DisplayErrorContext(&e)))?;
        let messages = got.messages();
        let outgoing: Vec<Outgoing> = messages
            .iter()
            .map(|m| Outgoing {
                key: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .map_or("", String::as_str),
                body: m.body().unwrap_or_default(),
            })
            .collect();
        let acks = self.producer.send(&outgoing).await;
        let acked = messages
            .iter()
            .zip(acks)
            .filter(|(_, ok)| *ok)
            .filter_map(|(m, _)| {
                m.receipt_handle().map(|h| Acked {
                    receipt_handle: h.to_owned(),
                })
            })
            .collect();
        Ok((messages.len(), acked))
    }

    /// Deletes acknowledged messages from the queue.
    pub async fn delete(&self, acked: &[Acked]) -> Result<usize, Error> {
        let mut deleted = 0;
        for chunk in acked.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&a.receipt_handle)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.queue_error("DeleteMessageBatch", &DisplayErrorContext(&e)))?;
            // A message not deleted comes back and is produced again; the consumer drops it.
            deleted += out.successful().len();
        }
        Ok(deleted)
    }

    /// One receive, produce and delete.
    pub async fn step(&self) -> Result<Moved, Error> {
        let (received, acked) = self.produce().await?;
        let moved = self.delete(&acked).await?;
        Ok(Moved {
            received,
            moved,
            left: received - acked.len(),
        })
    }
}

/// A team's consumer of its topic: a consumer group per team, offsets committed after the
/// events were written out.
pub struct TopicConsumer {
    consumer: StreamConsumer,
    seen: SeenIds,
}

impl std::fmt::Debug for TopicConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicConsumer").finish_non_exhaustive()
    }
}

impl TopicConsumer {
    /// Joins `group` on `team`'s topic. `session_timeout` bounds how long a stopped member
    /// holds its partitions (and how long a new one waits to join: about half of it).
    pub fn new(
        config: &KafkaConfig,
        team: &TeamName,
        group: &str,
        session_timeout: Duration,
        seen: SeenIds,
    ) -> Result<Self, Error> {
        let consumer: StreamConsumer = config
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                session_timeout.as_millis().max(1).to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (session_timeout.as_millis() / 3).max(1).to_string(),
            )
            .create()
            .map_err(|e| kafka_error("consumer", e))?;
        consumer
            .subscribe(&[&config.topic(team)])
            .map_err(|e| kafka_error("subscribe", e))?;
        Ok(Self { consumer, seen })
    }

    /// Reads what arrives within `wait` (up to `max` events), writes each new event to `out`,
    /// then commits the offsets read.
    pub async fn receive(
        &mut self,
        out: &mut impl Write,
        wait: Duration,
        max: usize,
    ) -> Result<Received, Error> {
        let deadline = Instant::now() + wait;
        let mut received = Received::default();
        let mut next: HashMap<(String, i32), i64> = HashMap::new();
        while received.events < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let message = match tokio::time::timeout(left, self.consumer.recv()).await {
                Err(_) => break,
                Ok(m) => m.map_err(|e| kafka_error("receive", e))?,
            };
            let body = match message.payload_view::<str>() {
                Some(Ok(b)) => b,
                _ => "",
            };
            match self.seen.hand_over(body, out)? {
                HandOver::New => received.events += 1,
                HandOver::Repeat => received.repeats += 1,
                HandOver::NotAnEvent => {
                    tracing::error!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        "a record that is not an event; skipped"
                    );
                }
            }
            next.insert(
                (message.topic().to_owned(), message.partition()),
                message.offset() + 1,
            );
        }
        if !next.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), offset) in &next {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .map_err(|e| kafka_error("offsets", e))?;
            }
            self.consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| kafka_error("commit", e))?;
        }
        Ok(received)
    }
}

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
    /// How the clients authenticate.
    pub auth: KafkaAuth,
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
        if let KafkaAuth::AwsMskIam { .. } = self.auth {
            c.set("security.protocol", "SASL_SSL")
                .set("sasl.mechanism", "OAUTHBEARER");
        }
        c
    }

    fn context(&self) -> BusContext {
        BusContext {
            msk_region: match &self.auth {
                KafkaAuth::AwsMskIam { region } => Some(region.clone()),
                KafkaAuth::None => None,
            },
        }
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
    let admin: AdminClient<BusContext> = config
        .client()
        .create_with_context(config.context())
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
    producer: FutureProducer<BusContext>,
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
        let producer: FutureProducer<BusContext> = config
            .client()
            // Retries never write a message twice or out of order within a partition.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().max(1).to_string(),
            )
            .create_with_context(config.context())
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
            let event_id = crate::fanout::event_id(m.body).unwrap_or_default();
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
    consumer: StreamConsumer<BusContext>,
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
        let consumer: StreamConsumer<BusContext> = config
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
            .create_with_context(config.context())
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

/// How the clients authenticate to the brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KafkaAuth {
    /// No authentication (a laptop's broker, a cluster that trusts its network or TLS).
    #[default]
    None,
    /// MSK's IAM access control (MSK Serverless): SASL OAUTHBEARER with a token signed with the
    /// process's AWS credentials (the environment's `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, as Lambda sets them).
    AwsMskIam { region: String },
}

impl KafkaAuth {
    /// Reads `EVENTLAKE_KAFKA_AUTH` (`none` or `aws-msk-iam`) and, for the latter, the region
    /// from `AWS_REGION`.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var("EVENTLAKE_KAFKA_AUTH").as_deref() {
            Err(_) | Ok("") | Ok("none") => Ok(Self::None),
            Ok("aws-msk-iam") => Ok(Self::AwsMskIam {
                region: std::env::var("AWS_REGION").map_err(|_| Error::Kafka {
                    detail: "EVENTLAKE_KAFKA_AUTH=aws-msk-iam needs AWS_REGION".into(),
                })?,
            }),
            Ok(other) => Err(Error::Kafka {
                detail: format!("EVENTLAKE_KAFKA_AUTH={other:?}: expected none or aws-msk-iam"),
            }),
        }
    }
}

/// The Kafka clients' context: supplies MSK IAM tokens when [`KafkaAuth::AwsMskIam`] is set.
#[derive(Debug, Clone, Default)]
pub struct BusContext {
    msk_region: Option<String>,
}

impl rdkafka::client::ClientContext for BusContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let region = self
            .msk_region
            .as_deref()
            .ok_or("no OAUTHBEARER token source: set EVENTLAKE_KAFKA_AUTH=aws-msk-iam")?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err("MSK IAM: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into());
        };
        let (token, expires) = msk_iam_token(
            region,
            &key,
            &secret,
            env("AWS_SESSION_TOKEN").as_deref(),
            std::time::SystemTime::now(),
        )?;
        Ok(rdkafka::client::OAuthToken {
            token,
            principal_name: String::new(),
            lifetime_ms: expires
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
        })
    }
}

impl rdkafka::consumer::ConsumerContext for BusContext {}

/// RFC 3986 percent-encoding of a query value (everything but the unreserved characters).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An MSK IAM authentication token: the URL
/// `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`, presigned with SigV4
/// for the `kafka-cluster` service for 15 minutes, with a `User-Agent` parameter, base64url
/// without padding; and when it expires.
pub fn msk_iam_token(
    region: &str,
    access_key: &str,
    secret_key: &str,
    session_token: Option<&str>,
    now: std::time::SystemTime,
) -> Result<(String, std::time::SystemTime), Box<dyn std::error::Error>> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use base64::Engine;
    const LIFETIME: Duration = Duration::from_secs(900);
    let host = format!("kafka.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=kafka-cluster%3AConnect");
    let credentials = aws_credential_types::Credentials::new(
        access_key,
        secret_key,
        session_token.map(str::to_owned),
        None,
        "environment",
    );
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(LIFETIME);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()?
        .into();
    let request = SignableRequest::new(
        "GET",
        &url,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let mut signed = url;
    for (name, value) in instructions.params() {
        signed.push('&');
        signed.push_str(name);
        signed.push('=');
        signed.push_str(&query_escape(value));
    }
    signed.push_str("&User-Agent=eventlake-bus");
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed);
    Ok((token, now + LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn an_msk_iam_token_is_a_presigned_connect_url() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let (token, expires) = msk_iam_token(
            "eu-west-1",
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session/token+="),
            now,
        )
        .unwrap();
        assert_eq!(expires, now + Duration::from_secs(900));
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'));
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&token)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with(
                "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20251124%2Feu-west-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Date=20251124T160000Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=session%2Ftoken%2B%3D",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} not in {url}");
        }
        assert!(url.ends_with("&User-Agent=eventlake-bus"), "{url}");
        // The same inputs sign the same way; the secret never appears.
        assert_eq!(
            token,
            msk_iam_token(
                "eu-west-1",
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                Some("session/token+="),
                now
            )
            .unwrap()
            .0
        );
        assert!(!url.contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn the_auth_is_read_from_the_environment_names() {
        assert_eq!(KafkaAuth::default(), KafkaAuth::None);
        let config = KafkaConfig {
            brokers: "b:9098".into(),
            topic_prefix: "eventlake.".into(),
            security_protocol: None,
            auth: KafkaAuth::AwsMskIam {
                region: "eu-west-1".into(),
            },
        };
        let c = config.client();
        assert_eq!(c.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.context().msk_region.as_deref(), Some("eu-west-1"));
    }
}

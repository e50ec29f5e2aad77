//! Delivery to the receiving teams' SQS queues.
//!
//! One FIFO queue per receiving team: FIFO because its deduplication id makes a redelivered
//! batch (a retried stream record) cost nothing within five minutes, and its message groups keep
//! one user's events in order; after the window, the consumer drops a repeated event by its id.
//! Messages go out in batches of at most ten entries and 256 KiB; entries the queue refuses are
//! retried, a bounded number of times, then the delivery fails as a whole, so the stream record
//! is retried (and, after the stream's own retries, kept by its on-failure destination). What was
//! sent before is not lost or doubled by that retry: the same ids are deduplicated. A team's
//! messages go out on several lanes at once, a message group always on the same lane, so one
//! user's events keep their order.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use eventlake_contract::TeamName;

use crate::Error;
use crate::fanout::Message;
use crate::outbox::Committed;

/// Where messages go.
#[async_trait]
pub trait Deliver: Send + Sync + std::fmt::Debug {
    /// Delivers every message, or fails saying which team's queue refused what.
    async fn deliver(&self, messages: &[Message]) -> Result<(), Error>;
}

/// Where batch notifications go.
#[async_trait]
pub trait Notify: Send + Sync + std::fmt::Debug {
    /// Tells `to` that `events` of batch `batch` were delivered to its queue.
    async fn notify(&self, to: &TeamName, batch: &Committed, events: usize) -> Result<(), Error>;
}

/// One SNS topic for every notification; each carries a `to` message attribute, on which a
/// team's subscription filters, so a team sees only its own.
#[derive(Debug, Clone)]
pub struct SnsNotify {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotify {
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: &str) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(sdk),
            topic_arn: topic_arn.to_owned(),
        }
    }
}

#[async_trait]
impl Notify for SnsNotify {
    async fn notify(&self, to: &TeamName, batch: &Committed, events: usize) -> Result<(), Error> {
        let attribute = |v: &str| {
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("data type is set")
        };
        let message = serde_json::json!({
            "to": to.as_str(),
            "from": batch.team.as_str(),
            "batch_id": batch.batch_id,
            "events": events,
            "stored_at": batch.stored_at,
        });
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.to_string())
            .message_attributes("to", attribute(to.as_str()))
            .message_attributes("from", attribute(batch.team.as_str()))
            .send()
            .await
            .map_err(|e| Error::Queue {
                team: to.to_string(),
                detail: format!(
                    "SNS Publish to {}: {}",
                    self.topic_arn,
                    aws_sdk_sns::error::DisplayErrorContext(&e)
                ),
            })?;
        Ok(())
    }
}

/// SQS queues by receiving team.
#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: Client,
    urls: HashMap<TeamName, String>,
    attempts: u32,
}

/// SQS's limits for one `SendMessageBatch`.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

impl SqsQueues {
    pub fn new(sdk: &aws_config::SdkConfig, urls: HashMap<TeamName, String>) -> Self {
        Self {
            client: Client::new(sdk),
            urls,
            attempts: 4,
        }
    }

    /// The queue of every team, found by name: `<prefix><team>.fifo`.
    pub async fn by_name(
        sdk: &aws_config::SdkConfig,
        prefix: &str,
        teams: impl IntoIterator<Item = &TeamName>,
    ) -> Result<Self, Error> {
        let client = Client::new(sdk);
        let mut urls = HashMap::new();
        for team in teams {
            let name = format!("{prefix}{team}.fifo");
            let url = client
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| Error::Queue {
                    team: team.to_string(),
                    detail: format!("GetQueueUrl {name}: {}", DisplayErrorContext(&e)),
                })?
                .queue_url
                .unwrap_or_default();
            urls.insert(team.clone(), url);
        }
        Ok(Self {
            client,
            urls,
            attempts: 4,
        })
    }

    async fn send_chunk(
        &self,
        team: &TeamName,
        url: &str,
        chunk: &[&Message],
    ) -> Result<(), Error> {
        let mut pending: Vec<&Message> = chunk.to_vec();
        let mut pause = Duration::from_millis(50);
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .message_deduplication_id(&m.dedup_id)
                        .message_group_id(&m.group_id)
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let sent = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    if out.failed().is_empty() {
                        return Ok(());
                    }
                    last = out
                        .failed()
                        .iter()
                        .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let failed: std::collections::HashSet<usize> = out
                        .failed()
                        .iter()
                        .filter_map(|f| f.id().parse().ok())
                        .collect();
                    pending = pending
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| failed.contains(i))
                        .map(|(_, m)| m)
                        .collect();
                }
                Err(e) => last = DisplayErrorContext(&e).to_string(),
            }
        }
        Err(Error::Queue {
            team: team.to_string(),
            detail: format!(
                "{} of {} messages not accepted after {} attempts: {last}",
                pending.len(),
                chunk.len(),
                self.attempts
            ),
        })
    }
}

/// Splits `messages` into SQS batches: at most ten entries and 256 KiB each.
fn chunks<'a>(messages: &[&'a Message]) -> Vec<Vec<&'a Message>> {
    let mut out: Vec<Vec<&Message>> = Vec::new();
    let mut bytes = 0;
    for &m in messages {
        let size = m.body.len() + m.dedup_id.len() + m.group_id.len();
        match out.last_mut() {
            Some(last) if last.len() < MAX_ENTRIES && bytes + size <= MAX_BATCH_BYTES => {
                last.push(m);
                bytes += size;
            }
            _ => {
                out.push(vec![m]);
                bytes = size;
            }
        }
    }
    out
}

/// Messages of one team are sent on this many lanes at once; a message group always takes the
/// same lane, so each group's messages keep their order.
const LANES: u64 = 8;

fn lane(group_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    group_id.hash(&mut h);
    h.finish() % LANES
}

#[async_trait]
impl Deliver for SqsQueues {
    async fn deliver(&self, messages: &[Message]) -> Result<(), Error> {
        // (team, lane) → its messages, in order.
        let mut lanes: BTreeMap<(&TeamName, u64), Vec<&Message>> = BTreeMap::new();
        for m in messages {
            lanes.entry((&m.to, lane(&m.group_id))).or_default().push(m);
        }
        // Every team's queue is tried, so one refusing queue does not hold back the others;
        // the lanes go out concurrently, each one's batches in order.
        let sends = lanes.into_iter().map(|((team, _), list)| async move {
            let Some(url) = self.urls.get(team) else {
                return Err(Error::Queue {
                    team: team.to_string(),
                    detail: "no queue is configured for this team".into(),
                });
            };
            for chunk in chunks(&list) {
                self.send_chunk(team, url, &chunk).await?;
            }
            Ok(())
        });
        let mut failures: Vec<Error> = futures::future::join_all(sends)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        // One report per team.
        let mut seen = std::collections::HashSet::new();
        failures.retain(|e| match e {
            Error::Queue { team, .. } => seen.insert(team.clone()),
            _ => true,
        });
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => Err(Error::Queue {
                team: "several".into(),
                detail: failures
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body_len: usize) -> Message {
        Message {
            to: TeamName::new("growth").unwrap(),
            dedup_id: "d".repeat(64),
            group_id: "checkout:u".into(),
            body: "x".repeat(body_len),
        }
    }

    #[test]
    fn batches_keep_to_ten_entries_and_256_kib() {
        let small: Vec<Message> = (0..23).map(|_| message(100)).collect();
        let refs: Vec<&Message> = small.iter().collect();
        let sizes: Vec<usize> = chunks(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let big: Vec<Message> = (0..10).map(|_| message(32 * 1024)).collect();
        let refs: Vec<&Message> = big.iter().collect();
        let sizes: Vec<usize> = chunks(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, [7, 3]);
    }
}

//! The bus's Lambda handlers: the fan-out on the ledger's stream and the bridge on a team's
//! queue. Both answer with partial batch responses, so the event source mapping retries only
//! what failed.
//!
//! - The fan-out handles the stream records in order ([`FanOut::handle`] with
//!   [`WhenExhausted::Report`]): a poison record is kept under `_bus/failed/` with its reason and
//!   the rest go on; a record that still fails retryably (a queue refusing writes) is reported,
//!   with everything after it, and the mapping retries from it (bisecting, bounded by its retry
//!   count and record age) before handing it to its on-failure destination.
//! - The bridge produces a FIFO queue's messages to the team's topic and reports those the broker
//!   did not acknowledge (and every later message of their group), which the queue redelivers
//!   in order and, after `maxReceiveCount`, moves to its DLQ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use eventlake_contract::TeamName;

use crate::Error;
use crate::kafka::{KafkaConfig, Outgoing, TopicProducer};
use crate::stream::{FanOut, Handled, StreamItem, WhenExhausted};

/// Handles one stream event; the response names the record to retry from, if any.
pub async fn fanout(
    fanout: &FanOut,
    event: StreamEvent,
) -> Result<(Handled, DynamoDbEventResponse), Error> {
    let items = event.records.iter().map(StreamItem::from_lambda).collect();
    let handled = fanout.handle(items, WhenExhausted::Report).await?;
    let mut response = DynamoDbEventResponse::default();
    if let Some(seq) = &handled.retry_from {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(seq.clone());
        response.batch_item_failures.push(failure);
    }
    Ok((handled, response))
}

/// The bridge from the teams' queues to their topics, one producer per team.
#[derive(Debug)]
pub struct BridgeHandler {
    config: KafkaConfig,
    queue_prefix: String,
    delivery_timeout: Duration,
    producers: Mutex<HashMap<TeamName, Arc<TopicProducer>>>,
}

impl BridgeHandler {
    pub fn new(config: KafkaConfig, queue_prefix: &str, delivery_timeout: Duration) -> Self {
        Self {
            config,
            queue_prefix: queue_prefix.to_owned(),
            delivery_timeout,
            producers: Mutex::default(),
        }
    }

    /// The team whose queue an ARN names (`…:<prefix><team>.fifo`).
    pub fn team_of(&self, queue_arn: &str) -> Result<TeamName, Error> {
        let name = queue_arn.rsplit(':').next().unwrap_or_default();
        let team = name
            .strip_prefix(&self.queue_prefix)
            .and_then(|n| n.strip_suffix(".fifo"))
            .ok_or_else(|| Error::Poison {
                record: queue_arn.to_owned(),
                reason: format!(
                    "not a team queue: its name is not {}<team>.fifo",
                    self.queue_prefix
                ),
            })?;
        TeamName::new(team).map_err(|e| Error::Poison {
            record: queue_arn.to_owned(),
            reason: e.to_string(),
        })
    }

    fn producer(&self, team: &TeamName) -> Result<Arc<TopicProducer>, Error> {
        let mut producers = self.producers.lock().expect("producers lock");
        if let Some(p) = producers.get(team) {
            return Ok(p.clone());
        }
        let p = Arc::new(TopicProducer::new(
            &self.config,
            team,
            self.delivery_timeout,
        )?);
        producers.insert(team.clone(), p.clone());
        Ok(p)
    }

    /// Produces the event's messages; the response names those not acknowledged.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, Error> {
        let mut response = SqsBatchResponse::default();
        // One mapping reads one queue, but group the records by queue all the same.
        let mut by_queue: HashMap<&str, Vec<&aws_lambda_events::event::sqs::SqsMessage>> =
            HashMap::new();
        for m in &event.records {
            by_queue
                .entry(m.event_source_arn.as_deref().unwrap_or_default())
                .or_default()
                .push(m);
        }
        for (arn, messages) in by_queue {
            let producer = self.producer(&self.team_of(arn)?)?;
            let outgoing: Vec<Outgoing> = messages
                .iter()
                .map(|m| Outgoing {
                    key: m
                        .attributes
                        .get("MessageGroupId")
                        .map_or("", String::as_str),
                    body: m.body.as_deref().unwrap_or_default(),
                })
                .collect();
            let acks = producer.send(&outgoing).await;
            for (m, ok) in messages.iter().zip(acks) {
                if !ok {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = m.message_id.clone().unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
        }
        Ok(response)
    }
}

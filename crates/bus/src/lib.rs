//! The event bus beside the lake: accepted events fanned out to the teams that subscribe to them.
//!
//! ```text
//! ingest ─▶ ledger (DynamoDB, one item per committed batch) ─▶ its stream (the outbox)
//!        ─▶ fan-out ─▶ one SQS FIFO queue per receiving team ─▶ (optionally) its Kafka topic
//!        ─▶ the team's consumers
//! ```
//!
//! - [`subscriptions`]: which team receives which producing team's events, loaded from a
//!   versioned configuration and checked when it loads; an event goes to every team with a
//!   matching rule and to no one else.
//! - [`outbox`]: the ledger's stream records, read as committed batches.
//! - [`fanout`]: a batch's events as messages, one per receiving team, with deduplication ids.
//! - [`deliver`]: the receiving teams' SQS queues.
//! - [`consume`]: a team's consumer, which hands each event over once.
//! - [`kafka`]: the bridge from a team's queue to its Kafka topic, and a consumer of the topic.
//! - [`stream`]: the fan-out of stream records (retries, failures kept with their reason) and a
//!   poller that reads the stream where no Lambda does (a laptop, the tests).

pub mod consume;
pub mod deliver;
pub mod fanout;
pub mod kafka;
pub mod lambda;
pub mod outbox;
pub mod stream;
pub mod subscriptions;

pub use subscriptions::Subscriptions;

/// Why a batch or a record was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A record that no retry can deliver: it is kept with this reason.
    #[error("{record}: {reason}")]
    Poison { record: String, reason: String },
    /// A receiving team's queue refused messages (after its own retries).
    #[error("queue of team {team}: {detail}")]
    Queue { team: String, detail: String },
    #[error("lake object {key}: {source}")]
    Lake {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("ledger stream: {detail}")]
    Stream { detail: String },
    #[error("consumer: {detail}")]
    Consumer { detail: String },
    #[error("kafka: {detail}")]
    Kafka { detail: String },
    #[error(transparent)]
    Subscriptions(#[from] subscriptions::Error),
}

impl Error {
    /// Whether trying again may deliver it.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Poison { .. } | Error::Subscriptions(_) => false,
            Error::Queue { .. }
            | Error::Lake { .. }
            | Error::Stream { .. }
            | Error::Consumer { .. }
            | Error::Kafka { .. } => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_decided_by_variant() {
        let poison = Error::Poison {
            record: "r".into(),
            reason: "x".into(),
        };
        assert!(!poison.is_retryable());
        let queue = Error::Queue {
            team: "growth".into(),
            detail: "x".into(),
        };
        assert!(queue.is_retryable());
        assert!(Error::Stream { detail: "x".into() }.is_retryable());
        let lake = Error::Lake {
            key: "k".into(),
            source: object_store::Error::Generic {
                store: "test",
                source: "x".into(),
            },
        };
        assert!(lake.is_retryable());
        let subs = Subscriptions::parse("{}", "s").unwrap_err();
        assert!(!Error::from(subs).is_retryable());
    }
}

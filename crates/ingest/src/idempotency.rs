//! Idempotency keys as claims.
//!
//! The first request with a key claims it, with its body's fingerprint, before it stores anything
//! or answers. A claim is created only if absent, so exactly one request wins it; a second
//! request with the same key finds the claim and
//!
//! - with another body, is refused (`422 idempotency_key_reused`): the key is spent;
//! - with the same body, gets the recorded answer, or waits for it while the first request is in
//!   flight (`409 request_in_progress` when it cannot wait long enough);
//! - with the same body after the claimant's deadline passed without an answer (it failed or
//!   died), finishes the claimant's work: the claim holds the claimant's `received_at`, so the
//!   retry builds byte for byte the same raw object under the same key, which create-if-absent
//!   stores once.
//!
//! The answer is recorded create-if-absent too: whoever records first wins, and every request
//! answers with the recorded answer, so what clients are told is what was stored.
//!
//! [`IdempotencyStore`] is the seam: [`ObjectClaims`] keeps claims in the lake's own object store
//! (a local folder or S3 with conditional writes); [`crate::ledger::DynamoLedger`] keeps them in a
//! DynamoDB table. The conformance tests in `tests/it` run against each implementation.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use eventlake_contract::TeamName;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::Accepted;

/// The batch id of a request: derived from the team and the key, so every retry of a keyed
/// request names the same batch; random without a key.
pub fn batch_id(team: &TeamName, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(k) => {
            let h = Sha256::digest(format!("{team}\0{k}").as_bytes());
            format!("k{}", crate::body::hex(&h[..16]))
        }
        None => format!("r{:032x}", rand::random::<u128>()),
    }
}

/// What the first request with a key wrote when it claimed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The body's fingerprint ([`crate::body::fingerprint`]).
    pub fingerprint: String,
    /// The claimant's `received_at`: a retry that finishes the claimant's work stamps the same.
    pub received_at: String,
    /// Unix milliseconds after which the claimant has answered or given up.
    pub deadline_ms: i64,
}

/// The recorded answer of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub fingerprint: String,
    pub answer: Accepted,
    /// The batch's object in the raw zone (`None` while it is in the dead-letter queue): what
    /// the bus reads to fan the batch out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<String>,
}

/// An answer as stored: today's form, or the bare answer recorded before claims existed (its
/// fingerprint is unknown, so any body replays it, as it did then).
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Answer(Answer),
    Legacy(Accepted),
}

impl From<Stored> for Answer {
    fn from(s: Stored) -> Self {
        match s {
            Stored::Answer(a) => a,
            Stored::Legacy(answer) => Answer {
                fingerprint: String::new(),
                answer,
                stored_at: None,
            },
        }
    }
}

impl Answer {
    /// Was this answer given to a body with `fingerprint`?
    pub fn matches(&self, fingerprint: &str) -> bool {
        self.fingerprint.is_empty() || self.fingerprint == fingerprint
    }
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key was free: this request holds it now.
    Won,
    /// Another request claimed it first.
    Held(Claim),
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("idempotency store at {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("idempotency ledger at {key}: {detail}")]
    Ledger {
        key: String,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("idempotency record {key} is unreadable: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Where claims and answers are kept. Every write is create-if-absent.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + std::fmt::Debug {
    /// Claims `batch_id` of `team` unless it is claimed already.
    async fn claim(
        &self,
        team: &TeamName,
        batch_id: &str,
        claim: &Claim,
    ) -> Result<Claimed, IdempotencyError>;
    /// The claim of `batch_id`, if any.
    async fn claim_of(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<Option<Claim>, IdempotencyError>;
    /// The recorded answer of `batch_id`, if any.
    async fn answer(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<Option<Answer>, IdempotencyError>;
    /// Whether recording an answer is the batch's commit point (the ledger, whose stream is the
    /// bus's outbox): then every accepted batch is recorded, with a key or without, and a
    /// request whose answer cannot be recorded is not acknowledged (`503`; its retry completes
    /// it).
    fn commits(&self) -> bool {
        false
    }
    /// Records `answer` unless one is recorded already; returns the recorded one.
    async fn record(
        &self,
        team: &TeamName,
        batch_id: &str,
        answer: &Answer,
    ) -> Result<Answer, IdempotencyError>;
    /// Notes that a dead-lettered batch of `batch_id` now sits at `stored_at` in the raw zone,
    /// once: `true` when this call noted it (for the ledger, the update its stream announces to
    /// the bus), `false` when it was noted before or the store keeps no such record.
    async fn redriven(
        &self,
        _team: &TeamName,
        _batch_id: &str,
        _stored_at: &str,
    ) -> Result<bool, IdempotencyError> {
        Ok(false)
    }
}

/// Claims and answers as small JSON objects under `_ingest/idempotency/team=<team>/` in the lake:
/// `<batch>.claim.json` and `<batch>.json`, written with `PutMode::Create` (`If-None-Match: *` on
/// S3, an exclusive create on a local folder).
#[derive(Debug, Clone)]
pub struct ObjectClaims {
    store: Arc<dyn ObjectStore>,
    root: String,
}

impl ObjectClaims {
    pub fn new(store: Arc<dyn ObjectStore>, root: &str) -> Self {
        Self {
            store,
            root: root.trim_matches('/').to_owned(),
        }
    }

    fn key(team: &TeamName, batch_id: &str, suffix: &str) -> String {
        format!("_ingest/idempotency/team={team}/{batch_id}{suffix}")
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<bool, IdempotencyError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let path = eventlake_store::key_path(&self.root, key);
        match self
            .store
            .put_opts(&path, PutPayload::from(Bytes::from(value)), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(IdempotencyError::Store {
                key: key.to_owned(),
                source,
            }),
        }
    }

    /// Creates `key` with `value`: `None` when created, else what is there. A create refused
    /// because another is in progress (S3 answers `409` to concurrent conditional writes, and
    /// the object may not be readable yet) is tried again.
    async fn create_or_read<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Option<T>, IdempotencyError> {
        let mut pause = std::time::Duration::from_millis(10);
        for _ in 0..8 {
            if self.create(key, value.clone()).await? {
                return Ok(None);
            }
            if let Some(there) = self.read(key).await? {
                return Ok(Some(there));
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        Err(IdempotencyError::Store {
            key: key.to_owned(),
            source: object_store::Error::Generic {
                store: "idempotency",
                source: "the key exists but cannot be read".into(),
            },
        })
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, IdempotencyError> {
        let path = eventlake_store::key_path(&self.root, key);
        let store_error = |source| IdempotencyError::Store {
            key: key.to_owned(),
            source,
        };
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(store_error)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| IdempotencyError::Corrupt {
                key: key.to_owned(),
                source,
            })
    }
}

#[async_trait]
impl IdempotencyStore for ObjectClaims {
    async fn claim(
        &self,
        team: &TeamName,
        batch_id: &str,
        claim: &Claim,
    ) -> Result<Claimed, IdempotencyError> {
        let key = Self::key(team, batch_id, ".claim.json");
        let value = serde_json::to_vec(claim).expect("serialises");
        self.create_or_read(&key, value)
            .await
            .map(|held| held.map_or(Claimed::Won, Claimed::Held))
    }

    async fn claim_of(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<Option<Claim>, IdempotencyError> {
        self.read(&Self::key(team, batch_id, ".claim.json")).await
    }

    async fn answer(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<Option<Answer>, IdempotencyError> {
        Ok(self
            .read::<Stored>(&Self::key(team, batch_id, ".json"))
            .await?
            .map(Answer::from))
    }

    async fn record(
        &self,
        team: &TeamName,
        batch_id: &str,
        answer: &Answer,
    ) -> Result<Answer, IdempotencyError> {
        let key = Self::key(team, batch_id, ".json");
        let value = serde_json::to_vec(answer).expect("serialises");
        Ok(self
            .create_or_read::<Stored>(&key, value)
            .await?
            .map_or_else(|| answer.clone(), Answer::from))
    }
}

//! Landing a batch in the raw zone: create-if-absent, retried with backoff inside the request's
//! deadline, and handed to a dead-letter queue when storage stays down. A batch is acknowledged
//! only once it is durable in one of the two.
//!
//! Nothing stored is ever replaced: when a key already holds other bytes (the same idempotency key
//! sent with another body while the key could not be claimed), the batch is written beside it
//! under a name derived from its content, so both are kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::body::hex;
use crate::deadline::{Deadline, Expired, Phase};
use crate::idempotency::IdempotencyStore;
use eventlake_contract::layout;

/// Where a batch ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Landed {
    /// Written to the raw zone now.
    Written,
    /// The same bytes were already there (a retried request): nothing changed.
    AlreadyThere,
    /// The key held other bytes: the batch was written beside it ([`apart_key`]).
    KeptApart,
    /// Storage stayed unavailable; the batch is durable in the dead-letter queue.
    DeadLettered,
}

/// Where a batch whose key holds other bytes is kept: the key with the first 16 bytes of the
/// batch's SHA-256 before its extension (`…/<batch>-<hash>.ndjson.gz`), so the same bytes always
/// find the same place.
pub fn apart_key(key: &str, data: &[u8]) -> String {
    let hash = content_hash(data);
    match key.strip_suffix(".ndjson.gz") {
        Some(stem) => format!("{stem}-{hash}.ndjson.gz"),
        None => format!("{key}-{hash}"),
    }
}

fn content_hash(data: &[u8]) -> String {
    hex(&Sha256::digest(data)[..16])
}

/// A batch waiting in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Raw key relative to the lake root.
    pub key: String,
    /// The gzip NDJSON object, base64.
    pub data_base64: String,
}

impl DeadLetter {
    pub fn new(key: &str, data: &[u8]) -> Self {
        use base64::Engine;
        Self {
            key: key.to_owned(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    pub fn data(&self) -> Result<Vec<u8>, RedriveError> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.data_base64)
            .map_err(|source| RedriveError::NotBase64 {
                key: self.key.clone(),
                source,
            })
    }
}

/// A dead-letter queue that failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("the batch is {bytes} bytes as a dead letter, over the queue's {limit} byte limit")]
    TooLarge { bytes: usize, limit: usize },
    #[error("dead-letter folder {}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sqs {operation}: {message}")]
    Sqs {
        operation: &'static str,
        message: String,
    },
    #[error("unreadable dead letter {id}: {source}")]
    Unreadable {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The dead-letter queue behind the raw zone.
#[async_trait]
pub trait Dlq: Send + Sync + std::fmt::Debug {
    /// Keeps `letter`. Sending the same letter twice may keep it twice (redrive lands it once);
    /// a letter never replaces another.
    async fn send(&self, letter: &DeadLetter) -> Result<(), DlqError>;
    /// Up to `max` letters, each with a receipt to [`Dlq::ack`] once redriven.
    async fn receive(&self, max: usize) -> Result<Vec<(String, DeadLetter)>, DlqError>;
    async fn ack(&self, receipt: &str) -> Result<(), DlqError>;
}

/// A dead-letter queue in a local folder: one file per distinct letter, named after its key and
/// content, created only if absent.
#[derive(Debug, Clone)]
pub struct DirDlq {
    dir: PathBuf,
}

impl DirDlq {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn error(&self, source: std::io::Error) -> DlqError {
        DlqError::Folder {
            dir: self.dir.clone(),
            source,
        }
    }
}

#[async_trait]
impl Dlq for DirDlq {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DlqError> {
        let dir = self.dir.clone();
        let name = format!(
            "{}.{}.json",
            letter.key.replace('/', "%2F"),
            content_hash(letter.data_base64.as_bytes())
        );
        let body = serde_json::to_vec(letter).expect("letter serialises");
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{name}.tmp-{:08x}", rand::random::<u32>()));
            std::fs::write(&tmp, &body)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            // A hard link is create-if-absent: an existing letter of the same name holds the
            // same bytes and stays as it is.
            let linked = std::fs::hard_link(&tmp, dir.join(&name));
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => std::fs::File::open(&dir)?.sync_all(),
            }
        })
        .await
        .map_err(|e| self.error(std::io::Error::other(e)))?
        .map_err(|e| self.error(e))
    }

    async fn receive(&self, max: usize) -> Result<Vec<(String, DeadLetter)>, DlqError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.error(e)),
        };
        for e in entries.flatten() {
            if out.len() >= max {
                break;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let body = std::fs::read(e.path()).map_err(|err| self.error(err))?;
            let letter: DeadLetter =
                serde_json::from_slice(&body).map_err(|source| DlqError::Unreadable {
                    id: e.path().display().to_string(),
                    source,
                })?;
            out.push((e.path().display().to_string(), letter));
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> Result<(), DlqError> {
        match std::fs::remove_file(receipt) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }
}

/// Why the raw zone did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Expired(#[from] Expired),
}

/// Why the dead-letter queue did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum DlqFailure {
    #[error("none configured")]
    NotConfigured,
    #[error(transparent)]
    Failed(#[from] DlqError),
    #[error(transparent)]
    Expired(#[from] Expired),
}

/// Storage failed and so did the dead-letter queue: the client must retry.
#[derive(Debug, thiserror::Error)]
#[error("the batch could not be made durable: storage: {storage}; dead-letter queue: {dlq}")]
pub struct NotDurable {
    pub storage: StorageError,
    pub dlq: DlqFailure,
}

/// The raw zone of a lake, for writing.
#[derive(Debug, Clone)]
pub struct RawSink {
    store: Arc<dyn ObjectStore>,
    root: String,
    dlq: Option<Arc<dyn Dlq>>,
}

impl RawSink {
    pub fn new(store: Arc<dyn ObjectStore>, root: &str, dlq: Option<Arc<dyn Dlq>>) -> Self {
        Self {
            store,
            root: root.trim_matches('/').to_owned(),
            dlq,
        }
    }

    fn path(&self, key: &str) -> Path {
        eventlake_store::key_path(&self.root, key)
    }

    /// Writes `data` at `key` unless something is there already.
    pub async fn put_if_absent(
        &self,
        key: &str,
        data: Bytes,
    ) -> Result<Landed, object_store::Error> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&self.path(key), PutPayload::from_bytes(data), opts)
            .await
        {
            Ok(_) => Ok(Landed::Written),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Landed::AlreadyThere),
            Err(e) => Err(e),
        }
    }

    /// Reads a small object, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, object_store::Error> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `data` at `key`; when `key` already holds other bytes, at [`apart_key`]. Never
    /// replaces anything, never drops the batch.
    pub async fn store(&self, key: &str, data: Bytes) -> Result<Landed, object_store::Error> {
        match self.put_if_absent(key, data.clone()).await? {
            Landed::AlreadyThere => {}
            landed => return Ok(landed),
        }
        if self.get(key).await?.as_deref() == Some(&data[..]) {
            return Ok(Landed::AlreadyThere);
        }
        let apart = apart_key(key, &data);
        tracing::warn!(
            key,
            apart,
            "the raw key holds another batch; kept beside it"
        );
        self.put_if_absent(&apart, data).await?;
        Ok(Landed::KeptApart)
    }

    /// Lands a batch: storage first, retried with backoff until the storage phase of `deadline`
    /// ends, then the dead-letter queue until its phase ends.
    pub async fn land(
        &self,
        key: &str,
        data: Bytes,
        deadline: &Deadline,
    ) -> Result<Landed, NotDurable> {
        let mut delay = Duration::from_millis(25);
        let storage = loop {
            let error = match deadline
                .run(Phase::Storage, self.store(key, data.clone()))
                .await
            {
                Ok(Ok(l)) => return Ok(l),
                Ok(Err(e)) => StorageError::Store(e),
                Err(e) => StorageError::Expired(e),
            };
            tracing::warn!(key, error = %error, "raw write failed");
            let jitter =
                Duration::from_millis(rand::random::<u64>() % (delay.as_millis() as u64 + 1));
            if matches!(error, StorageError::Expired(_))
                || deadline.left_in(Phase::Storage) <= delay + jitter
            {
                break error;
            }
            tokio::time::sleep(delay + jitter).await;
            delay = (delay * 2).min(Duration::from_millis(400));
        };
        let Some(dlq) = &self.dlq else {
            return Err(NotDurable {
                storage,
                dlq: DlqFailure::NotConfigured,
            });
        };
        let letter = DeadLetter::new(key, &data);
        match deadline.run(Phase::DeadLetter, dlq.send(&letter)).await {
            Ok(Ok(())) => Ok(Landed::DeadLettered),
            Ok(Err(e)) => Err(NotDurable {
                storage,
                dlq: e.into(),
            }),
            Err(e) => Err(NotDurable {
                storage,
                dlq: e.into(),
            }),
        }
    }
}

/// What `redrive` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redriven {
    pub written: usize,
    pub already_there: usize,
    /// Letters whose key held another batch: written beside it.
    pub kept_apart: usize,
    /// Batches the ledger now names with their raw object (announced to the bus by its stream).
    pub announced: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Dlq(#[from] DlqError),
    #[error("dead letter for {key} is not base64: {source}")]
    NotBase64 {
        key: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{key}: the ledger: {detail}")]
    Ledger { key: String, detail: String },
    #[error("{key}: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
}

/// Moves every letter of the dead-letter queue into the raw zone (create-if-absent, so running it
/// twice lands each batch once; a key holding another batch keeps both), acknowledging each letter
/// only after its batch is stored and, with a ledger, noted there (its stream then announces the
/// batch to the bus, once however often the redrive runs).
pub async fn redrive(
    sink: &RawSink,
    dlq: &dyn Dlq,
    ledger: Option<&dyn IdempotencyStore>,
) -> Result<Redriven, RedriveError> {
    let mut out = Redriven::default();
    loop {
        let letters = dlq.receive(10).await?;
        if letters.is_empty() {
            return Ok(out);
        }
        for (receipt, letter) in letters {
            let data = letter.data()?;
            let landed = sink
                .store(&letter.key, Bytes::from(data.clone()))
                .await
                .map_err(|source| RedriveError::Store {
                    key: letter.key.clone(),
                    source,
                })?;
            let stored_at = match landed {
                Landed::AlreadyThere => {
                    out.already_there += 1;
                    letter.key.clone()
                }
                Landed::KeptApart => {
                    out.kept_apart += 1;
                    apart_key(&letter.key, &data)
                }
                _ => {
                    out.written += 1;
                    letter.key.clone()
                }
            };
            if let Some(ledger) = ledger {
                let raw = layout::parse_raw_key(&letter.key).map_err(|e| RedriveError::Ledger {
                    key: letter.key.clone(),
                    detail: e.to_string(),
                })?;
                let batch_id = raw
                    .file_name
                    .strip_suffix(".ndjson.gz")
                    .unwrap_or(&raw.file_name);
                if ledger
                    .redriven(&raw.partition.team, batch_id, &stored_at)
                    .await
                    .map_err(|e| RedriveError::Ledger {
                        key: letter.key.clone(),
                        detail: e.to_string(),
                    })?
                {
                    out.announced += 1;
                }
            }
            dlq.ack(&receipt).await?;
        }
    }
}

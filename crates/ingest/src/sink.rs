//! Landing a batch in the raw zone: create-if-absent (a retried request changes nothing), retried
//! with backoff inside a time budget, and handed to a dead-letter queue when storage stays down.
//! A batch is acknowledged only once it is durable in one of the two.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// Where a batch ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Landed {
    /// Written to the raw zone now.
    Written,
    /// The same key was already there (a retried request): nothing changed.
    AlreadyThere,
    /// Storage stayed unavailable; the batch is durable in the dead-letter queue.
    DeadLettered,
}

/// A batch waiting in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Raw key relative to the lake root.
    pub key: String,
    /// The gzip NDJSON object, base64.
    pub data_base64: String,
}

/// The dead-letter queue behind the raw zone.
#[async_trait]
pub trait Dlq: Send + Sync + std::fmt::Debug {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String>;
    /// Up to `max` letters, each with a receipt to [`Dlq::ack`] once redriven.
    async fn receive(&self, max: usize) -> Result<Vec<(String, DeadLetter)>, String>;
    async fn ack(&self, receipt: &str) -> Result<(), String>;
}

/// A dead-letter queue in a local folder: one file per letter, written atomically.
#[derive(Debug, Clone)]
pub struct DirDlq {
    dir: PathBuf,
}

impl DirDlq {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

#[async_trait]
impl Dlq for DirDlq {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        let dir = self.dir.clone();
        let name = letter.key.replace('/', "%2F");
        let body = serde_json::to_vec(letter).expect("letter serialises");
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(format!(".{name}.tmp-{}", rand::random::<u32>()));
            std::fs::write(&tmp, &body)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, dir.join(name))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("dead-letter folder {}: {e}", self.dir.display()))
    }

    async fn receive(&self, max: usize) -> Result<Vec<(String, DeadLetter)>, String> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.to_string()),
        };
        for e in entries.flatten() {
            if out.len() >= max {
                break;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let body = std::fs::read(e.path()).map_err(|e| e.to_string())?;
            let letter: DeadLetter = serde_json::from_slice(&body)
                .map_err(|err| format!("unreadable dead letter {}: {err}", e.path().display()))?;
            out.push((e.path().display().to_string(), letter));
        }
        Ok(out)
    }

    async fn ack(&self, receipt: &str) -> Result<(), String> {
        match std::fs::remove_file(receipt) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Storage failed and so did the dead-letter queue: the client must retry.
#[derive(Debug, thiserror::Error)]
#[error("the batch could not be made durable: storage: {storage}; dead-letter queue: {dlq}")]
pub struct NotDurable {
    pub storage: String,
    pub dlq: String,
}

/// The raw zone of a lake, for writing.
#[derive(Debug, Clone)]
pub struct RawSink {
    store: Arc<dyn ObjectStore>,
    root: String,
    dlq: Option<Arc<dyn Dlq>>,
    /// Time allowed for storage retries before the dead-letter queue takes the batch.
    pub retry_budget: Duration,
}

impl RawSink {
    pub fn new(store: Arc<dyn ObjectStore>, root: &str, dlq: Option<Arc<dyn Dlq>>) -> Self {
        Self {
            store,
            root: root.trim_matches('/').to_owned(),
            dlq,
            retry_budget: Duration::from_millis(1500),
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

    /// Reads a small object (an idempotency marker), if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, object_store::Error> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lands a batch: storage first, retried with backoff within the budget, then the
    /// dead-letter queue.
    pub async fn land(&self, key: &str, data: Bytes) -> Result<Landed, NotDurable> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(25);
        let storage_error = loop {
            match self.put_if_absent(key, data.clone()).await {
                Ok(l) => return Ok(l),
                Err(e) => {
                    tracing::warn!(key, error = %e, "raw write failed");
                    if started.elapsed() + delay > self.retry_budget {
                        break e.to_string();
                    }
                    let jitter = Duration::from_millis(
                        rand::random::<u64>() % (delay.as_millis() as u64 + 1),
                    );
                    tokio::time::sleep(delay + jitter).await;
                    delay = (delay * 2).min(Duration::from_millis(400));
                }
            }
        };
        let Some(dlq) = &self.dlq else {
            return Err(NotDurable {
                storage: storage_error,
                dlq: "none configured".into(),
            });
        };
        use base64::Engine;
        let letter = DeadLetter {
            key: key.to_owned(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(&data),
        };
        match dlq.send(&letter).await {
            Ok(()) => Ok(Landed::DeadLettered),
            Err(dlq) => Err(NotDurable {
                storage: storage_error,
                dlq,
            }),
        }
    }
}

/// What `redrive` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redriven {
    pub written: usize,
    pub already_there: usize,
}

/// Moves every letter of the dead-letter queue into the raw zone (create-if-absent, so running it
/// twice lands each batch once), acknowledging each letter only after its batch is stored.
pub async fn redrive(sink: &RawSink, dlq: &dyn Dlq) -> Result<Redriven, String> {
    use base64::Engine;
    let mut out = Redriven::default();
    loop {
        let letters = dlq.receive(10).await?;
        if letters.is_empty() {
            return Ok(out);
        }
        for (receipt, letter) in letters {
            let data = base64::engine::general_purpose::STANDARD
                .decode(&letter.data_base64)
                .map_err(|e| format!("dead letter for {} is not base64: {e}", letter.key))?;
            match sink.put_if_absent(&letter.key, Bytes::from(data)).await {
                Ok(Landed::AlreadyThere) => out.already_there += 1,
                Ok(_) => out.written += 1,
                Err(e) => return Err(format!("{}: {e}", letter.key)),
            }
            dlq.ack(&receipt).await?;
        }
    }
}

//! Leases: at most one run works on a partition at a time, whatever the catalog.
//!
//! A run takes the partition's lease before it reads the raw data and gives it back after the
//! commit; a run that finds the lease held skips the partition as busy. The commit itself stays a
//! compare-and-swap where the catalog offers one, but the Glue Data Catalog does not (its commit
//! is a read then a write), so without the lease two runs could both "win".
//!
//! - **Local lake**: an exclusive lock on `_leases/events/team=…/.dt=….lock`, which the OS gives
//!   back when the process ends, however it ends.
//! - **S3 lake** (any catalog, Glue included): an object `_leases/events/team=…/dt=….json`
//!   holding who took it and until when, created with `If-None-Match: *`. The holder extends it
//!   every third of its time to live with `If-Match` on the version it wrote; a holder that dies
//!   stops extending it and the lease expires, after which the next run replaces it (again with
//!   `If-Match`, so two runs cannot both take over). A commit first extends the lease once more,
//!   so a run whose lease was taken over (it stalled past the expiry) fails instead of committing.
//!
//! Expiry compares the clocks of two machines: keep the time to live well above their skew.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use eventlake_contract::{PartitionKey, hive};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::catalog::{Catalog, CommitOutcome, PartitionEntry};
use crate::error::{Error, Result};
use crate::lake::Lake;

/// The leases' prefix inside the lake.
pub const LEASE_PREFIX: &str = "_leases/events";

/// A lease lives this long unless its holder extends it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);

/// What a lease object holds (and a local lock file, for the busy message).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    holder: String,
    acquired_at: String,
    expires_at: String,
}

/// Who runs this process, as other runs see it in a busy message: host and process id.
pub fn this_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown host".into());
    format!("pid {} on {host}", std::process::id())
}

/// The leases of one lake.
#[derive(Debug, Clone)]
pub struct Leases {
    lake: Lake,
    ttl: Duration,
    holder: String,
}

/// The outcome of [`Leases::take`].
#[derive(Debug)]
pub enum Taken {
    Held(Lease),
    /// Another run holds the partition.
    Busy {
        holder: String,
        /// RFC 3339; absent for a local lock, which lasts as long as its process.
        until: Option<String>,
    },
}

impl Leases {
    /// Leases on `lake` that live `ttl` unless extended, taken in the name of `holder`.
    pub fn new(lake: &Lake, ttl: Duration, holder: impl Into<String>) -> Self {
        Self {
            lake: lake.clone(),
            ttl: ttl.max(Duration::from_secs(1)),
            holder: holder.into(),
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn record(&self) -> Record {
        let now = Utc::now();
        Record {
            holder: self.holder.clone(),
            acquired_at: rfc3339(now),
            expires_at: rfc3339(now + self.ttl),
        }
    }

    /// Takes the partition's lease, or says who holds it.
    pub async fn take(&self, partition: &PartitionKey) -> Result<Taken> {
        match self.lake.local_dir() {
            Some(dir) => {
                let path = dir
                    .join(LEASE_PREFIX)
                    .join(format!("team={}", partition.team))
                    .join(format!(".{}.lock", hive::dt(&partition.dt)));
                let record = self.record();
                let p = partition.clone();
                tokio::task::spawn_blocking(move || take_local(&path, &record, p)).await?
            }
            None => self.take_object(partition).await,
        }
    }

    async fn take_object(&self, partition: &PartitionKey) -> Result<Taken> {
        let key = format!("{LEASE_PREFIX}/{}.json", hive::partition(partition));
        let path = self.lake.path(&key);
        let store = self.lake.store();
        // A few rounds at most: the lease may be released or replaced between two calls.
        for _ in 0..4 {
            let body = serde_json::to_vec(&self.record()).expect("record serialises");
            let create = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match store.put_opts(&path, PutPayload::from(body), create).await {
                Ok(r) => {
                    let version = UpdateVersion {
                        e_tag: r.e_tag,
                        version: r.version,
                    };
                    return Ok(Taken::Held(self.held_object(partition, path, version)));
                }
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(Error::storage(&path, e)),
            }
            let got = match store.get(&path).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(Error::storage(&path, e)),
            };
            let seen = UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await.map_err(|e| Error::storage(&path, e))?;
            // An unreadable lease object (cut short by hand) is treated as expired.
            let held: Option<Record> = serde_json::from_slice(&bytes).ok();
            if let Some(h) = &held
                && !expired(&h.expires_at)
            {
                return Ok(Taken::Busy {
                    holder: h.holder.clone(),
                    until: Some(h.expires_at.clone()),
                });
            }
            let body = serde_json::to_vec(&self.record()).expect("record serialises");
            let replace = PutOptions {
                mode: PutMode::Update(seen),
                ..PutOptions::default()
            };
            match store.put_opts(&path, PutPayload::from(body), replace).await {
                Ok(r) => {
                    tracing::warn!(
                        partition = %partition,
                        expired_holder = held.as_ref().map(|h| h.holder.as_str()).unwrap_or("unreadable lease"),
                        "took over an expired lease"
                    );
                    let version = UpdateVersion {
                        e_tag: r.e_tag,
                        version: r.version,
                    };
                    return Ok(Taken::Held(self.held_object(partition, path, version)));
                }
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        Ok(Taken::Busy {
            holder: "another run (the lease changed hands while this run looked at it)".into(),
            until: None,
        })
    }

    fn held_object(&self, partition: &PartitionKey, path: Path, version: UpdateVersion) -> Lease {
        let shared = Arc::new(ObjectLease {
            leases: self.clone(),
            partition: partition.clone(),
            path,
            version: Mutex::new(version),
            lost: AtomicBool::new(false),
        });
        let beat = Arc::clone(&shared);
        let every = self.ttl / 3;
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = beat.extend().await {
                    tracing::warn!(partition = %beat.partition, error = %e, "cannot extend the lease");
                    if beat.lost.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
        });
        Lease {
            partition: partition.clone(),
            kind: Kind::Object {
                shared,
                heartbeat: Some(heartbeat),
            },
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn expired(expires_at: &str) -> bool {
    DateTime::parse_from_rfc3339(expires_at)
        .map(|t| t.with_timezone(&Utc) <= Utc::now())
        .unwrap_or(true)
}

fn take_local(path: &std::path::Path, record: &Record, partition: PartitionKey) -> Result<Taken> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create lease folder", dir.display(), e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("cannot open lease", path.display(), e))?;
    match file.try_lock() {
        Ok(()) => {
            // Who holds it, for the busy message of another run; the lock is what counts.
            let body = serde_json::to_vec(record).expect("record serialises");
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = file.write_all(&body);
            Ok(Taken::Held(Lease {
                partition,
                kind: Kind::Local(file),
            }))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = serde_json::from_str::<Record>(&text)
                .map(|r| r.holder)
                .unwrap_or_else(|_| "another process".into());
            Ok(Taken::Busy {
                holder,
                until: None,
            })
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io("cannot lock lease", path.display(), e))
        }
    }
}

#[derive(Debug)]
struct ObjectLease {
    leases: Leases,
    partition: PartitionKey,
    path: Path,
    /// The version of the lease object this run wrote last.
    version: Mutex<UpdateVersion>,
    lost: AtomicBool,
}

impl ObjectLease {
    /// Moves the expiry one time to live ahead, provided the object is still the one this run
    /// wrote; marks the lease lost when it is not.
    async fn extend(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.lost_error("it was taken over earlier"));
        }
        let mut version = self.version.lock().await;
        let body = serde_json::to_vec(&self.leases.record()).expect("record serialises");
        let opts = PutOptions {
            mode: PutMode::Update(version.clone()),
            ..PutOptions::default()
        };
        match self
            .leases
            .lake
            .store()
            .put_opts(&self.path, PutPayload::from(body), opts)
            .await
        {
            Ok(r) => {
                *version = UpdateVersion {
                    e_tag: r.e_tag,
                    version: r.version,
                };
                Ok(())
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(self.lost_error("another run replaced it after it expired"))
            }
            Err(e) => Err(Error::storage(&self.path, e)),
        }
    }

    fn lost_error(&self, why: &str) -> Error {
        Error::LeaseLost {
            partition: self.partition.clone(),
            detail: why.to_string(),
        }
    }

    async fn release(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        let version = self.version.lock().await;
        let store = self.leases.lake.store();
        // S3 has no conditional delete here: delete only what this run wrote last.
        match store.head(&self.path).await {
            Ok(meta) if meta.e_tag == version.e_tag => store
                .delete(&self.path)
                .await
                .map_err(|e| Error::storage(&self.path, e)),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(&self.path, e)),
        }
    }
}

#[derive(Debug)]
enum Kind {
    /// Held while the file stays open.
    Local(
        // Held for its lock, never read.
        #[allow(dead_code)] File,
    ),
    Object {
        shared: Arc<ObjectLease>,
        heartbeat: Option<JoinHandle<()>>,
    },
}

/// A held lease. Dropping it stops extending it (an object lease then expires on its own);
/// [`Lease::release`] gives it back at once.
#[derive(Debug)]
pub struct Lease {
    partition: PartitionKey,
    kind: Kind,
}

impl Lease {
    pub fn partition(&self) -> &PartitionKey {
        &self.partition
    }

    /// Checks that this run still holds the lease, and extends it: called right before a commit.
    pub async fn confirm(&self) -> Result<()> {
        match &self.kind {
            Kind::Local(_) => Ok(()),
            Kind::Object { shared, .. } => shared.extend().await,
        }
    }

    /// Gives the lease back.
    pub async fn release(mut self) -> Result<()> {
        match &mut self.kind {
            Kind::Local(_) => Ok(()),
            Kind::Object { shared, heartbeat } => {
                if let Some(h) = heartbeat.take() {
                    h.abort();
                }
                shared.release().await
            }
        }
    }

    /// Stops extending the lease without giving it back, as a holder that dies does: it
    /// expires after its time to live (a local lock is released, as the OS does for a dead
    /// process).
    pub fn abandon(self) {
        drop(self);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Kind::Object {
            heartbeat: Some(h), ..
        } = &mut self.kind
        {
            h.abort();
        }
    }
}

/// A catalog whose commits of one partition go through only while this run holds its lease.
#[derive(Debug)]
pub struct LeasedCatalog {
    inner: Arc<dyn Catalog>,
    lease: Arc<Lease>,
}

impl LeasedCatalog {
    pub fn new(inner: Arc<dyn Catalog>, lease: Arc<Lease>) -> Self {
        Self { inner, lease }
    }
}

#[async_trait]
impl Catalog for LeasedCatalog {
    async fn get(&self, partition: &PartitionKey) -> Result<Option<PartitionEntry>> {
        self.inner.get(partition).await
    }

    async fn list(&self) -> Result<Vec<PartitionEntry>> {
        self.inner.list().await
    }

    async fn commit(
        &self,
        entry: &PartitionEntry,
        expected: Option<&str>,
    ) -> Result<CommitOutcome> {
        if entry.partition == self.lease.partition {
            self.lease.confirm().await?;
        }
        self.inner.commit(entry, expected).await
    }
}

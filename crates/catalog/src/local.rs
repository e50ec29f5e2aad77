//! The embedded catalog: one small JSON file per partition inside the lake folder,
//! `_catalog/events/team=<team>/dt=<dt>.json`.
//!
//! A commit takes an exclusive lock on the partition's lock file (released by the OS when the
//! process dies, so a killed run never wedges it), checks the expected version, writes the new
//! entry to a temporary file, syncs it and renames it over the old one. Different partitions never
//! contend; two processes committing the same partition are serialised and neither registration is
//! lost.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use eventlake_contract::{PartitionKey, hive};

use crate::catalog::{Catalog, CommitOutcome, PartitionEntry};
use crate::error::{Error, Result};

/// The catalog's folder inside the lake.
pub const LOCAL_CATALOG_DIR: &str = "_catalog/events";

#[derive(Debug, Clone)]
pub struct LocalCatalog {
    dir: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalCatalog {
    /// The catalog of the lake folder `lake_dir`.
    pub fn new(lake_dir: &Path) -> Self {
        Self {
            dir: lake_dir.join(LOCAL_CATALOG_DIR),
        }
    }

    fn entry_path(&self, p: &PartitionKey) -> PathBuf {
        self.dir
            .join(hive::team(&p.team))
            .join(format!("{}.json", hive::dt(&p.dt)))
    }

    fn lock_path(&self, p: &PartitionKey) -> PathBuf {
        self.dir
            .join(hive::team(&p.team))
            .join(format!(".{}.lock", hive::dt(&p.dt)))
    }

    fn read(path: &Path) -> Result<Option<PartitionEntry>> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| Error::Json {
                    what: "catalog entry",
                    path: path.display().to_string(),
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read catalog entry", path.display(), e)),
        }
    }

    fn commit_blocking(
        &self,
        entry: &PartitionEntry,
        expected: Option<&str>,
    ) -> Result<CommitOutcome> {
        let path = self.entry_path(&entry.partition);
        let dir = path.parent().expect("entry has a folder");
        fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create catalog folder", dir.display(), e))?;
        let lock_path = self.lock_path(&entry.partition);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("cannot open catalog lock", lock_path.display(), e))?;
        lock.lock()
            .map_err(|e| Error::io("cannot lock catalog entry", lock_path.display(), e))?;

        let current = Self::read(&path)?;
        let current_version = current.as_ref().map(|c| c.version.as_str());
        if current_version != expected {
            let current = current.expect("a version differs from `expected`");
            if current.raw_fingerprint == entry.raw_fingerprint {
                return Ok(CommitOutcome::AlreadyCurrent);
            }
            return Err(Error::CommitConflict {
                partition: entry.partition.clone(),
                found: current.version,
            });
        }

        let tmp = dir.join(format!(
            ".tmp-{}-{}-dt={}.json",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            entry.partition.dt
        ));
        let body = serde_json::to_vec_pretty(entry).expect("entry serialises");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("cannot write catalog entry", path.display(), e)
        })?;
        Ok(CommitOutcome::Committed)
    }

    fn list_blocking(&self) -> Result<Vec<PartitionEntry>> {
        let mut out = Vec::new();
        let teams = match fs::read_dir(&self.dir) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("cannot list catalog", self.dir.display(), e)),
        };
        for team_dir in teams.flatten() {
            let name = team_dir.file_name();
            if name.to_str().and_then(hive::parse_team).is_none() {
                continue;
            }
            let files = fs::read_dir(team_dir.path())
                .map_err(|e| Error::io("cannot list catalog", team_dir.path().display(), e))?;
            for f in files.flatten() {
                let path = f.path();
                let Some(key) = path
                    .strip_prefix(&self.dir)
                    .ok()
                    .and_then(|p| p.to_str())
                    .and_then(|p| hive::parse_partition(p, ".json"))
                else {
                    continue;
                };
                if let Some(entry) = Self::read(&self.entry_path(&key))? {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }
}

#[async_trait]
impl Catalog for LocalCatalog {
    async fn get(&self, partition: &PartitionKey) -> Result<Option<PartitionEntry>> {
        let path = self.entry_path(partition);
        tokio::task::spawn_blocking(move || Self::read(&path)).await?
    }

    async fn list(&self) -> Result<Vec<PartitionEntry>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.list_blocking()).await?
    }

    async fn commit(
        &self,
        entry: &PartitionEntry,
        expected: Option<&str>,
    ) -> Result<CommitOutcome> {
        let this = self.clone();
        let entry = entry.clone();
        let expected = expected.map(str::to_owned);
        tokio::task::spawn_blocking(move || this.commit_blocking(&entry, expected.as_deref()))
            .await?
    }
}

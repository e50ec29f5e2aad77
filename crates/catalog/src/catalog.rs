//! The catalog: for each partition `(team, dt)`, which committed version readers see.
//!
//! A compaction writes a whole new version under its own prefix, then calls
//! [`Catalog::commit`], which switches the partition to it in one step. Readers go through the
//! catalog only, so they see the old version or the new one, never a mix, and never a version a
//! crashed run left behind.
//!
//! The embedded default is [`LocalCatalog`], a folder inside the lake. Other catalogs (the Glue Data
//! Catalog) implement the same trait.

use std::collections::BTreeMap;

use async_trait::async_trait;
use eventlake_contract::PartitionKey;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One data file of a committed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Key relative to the lake root.
    pub key: String,
    pub size: u64,
    pub rows: u64,
    /// Rows per `event_type`, summing to `rows`: table statistics that let `count(*)` grouped
    /// by team, day and event type be answered without reading the file. Empty when unknown
    /// (older versions) or when the file has more than [`MAX_TYPE_COUNTS`] types.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_types: BTreeMap<String, u64>,
}

impl DataFile {
    /// Whether `event_types` gives all of the file's rows by type (a file without rows needs no
    /// counts).
    pub fn counts_every_type(&self) -> bool {
        self.event_types.values().sum::<u64>() == self.rows
    }
}

/// Files with more distinct event types than this carry no per-type counts (they ride in Glue
/// partition parameters, which have a size limit).
pub const MAX_TYPE_COUNTS: usize = 64;

/// What the catalog knows of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    pub partition: PartitionKey,
    pub version: String,
    /// The version's prefix relative to the lake root (`curated/events/team=…/dt=…/v=…/`).
    pub location: String,
    /// The manifest's key relative to the lake root.
    pub manifest: String,
    /// Fingerprint of the raw objects the version was built from.
    pub raw_fingerprint: String,
    pub rows: u64,
    pub files: Vec<DataFile>,
    /// RFC 3339, UTC.
    pub committed_at: String,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The partition now points at the new version.
    Committed,
    /// The partition already pointed at a version built from the same raw data (a concurrent run
    /// did the same work); nothing changed.
    AlreadyCurrent,
}

/// What a commit finds when the partition does not point where the run expected: a version built
/// from the same raw data means the work is done ([`CommitOutcome::AlreadyCurrent`]); anything
/// else is a conflict.
pub(crate) fn settle(
    entry: &PartitionEntry,
    current: Option<&PartitionEntry>,
) -> Result<CommitOutcome> {
    match current {
        Some(c) if c.raw_fingerprint == entry.raw_fingerprint => Ok(CommitOutcome::AlreadyCurrent),
        Some(c) => Err(crate::Error::CommitConflict {
            partition: entry.partition.clone(),
            found: c.version.clone(),
        }),
        None => Err(crate::Error::CommitConflict {
            partition: entry.partition.clone(),
            found: "(none: the entry was removed)".into(),
        }),
    }
}

#[async_trait]
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// The entry of one partition, if it was ever committed.
    async fn get(&self, partition: &PartitionKey) -> Result<Option<PartitionEntry>>;

    /// Every committed partition, ordered by team and date.
    async fn list(&self) -> Result<Vec<PartitionEntry>>;

    /// Points the partition at `entry`'s version in one atomic step, provided the partition still
    /// points at `expected` (the version this run saw when it planned, `None` for a partition
    /// never committed). When it points elsewhere, a run that built the same raw data gets
    /// [`CommitOutcome::AlreadyCurrent`]; any other gets [`Error::CommitConflict`].
    ///
    /// [`Error::CommitConflict`]: crate::Error::CommitConflict
    async fn commit(&self, entry: &PartitionEntry, expected: Option<&str>)
    -> Result<CommitOutcome>;
}

//! The catalog of a lake in object storage (S3): one JSON object per partition,
//! `_catalog/events/team=<team>/dt=<dt>.json`, as in the local catalog.
//!
//! A commit is one conditional write: `If-None-Match: *` for a partition never committed, and
//! `If-Match: <etag>` of the entry this run read for one already committed, so two runs racing on
//! a partition cannot both win and neither registration is silently lost.

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use async_trait::async_trait;
use eventlake_contract::{PartitionKey, hive};

use crate::catalog::{Catalog, CommitOutcome, PartitionEntry, settle};
use crate::error::{Error, Result};
use crate::lake::Lake;

/// The catalog's prefix inside the lake.
pub const OBJECT_CATALOG_PREFIX: &str = "_catalog/events";

#[derive(Debug, Clone)]
pub struct ObjectCatalog {
    lake: Lake,
}

impl ObjectCatalog {
    pub fn new(lake: &Lake) -> Self {
        Self { lake: lake.clone() }
    }

    fn key(p: &PartitionKey) -> String {
        format!("{OBJECT_CATALOG_PREFIX}/{}.json", hive::partition(p))
    }

    /// The entry and its version tag, if present.
    async fn read(&self, key: &str) -> Result<Option<(PartitionEntry, UpdateVersion)>> {
        let path = self.lake.path(key);
        let got = match self.lake.store().get(&path).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::storage(&path, e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(|e| Error::storage(&path, e))?;
        let entry = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: "catalog entry",
            path: path.to_string(),
            source,
        })?;
        Ok(Some((entry, version)))
    }
}

#[async_trait]
impl Catalog for ObjectCatalog {
    async fn get(&self, partition: &PartitionKey) -> Result<Option<PartitionEntry>> {
        Ok(self.read(&Self::key(partition)).await?.map(|(e, _)| e))
    }

    async fn list(&self) -> Result<Vec<PartitionEntry>> {
        let objects = self.lake.list(OBJECT_CATALOG_PREFIX).await?;
        let keys: Vec<String> = objects
            .into_iter()
            .map(|m| m.location.to_string())
            .filter(|k| hive::parse_partition(k, ".json").is_some())
            .collect();
        let mut out: Vec<PartitionEntry> = futures::stream::iter(keys)
            .map(|k| async move { self.read(&k).await })
            .buffer_unordered(16)
            .try_filter_map(|e| async move { Ok(e.map(|(e, _)| e)) })
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    async fn commit(
        &self,
        entry: &PartitionEntry,
        expected: Option<&str>,
    ) -> Result<CommitOutcome> {
        let key = Self::key(&entry.partition);
        let current = self.read(&key).await?;
        let mode = match (&current, expected) {
            (None, None) => PutMode::Create,
            (Some((c, v)), Some(exp)) if c.version == exp => PutMode::Update(v.clone()),
            _ => return settle(entry, current.as_ref().map(|(c, _)| c)),
        };
        let body = PutPayload::from(serde_json::to_vec_pretty(entry).expect("entry serialises"));
        let path = self.lake.path(&key);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self.lake.store().put_opts(&path, body, opts).await {
            Ok(_) => Ok(CommitOutcome::Committed),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                let now = self.read(&key).await?;
                settle(entry, now.as_ref().map(|(c, _)| c))
            }
            Err(e) => Err(Error::storage(&path, e)),
        }
    }
}

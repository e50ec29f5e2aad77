//! `etl catalog sync`: rebuilds a catalog's partitions from the manifests in the lake, so a wiped
//! or new catalog (a fresh Glue database, a restored account) is repopulated without a crawler or
//! `MSCK REPAIR`.
//!
//! For each partition the newest version whose manifest is present and whose files are all there
//! with their recorded sizes wins (a version still being written has no manifest yet). Entries
//! already pointing at it are left alone; others are committed with the usual compare-and-swap.

use std::collections::{BTreeMap, BTreeSet};

use eventlake_contract::layout::{self, CURATED_ROOT};
use eventlake_contract::{PartitionKey, hive};
use serde::Serialize;

use crate::compact::Manifest;
use eventlake_catalog::Error as LakeError;
use eventlake_catalog::{Catalog, CommitOutcome, PartitionEntry};

use crate::error::Result;
use eventlake_catalog::Lake;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Partitions pointed at a version (or, with `--dry-run`, to point).
    pub registered: Vec<String>,
    /// Partitions already pointing at their newest complete version.
    pub unchanged: usize,
    /// Versions passed over: no manifest, or files missing.
    pub incomplete: Vec<String>,
    pub dry_run: bool,
}

async fn complete_entry(
    lake: &Lake,
    p: &PartitionKey,
    version: &str,
) -> Result<Option<PartitionEntry>> {
    let key = layout::manifest_key(p, version);
    let bytes = match lake.get(&key).await {
        Ok(b) => b,
        Err(LakeError::Storage {
            source: object_store::Error::NotFound { .. },
            ..
        }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|source| LakeError::Json {
        what: "manifest",
        path: key.clone(),
        source,
    })?;
    let present: BTreeMap<String, u64> = lake
        .list(&layout::curated_version_prefix(p, version))
        .await?
        .into_iter()
        .map(|o| (o.location.to_string(), o.size))
        .collect();
    if m.files.iter().any(|f| present.get(&f.key) != Some(&f.size)) {
        return Ok(None);
    }
    Ok(Some(PartitionEntry {
        partition: p.clone(),
        version: version.to_owned(),
        location: layout::curated_version_prefix(p, version),
        manifest: key,
        raw_fingerprint: m.raw_fingerprint,
        rows: m.counts.rows,
        files: m.files,
        committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

pub async fn sync(lake: &Lake, catalog: &dyn Catalog, dry_run: bool) -> Result<SyncReport> {
    let mut found = BTreeSet::new();
    crate::gc::versions_under(lake, CURATED_ROOT, &mut found).await?;
    let mut by_partition: BTreeMap<PartitionKey, Vec<String>> = BTreeMap::new();
    for (p, v) in found {
        by_partition.entry(p).or_default().push(v);
    }
    let mut report = SyncReport {
        dry_run,
        ..SyncReport::default()
    };
    for (p, mut versions) in by_partition {
        versions.sort();
        let mut chosen = None;
        while let Some(v) = versions.pop() {
            match complete_entry(lake, &p, &v).await? {
                Some(e) => {
                    chosen = Some(e);
                    break;
                }
                None => report.incomplete.push(format!("{p}/{}", hive::version(&v))),
            }
        }
        let Some(entry) = chosen else { continue };
        let current = catalog.get(&p).await?;
        if current.as_ref().is_some_and(|c| c.version == entry.version) {
            report.unchanged += 1;
            continue;
        }
        if !dry_run {
            let expected = current.as_ref().map(|c| c.version.as_str());
            match catalog.commit(&entry, expected).await? {
                CommitOutcome::Committed => {}
                CommitOutcome::AlreadyCurrent => {
                    report.unchanged += 1;
                    continue;
                }
            }
        }
        tracing::info!(partition = %p, version = %entry.version, "registered");
        report
            .registered
            .push(format!("{p}/{}", hive::version(&entry.version)));
    }
    Ok(report)
}

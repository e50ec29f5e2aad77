//! Quarantine replay: after a fix (a contract change, a corrected validation), the lines a
//! partition's committed version quarantined are read again from their raw objects and run
//! through today's validation. When some now pass, the partition is compacted again with today's
//! validation, so each replayed line becomes a row (or a duplicate of one) and leaves the
//! quarantine in the same commit, and the new manifest counts them as `replayed`; the accounting
//! identity holds as for any version. Replaying again finds nothing left to replay and changes
//! nothing.
//!
//! Only the raw objects that hold quarantined lines are read to decide; the compaction then reads
//! the partition's objects as any run does (what a line becomes depends on every other line of
//! the partition: its duplicates, the earlier day's ids).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use eventlake_catalog::{Catalog, Lake, PartitionEntry};
use eventlake_contract::PartitionKey;
use serde::Serialize;

use crate::backfill::{self, Quiet, Summary};
use crate::compact::{CompactOptions, Manifest, read_manifest};
use crate::error::Result;
use crate::plan::{Selection, plan};
use crate::read::{ObjectOutcome, read_in_parts};

/// A quarantined line that today's validation accepts.
#[derive(Debug, Clone, Serialize)]
pub struct Replayable {
    pub source: String,
    pub line: u64,
    /// What the committed version said of it.
    pub reason: String,
}

/// What a replay found, and did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub partition: String,
    /// Lines the committed version quarantined (object-level records apart).
    pub quarantined: u64,
    /// Of those, the ones today's validation accepts.
    pub replayable: Vec<Replayable>,
    /// Quarantined lines whose raw object is gone (expired): they cannot be replayed.
    pub missing_objects: Vec<String>,
    /// The compaction that took them in, unless this was a dry run or nothing passes now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Summary>,
}

async fn committed(
    lake: &Lake,
    catalog: &dyn Catalog,
    partition: &PartitionKey,
) -> Result<(PartitionEntry, Manifest)> {
    let Some(entry) = catalog.get(partition).await? else {
        return Err(eventlake_catalog::Error::Config(format!(
            "{partition} was never committed: nothing to replay"
        ))
        .into());
    };
    let manifest = read_manifest(lake, &entry).await?;
    Ok((entry, manifest))
}

/// The committed version's quarantined lines that today's validation accepts.
async fn find(
    lake: &Lake,
    partition: &PartitionKey,
    manifest: &Manifest,
) -> Result<(u64, Vec<Replayable>, Vec<String>)> {
    let Some(key) = &manifest.quarantine else {
        return Ok((0, Vec::new(), Vec::new()));
    };
    let text = lake.get(key).await?;
    // source -> line -> the reason it was quarantined for
    let mut by_source: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    let mut quarantined = 0;
    for (i, l) in text.split(|b| *b == b'\n').enumerate() {
        if l.is_empty() {
            continue;
        }
        let record: serde_json::Value =
            serde_json::from_slice(l).map_err(|source| eventlake_catalog::Error::Json {
                what: "quarantine record",
                path: format!("{key} line {}", i + 1),
                source,
            })?;
        let (Some(source), Some(line)) = (record["source"].as_str(), record["line"].as_u64())
        else {
            continue; // an object-level record: nothing to re-validate line by line
        };
        quarantined += 1;
        by_source.entry(source.to_string()).or_default().insert(
            line,
            record["reason"].as_str().unwrap_or_default().to_string(),
        );
    }
    let mut replayable = Vec::new();
    let mut missing = Vec::new();
    for (source, lines) in by_source {
        let data = match lake.get(&source).await {
            Ok(d) => d,
            Err(eventlake_catalog::Error::Storage {
                source: object_store::Error::NotFound { .. },
                ..
            }) => {
                missing.push(source);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // Only its lines' count and which are still quarantined are wanted: it is read in
        // parts, so a large object's rows are never held at once.
        let (mut read, mut still) = (0u64, BTreeSet::new());
        let mut take = |o: ObjectOutcome| {
            read += o.lines;
            still.extend(o.quarantined.iter().filter_map(|q| q.line));
        };
        let last = read_in_parts(&source, data.len() as u64, &data[..], partition, &mut take);
        take(last);
        for (line, reason) in lines {
            if line <= read && !still.contains(&line) {
                replayable.push(Replayable {
                    source: source.clone(),
                    line,
                    reason,
                });
            }
        }
    }
    Ok((quarantined, replayable, missing))
}

/// Replays one partition's quarantine: finds the lines today's validation accepts and, unless
/// `dry_run`, compacts the partition again so they become rows.
pub async fn replay(
    lake: &Lake,
    catalog: Arc<dyn Catalog>,
    partition: &PartitionKey,
    opts: &CompactOptions,
    dedupe_window: std::time::Duration,
    dry_run: bool,
) -> Result<ReplayReport> {
    let (_, manifest) = committed(lake, catalog.as_ref(), partition).await?;
    let (quarantined, replayable, missing_objects) = find(lake, partition, &manifest).await?;
    let mut report = ReplayReport {
        partition: partition.to_string(),
        quarantined,
        replayable,
        missing_objects,
        run: None,
    };
    if dry_run || report.replayable.is_empty() {
        return Ok(report);
    }
    let selection = Selection {
        teams: vec![partition.team.clone()],
        from: Some(partition.dt),
        to: Some(partition.dt),
    };
    let p = plan(lake, catalog.as_ref(), &selection, true, dedupe_window).await?;
    let opts = CompactOptions {
        // A full compaction: the replayed lines' fate depends on every line of the partition.
        incremental: false,
        replayed: report.replayable.len() as u64,
        ..opts.clone()
    };
    report.run = Some(backfill::run(lake, catalog, p, 1, &opts, &Quiet).await);
    Ok(report)
}

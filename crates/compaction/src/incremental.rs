//! Incremental compaction: a committed version plus the raw objects added since.
//!
//! A frequent run over today's partition used to read every raw object of the day again. With
//! `incremental` on, a run reads only the objects the committed version's manifest does not
//! list, and commits a new version made of the committed files (copied into the new version's
//! prefix, which is what Athena reads) plus one new sorted file of the new rows, with the
//! manifest and quarantine of the whole partition. Its id index is the committed version's index
//! files, copied likewise, plus one file of the ids of the lines the run read
//! (`Manifest::id_segments`): a run writes its own lines' ids, not the whole day's again (it
//! still reads the committed index, for the new lines that repeat a committed id). It does so
//! only when the result is exactly what a full compaction of the same raw data gives; otherwise
//! it says why and the run compacts the partition in full:
//!
//! - every object the committed version read is still there, with the same size and e-tag (an
//!   object rewritten in place, or deleted, changes rows already written);
//! - the de-duplication window and the earlier days it reached are the same;
//! - a new line that repeats an event id of the committed version was received after the
//!   committed copy (which then stays; the repeat counts as a duplicate, and as a conflict when
//!   its content fingerprint differs from the one the id index keeps); an earlier repeat would
//!   replace a written row;
//! - the partition would not exceed `max_files` files (the full compaction merges them back).
//!
//! The accounting identity holds for the run (`appended.counts` in the manifest) and for the
//! whole partition (`counts`); a crash before the commit leaves the committed version as it was.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use eventlake_catalog::{Catalog, DataFile, Lake, PartitionEntry};
use eventlake_contract::layout;
use hashbrown::HashTable;

use crate::compact::{
    Appended, CompactOptions, Compacted, Counts, LineKeys, Manifest, NewVersion, commit_version,
    dedupe_rows, id_segment_key, new_version, quarantine_body, read_manifest,
    received_and_fingerprints, sorted_order, table_hash, tally, write_files,
};
use crate::earlier::{
    IdBoard, IdIndex, Ids, PartitionIds, hashes_of, ids_of, read_index, read_objects,
};
use crate::error::Result;
use crate::plan::{PartitionPlan, RawObject};
use crate::read::Chunk;

/// The committed version an incremental run adds to.
struct Base {
    entry: PartitionEntry,
    manifest: Manifest,
    new: Vec<RawObject>,
}

/// Why a partition is compacted in full, or the base to add to.
async fn base(
    lake: &Lake,
    plan: &PartitionPlan,
    opts: &CompactOptions,
) -> Result<std::result::Result<Base, String>> {
    let Some(entry) = plan.current.clone() else {
        return Ok(Err("never committed".into()));
    };
    let manifest = read_manifest(lake, &entry).await?;
    if manifest.version != entry.version {
        return Ok(Err("the manifest is not the committed version's".into()));
    }
    if manifest.files.len() + 1 > opts.max_files {
        return Ok(Err(format!(
            "{} files already: merging them back",
            manifest.files.len()
        )));
    }
    if manifest.dedupe_window_secs != plan.dedupe_window.as_secs() {
        return Ok(Err("the de-duplication window changed".into()));
    }
    let earlier_then: HashSet<(String, String)> = manifest
        .earlier
        .iter()
        .map(|e| (e.partition.to_string(), e.raw_fingerprint.clone()))
        .collect();
    let earlier_now: HashSet<(String, String)> = plan
        .earlier
        .iter()
        .map(|e| (e.partition.to_string(), e.raw_fingerprint.clone()))
        .collect();
    if earlier_then != earlier_now {
        return Ok(Err("an earlier day's raw data changed".into()));
    }
    if manifest.id_files().is_empty() {
        return Ok(Err("the committed version has no id index".into()));
    }
    let now: HashMap<&str, &RawObject> = plan.objects.iter().map(|o| (o.key.as_str(), o)).collect();
    for o in &manifest.inputs {
        match now.get(o.key.as_str()) {
            None => return Ok(Err(format!("{} is gone", o.key))),
            Some(n) if n.size != o.size || n.e_tag != o.e_tag => {
                return Ok(Err(format!("{} was rewritten since it was read", o.key)));
            }
            Some(_) => {}
        }
    }
    let read: HashSet<&str> = manifest.inputs.iter().map(|o| o.key.as_str()).collect();
    let new: Vec<RawObject> = plan
        .objects
        .iter()
        .filter(|o| !read.contains(o.key.as_str()))
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(Err("no new raw object".into()));
    }
    Ok(Ok(Base {
        entry,
        manifest,
        new,
    }))
}

/// New chunks and their lines' id hashes, in line order.
type NewLines = (Vec<Chunk>, Vec<[u8; 16]>);

/// Drops the new lines that repeat an event id of the committed version, counting them as
/// duplicates (and conflicts, when their content differs from the committed copy's) as a full
/// compaction would: it keeps the copy received first, which is the committed one when every
/// repeat was received after it. When a repeat was received at the same time or before, or the
/// committed index predates fingerprints, the reason is returned and the partition is compacted
/// in full. Gives the chunks left and their lines' id hashes.
fn drop_repeats(
    old_ids: &[Ids],
    chunks: Vec<Chunk>,
    hashes: Vec<[u8; 16]>,
    run: &mut Counts,
) -> Result<std::result::Result<NewLines, String>> {
    use arrow::array::{Array, AsArray, BooleanArray};
    use arrow::datatypes::{TimestampMicrosecondType, UInt64Type};
    // The new lines' ids, by their place in `hashes` (the whole committed index is looked up in
    // it, so the lookup hashes nothing: an id hash is a hash already). An id on several new
    // lines is in it more than once, which only costs room.
    let mut wanted: HashTable<u32> = HashTable::with_capacity(hashes.len());
    for (i, h) in hashes.iter().enumerate() {
        wanted.insert_unique(table_hash(h), i as u32, |&j| {
            table_hash(&hashes[j as usize])
        });
    }
    // The committed copy of each repeated id: the first received (the first in line order
    // among equals, the index's files being in line order), with its fingerprint.
    let mut committed: HashMap<[u8; 16], (i64, Option<u64>)> = HashMap::new();
    for part in old_ids {
        let received = part.column(1).as_primitive::<TimestampMicrosecondType>();
        let fingerprints = part.column(2).as_primitive::<UInt64Type>();
        for (i, h) in hashes_of(part).iter().enumerate() {
            if wanted
                .find(table_hash(h), |&j| hashes[j as usize] == *h)
                .is_none()
            {
                continue;
            }
            let h = *h;
            let fp = fingerprints.is_valid(i).then(|| fingerprints.value(i));
            let here = (received.value(i), fp);
            committed
                .entry(h)
                .and_modify(|c| {
                    if here.0 < c.0 {
                        *c = here
                    }
                })
                .or_insert(here);
        }
    }
    if committed.is_empty() {
        return Ok(Ok((chunks, hashes)));
    }
    let mut at = 0;
    let mut kept = Vec::with_capacity(chunks.len());
    let mut kept_hashes = Vec::with_capacity(hashes.len());
    for chunk in chunks {
        let new_received = chunk
            .batch
            .column(3)
            .as_primitive::<TimestampMicrosecondType>();
        let mut keep = Vec::with_capacity(chunk.fingerprints.len());
        for (r, &fp) in chunk.fingerprints.iter().enumerate() {
            let Some(&(first, committed_fp)) = committed.get(&hashes[at + r]) else {
                keep.push(true);
                continue;
            };
            let Some(committed_fp) = committed_fp else {
                return Ok(Err(
                    "a new line repeats a committed event id, and the committed index has no fingerprints".into(),
                ));
            };
            if new_received.value(r) <= first {
                return Ok(Err(
                    "a new line repeats a committed event id and was received no later than it"
                        .into(),
                ));
            }
            run.duplicates += 1;
            run.conflicts += u64::from(fp != committed_fp);
            keep.push(false);
        }
        let lines = &hashes[at..at + keep.len()];
        at += keep.len();
        kept_hashes.extend(lines.iter().zip(&keep).filter_map(|(h, k)| k.then_some(*h)));
        if keep.iter().all(|k| *k) {
            kept.push(chunk);
            continue;
        }
        let mask = BooleanArray::from(keep);
        let batch = arrow::compute::filter_record_batch(&chunk.batch, &mask)?;
        let fingerprints = chunk
            .fingerprints
            .iter()
            .zip(mask.values().iter())
            .filter_map(|(fp, k)| k.then_some(*fp))
            .collect();
        if batch.num_rows() > 0 {
            kept.push(Chunk {
                batch,
                fingerprints,
            });
        }
    }
    Ok(Ok((kept, kept_hashes)))
}

/// Adds the partition's new raw objects to its committed version and commits the result; `None`
/// when it must be compacted in full (the reason is logged).
pub async fn try_append(
    lake: &Lake,
    catalog: &dyn Catalog,
    plan: &PartitionPlan,
    opts: &CompactOptions,
    board: &IdBoard,
) -> Result<Option<Compacted>> {
    let started = Instant::now();
    let partition = &plan.partition;
    let Base {
        entry,
        manifest: old,
        new,
    } = match base(lake, plan, opts).await? {
        Ok(b) => b,
        Err(why) => {
            tracing::info!(partition = %partition, why = %why, "full compaction");
            return Ok(None);
        }
    };

    let outcomes = read_objects(lake, partition, &new, opts.read_concurrency).await?;
    let read_ms = started.elapsed().as_millis() as u64;
    let mut run = Counts {
        objects: new.len() as u64,
        raw_bytes: new.iter().map(|o| o.size).sum(),
        ..Counts::default()
    };
    let (quarantine, chunks) = tally(outcomes, &mut run);

    let t = Instant::now();
    let new_ids = ids_of(&chunks)?;
    let hashes = hashes_of(&new_ids).to_vec();
    let old_ids = read_index(lake, &old.id_files()).await?;
    let (chunks, hashes) = match drop_repeats(&old_ids, chunks, hashes, &mut run)? {
        Ok(kept) => kept,
        Err(why) => {
            tracing::info!(partition = %partition, why = %why, "full compaction");
            return Ok(None);
        }
    };
    // The whole partition's ids, only for a later day of this run that waits for them.
    if board.awaits(partition) {
        let parts: Vec<&Ids> = old_ids.iter().chain([&new_ids]).collect();
        let all = arrow::compute::concat_batches(&new_ids.schema(), parts)?;
        board.publish(partition, PartitionIds::Memory(Arc::new(all)));
    }
    drop(old_ids);
    let new_ids = PartitionIds::Memory(Arc::new(new_ids));

    let (received, fingerprints) = received_and_fingerprints(&chunks);
    let keep = dedupe_rows(
        lake,
        catalog,
        plan,
        opts,
        board,
        LineKeys {
            hashes: &hashes,
            received: &received,
            fingerprints: &fingerprints,
        },
        &mut run,
    )
    .await?;
    let order = sorted_order(&chunks, Some(&keep));
    let dedupe_sort_ms = t.elapsed().as_millis() as u64;

    let t = Instant::now();
    let version = new_version();
    // The committed files, under the new version's prefix (a Glue partition's location is one
    // prefix), then the new rows in files of their own.
    let mut files: Vec<DataFile> = Vec::with_capacity(old.files.len() + 1);
    for (i, f) in old.files.iter().enumerate() {
        let key = layout::curated_file_key(partition, &version, i);
        lake.copy(&f.key, &key).await?;
        files.push(DataFile { key, ..f.clone() });
    }
    // The committed id index, copied beside them: this run writes only its own lines' ids.
    let mut kept_ids: Vec<IdIndex> = Vec::new();
    for (i, f) in old.id_files().into_iter().enumerate() {
        let key = id_segment_key(partition, &version, i);
        lake.copy(&f.key, &key).await?;
        kept_ids.push(IdIndex {
            key,
            raw_fingerprint: plan.raw_fingerprint.clone(),
            ids: f.ids,
        });
    }
    let added = write_files(
        lake,
        partition,
        &version,
        files.len(),
        &chunks,
        &order,
        opts,
    )
    .await?;
    drop(chunks);
    let bytes_written: u64 = added.iter().map(|f| f.size).sum();
    files.extend(added);

    let mut counts = old.counts.clone();
    counts.add(&run);
    let prefix = match &old.quarantine {
        Some(k) => lake.get(k).await?.to_vec(),
        None => Vec::new(),
    };
    let done = commit_version(
        lake,
        catalog,
        plan,
        NewVersion {
            version,
            counts,
            files,
            bytes_written,
            quarantine: quarantine_body(prefix, &quarantine),
            ids: &new_ids,
            kept_ids,
            appended: Some(Appended {
                base_version: entry.version.clone(),
                objects: new.len() as u64,
                counts: run.clone(),
            }),
            expected: Some(&entry.version),
            spilled_runs: 0,
        },
        (started, read_ms, dedupe_sort_ms, t),
    )
    .await?;
    tracing::info!(partition = %partition, base = %entry.version, objects = new.len(), rows = run.rows, "appended");
    // The report is the run's own work; the manifest has the whole partition's.
    Ok(Some(Compacted {
        counts: run,
        ..done
    }))
}

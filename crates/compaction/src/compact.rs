//! Compaction of one partition: raw objects → validated, de-duplicated, sorted Parquet (ZSTD, or
//! Snappy under [`SMALL_FILE_ROWS`]) under a new version prefix, a manifest beside it, bad lines
//! in quarantine, then one catalog commit.
//!
//! Every raw line is accounted for: `rows + duplicates + quarantined = lines`, checked before the
//! commit (a mismatch is a bug and fails the partition rather than publish it), written to the
//! manifest and reported.
//!
//! Nothing is visible to readers until [`Catalog::commit`]: a crash at any point leaves the last
//! committed version as it was, and the half-written version is removed by `etl gc` later.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{TimestampMicrosecondType, UInt64Type};
use chrono::{SecondsFormat, Utc};
use eventlake_contract::schema::file_schema;
use eventlake_contract::{PartitionKey, Reason, layout};
use futures::TryStreamExt;
use hashbrown::{HashMap, HashTable};
use object_store::buffered::BufWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::earlier::{
    ID_INDEX_FILE, IdBoard, IdIndex, Ids, IdsBuilder, PartitionIds, earlier_ids, encode_index,
    hashes_of, latest_earlier, object_stream, within_window,
};
use crate::encode::ParallelFile;
use crate::error::{Error, Result};
use crate::plan::PartitionPlan;
use crate::read::{Chunk, QuarantineRecord};
use crate::spill::Spill;
use eventlake_catalog::Lake;
use eventlake_catalog::{Catalog, CommitOutcome, DataFile, PartitionEntry};

/// The order rows are written in: analysts filter on `event_type` and `event_time`, and sorted
/// columns let Athena and DataFusion skip row groups and pages by their statistics.
pub const SORT_ORDER: [&str; 3] = ["event_type", "event_time", "event_id"];

/// Tuning of a compaction. The defaults suit Athena: files of a few hundred MiB at most (one file
/// for a small partition) and row groups of about a million rows or 64 MiB, whichever comes first.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Raw objects read and parsed at once within a partition.
    pub read_concurrency: usize,
    /// A new file is started once the current one reaches this many bytes.
    pub target_file_bytes: u64,
    pub row_group_rows: usize,
    /// A row group ends with the slice of rows that takes its encoded size past this many
    /// bytes (see [`DEFAULT_ROW_GROUP_MB`]).
    pub row_group_bytes: usize,
    pub zstd_level: i32,
    /// How long a partition's lease lives unless this run extends it (it does, every third of
    /// it, while it works): after a crash, other runs wait this long for the partition.
    pub lease_ttl: std::time::Duration,
    /// Read only the raw objects added since the committed version and add their rows to it
    /// (see [`crate::incremental`]), when that gives what a full compaction would.
    pub incremental: bool,
    /// An incremental run that would leave more files than this compacts the whole partition
    /// instead, merging its files back into one sorted set.
    pub max_files: usize,
    /// Set by a replay: how many of the lines the previous version quarantined this compaction
    /// takes in (recorded as `counts.replayed`).
    pub replayed: u64,
    /// Rows of one partition held in memory (Arrow bytes) before they are sorted and spilled to
    /// local disk as a run (see [`crate::spill`]); a partition that fits is never spilled.
    pub spill_bytes: usize,
    /// Where spilled runs go; the system's temporary folder (`TMPDIR`) when unset.
    pub spill_dir: Option<std::path::PathBuf>,
}

/// Megabytes of one partition's rows held in memory before they spill: a partition of about
/// 150,000 generated events fits whole. Two partitions at a time of 128,000 wide events (the
/// bench's varied set, 107 MB of NDJSON each) held whole took a peak of about 500 MiB; spilled
/// at this size, about 400 MiB, in the same time.
pub const DEFAULT_SPILL_MB: usize = 64;

/// Megabytes of a row group, encoded, at most (give or take one slice of rows): the column
/// writers hold a row group's pages until it is complete, so wide events held a million rows'
/// worth. A partition of 1,000,000 events with 40 extra properties wrote a row group of
/// 495,000 page views, 149 MB, and peaked at about 410 MiB (350 with this cap); parquet-mr's
/// own default is 128 MB.
pub const DEFAULT_ROW_GROUP_MB: usize = 64;

impl CompactOptions {
    /// Raw objects read at once when not set: 8 on a folder, 64 on object storage, where each
    /// read waits mostly on the network.
    pub fn default_read_concurrency(on_object_store: bool) -> usize {
        if on_object_store { 64 } else { 8 }
    }
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            read_concurrency: 8,
            target_file_bytes: 256 * 1024 * 1024,
            row_group_rows: 1024 * 1024,
            row_group_bytes: DEFAULT_ROW_GROUP_MB * 1024 * 1024,
            zstd_level: 1,
            lease_ttl: eventlake_catalog::DEFAULT_LEASE_TTL,
            incremental: false,
            max_files: 16,
            replayed: 0,
            spill_bytes: DEFAULT_SPILL_MB * 1024 * 1024,
            spill_dir: None,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The accounting of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Lines read from the raw objects.
    pub lines: u64,
    /// Rows written.
    pub rows: u64,
    /// Valid lines dropped because their `event_id` was already kept.
    pub duplicates: u64,
    /// Rows dropped because their `event_id` was received in an earlier partition of the team
    /// within the de-duplication window (a retry across midnight).
    #[serde(default)]
    pub cross_partition_duplicates: u64,
    /// Of the duplicates, those whose content differed from the kept row.
    pub conflicts: u64,
    /// Lines quarantined.
    pub quarantined: u64,
    /// Quarantined lines by reason.
    pub by_reason: BTreeMap<Reason, u64>,
    /// Of the rows and duplicates, lines an earlier version of the partition had quarantined and
    /// a replay took in (`etl replay`); part of `rows + duplicates`, not added to them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed: u64,
    /// Raw objects read.
    pub objects: u64,
    /// Raw objects with an object-level failure (their readable lines still count).
    pub objects_failed: u64,
    /// Stored bytes of the raw objects.
    pub raw_bytes: u64,
    /// Decompressed bytes of the raw objects.
    pub raw_uncompressed_bytes: u64,
}

impl Counts {
    /// `rows + duplicates + cross_partition_duplicates + quarantined = lines`
    pub fn balanced(&self) -> bool {
        self.rows + self.duplicates + self.cross_partition_duplicates + self.quarantined
            == self.lines
    }

    pub fn add(&mut self, o: &Counts) {
        self.replayed += o.replayed;
        self.lines += o.lines;
        self.rows += o.rows;
        self.duplicates += o.duplicates;
        self.cross_partition_duplicates += o.cross_partition_duplicates;
        self.conflicts += o.conflicts;
        self.quarantined += o.quarantined;
        for (r, n) in &o.by_reason {
            *self.by_reason.entry(*r).or_default() += n;
        }
        self.objects += o.objects;
        self.objects_failed += o.objects_failed;
        self.raw_bytes += o.raw_bytes;
        self.raw_uncompressed_bytes += o.raw_uncompressed_bytes;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    pub read_ms: u64,
    pub dedupe_sort_ms: u64,
    pub write_ms: u64,
    pub total_ms: u64,
    /// Sorted runs the partition's rows were spilled to (none when they fitted in memory).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spilled_runs: u64,
}

/// Written beside each version's files as `_manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub partition: PartitionKey,
    pub version: String,
    pub created_at: String,
    pub counts: Counts,
    /// Fingerprint of the inputs (raw objects, window, earlier partitions): the catalog entry's.
    pub raw_fingerprint: String,
    pub inputs: Vec<crate::plan::RawObject>,
    /// The de-duplication window, in seconds, and the earlier partitions it reached.
    #[serde(default)]
    pub dedupe_window_secs: u64,
    #[serde(default)]
    pub earlier: Vec<EarlierInput>,
    /// The version's id index, for the partitions after it, when it is one file (a full
    /// compaction's).
    #[serde(default)]
    pub ids: Option<IdIndex>,
    /// The version's id index when it is several files (an incremental run's): the committed
    /// version's files, copied, then one of the lines the run read. Kept apart from `ids`, so
    /// that a build that knows only `ids` finds no index here and reads the raw objects instead
    /// of taking one file for the whole index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_segments: Vec<IdIndex>,
    pub files: Vec<DataFile>,
    pub bytes_written: u64,
    /// Key of the quarantine file, when any line was quarantined.
    pub quarantine: Option<String>,
    pub sort_order: Vec<String>,
    pub timings: Timings,
    /// For a version an incremental run made: the version it added to, and what the run itself
    /// read (`counts` are the whole partition's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appended: Option<Appended>,
}

impl Manifest {
    /// The files of the version's id index: none when it has no index.
    pub fn id_files(&self) -> Vec<&IdIndex> {
        self.ids.iter().chain(&self.id_segments).collect()
    }
}

/// What an incremental run added to a committed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    pub base_version: String,
    /// Raw objects read by this run (those the base version had not).
    pub objects: u64,
    /// This run's own accounting: `rows + duplicates + … = lines` of the objects it read.
    pub counts: Counts,
}

/// An earlier partition a version's rows were de-duplicated against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierInput {
    pub partition: PartitionKey,
    pub raw_fingerprint: String,
}

/// The result of compacting one partition.
#[derive(Debug, Clone)]
pub struct Compacted {
    pub version: String,
    pub outcome: CommitOutcome,
    pub counts: Counts,
    pub files: Vec<DataFile>,
    pub bytes_written: u64,
    pub timings: Timings,
}

/// A new version id: sortable by time, unique across concurrent runs.
pub fn new_version() -> String {
    format!(
        "{}-{:08x}",
        Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        rand::random::<u32>()
    )
}

/// Compacts one partition and commits it. `board` holds the ids the run's other partitions
/// have read (see [`crate::earlier`]); this partition publishes its own there.
pub async fn compact_partition(
    lake: &Lake,
    catalog: &dyn Catalog,
    plan: &PartitionPlan,
    opts: &CompactOptions,
    board: &IdBoard,
) -> Result<Compacted> {
    let _in_progress = crate::encode::InProgress::start();
    if opts.incremental
        && let Some(done) = crate::incremental::try_append(lake, catalog, plan, opts, board).await?
    {
        return Ok(done);
    }
    let started = Instant::now();
    let partition = &plan.partition;
    let version = new_version();

    let mut counts = Counts {
        objects: plan.objects.len() as u64,
        raw_bytes: plan.bytes,
        replayed: opts.replayed,
        ..Counts::default()
    };
    // Read and parse the raw objects concurrently, keeping their order (for a deterministic
    // first-wins among equal `received_at`). Rows past the memory budget go to sorted runs on
    // disk, and so does what de-duplication needs of their lines; else that stays here.
    let mut quarantine = Vec::new();
    let mut held: Vec<Chunk> = Vec::new();
    let mut held_bytes = 0;
    let mut spill: Option<Spill> = None;
    let mut keys = IdsBuilder::default();
    let mut run_limit = RunLimit::new(&plan.objects, opts.spill_bytes);
    let mut outcomes = std::pin::pin!(object_stream(
        lake,
        partition,
        &plan.objects,
        opts.read_concurrency
    ));
    while let Some(o) = outcomes.try_next().await? {
        // A large object comes in parts, each with its share of the stored bytes.
        let stored = o.stored;
        let Some(chunk) = tally_one(o, &mut counts, &mut quarantine) else {
            run_limit.read(stored, 0);
            continue;
        };
        let bytes = chunk.batch.get_array_memory_size();
        run_limit.read(stored, bytes);
        held_bytes += bytes;
        held.push(chunk);
        if run_limit.spill(held_bytes) {
            let runs = match &mut spill {
                Some(s) => s,
                None => spill.insert(Spill::new(opts.spill_dir.as_deref())?),
            };
            runs.write_run(&held)?;
            held.clear();
            held_bytes = 0;
        }
    }
    match &mut spill {
        Some(runs) => {
            if !held.is_empty() {
                runs.write_run(&held)?;
            }
            held = Vec::new();
        }
        None => keys.add(&held)?,
    }
    let read_ms = started.elapsed().as_millis() as u64;

    let t = Instant::now();
    let (own_ids, keep) = match &mut spill {
        // This partition's ids go to the days after it first, so they do not wait for its sort.
        None => {
            let own = Arc::new(keys.finish()?);
            board.publish(partition, Arc::clone(&own).into());
            let keep = dedupe_rows(
                lake,
                catalog,
                plan,
                opts,
                board,
                LineKeys::of(&own),
                &mut counts,
            )
            .await?;
            (PartitionIds::Memory(own), keep)
        }
        Some(runs) => {
            // The earlier days' ids first: one merge then settles every line. (Those days
            // started before this one, so they never wait for it.)
            let earlier =
                earlier_ids(lake, catalog, &plan.earlier, board, opts.read_concurrency).await?;
            let merged = runs.merge_keys(&earlier, plan.dedupe_window)?;
            drop(earlier);
            let own = Arc::new(merged.keys);
            board.publish(partition, PartitionIds::Sorted(Arc::clone(&own)));
            let keep = merged.keep;
            counts.duplicates += merged.duplicates;
            counts.conflicts += merged.conflicts;
            counts.cross_partition_duplicates += merged.cross_partition_duplicates;
            counts.rows = keep.iter().filter(|k| **k).count() as u64;
            check_balanced(&plan.partition, &counts)?;
            (PartitionIds::Sorted(own), keep)
        }
    };
    let order = match spill {
        None => sorted_order(&held, Some(&keep)),
        Some(_) => Vec::new(),
    };
    let dedupe_sort_ms = t.elapsed().as_millis() as u64;
    let spilled_runs = spill.as_ref().map_or(0, |s| s.runs() as u64);

    let t = Instant::now();
    let files = match &mut spill {
        None => write_files(lake, partition, &version, 0, &held, &order, opts).await?,
        Some(runs) => {
            tracing::debug!(partition = %partition, runs = runs.runs(), "merging spilled runs");
            let mut sink = Sink::new(lake, partition, &version, 0, counts.rows as usize, opts)?;
            runs.merge(&keep, &mut sink).await?;
            sink.finish().await?
        }
    };
    drop((held, order, keep, spill));
    let bytes_written = files.iter().map(|f| f.size).sum();
    commit_version(
        lake,
        catalog,
        plan,
        NewVersion {
            version,
            counts,
            files,
            bytes_written,
            quarantine: quarantine_body(Vec::new(), &quarantine),
            ids: &own_ids,
            kept_ids: Vec::new(),
            appended: None,
            expected: plan.current.as_ref().map(|c| c.version.as_str()),
            spilled_runs,
        },
        (started, read_ms, dedupe_sort_ms, t),
    )
    .await
}

/// When the rows a partition holds go to a run on disk. A partition that fits in the budget is
/// never spilled. One that will not fit is spilled in runs of a quarter of the budget: smaller
/// runs keep less in memory and sort in cache (a partition of 476,000 lines took 17.2 s with runs
/// of 32 MB against 18.1 s with runs of 128 MB, and 486 against 593 MiB).
///
/// Whether it will fit is told from the rows it has given so far: once it holds a quarter of the
/// budget, their bytes per stored byte read, times the stored bytes of all its objects, project
/// its size. A guess from stored sizes alone (gzip compresses JSON about tenfold) spilled
/// partitions that fitted whenever the data compressed less well than that. A wrong projection
/// costs time or memory, never a row: the files are the same either way.
struct RunLimit {
    budget: usize,
    /// Stored bytes of the partition's objects, all of them, and of those read so far.
    stored: u64,
    stored_read: u64,
    /// Arrow bytes of the rows read so far, spilled or held.
    row_bytes: u64,
    spilling: bool,
}

impl RunLimit {
    fn new(objects: &[crate::plan::RawObject], budget: usize) -> Self {
        Self {
            budget: budget.max(1),
            stored: objects.iter().map(|o| o.size).sum(),
            stored_read: 0,
            row_bytes: 0,
            spilling: false,
        }
    }

    /// One more object (or part of one) read: `stored` bytes of it, which gave rows of `row_bytes`.
    fn read(&mut self, stored: u64, row_bytes: usize) {
        self.stored_read += stored;
        self.row_bytes += row_bytes as u64;
    }

    fn quarter(&self) -> usize {
        (self.budget / 4).max(1)
    }

    /// The partition's rows, in Arrow bytes, projected from those read so far.
    fn projected(&self) -> u64 {
        let read = self.stored_read.max(1) as u128;
        let all = self.stored.max(self.stored_read) as u128;
        (self.row_bytes as u128 * all / read).min(u64::MAX as u128) as u64
    }

    /// Whether the `held` bytes of rows go to a run now.
    fn spill(&mut self, held: usize) -> bool {
        let now = held > self.budget
            || (held > self.quarter() && (self.spilling || self.projected() > self.budget as u64));
        self.spilling |= now;
        now
    }
}

/// Fails the partition when its lines are not all accounted for (a bug, never published).
pub(crate) fn check_balanced(partition: &PartitionKey, counts: &Counts) -> Result<()> {
    if counts.balanced() {
        return Ok(());
    }
    Err(Error::Unbalanced {
        partition: partition.clone(),
        rows: counts.rows,
        duplicates: counts.duplicates,
        cross_partition_duplicates: counts.cross_partition_duplicates,
        quarantined: counts.quarantined,
        lines: counts.lines,
    })
}

/// The quarantine file's NDJSON: `prefix` (the records of a version added to), then `records`.
pub(crate) fn quarantine_body(mut prefix: Vec<u8>, records: &[QuarantineRecord]) -> Vec<u8> {
    prefix.reserve(records.len() * 256);
    for q in records {
        serde_json::to_writer(&mut prefix, q).expect("record serialises");
        prefix.push(b'\n');
    }
    prefix
}

/// What a new version holds beyond what its plan says.
pub(crate) struct NewVersion<'a> {
    pub(crate) version: String,
    /// The whole partition's accounting.
    pub(crate) counts: Counts,
    pub(crate) files: Vec<DataFile>,
    /// Bytes of the files this run wrote.
    pub(crate) bytes_written: u64,
    /// NDJSON of the quarantine file; empty for none.
    pub(crate) quarantine: Vec<u8>,
    /// The id index: every valid line of the partition, or (with `kept_ids`) of this run.
    pub(crate) ids: &'a PartitionIds,
    /// The files of the id index already under the new version's prefix (an incremental run's
    /// copies of the committed version's): `ids` becomes the next one.
    pub(crate) kept_ids: Vec<IdIndex>,
    pub(crate) appended: Option<Appended>,
    /// The version the catalog must still point at.
    pub(crate) expected: Option<&'a str>,
    /// Sorted runs this run spilled the rows to.
    pub(crate) spilled_runs: u64,
}

/// Writes the version's quarantine, id index and manifest beside its files, then points the
/// partition at it in one catalog commit. `clock` is (run start, read ms, dedupe ms, write start).
pub(crate) async fn commit_version(
    lake: &Lake,
    catalog: &dyn Catalog,
    plan: &PartitionPlan,
    v: NewVersion<'_>,
    clock: (Instant, u64, u64, Instant),
) -> Result<Compacted> {
    let partition = &plan.partition;
    let NewVersion {
        version,
        counts,
        files,
        bytes_written,
        quarantine,
        ids,
        kept_ids,
        appended,
        expected,
        spilled_runs,
    } = v;
    let quarantine_key = if quarantine.is_empty() {
        None
    } else {
        let key = layout::quarantine_key(partition, &version);
        lake.put(&key, quarantine).await?;
        Some(key)
    };
    let ids_key = if kept_ids.is_empty() {
        format!(
            "{}{ID_INDEX_FILE}",
            layout::curated_version_prefix(partition, &version)
        )
    } else {
        id_segment_key(partition, &version, kept_ids.len())
    };
    lake.put(&ids_key, encode_index(ids)?).await?;
    let index = IdIndex {
        key: ids_key,
        raw_fingerprint: plan.raw_fingerprint.clone(),
        ids: ids.lines(),
    };
    let (ids, id_segments) = if kept_ids.is_empty() {
        (Some(index), Vec::new())
    } else {
        (None, kept_ids.into_iter().chain([index]).collect())
    };
    let (started, read_ms, dedupe_sort_ms, write_started) = clock;
    let timings = Timings {
        read_ms,
        dedupe_sort_ms,
        write_ms: write_started.elapsed().as_millis() as u64,
        total_ms: started.elapsed().as_millis() as u64,
        spilled_runs,
    };

    let manifest = Manifest {
        manifest_version: 1,
        partition: partition.clone(),
        version: version.clone(),
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        counts: counts.clone(),
        raw_fingerprint: plan.inputs_fingerprint.clone(),
        inputs: plan.objects.to_vec(),
        dedupe_window_secs: plan.dedupe_window.as_secs(),
        earlier: plan
            .earlier
            .iter()
            .map(|e| EarlierInput {
                partition: e.partition.clone(),
                raw_fingerprint: e.raw_fingerprint.clone(),
            })
            .collect(),
        ids,
        id_segments,
        files: files.clone(),
        bytes_written,
        quarantine: quarantine_key,
        sort_order: SORT_ORDER.iter().map(|s| s.to_string()).collect(),
        timings: timings.clone(),
        appended,
    };
    let manifest_key = layout::manifest_key(partition, &version);
    lake.put(
        &manifest_key,
        serde_json::to_vec_pretty(&manifest).expect("manifest serialises"),
    )
    .await?;

    let entry = PartitionEntry {
        partition: partition.clone(),
        version: version.clone(),
        location: layout::curated_version_prefix(partition, &version),
        manifest: manifest_key,
        raw_fingerprint: plan.inputs_fingerprint.clone(),
        rows: counts.rows,
        files: files.clone(),
        committed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    let outcome = catalog.commit(&entry, expected).await?;
    Ok(Compacted {
        version,
        outcome,
        counts,
        files,
        bytes_written,
        timings,
    })
}

/// The manifest of a committed version.
pub(crate) async fn read_manifest(lake: &Lake, entry: &PartitionEntry) -> Result<Manifest> {
    let bytes = lake.get(&entry.manifest).await?;
    Ok(
        serde_json::from_slice(&bytes).map_err(|source| eventlake_catalog::Error::Json {
            what: "manifest",
            path: entry.manifest.clone(),
            source,
        })?,
    )
}

/// The key of the `n`th file of a version's id index in several files (hidden from readers of
/// the table by its `_`, as the one-file index is).
pub(crate) fn id_segment_key(partition: &PartitionKey, version: &str, n: usize) -> String {
    format!(
        "{}_ids-{n:05}.parquet",
        layout::curated_version_prefix(partition, version)
    )
}

/// Adds the read objects to `counts`; their quarantined lines (and object failures), and their
/// valid rows.
pub(crate) fn tally(
    outcomes: Vec<crate::read::ObjectOutcome>,
    counts: &mut Counts,
) -> (Vec<QuarantineRecord>, Vec<Chunk>) {
    let mut quarantine: Vec<QuarantineRecord> = Vec::new();
    let mut chunks: Vec<Chunk> = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        chunks.extend(tally_one(o, counts, &mut quarantine));
    }
    (quarantine, chunks)
}

/// Adds one read object to `counts` and its quarantine records to `quarantine`; its valid rows.
pub(crate) fn tally_one(
    o: crate::read::ObjectOutcome,
    counts: &mut Counts,
    quarantine: &mut Vec<QuarantineRecord>,
) -> Option<Chunk> {
    counts.lines += o.lines;
    counts.raw_uncompressed_bytes += o.bytes_read;
    counts.quarantined += o.quarantined.len() as u64;
    for q in &o.quarantined {
        *counts.by_reason.entry(q.reason).or_default() += 1;
    }
    quarantine.extend(o.quarantined);
    if let Some(f) = o.object_failure {
        counts.objects_failed += 1;
        quarantine.push(f);
    }
    o.chunk
}

/// What de-duplication needs of each valid line, in line order (line `r` of chunk `c` at
/// `offsets[c] + r`): its id's hash, its `received_at` and its content fingerprint.
pub(crate) struct LineKeys<'a> {
    /// [`id_hash`](crate::earlier::id_hash), 16 bytes little-endian, as the id index has it.
    pub(crate) hashes: &'a [[u8; 16]],
    pub(crate) received: &'a [i64],
    pub(crate) fingerprints: &'a [u64],
}

impl<'a> LineKeys<'a> {
    /// The keys of every line of an id index this run built (none of its fingerprints null).
    pub(crate) fn of(ids: &'a Ids) -> Self {
        Self {
            hashes: hashes_of(ids),
            received: ids
                .column(1)
                .as_primitive::<TimestampMicrosecondType>()
                .values(),
            fingerprints: ids.column(2).as_primitive::<UInt64Type>().values(),
        }
    }
}

/// The `received_at` and the fingerprint of each line of `chunks`, in line order.
pub(crate) fn received_and_fingerprints(chunks: &[Chunk]) -> (Vec<i64>, Vec<u64>) {
    let lines: usize = chunks.iter().map(|c| c.batch.num_rows()).sum();
    let (mut received, mut fingerprints) = (Vec::with_capacity(lines), Vec::with_capacity(lines));
    for c in chunks {
        received.extend_from_slice(
            c.batch
                .column(3)
                .as_primitive::<TimestampMicrosecondType>()
                .values(),
        );
        fingerprints.extend_from_slice(&c.fingerprints);
    }
    (received, fingerprints)
}

/// Which lines become rows: one per event id, none an earlier day already has. `counts` gets the
/// rows and the duplicates of both kinds, and must then account for every line.
pub(crate) async fn dedupe_rows(
    lake: &Lake,
    catalog: &dyn Catalog,
    plan: &PartitionPlan,
    opts: &CompactOptions,
    board: &IdBoard,
    keys: LineKeys<'_>,
    counts: &mut Counts,
) -> Result<Vec<bool>> {
    let mut kept = first_received(&keys);
    // Added to what the caller counted already (an incremental run's repeats of committed ids).
    counts.duplicates += kept.duplicates;
    counts.conflicts += kept.conflicts;
    counts.cross_partition_duplicates +=
        drop_earlier_duplicates(lake, catalog, plan, opts, board, &keys, &mut kept).await?;
    counts.rows = kept.keep.iter().filter(|k| **k).count() as u64;
    check_balanced(&plan.partition, counts)?;
    Ok(kept.keep)
}

/// Unsets in `kept` the lines whose event id an earlier partition of the team received within
/// the window; how many. The earlier partitions' ids are looked up in this partition's table of
/// kept lines, so no table of theirs is built.
async fn drop_earlier_duplicates(
    lake: &Lake,
    catalog: &dyn Catalog,
    plan: &PartitionPlan,
    opts: &CompactOptions,
    board: &IdBoard,
    keys: &LineKeys<'_>,
    kept: &mut Kept,
) -> Result<u64> {
    if plan.earlier.is_empty() {
        return Ok(0);
    }
    let earlier = earlier_ids(lake, catalog, &plan.earlier, board, opts.read_concurrency).await?;
    let latest = latest_earlier(&earlier, |h| kept.line_of(keys, h))?;
    let mut dropped = 0;
    for (line, earlier_at) in latest {
        let line = line as usize;
        if kept.keep[line] && within_window(earlier_at, keys.received[line], plan.dedupe_window) {
            kept.keep[line] = false;
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// The lines to keep, and the duplicates dropped.
pub(crate) struct Kept {
    pub(crate) keep: Vec<bool>,
    /// The kept line of each id, by its place (4 bytes an entry, hashed by the low bits of the
    /// id's hash, which is a hash already).
    best: HashTable<u32>,
    pub(crate) duplicates: u64,
    pub(crate) conflicts: u64,
}

impl Kept {
    /// The kept line of the id that hashes to `hash`, if the partition has it.
    fn line_of(&self, keys: &LineKeys<'_>, hash: &[u8; 16]) -> Option<u32> {
        self.best
            .find(table_hash(hash), |&k| keys.hashes[k as usize] == *hash)
            .copied()
    }
}

/// Where an id goes in the table of kept lines: the low 64 bits of its hash, which is a hash
/// already.
pub(crate) fn table_hash(hash: &[u8; 16]) -> u64 {
    u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// One line per event id: the first by `received_at` wins, ties going to the earlier line (the
/// earlier object, then the earlier line in it). A dropped line whose content differs from the
/// winner's is a conflict.
pub(crate) fn first_received(keys: &LineKeys<'_>) -> Kept {
    let hashes = keys.hashes;
    let n = hashes.len();
    let mut best: HashTable<u32> = HashTable::with_capacity(n);
    let hash_of = |i: &u32| table_hash(&hashes[*i as usize]);
    let mut keep = vec![true; n];
    let mut duplicates = 0;
    for (i, h) in hashes.iter().enumerate() {
        match best.entry(table_hash(h), |&k| hashes[k as usize] == *h, hash_of) {
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(i as u32);
            }
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                let kept = *o.get() as usize;
                let loser = if keys.received[i] < keys.received[kept] {
                    *o.get_mut() = i as u32;
                    kept
                } else {
                    i
                };
                keep[loser] = false;
                duplicates += 1;
            }
        }
    }
    let mut kept = Kept {
        keep,
        best,
        duplicates,
        conflicts: 0,
    };
    kept.conflicts = (0..n)
        .filter(|&i| {
            !kept.keep[i] && {
                let winner = kept
                    .line_of(keys, &hashes[i])
                    .expect("every id has a kept line");
                keys.fingerprints[winner as usize] != keys.fingerprints[i]
            }
        })
        .count() as u64;
    kept
}

/// The lines of `chunks` that `keep` keeps (all of them without it) as (chunk, row) positions,
/// sorted by [`SORT_ORDER`].
pub(crate) fn sorted_order(chunks: &[Chunk], keep: Option<&[bool]>) -> Vec<(usize, usize)> {
    let ids: Vec<_> = chunks
        .iter()
        .map(|c| c.batch.column(0).as_string::<i32>())
        .collect();
    let types: Vec<_> = chunks
        .iter()
        .map(|c| c.batch.column(1).as_string::<i32>())
        .collect();
    let times: Vec<_> = chunks
        .iter()
        .map(|c| c.batch.column(2).as_primitive::<TimestampMicrosecondType>())
        .collect();
    // Event types are few: rank them once and sort by rank.
    let mut type_rank: HashMap<&str, u32> = HashMap::new();
    for t in &types {
        for v in t.iter().flatten() {
            if !type_rank.contains_key(v) {
                type_rank.insert(v, 0);
            }
        }
    }
    let mut type_names: Vec<&str> = type_rank.keys().copied().collect();
    type_names.sort_unstable();
    for (i, t) in type_names.iter().enumerate() {
        type_rank.insert(t, i as u32);
    }
    let kept = keep.map_or(usize::MAX, |k| k.iter().filter(|k| **k).count());
    let lines: usize = chunks.iter().map(|c| c.batch.num_rows()).sum();
    // (rank, chunk, time, row): 24 bytes to move around instead of 48 with the id's slice; the
    // id is looked up only when type and time are equal.
    let mut keyed: Vec<(u32, u32, i64, u32)> = Vec::with_capacity(kept.min(lines));
    let mut line = 0;
    for (c, chunk) in chunks.iter().enumerate() {
        for r in 0..chunk.batch.num_rows() {
            if keep.is_none_or(|k| k[line]) {
                let rank = type_rank[types[c].value(r)];
                keyed.push((rank, c as u32, times[c].value(r), r as u32));
            }
            line += 1;
        }
    }
    let id = |c: u32, r: u32| ids[c as usize].value(r as usize);
    if let Some(order) = radix_order(&keyed, type_names.len(), id) {
        return order;
    }
    keyed.sort_unstable_by(|a, b| {
        (a.0, a.2)
            .cmp(&(b.0, b.2))
            .then_with(|| id(a.1, a.3).cmp(id(b.1, b.3)))
    });
    keyed
        .into_iter()
        .map(|k| (k.1 as usize, k.3 as usize))
        .collect()
}

/// [`sorted_order`]'s sort when a line's type rank and time fit in one `u64` together (the rank
/// above the time's offset from the earliest time; nearly always, since a partition's times span
/// days, not centuries): a radix sort of that key, which keeps lines of equal keys in their
/// order, then each run of equal keys sorted by event id. `None` when they do not fit.
fn radix_order<'a>(
    keyed: &[(u32, u32, i64, u32)],
    types: usize,
    id: impl Fn(u32, u32) -> &'a str,
) -> Option<Vec<(usize, usize)>> {
    let earliest = keyed.iter().map(|k| k.2).min()?;
    let latest = keyed.iter().map(|k| k.2).max()?;
    let span = latest.abs_diff(earliest);
    let time_bits = u64::BITS - span.leading_zeros();
    let rank_bits = usize::BITS - types.saturating_sub(1).leading_zeros();
    if time_bits + rank_bits > u64::BITS {
        return None;
    }
    let mut sorted: Vec<(u64, u32, u32)> = keyed
        .iter()
        .map(|&(rank, c, time, r)| {
            // A shift by 64 (a span that takes every bit) leaves no room for a rank: then there
            // is one type, and `rank` is 0.
            let high = u64::from(rank).checked_shl(time_bits).unwrap_or(0);
            (high | time.abs_diff(earliest), c, r)
        })
        .collect();
    radix_sort(&mut sorted, time_bits + rank_bits);
    let mut start = 0;
    while start < sorted.len() {
        let key = sorted[start].0;
        let mut end = start + 1;
        while sorted.get(end).is_some_and(|e| e.0 == key) {
            end += 1;
        }
        if end - start > 1 {
            sorted[start..end].sort_by(|a, b| id(a.1, a.2).cmp(id(b.1, b.2)));
        }
        start = end;
    }
    Some(
        sorted
            .into_iter()
            .map(|(_, c, r)| (c as usize, r as usize))
            .collect(),
    )
}

/// Sorts `v` by its first field's lowest `bits` bits (the others are 0), keeping the order of
/// equal keys: least significant digit first, 11 bits a pass, a pass skipped when every key has
/// the same digit there.
fn radix_sort(v: &mut Vec<(u64, u32, u32)>, bits: u32) {
    const DIGIT: u32 = 11;
    const MASK: u64 = (1 << DIGIT) - 1;
    // Every place of it is written before it is read: sized once, then swapped with `v`.
    let mut scratch = vec![(0, 0, 0); v.len()];
    let mut shift = 0;
    while shift < bits {
        let mut counts = vec![0usize; 1 << DIGIT];
        for e in v.iter() {
            counts[((e.0 >> shift) & MASK) as usize] += 1;
        }
        if !counts.contains(&v.len()) {
            let mut at = 0;
            for c in &mut counts {
                (*c, at) = (at, at + *c);
            }
            for e in v.iter() {
                let slot = &mut counts[((e.0 >> shift) & MASK) as usize];
                scratch[*slot] = *e;
                *slot += 1;
            }
            std::mem::swap(v, &mut scratch);
        }
        shift += DIGIT;
    }
}

/// Partitions (or an incremental run's new rows) of fewer rows than this are written with Snappy
/// where larger ones have ZSTD: one small row group (see `MIN_TYPE_GROUP_ROWS`), in which ZSTD
/// saves a few kilobytes a column and costs more than it saves. Parquet's codec makes a zstd
/// compression and decompression context for every ZSTD column chunk written, and again for
/// every one read (by the next incremental run, `etl query`, DataFusion elsewhere), and each
/// context runs `cpuid` three times, which a virtual machine traps (about 4 µs each here). On
/// 2,100 partitions of about 480 rows that was 13 % of the wall time; the files are about a
/// third larger (40 against 29 kB).
pub const SMALL_FILE_ROWS: usize = MIN_TYPE_GROUP_ROWS;

/// How the curated data files of a partition version with `rows` rows are written: compression,
/// encodings, row groups and pages.
pub fn writer_properties(opts: &CompactOptions, rows: usize) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(opts.zstd_level)?;
    let main = if rows < SMALL_FILE_ROWS {
        Compression::SNAPPY
    } else {
        Compression::ZSTD(level)
    };
    let sorting = [1, 2, 0]
        .into_iter()
        .map(|column_idx| SortingColumn {
            column_idx,
            descending: false,
            nulls_first: false,
        })
        .collect();
    Ok(WriterProperties::builder()
        .set_compression(main)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        // Checked where a slice of rows ends (`Sink::slice_ends`), so that a partition merged
        // from spilled runs ends its row groups where one sorted in memory does.
        .set_max_row_group_bytes(Some(opts.row_group_bytes.max(1)))
        .set_sorting_columns(Some(sorting))
        // Pages of at most 5k rows: the page index then brackets each event type (the sort key)
        // within a few pages, so a filter on it skips the other pages of every column.
        .set_data_page_row_count_limit(PAGE_ROWS)
        // The column writers check whether a page is full every this many rows (a column without
        // nulls, or all null, is checked at the page's row limit anyway): with one step for
        // every column, a slice written in parts of PAGE_ROWS gives the pages a whole slice gives.
        .set_write_batch_size(PAGE_ROWS)
        // Unique per row: a dictionary only costs time before the writer falls back.
        .set_column_dictionary_enabled(ColumnPath::from("event_id"), false)
        .set_column_dictionary_enabled(ColumnPath::from("properties"), false)
        // Event times are close to unique too (milliseconds): a dictionary of them is built
        // only to be thrown away once it outgrows its page.
        .set_column_dictionary_enabled(ColumnPath::from("event_time"), false)
        // Enumerations: a dictionary of a few values and runs of their indexes, which ZSTD makes
        // no smaller (often larger), while each ZSTD column chunk costs its reader a compression
        // and a decompression context, the larger part of reading such a column.
        .set_column_compression(ColumnPath::from("event_type"), Compression::UNCOMPRESSED)
        .set_column_compression(ColumnPath::from("source"), Compression::UNCOMPRESSED)
        .set_column_compression(
            ColumnPath::from("schema_version"),
            Compression::UNCOMPRESSED,
        )
        // Read by every distinct-user question: Snappy keeps most of ZSTD's saving here (a lake
        // of 3M events: 118 against 117 MB) at a fraction of the cost to decode and set up.
        .set_column_compression(ColumnPath::from("user_id"), Compression::SNAPPY)
        // The JSON every property question decodes in full, the largest column after event_id
        // once uncompressed. Snappy decodes it about three times as fast as ZSTD, for 1.8 MB
        // where ZSTD takes 1.0 MB per 140k events (a lake of 3M events: 135 against 118 MB);
        // property queries' medians fall by about 15%. Every Parquet reader (Athena, Spark,
        // DuckDB) reads Snappy.
        .set_column_compression(ColumnPath::from("properties"), Compression::SNAPPY)
        .set_created_by(format!("eventlake {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Rows in a data page, at most.
const PAGE_ROWS: usize = 5_000;

/// Rows a slice of the writer gathers and encodes at once, at most: a whole number of parts.
pub(crate) const SLICE_ROWS: usize = 13 * PART_ROWS;

/// Rows the merge of spilled runs hands the writer at once ([`Sink::append`]), so that it holds
/// no more than a part's batches: the rows Parquet's column writers take between two checks of
/// a page's size, so that the pages end where a whole slice's would.
pub(crate) const PART_ROWS: usize = PAGE_ROWS;

/// Writes the rows at `order` of `chunks` (sorted by [`SORT_ORDER`]) into new files of the
/// version, numbered from `first`.
pub(crate) async fn write_files(
    lake: &Lake,
    partition: &PartitionKey,
    version: &str,
    first: usize,
    chunks: &[Chunk],
    order: &[(usize, usize)],
    opts: &CompactOptions,
) -> Result<Vec<DataFile>> {
    let batches: Vec<RecordBatch> = chunks.iter().map(|c| c.batch.clone()).collect();
    let mut sink = Sink::new(lake, partition, version, first, order.len(), opts)?;
    for (event_type, run) in type_runs(&batches, order) {
        let n = run.len().div_ceil(SLICE_ROWS);
        for (i, slice) in run.chunks(SLICE_ROWS).enumerate() {
            sink.write(&batches, slice, event_type, i + 1 == n).await?;
        }
    }
    sink.finish().await
}

/// Sorted rows in, Parquet files of about `target_file_bytes` out: the rows come a slice at a
/// time, each of one event type and at most [`SLICE_ROWS`] rows.
pub(crate) struct Sink<'a> {
    lake: &'a Lake,
    partition: &'a PartitionKey,
    version: &'a str,
    first: usize,
    target_file_bytes: u64,
    props: WriterProperties,
    files: Vec<DataFile>,
    writer: Option<ParallelFile>,
}

impl<'a> Sink<'a> {
    /// A sink for a version's `rows` rows (all of them, whatever the files they end up in).
    pub(crate) fn new(
        lake: &'a Lake,
        partition: &'a PartitionKey,
        version: &'a str,
        first: usize,
        rows: usize,
        opts: &CompactOptions,
    ) -> Result<Self> {
        Ok(Self {
            lake,
            partition,
            version,
            first,
            target_file_bytes: opts.target_file_bytes,
            props: writer_properties(opts, rows)?,
            files: Vec::new(),
            writer: None,
        })
    }

    /// Writes the rows at `positions` of `batches`, all of `event_type`; `run_ends` when no
    /// row of that type follows.
    pub(crate) async fn write(
        &mut self,
        batches: &[RecordBatch],
        positions: &[(usize, usize)],
        event_type: &str,
        run_ends: bool,
    ) -> Result<()> {
        self.append(batches, positions, event_type).await?;
        self.slice_ends(run_ends).await
    }

    /// Rows the next part of the slice in progress takes, at most: [`Sink::append`] then writes
    /// the file [`Sink::write`] would write with the whole slice. Parquet's column writers check
    /// a page's size every [`PART_ROWS`] rows from the start of the rows they are given, so a
    /// part ends where a whole slice's check falls: [`PART_ROWS`] rows on from the slice's
    /// start, or from the row group's start where one began within the slice.
    pub(crate) fn part_rows(&self) -> usize {
        PART_ROWS
            - self
                .writer
                .as_ref()
                .map_or(0, |w| w.since_split % PART_ROWS)
    }

    /// Encodes the rows at `positions` of `batches`, all of `event_type`, as the next part of
    /// the slice in progress (of at most [`Sink::part_rows`] rows), for a caller that cannot
    /// hold a whole slice's batches at once; [`Sink::slice_ends`] ends the slice.
    pub(crate) async fn append(
        &mut self,
        batches: &[RecordBatch],
        positions: &[(usize, usize)],
        event_type: &str,
    ) -> Result<()> {
        let w = match &mut self.writer {
            Some(w) => w,
            None => {
                let key = layout::curated_file_key(
                    self.partition,
                    self.version,
                    self.first + self.files.len(),
                );
                let object = BufWriter::with_capacity(
                    Arc::clone(self.lake.store()),
                    self.lake.path(&key),
                    upload_part_bytes(self.lake),
                )
                .with_max_concurrency(UPLOAD_PARTS_IN_FLIGHT);
                self.writer.insert(ParallelFile::try_new(
                    key,
                    object,
                    file_schema(),
                    self.props.clone(),
                )?)
            }
        };
        w.write(batches, positions, event_type).await
    }

    /// The slice in progress is complete; `run_ends` when no row of its type follows.
    pub(crate) async fn slice_ends(&mut self, run_ends: bool) -> Result<()> {
        let Some(w) = &mut self.writer else {
            return Ok(());
        };
        w.since_split = 0;
        // A row group per event type (once it has a few pages' worth of rows): a filter on
        // `event_type` then keeps or drops whole row groups by their statistics, in every engine
        // (Athena does not use the page index), and reads no neighbouring type's rows.
        if (run_ends && w.in_progress_rows() >= MIN_TYPE_GROUP_ROWS) || w.group_bytes_full() {
            w.flush().await?;
        }
        if w.estimated_size() as u64 >= self.target_file_bytes {
            let file = self.writer.take().expect("open writer");
            self.files.push(finish(file).await?);
        }
        Ok(())
    }

    /// Completes the last file; the files written.
    pub(crate) async fn finish(mut self) -> Result<Vec<DataFile>> {
        if let Some(file) = self.writer.take() {
            self.files.push(finish(file).await?);
        }
        Ok(self.files)
    }
}

/// Completes a data file and says what its entry in the manifest will.
async fn finish(mut file: ParallelFile) -> Result<DataFile> {
    let size = file.finish().await?;
    let mut event_types = file.event_types;
    if event_types.len() > eventlake_catalog::MAX_TYPE_COUNTS {
        event_types.clear();
    }
    Ok(DataFile {
        key: file.key,
        size,
        rows: file.rows,
        event_types,
    })
}

/// Bytes of a data file held before its upload starts, and in each part of the upload: on S3,
/// the least it takes for a part but the last; a folder takes parts of any size, and smaller
/// ones are held for less.
fn upload_part_bytes(lake: &Lake) -> usize {
    if lake.is_s3() {
        5 * 1024 * 1024
    } else {
        1024 * 1024
    }
}

/// Parts of a data file being sent at once, and the most its writer waits on. The upload's
/// default of eight let a large partition's parts pile up while both cores were busy encoding,
/// each part's bytes held until its turn: a file's bytes were held whole, and a run's peak
/// memory grew with its partitions. With two, a file holds at most three parts, and encoding
/// (a few MB/s of Parquet per partition) never waits on a network that takes tens.
const UPLOAD_PARTS_IN_FLIGHT: usize = 2;

/// Event types with fewer rows than this share a row group with the next type.
const MIN_TYPE_GROUP_ROWS: usize = 4_096;

/// Splits `order` (sorted by event type first) into runs of one event type each.
fn type_runs<'a, 'c>(
    batches: &'c [RecordBatch],
    order: &'a [(usize, usize)],
) -> Vec<(&'c str, &'a [(usize, usize)])> {
    // The contract's file schema has `event_type` as Utf8, second.
    let columns: Vec<_> = batches
        .iter()
        .map(|b| b.column(1).as_string::<i32>())
        .collect();
    let value = |&(c, r): &(usize, usize)| -> &'c str { columns[c].value(r) };
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..order.len() {
        if value(&order[i]) != value(&order[i - 1]) {
            runs.push((value(&order[start]), &order[start..i]));
            start = i;
        }
    }
    if start < order.len() {
        runs.push((value(&order[start]), &order[start..]));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::read_object;
    use eventlake_contract::{PartitionDate, TeamName};

    fn partition() -> PartitionKey {
        PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-25").unwrap(),
        }
    }

    /// (id, type, event time second, received second, user)
    type Row<'a> = (&'a str, &'a str, u32, u32, &'a str);

    fn chunk(rows: &[Row<'_>]) -> Chunk {
        let text: String = rows
            .iter()
            .map(|(id, ty, t, rcv, user)| {
                format!(
                    "{{\"event_id\":\"{id}\",\"event_type\":\"{ty}\",\"event_time\":\"2026-11-25T10:00:{t:02}Z\",\"received_at\":\"2026-11-25T11:00:{rcv:02}Z\",\"user_id\":\"{user}\"}}\n"
                )
            })
            .collect();
        read_object("raw/x.ndjson", text.as_bytes(), &partition())
            .chunk
            .expect("rows")
    }

    struct Deduped {
        order: Vec<(usize, usize)>,
        duplicates: u64,
        conflicts: u64,
    }

    /// The in-memory path: one row per id, sorted.
    fn dedupe_and_sort(chunks: &[Chunk]) -> Deduped {
        let ids = crate::earlier::ids_of(chunks).unwrap();
        let kept = first_received(&LineKeys::of(&ids));
        Deduped {
            order: sorted_order(chunks, Some(&kept.keep)),
            duplicates: kept.duplicates,
            conflicts: kept.conflicts,
        }
    }

    /// The kept rows as (event_id, user_id), in written order.
    fn kept(chunks: &[Chunk], d: &Deduped) -> Vec<(String, String)> {
        d.order
            .iter()
            .map(|&(c, r)| {
                let b = &chunks[c].batch;
                (
                    b.column(0).as_string::<i32>().value(r).to_owned(),
                    b.column(4).as_string::<i32>().value(r).to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_first_received_copy_wins_and_conflicts_are_counted() {
        let chunks = vec![
            chunk(&[("a", "view", 1, 5, "u1"), ("b", "view", 2, 5, "u1")]),
            // "a" received earlier here, with other content: it wins, and the dropped copy is a
            // conflict; "b" again, later and the same: a plain duplicate.
            chunk(&[("a", "view", 1, 3, "u2"), ("b", "view", 2, 9, "u1")]),
        ];
        let d = dedupe_and_sort(&chunks);
        assert_eq!((d.duplicates, d.conflicts), (2, 1));
        assert_eq!(
            kept(&chunks, &d),
            vec![("a".into(), "u2".into()), ("b".into(), "u1".into())]
        );
    }

    #[test]
    fn ties_go_to_the_earlier_object_and_line() {
        let chunks = vec![
            chunk(&[("a", "view", 1, 5, "first"), ("a", "view", 1, 5, "second")]),
            chunk(&[("a", "view", 1, 5, "third")]),
        ];
        let d = dedupe_and_sort(&chunks);
        assert_eq!(d.duplicates, 2);
        assert_eq!(kept(&chunks, &d), vec![("a".into(), "first".into())]);
    }

    /// The radix sort gives the comparison sort's order (by type rank, time and id, equal ones
    /// in their order), with ties of every kind, one type or many, and spans from none to most of
    /// `i64`'s; keys that do not fit in 64 bits are left to the comparison sort.
    #[test]
    fn the_radix_sort_agrees_with_a_comparison_sort() {
        let ids: Vec<String> = (0..37).map(|i| format!("id-{i:02}")).collect();
        let mut state = 1u64;
        let mut below = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for (types, span) in [
            (1, 0),
            (1, 5),
            (3, 1_000),
            (40, 86_400_000_000),
            (5, i64::MAX as u64 / 4),
        ] {
            let keyed: Vec<(u32, u32, i64, u32)> = (0..5_000u32)
                .map(|i| {
                    let time = (below(span + 1) as i64) - (span / 2) as i64;
                    (below(types) as u32, i % 7, time, i)
                })
                .collect();
            let id = |c: u32, r: u32| ids[(r as usize * 7 + c as usize) % ids.len()].as_str();
            let mut expected = keyed.clone();
            expected.sort_by(|a, b| {
                (a.0, a.2)
                    .cmp(&(b.0, b.2))
                    .then_with(|| id(a.1, a.3).cmp(id(b.1, b.3)))
            });
            let expected: Vec<(usize, usize)> = expected
                .iter()
                .map(|k| (k.1 as usize, k.3 as usize))
                .collect();
            let got = radix_order(&keyed, types as usize, id).expect("the key fits");
            assert_eq!(got, expected, "{types} types, span {span}");
        }
        let wide = [(0, 0, i64::MIN, 0), (1, 0, i64::MAX, 1)];
        assert!(radix_order(&wide, 2, |_, _| "a").is_none());
        assert_eq!(radix_order(&wide[..0], 2, |_, _| "a"), None);
    }

    #[test]
    fn rows_are_sorted_by_type_then_time_then_id() {
        let chunks = vec![chunk(&[
            ("z", "view", 1, 1, "u"),
            ("c", "click", 9, 1, "u"),
            ("b", "click", 2, 1, "u"),
            ("a", "click", 2, 1, "u"),
            ("y", "buy", 5, 1, "u"),
        ])];
        let d = dedupe_and_sort(&chunks);
        let ids: Vec<String> = kept(&chunks, &d).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec!["y", "a", "b", "c", "z"]);
        assert_eq!(d.duplicates, 0);
    }

    /// The held bytes at which a partition of `objects` (stored size, Arrow bytes of its rows)
    /// spills, under `budget`, and the bytes left held at the end.
    fn spills(objects: &[(u64, usize)], budget: usize) -> (Vec<usize>, usize) {
        let raw: Vec<crate::plan::RawObject> = objects
            .iter()
            .enumerate()
            .map(|(i, &(size, _))| crate::plan::RawObject {
                key: format!("raw/{i}.ndjson.gz"),
                size,
                e_tag: None,
                last_modified: None,
            })
            .collect();
        let mut limit = RunLimit::new(&raw, budget);
        let (mut at, mut held) = (Vec::new(), 0);
        for &(size, bytes) in objects {
            limit.read(size, bytes);
            held += bytes;
            if limit.spill(held) {
                at.push(held);
                held = 0;
            }
        }
        (at, held)
    }

    #[test]
    fn a_partition_spills_only_when_its_rows_will_not_fit() {
        // Ten objects whose rows take 5 bytes per stored byte: 50 of 64 once all are read. It
        // fits, and is never spilled, whatever a fixed bytes-per-stored-byte guess would say.
        assert_eq!(spills(&[(1, 5); 10], 64), (vec![], 50));
        // Twice as many: 100. Once it holds a quarter of the budget (16), the projection says
        // it will not fit, and it is spilled in runs of a quarter.
        let (at, left) = spills(&[(1, 5); 20], 64);
        assert_eq!(at, vec![20, 20, 20, 20, 20]);
        assert_eq!(left, 0);
        // The first objects are small and project a partition that fits; the later ones are
        // large. It is spilled once it passes the budget, then in quarters.
        let mut growing = vec![(10, 1); 10];
        growing.extend([(10, 30); 4]);
        assert_eq!(spills(&growing, 64), (vec![70, 30, 30], 0));
        // No stored sizes known: nothing is projected, and the budget spills first.
        assert_eq!(spills(&[(0, 30); 5], 64), (vec![90, 30, 30], 0));
        // A budget too small to quarter: runs of one byte.
        assert_eq!(spills(&[(1, 2); 3], 3), (vec![2, 2, 2], 0));
    }

    /// The codec of every column chunk of a data file, by column name.
    fn codecs(data: bytes::Bytes) -> Vec<(String, Compression)> {
        let meta = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&data)
            .unwrap();
        meta.row_groups()
            .iter()
            .flat_map(|g| g.columns())
            .map(|c| (c.column_path().string(), c.compression()))
            .collect()
    }

    #[tokio::test]
    async fn a_small_version_is_written_with_snappy_where_a_large_one_has_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
        let opts = CompactOptions::default();
        for (rows, zstd) in [(SMALL_FILE_ROWS - 1, false), (SMALL_FILE_ROWS, true)] {
            let ids: Vec<String> = (0..rows).map(|i| format!("e{i:06}")).collect();
            let rows_in: Vec<Row<'_>> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), ["a", "b"][i % 2], (i % 60) as u32, 0, "u1"))
                .collect();
            let chunks = vec![chunk(&rows_in)];
            let d = dedupe_and_sort(&chunks);
            let version = format!("v{rows}");
            let files = write_files(&lake, &partition(), &version, 0, &chunks, &d.order, &opts)
                .await
                .unwrap();
            assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), rows as u64);
            let got = codecs(lake.get(&files[0].key).await.unwrap());
            let of = |column: &str| {
                got.iter()
                    .find(|(c, _)| c == column)
                    .map(|(_, codec)| *codec)
                    .unwrap()
            };
            // The columns ZSTD is set for by default; the others keep their own codecs.
            for column in ["event_id", "event_time", "received_at", "session_id"] {
                assert_eq!(
                    matches!(of(column), Compression::ZSTD(_)),
                    zstd,
                    "{column} of a version of {rows} rows: {got:?}"
                );
                if !zstd {
                    assert_eq!(of(column), Compression::SNAPPY);
                }
            }
            assert_eq!(of("event_type"), Compression::UNCOMPRESSED);
            assert_eq!(of("properties"), Compression::SNAPPY);

            // Its id index likewise: the times of a small partition are stored uncompressed.
            let ids = crate::earlier::ids_of(&chunks).unwrap();
            let index = encode_index(&PartitionIds::Memory(Arc::new(ids))).unwrap();
            let got = codecs(index.into());
            let times = got.iter().find(|(c, _)| c == "received_at").unwrap().1;
            assert_eq!(matches!(times, Compression::ZSTD(_)), zstd, "{got:?}");
        }
    }

    #[test]
    fn counts_balance_only_when_every_line_is_placed() {
        let mut c = Counts {
            lines: 10,
            rows: 6,
            duplicates: 2,
            cross_partition_duplicates: 1,
            quarantined: 1,
            ..Counts::default()
        };
        assert!(c.balanced());
        c.quarantined = 0;
        assert!(!c.balanced());
    }
}

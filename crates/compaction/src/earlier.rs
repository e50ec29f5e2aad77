//! Cross-partition de-duplication: the event ids of a team's earlier partitions.
//!
//! A row whose `event_id` has a valid line in an earlier partition of the same team, received at
//! most the de-duplication window before it, is a duplicate of that line's row: a client retry
//! that crossed midnight. What counts is a pure function of raw data (every valid line of the
//! earlier partitions, whatever became of it there), so a partition's rows do not depend on
//! whether, or in which order, its neighbours were compacted.
//!
//! Ids are compared by their 128-bit XXH3 hash (fixed size, so lookups touch no strings and the
//! index is small); two different ids share a hash with a probability near 2^-128 per pair,
//! far below that of the storage losing the data.
//!
//! An earlier partition's ids come from the first of:
//! 1. the same run, which publishes each partition's ids as soon as it has read them
//!    ([`IdBoard`]), so a backfill reads every raw object once;
//! 2. its committed version's id index (`_ids.parquet`: the hash and `received_at` of every
//!    valid line), when that version was built from the raw objects there are now;
//! 3. its raw objects, read and validated as its own compaction would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{
    AsArray, FixedSizeBinaryArray, RecordBatch, TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use eventlake_catalog::{Catalog, Lake};
use eventlake_contract::PartitionKey;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::compact::Manifest;
use crate::error::{Error, Result};
use crate::keys::SortedKeys;
use crate::plan::{Earlier, PartitionPlan, RawObject};
use crate::read::{Chunk, Cut, ObjectOutcome, PARTS_FROM_BYTES, cut_in_parts, read_object};

/// The ids of a partition's valid lines: one row per line, the hash of its `event_id`
/// ([`id_hash`], 16 bytes little-endian) and its `received_at` ([`index_schema`]).
pub type Ids = RecordBatch;

/// A partition's ids (its own, or an earlier day's): in memory, or (a partition that spilled) in
/// a sorted file on local disk.
#[derive(Debug, Clone)]
pub enum PartitionIds {
    Memory(Arc<Ids>),
    Sorted(Arc<SortedKeys>),
}

impl PartitionIds {
    /// Valid lines: one id each.
    pub fn lines(&self) -> u64 {
        match self {
            Self::Memory(ids) => ids.num_rows() as u64,
            Self::Sorted(keys) => keys.lines(),
        }
    }
}

impl From<Arc<Ids>> for PartitionIds {
    fn from(ids: Arc<Ids>) -> Self {
        Self::Memory(ids)
    }
}

/// The hash ids are compared by.
pub fn id_hash(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// The id index of a committed version, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdIndex {
    /// Key of the index file, relative to the lake root.
    pub key: String,
    /// Fingerprint of the raw objects it was built from.
    pub raw_fingerprint: String,
    /// Entries in it: one per valid line, so an id on several lines counts once per line.
    pub ids: u64,
}

/// The file name of a version's id index (hidden from readers of the table by its `_`).
pub const ID_INDEX_FILE: &str = "_ids.parquet";

/// The id index of a partition's valid lines, gathered a few chunks at a time: each part is
/// built at its exact size, and the parts are joined once at the end.
#[derive(Default)]
pub(crate) struct IdsBuilder {
    parts: Vec<Ids>,
}

impl IdsBuilder {
    /// Lines gathered so far.
    #[cfg(test)]
    pub(crate) fn lines(&self) -> usize {
        self.parts.iter().map(RecordBatch::num_rows).sum()
    }

    /// Adds the valid lines of `chunks`, in line order.
    pub(crate) fn add(&mut self, chunks: &[Chunk]) -> Result<()> {
        if !chunks.is_empty() {
            self.parts.push(ids_of(chunks)?);
        }
        Ok(())
    }

    /// The index of every line added.
    pub(crate) fn finish(mut self) -> Result<Ids> {
        Ok(match self.parts.len() {
            0 => ids_of(&[])?,
            1 => self.parts.pop().expect("one"),
            _ => arrow::compute::concat_batches(&index_schema(), &self.parts)?,
        })
    }
}

/// The id index of the valid lines of `chunks`, in line order (chunk by chunk).
pub fn ids_of(chunks: &[Chunk]) -> Result<Ids> {
    let (received, fingerprints) = crate::compact::received_and_fingerprints(chunks);
    let mut hashes: Vec<u8> = Vec::with_capacity(received.len() * 16);
    for c in chunks {
        let id = c.batch.column(0).as_string::<i32>();
        for v in id.iter() {
            hashes.extend_from_slice(&id_hash(v.unwrap_or_default()).to_le_bytes());
        }
    }
    index_batch(hashes, received, fingerprints)
}

/// An id index of the lines whose hashes (16 bytes each), `received_at` and fingerprints these
/// are.
pub(crate) fn index_batch(
    hashes: Vec<u8>,
    received: Vec<i64>,
    fingerprints: Vec<u64>,
) -> Result<Ids> {
    let ids = FixedSizeBinaryArray::try_new(16, hashes.into(), None)?;
    Ok(RecordBatch::try_new(
        index_schema(),
        vec![
            Arc::new(ids),
            Arc::new(TimestampMicrosecondArray::new(received.into(), None).with_timezone("UTC")),
            Arc::new(UInt64Array::new(fingerprints.into(), None)),
        ],
    )?)
}

/// Each line's id hash in an id index, as its 16 little-endian bytes.
pub fn hashes_of(ids: &Ids) -> &[[u8; 16]] {
    let (hashes, rest) = ids
        .column(0)
        .as_fixed_size_binary()
        .value_data()
        .as_chunks::<16>();
    // An array's values are exactly its rows' (a slice of one is sliced itself).
    assert!(
        rest.is_empty() && hashes.len() == ids.num_rows(),
        "an id index's hashes are 16 bytes a row"
    );
    hashes
}

/// For the ids of the earlier partitions that `find` knows (it gives a line of the partition
/// being compacted for an id's hash, as its 16 bytes), the latest `received_at` among their
/// earlier lines, by that line. Only ids the partition has are kept, so this stays small whatever
/// the earlier partitions' size.
pub fn latest_earlier<K: std::hash::Hash + Eq>(
    earlier: &[PartitionIds],
    mut find: impl FnMut(&[u8; 16]) -> Option<K>,
) -> Result<HashMap<K, i64>> {
    let mut latest = HashMap::new();
    let mut note = |h: &[u8; 16], t: i64| {
        if let Some(line) = find(h) {
            latest
                .entry(line)
                .and_modify(|max: &mut i64| *max = (*max).max(t))
                .or_insert(t);
        }
    };
    for ids in earlier {
        match ids {
            PartitionIds::Memory(batch) => {
                let received = batch.column(1).as_primitive::<TimestampMicrosecondType>();
                for (r, h) in hashes_of(batch).iter().enumerate() {
                    note(h, received.value(r));
                }
            }
            PartitionIds::Sorted(keys) => crate::keys::for_each_line(keys, &mut note)?,
        }
    }
    Ok(latest)
}

/// Whether a line received at `received_at` duplicates an earlier line of its id received at
/// `earlier_at` (the latest such): at or before it, and within `window`.
pub fn within_window(earlier_at: i64, received_at: i64, window: Duration) -> bool {
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    earlier_at <= received_at && received_at.saturating_sub(earlier_at) <= window
}

fn index_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_hash", DataType::FixedSizeBinary(16), false),
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        // The line's content fingerprint (see `read::Chunk`); null in indexes written before
        // it was kept.
        Field::new("fingerprint", DataType::UInt64, true),
    ]))
}

/// Rows of an id index file's row groups, and of each batch its writer takes.
const INDEX_GROUP_ROWS: usize = 64 * 1024;

/// The id index file: [`Ids`] as Parquet, in line order for a partition held in memory, and
/// sorted by id hash (the lines of one id in their order) for one that spilled (see
/// [`crate::keys`]). Readers take its lines as a set, in which only the order of one id's lines
/// counts. Hashes are random, so they are stored plain; times are delta-encoded and compressed
/// (but a small partition's). It is written a row group of [`INDEX_GROUP_ROWS`] at a
/// time into a buffer of its final size: in one row group, a partition of 476,000 lines held
/// three more copies of its 7.6 MB of hashes while its file was written (a contiguous copy, the
/// encoded column and a file buffer grown by doubling).
pub fn encode_index(ids: &PartitionIds) -> Result<Vec<u8>> {
    use parquet::basic::{Compression, Encoding, ZstdLevel};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::schema::types::ColumnPath;
    let lines = match ids {
        PartitionIds::Memory(ids) => ids.num_rows(),
        PartitionIds::Sorted(keys) => keys.lines() as usize,
    };
    // A small partition's times are left uncompressed: its ZSTD would cost the writer and every
    // later day that reads the index a pair of zstd contexts (see `SMALL_FILE_ROWS`) to save a
    // few hundred bytes.
    let times = if lines < crate::compact::SMALL_FILE_ROWS {
        Compression::UNCOMPRESSED
    } else {
        Compression::ZSTD(ZstdLevel::try_new(1)?)
    };
    let received = ColumnPath::from("received_at");
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_encoding(received.clone(), Encoding::DELTA_BINARY_PACKED)
        .set_column_compression(received, times)
        .set_max_row_group_row_count(Some(INDEX_GROUP_ROWS))
        .build();
    // 16 bytes of hash and 8 of fingerprint a row, stored plain, and a byte or two of time
    // (five or so in hash order, where a day's times are about 37 bits apart).
    let per_line = match ids {
        PartitionIds::Memory(_) => 26,
        PartitionIds::Sorted(_) => 30,
    };
    let mut out = Vec::with_capacity(lines * per_line + 64 * 1024);
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, index_schema(), Some(props))?;
    match ids {
        PartitionIds::Memory(ids) => {
            let mut at = 0;
            while at < ids.num_rows() {
                let n = INDEX_GROUP_ROWS.min(ids.num_rows() - at);
                w.write(&ids.slice(at, n))?;
                at += n;
            }
        }
        PartitionIds::Sorted(keys) => {
            crate::keys::index_batches(keys, INDEX_GROUP_ROWS, |b| Ok(w.write(b)?))?;
        }
    }
    w.close()?;
    Ok(out)
}

/// Reads an id index file.
pub fn decode_index(data: bytes::Bytes) -> Result<Ids> {
    Ok(arrow::compute::concat_batches(
        &index_schema(),
        &decode_index_parts(data)?,
    )?)
}

/// Reads an id index file, a batch per row group (up to [`INDEX_GROUP_ROWS`] lines each), in
/// line order.
pub fn decode_index_parts(data: bytes::Bytes) -> Result<Vec<Ids>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data)?
        .with_batch_size(INDEX_GROUP_ROWS)
        .build()?;
    reader
        .map(|b| {
            let b = b?;
            if b.num_columns() == 2 {
                // An index from before fingerprints were kept.
                let nulls = arrow::array::new_null_array(&DataType::UInt64, b.num_rows());
                let mut columns = b.columns().to_vec();
                columns.push(nulls);
                return Ok(RecordBatch::try_new(index_schema(), columns)?);
            }
            Ok(b)
        })
        .collect()
}

/// The partitions of one run publish their ids here as soon as they have read their raw
/// objects; later days of the same team wait for them instead of reading those objects again.
/// A partition's ids are kept only until every partition of the run that reads them is done.
#[derive(Debug, Clone, Default)]
pub struct IdBoard {
    slots: Arc<Mutex<Slots>>,
}

/// Bytes of committed partitions' ids the board keeps in memory for their readers: up to this,
/// a reader takes them from the board rather than reading the committed id index back (a
/// catalog read, the manifest and the index file, which is most of the cost of a small
/// partition's earlier days). Beyond it they leave the board as their partitions commit, so a
/// run holds about the ids of the partitions in progress, whatever the input's size.
pub const KEEP_COMMITTED_BYTES: usize = 8 << 20;

#[derive(Debug, Default)]
struct Slots {
    by_partition: HashMap<PartitionKey, Slot>,
    /// Bytes of the committed partitions' in-memory ids still on the board.
    kept: usize,
}

#[derive(Debug)]
struct Slot {
    sender: Option<watch::Sender<Option<PartitionIds>>>,
    receiver: watch::Receiver<Option<PartitionIds>>,
    /// Partitions of the run that will read these ids and are not done yet.
    readers: usize,
    /// Bytes these ids count towards [`KEEP_COMMITTED_BYTES`]: set when the partition is
    /// committed and its ids stay on the board.
    kept: usize,
}

impl IdBoard {
    /// The board of a run of `partitions`: a slot for each one that a later one reads.
    pub fn for_run(partitions: &[PartitionPlan]) -> Self {
        let working: Vec<&PartitionPlan> = partitions.iter().filter(|p| p.needs_work()).collect();
        let mut readers: HashMap<&PartitionKey, usize> = HashMap::new();
        for p in &working {
            for e in &p.earlier {
                if working.iter().any(|w| w.partition == e.partition) {
                    *readers.entry(&e.partition).or_default() += 1;
                }
            }
        }
        let board = Self::default();
        {
            let mut slots = board.slots.lock().expect("board lock");
            for (partition, readers) in readers {
                let (sender, receiver) = watch::channel(None);
                slots.by_partition.insert(
                    partition.clone(),
                    Slot {
                        sender: Some(sender),
                        receiver,
                        readers,
                        kept: 0,
                    },
                );
            }
        }
        board
    }

    /// Whether a later partition of the run waits for `partition`'s ids (which it has not
    /// published yet).
    pub fn awaits(&self, partition: &PartitionKey) -> bool {
        self.slots
            .lock()
            .expect("board lock")
            .by_partition
            .get(partition)
            .is_some_and(|slot| slot.sender.is_some())
    }

    /// The sender of `partition`'s ids, taken: none when it has no slot or sent already.
    fn take_sender(&self, partition: &PartitionKey) -> Option<watch::Sender<Option<PartitionIds>>> {
        self.slots
            .lock()
            .expect("board lock")
            .by_partition
            .get_mut(partition)
            .and_then(|slot| slot.sender.take())
    }

    /// `partition` has read its raw objects: these are its ids.
    pub fn publish(&self, partition: &PartitionKey, ids: PartitionIds) {
        if let Some(sender) = self.take_sender(partition) {
            sender.send_replace(Some(ids));
        }
    }

    /// `partition` is done (or failed): whoever still waits for it stops waiting.
    pub fn close(&self, partition: &PartitionKey) {
        self.take_sender(partition);
    }

    /// `partition` is committed: from now on its readers take its ids from its id index, so the
    /// run holds the ids of the partitions in progress, not those of every team's last day
    /// until that team's next day is done; unless they fit in what is left of
    /// [`KEEP_COMMITTED_BYTES`], where reading them back would cost more than holding them.
    /// Ids in a file on local disk (a partition that spilled) stay until their readers are
    /// done: they cost no memory, and reading them back from the id index would.
    pub fn committed(&self, partition: &PartitionKey) {
        let mut slots = self.slots.lock().expect("board lock");
        let Slots { by_partition, kept } = &mut *slots;
        let Some(slot) = by_partition.get_mut(partition) else {
            return;
        };
        let bytes = match &*slot.receiver.borrow() {
            Some(PartitionIds::Sorted(_)) => return,
            Some(PartitionIds::Memory(ids)) => Some(ids.get_array_memory_size()),
            None => None,
        };
        match bytes {
            Some(bytes) if *kept + bytes <= KEEP_COMMITTED_BYTES => {
                slot.kept = bytes;
                *kept += bytes;
            }
            _ => {
                by_partition.remove(partition);
            }
        }
    }

    /// Bytes of committed partitions' ids the board holds.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.slots.lock().expect("board lock").kept
    }

    /// `reader` is done with the ids of `earlier`: those no one else needs are dropped.
    pub fn release(&self, earlier: &[Earlier]) {
        let mut slots = self.slots.lock().expect("board lock");
        let Slots { by_partition, kept } = &mut *slots;
        for e in earlier {
            if let Some(slot) = by_partition.get_mut(&e.partition) {
                slot.readers = slot.readers.saturating_sub(1);
                if slot.readers == 0 {
                    *kept -= slot.kept;
                    by_partition.remove(&e.partition);
                }
            }
        }
    }

    /// The ids `partition` published in this run, waiting for them if it is still reading;
    /// `None` when it is not part of the run or ended without publishing.
    async fn wait(&self, partition: &PartitionKey) -> Option<PartitionIds> {
        let mut receiver = self
            .slots
            .lock()
            .expect("board lock")
            .by_partition
            .get(partition)?
            .receiver
            .clone();
        let published = receiver.wait_for(|ids| ids.is_some()).await.ok()?;
        published.clone()
    }
}

/// Reads and validates raw objects of a partition, `concurrency` at a time, in their order.
pub(crate) async fn read_objects(
    lake: &Lake,
    partition: &PartitionKey,
    objects: &[RawObject],
    concurrency: usize,
) -> Result<Vec<ObjectOutcome>> {
    object_stream(lake, partition, objects, concurrency)
        .try_collect()
        .await
}

/// Raw objects of a partition read and validated, `concurrency` at a time, handed over one by
/// one in their order; an object past [`PARTS_FROM_BYTES`] is streamed from the store and handed
/// over in parts ([`object_in_parts`]), each as it is read, so that it is never held whole.
pub(crate) fn object_stream<'a>(
    lake: &'a Lake,
    partition: &'a PartitionKey,
    objects: &'a [RawObject],
    concurrency: usize,
) -> impl futures::Stream<Item = Result<ObjectOutcome>> + 'a {
    futures::stream::iter(objects.iter().cloned())
        .map(move |o| {
            let lake = lake.clone();
            let partition = partition.clone();
            if o.size > PARTS_FROM_BYTES {
                let parts = object_in_parts(lake, partition, o);
                return futures::FutureExt::boxed(futures::future::ready(parts));
            }
            let read = tokio::spawn(async move {
                let data = lake.get(&o.key).await?;
                Ok::<_, Error>(read_object(&o.key, &data, &partition))
            });
            futures::FutureExt::boxed(async move {
                let outcome = read.await.map_err(Error::from).and_then(|r| r);
                futures::stream::once(futures::future::ready(outcome)).boxed()
            })
        })
        .buffered(concurrency.max(1))
        .flatten()
}

/// Parts of a large object validated side by side (on the runtime's threads, which also free
/// their rows once written, so that the allocator reuses the memory).
const PARTS_AT_ONCE: usize = 4;

/// Reads a large raw object in parts: a thread of its own cuts it into parts of whole lines as it
/// streams ([`cut_in_parts`]), up to [`PARTS_AT_ONCE`] of them are validated side by side, and
/// their outcomes come in order, then the end's, or the error that stopped the read. Its
/// download starts at once, beside the objects before it, but its reading waits until it is the
/// object being taken: a partition reads one large object at a time, on every core, so its
/// memory does not grow with how many are fetched ahead. Up to seven parts are in flight: one
/// being cut, two cut ahead, four being validated.
fn object_in_parts(
    lake: Lake,
    partition: PartitionKey,
    o: RawObject,
) -> futures::stream::BoxStream<'static, Result<ObjectOutcome>> {
    // Two parts cut ahead of those being validated.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Cut>>(2);
    let (go, turn) = tokio::sync::oneshot::channel::<()>();
    let key = o.key.clone();
    tokio::spawn(async move {
        // A folder's file is read as a file; an object store's object streams.
        let file = lake.local_dir().map(|dir| dir.join(&o.key));
        let stream = match file {
            Some(_) => None,
            None => match lake.get_stream(&o.key).await {
                Ok(stream) => Some(stream),
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            },
        };
        if turn.await.is_err() {
            return; // The partition stopped before it got here.
        }
        let handle = tokio::runtime::Handle::current();
        let sender = tx.clone();
        let read = tokio::task::spawn_blocking(move || {
            // Once nobody takes the parts (the partition failed on another object), the rest
            // of the object is not read.
            let stopped = std::cell::Cell::new(false);
            let hand = |cut| {
                if sender.blocking_send(Ok(cut)).is_err() {
                    stopped.set(true);
                }
            };
            // A store or disk that fails mid-object fails the partition, on its own error sent
            // after the end: nothing of the partition is committed, so the break the end says
            // (a broken gzip stream) is not taken for one.
            let failed: Option<Error> = match (stream, file) {
                (Some(stream), _) => {
                    let mut reader = StoreReader {
                        stream,
                        handle,
                        current: bytes::Bytes::new(),
                        failed: None,
                    };
                    cut_in_parts(&o.key, o.size, Until(&mut reader, &stopped), hand);
                    reader.failed.map(Error::from)
                }
                (None, Some(path)) => match std::fs::File::open(&path) {
                    Ok(file) => {
                        let mut reader = FileReader { file, failed: None };
                        cut_in_parts(&o.key, o.size, Until(&mut reader, &stopped), hand);
                        reader
                            .failed
                            .map(|e| eventlake_catalog::Error::io("read", path.display(), e).into())
                    }
                    Err(e) => Some(eventlake_catalog::Error::io("open", path.display(), e).into()),
                },
                (None, None) => unreachable!("a lake is a folder or a store"),
            };
            if let Some(e) = failed {
                let _ = sender.blocking_send(Err(e));
            }
        })
        .await;
        if let Err(e) = read {
            let _ = tx.send(Err(e.into())).await;
        }
    });
    let cuts = futures::stream::unfold((rx, Some(go)), |(mut rx, go)| async move {
        if let Some(go) = go {
            let _ = go.send(());
        }
        rx.recv().await.map(|item| (item, (rx, None)))
    });
    cuts.map(move |cut| {
        let (key, partition) = (key.clone(), partition.clone());
        async move {
            match cut? {
                Cut::Part(part, stored) => {
                    let read = tokio::spawn(async move { part.read(&key, &partition, stored) });
                    Ok(read.await?)
                }
                Cut::End(end) => Ok(end.outcome(&key)),
                Cut::Refused(refused) => Ok(refused),
            }
        }
    })
    .buffered(PARTS_AT_ONCE)
    .boxed()
}

/// A reader that ends early once `.1` is set.
struct Until<'a, R>(R, &'a std::cell::Cell<bool>);

impl<R: std::io::Read> std::io::Read for Until<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.1.get() {
            return Ok(0);
        }
        self.0.read(buf)
    }
}

/// A raw object's file in a folder lake, its read error kept: a disk that fails mid-object fails
/// the partition, as a store does.
struct FileReader {
    file: std::fs::File,
    failed: Option<std::io::Error>,
}

impl std::io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// An object's bytes as they stream from the store, read from a thread that may block.
struct StoreReader {
    stream: futures::stream::BoxStream<'static, eventlake_catalog::Result<bytes::Bytes>>,
    handle: tokio::runtime::Handle,
    current: bytes::Bytes,
    /// The store's error, when reading failed.
    failed: Option<eventlake_catalog::Error>,
}

impl std::io::Read for StoreReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => {
                    let message = e.to_string();
                    self.failed = Some(e);
                    return Err(std::io::Error::other(message));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Reads the files of an id index: its lines in order, in parts of up to [`INDEX_GROUP_ROWS`].
/// The files are fetched a few at once (an appended version's index is up to one file a run).
pub(crate) async fn read_index(lake: &Lake, files: &[&IdIndex]) -> Result<Vec<Ids>> {
    let keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
    let mut fetched = futures::stream::iter(keys)
        .map(|key| {
            let lake = lake.clone();
            async move { lake.get(&key).await }
        })
        .buffered(4);
    let mut parts = Vec::new();
    while let Some(data) = fetched.next().await {
        parts.extend(decode_index_parts(data?)?);
    }
    Ok(parts)
}

/// The committed id index of `earlier`, when its version was built from its raw objects as they
/// are now.
async fn from_committed(
    lake: &Lake,
    catalog: &dyn Catalog,
    earlier: &Earlier,
) -> Result<Option<Ids>> {
    let Some(entry) = catalog.get(&earlier.partition).await? else {
        return Ok(None);
    };
    let manifest: Manifest = match lake.get(&entry.manifest).await {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        },
        Err(_) => return Ok(None),
    };
    let files = manifest.id_files();
    if files.is_empty()
        || files
            .iter()
            .any(|f| f.raw_fingerprint != earlier.raw_fingerprint)
    {
        return Ok(None);
    }
    let parts = read_index(lake, &files).await?;
    Ok(Some(arrow::compute::concat_batches(
        &index_schema(),
        &parts,
    )?))
}

/// The ids of every earlier partition.
pub(crate) async fn earlier_ids(
    lake: &Lake,
    catalog: &dyn Catalog,
    earlier: &[Earlier],
    board: &IdBoard,
    read_concurrency: usize,
) -> Result<Vec<PartitionIds>> {
    let mut all = Vec::with_capacity(earlier.len());
    for e in earlier {
        if let Some(ids) = board.wait(&e.partition).await {
            all.push(ids);
        } else if let Some(ids) = from_committed(lake, catalog, e).await? {
            tracing::debug!(partition = %e.partition, "an earlier partition's ids from its committed id index");
            all.push(PartitionIds::Memory(Arc::new(ids)));
        } else {
            tracing::debug!(partition = %e.partition, "reading an earlier partition's raw objects for its ids");
            // Only the ids are kept: each object's rows go once its ids are taken.
            let mut ids = IdsBuilder::default();
            let mut outcomes = std::pin::pin!(object_stream(
                lake,
                &e.partition,
                &e.objects,
                read_concurrency
            ));
            while let Some(o) = outcomes.try_next().await? {
                ids.add(o.chunk.as_slice())?;
            }
            all.push(PartitionIds::Memory(Arc::new(ids.finish()?)));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rows: &[(&str, i64)]) -> Arc<Ids> {
        let hashes: Vec<u8> = rows
            .iter()
            .flat_map(|(id, _)| id_hash(id).to_le_bytes())
            .collect();
        let times: Vec<i64> = rows.iter().map(|(_, t)| *t).collect();
        Arc::new(
            RecordBatch::try_new(
                index_schema(),
                vec![
                    Arc::new(FixedSizeBinaryArray::try_new(16, hashes.into(), None).unwrap()),
                    Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
                    arrow::array::new_null_array(&DataType::UInt64, rows.len()),
                ],
            )
            .unwrap(),
        )
    }

    #[test]
    fn an_index_from_before_fingerprints_still_reads() {
        let new = ids(&[("a", 1), ("b", 2)]);
        let old = RecordBatch::try_new(
            Arc::new(Schema::new(index_schema().fields()[..2].to_vec())),
            new.columns()[..2].to_vec(),
        )
        .unwrap();
        let mut file = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut file, old.schema(), None).unwrap();
        w.write(&old).unwrap();
        w.close().unwrap();
        let read = decode_index(file.into()).unwrap();
        assert_eq!(read.schema(), index_schema());
        assert_eq!(read.columns()[..2], new.columns()[..2]);
        assert_eq!(read.column(2).null_count(), 2);
        // And one with fingerprints goes round as it is.
        let with = RecordBatch::try_new(
            index_schema(),
            vec![
                new.column(0).clone(),
                new.column(1).clone(),
                Arc::new(UInt64Array::from(vec![7, 8])),
            ],
        )
        .unwrap();
        assert_eq!(
            decode_index(encode_index(&Arc::new(with.clone()).into()).unwrap().into()).unwrap(),
            with
        );
    }

    fn key(d: &str) -> PartitionKey {
        PartitionKey {
            team: eventlake_contract::TeamName::new("checkout").unwrap(),
            dt: eventlake_contract::PartitionDate::parse(d).unwrap(),
        }
    }

    #[test]
    fn the_window_is_inclusive_and_only_looks_back() {
        let hour = Duration::from_secs(3600);
        let h = 3_600_000_000;
        assert!(within_window(1_000_000, 1_000_000 + h, hour));
        assert!(within_window(1_000_000, 1_000_000, hour));
        assert!(!within_window(1_000_000, 1_000_001 + h, hour));
        assert!(!within_window(1_000_000, 999_999, hour));
        assert!(!within_window(1_000_000, 1_000_000 + h, Duration::ZERO));
        assert!(within_window(i64::MIN, i64::MAX, Duration::MAX));
    }

    #[test]
    fn the_index_round_trips_and_the_latest_earlier_line_counts() {
        let b = ids(&[("b", 2), ("a", 5), ("a", 3)]);
        let decoded = decode_index(encode_index(&Arc::clone(&b).into()).unwrap().into()).unwrap();
        assert_eq!(&decoded, b.as_ref());
        let every = |h: &[u8; 16]| Some(u128::from_le_bytes(*h));
        let all = latest_earlier(&[ids(&[("a", 9)]).into(), Arc::clone(&b).into()], every).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[&id_hash("a")], all[&id_hash("b")]), (9, 2));
        // Only the ids asked for, by the line that asks.
        let (a, c) = (id_hash("a").to_le_bytes(), id_hash("c").to_le_bytes());
        let some = latest_earlier(&[b.into()], |h| {
            [(a, 7), (c, 8)].iter().find(|x| x.0 == *h).map(|x| x.1)
        })
        .unwrap();
        assert_eq!(some, HashMap::from([(7, 5)]));
    }

    #[test]
    fn a_large_index_round_trips_in_row_groups_within_its_first_buffer() {
        let rows = 2 * INDEX_GROUP_ROWS + 7;
        let mut hashes = Vec::with_capacity(rows * 16);
        for i in 0..rows {
            hashes.extend_from_slice(&id_hash(&format!("e-{i}")).to_le_bytes());
        }
        let received: Vec<i64> = (0..rows as i64)
            .map(|i| 1_795_000_000_000_000 + i * 997)
            .collect();
        let fingerprints: Vec<u64> = (0..rows as u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let ids = RecordBatch::try_new(
            index_schema(),
            vec![
                Arc::new(FixedSizeBinaryArray::try_new(16, hashes.into(), None).unwrap()),
                Arc::new(
                    TimestampMicrosecondArray::new(received.into(), None).with_timezone("UTC"),
                ),
                Arc::new(UInt64Array::new(fingerprints.into(), None)),
            ],
        )
        .unwrap();
        let out = encode_index(&Arc::new(ids.clone()).into()).unwrap();
        assert_eq!(
            out.capacity(),
            rows * 26 + 64 * 1024,
            "the file fits the buffer it was given: {} bytes",
            out.len()
        );
        let groups = parquet::file::reader::FileReader::metadata(
            &parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(
                out.clone(),
            ))
            .unwrap(),
        )
        .num_row_groups();
        assert_eq!(groups, 3);
        assert_eq!(decode_index(out.into()).unwrap(), ids);
    }

    #[test]
    fn raw_lines_give_every_valid_line_with_its_hash() {
        let line = |id: &str, at: &str| {
            format!(
                r#"{{"event_id":"{id}","event_type":"t","event_time":"2026-11-30T00:00:00Z","user_id":"u","properties":{{}},"team":"checkout","received_at":"2026-11-30T{at}Z","schema_version":1}}"#
            )
        };
        let body = [
            line("a", "01:00:00"),
            line("a", "03:00:00"),
            line("b", "02:00:00"),
        ]
        .join("\n");
        let chunk = read_object("k", body.as_bytes(), &key("2026-11-30"))
            .chunk
            .unwrap();
        let got = ids_of(std::slice::from_ref(&chunk)).unwrap();
        let hashes: Vec<u128> = hashes_of(&got)
            .iter()
            .map(|h| u128::from_le_bytes(*h))
            .collect();
        assert_eq!(hashes, [id_hash("a"), id_hash("a"), id_hash("b")]);
        assert_eq!(
            got.column(2)
                .as_primitive::<arrow::datatypes::UInt64Type>()
                .values(),
            &chunk.fingerprints[..]
        );
        // Gathered in two parts, the same index.
        let mut parts = IdsBuilder::default();
        parts.add(&[]).unwrap();
        parts.add(std::slice::from_ref(&chunk)).unwrap();
        parts.add(std::slice::from_ref(&chunk)).unwrap();
        assert_eq!(parts.lines(), 6);
        let twice = parts.finish().unwrap();
        assert_eq!(twice.slice(3, 3), got);
        assert_eq!(hashes_of(&twice.slice(3, 3)), hashes_of(&got));
        let all =
            latest_earlier(&[Arc::new(got).into()], |h| Some(u128::from_le_bytes(*h))).unwrap();
        let hour = 3_600_000_000;
        let midnight = 1_795_996_800_000_000;
        assert_eq!(all[&id_hash("a")], midnight + 3 * hour);
        assert_eq!(all[&id_hash("b")], midnight + 2 * hour);
    }

    fn plan_of(d: &str, earlier: &[&str]) -> PartitionPlan {
        PartitionPlan {
            partition: key(d),
            action: crate::plan::Action::New,
            objects: Arc::from([]),
            bytes: 0,
            hidden: 0,
            raw_fingerprint: String::new(),
            dedupe_window: Duration::from_secs(86_400),
            earlier: earlier
                .iter()
                .map(|e| Earlier {
                    partition: key(e),
                    objects: Arc::from([]),
                    raw_fingerprint: String::new(),
                })
                .collect(),
            inputs_fingerprint: String::new(),
            current: None,
        }
    }

    #[tokio::test]
    async fn the_board_hands_over_ids_and_drops_them_when_no_one_needs_them() {
        let plans = [
            plan_of("2026-11-24", &[]),
            plan_of("2026-11-25", &["2026-11-24"]),
            plan_of("2026-11-26", &["2026-11-25"]),
        ];
        let board = IdBoard::for_run(&plans);
        let waiting = {
            let board = board.clone();
            tokio::spawn(async move { board.wait(&key("2026-11-24")).await })
        };
        board.publish(&key("2026-11-24"), ids(&[("x", 1)]).into());
        assert_eq!(waiting.await.unwrap().unwrap().lines(), 1);
        // The 25th is done with the 24th: its ids are gone.
        board.release(&plans[1].earlier);
        assert!(board.wait(&key("2026-11-24")).await.is_none());
        // The 25th failed before it published: the 26th stops waiting.
        board.close(&key("2026-11-25"));
        assert!(board.wait(&key("2026-11-25")).await.is_none());
        // The 26th is read by no one: it has no slot.
        assert!(board.wait(&key("2026-11-26")).await.is_none());

        // A committed partition's small ids stay on the board for its reader, and leave it
        // when the reader is done.
        let board = IdBoard::for_run(&plans);
        board.publish(&key("2026-11-24"), ids(&[("x", 1)]).into());
        board.committed(&key("2026-11-24"));
        assert_eq!(board.kept(), ids(&[("x", 1)]).get_array_memory_size());
        assert_eq!(board.wait(&key("2026-11-24")).await.unwrap().lines(), 1);
        board.release(&plans[1].earlier);
        assert_eq!(board.kept(), 0);
        assert!(board.wait(&key("2026-11-24")).await.is_none());

        // Ids past what the board keeps leave it when their partition commits; a reader that
        // took them already keeps them.
        let board = IdBoard::for_run(&plans);
        let many: Vec<String> = (0..KEEP_COMMITTED_BYTES / 16)
            .map(|i| i.to_string())
            .collect();
        let rows: Vec<(&str, i64)> = many.iter().map(|id| (id.as_str(), 1)).collect();
        board.publish(&key("2026-11-24"), ids(&rows).into());
        let taken = board.wait(&key("2026-11-24")).await.unwrap();
        board.committed(&key("2026-11-24"));
        assert!(board.wait(&key("2026-11-24")).await.is_none());
        assert_eq!(board.kept(), 0);
        assert_eq!(taken.lines(), many.len() as u64);
        board.release(&plans[1].earlier);
        // A partition that ended without publishing leaves no slot behind.
        board.close(&key("2026-11-25"));
        board.committed(&key("2026-11-25"));
        assert!(board.wait(&key("2026-11-25")).await.is_none());
    }
}

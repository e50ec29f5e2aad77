//! A curated Parquet file written column by column on several threads.
//!
//! One partition's rows are gathered into sorted order and encoded a slice at a time. Each slice's
//! columns are shared out among threads (a column is gathered and encoded by the thread that takes
//! it), so one large partition keeps every core busy instead of one. The encoders are parquet's
//! own (`ArrowColumnWriter`), so the pages, statistics and row groups are the ones `ArrowWriter`
//! writes; the file's bytes go to the object store each time a row group is complete.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use object_store::buffered::BufWriter;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::error::Result;
use crate::gather::gather;

/// Slices with fewer rows than this are encoded on the calling thread alone.
const MIN_PARALLEL_ROWS: usize = 4_096;

/// Threads that encode one file's columns: the machine's cores, at most four. Asked once: each
/// answer reads the cgroup's CPU quota from `/sys` and `/proc` (five system calls), and it was
/// asked for every slice.
fn encoding_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// Partitions being compacted in this process right now.
static IN_PROGRESS: AtomicUsize = AtomicUsize::new(0);

/// Whether fewer partitions are being compacted than there are cores to encode them: a
/// partition may then keep more than one busy.
pub(crate) fn cores_to_spare() -> bool {
    IN_PROGRESS.load(Ordering::Relaxed) < encoding_threads()
}

/// Counts a partition as being compacted while it lives: a file's columns are encoded on several
/// threads only while fewer partitions than cores are in progress. With as many partitions as
/// cores, the cores are busy already, and helpers only cost memory.
pub(crate) struct InProgress(());

impl InProgress {
    pub(crate) fn start() -> Self {
        IN_PROGRESS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        IN_PROGRESS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The threads that help encode a file's columns (one fewer than [`encoding_threads`]), started
/// once and kept: a thread started for each slice took its allocator's memory with it when it
/// ended, and a long backfill's peak memory grew with the number of slices.
fn helpers() -> &'static rayon::ThreadPool {
    static HELPERS: OnceLock<rayon::ThreadPool> = OnceLock::new();
    HELPERS.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(encoding_threads().saturating_sub(1).max(1))
            .thread_name(|i| format!("encode-{i}"))
            .build()
            .expect("the encoding threads start")
    })
}

/// Bytes in a block of a file written but not yet sent.
const BLOCK_BYTES: usize = 1024 * 1024;

/// A file's bytes written but not yet sent, in blocks of [`BLOCK_BYTES`]: a row group's bytes are
/// held once, where one growing buffer held them in up to twice their size and the upload then
/// copied them.
#[derive(Default)]
pub(crate) struct Blocks {
    full: Vec<bytes::Bytes>,
    last: Vec<u8>,
}

impl Blocks {
    /// The blocks written since the last call.
    fn take(&mut self) -> Vec<bytes::Bytes> {
        let mut out = std::mem::take(&mut self.full);
        if !self.last.is_empty() {
            out.push(std::mem::take(&mut self.last).into());
        }
        out
    }
}

impl std::io::Write for Blocks {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            if self.last.capacity() == 0 {
                self.last.reserve_exact(BLOCK_BYTES);
            }
            let room = self.last.capacity() - self.last.len();
            let (now, rest) = buf.split_at(buf.len().min(room));
            self.last.extend_from_slice(now);
            if self.last.len() == self.last.capacity() {
                self.full.push(std::mem::take(&mut self.last).into());
            }
            buf = rest;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) struct ParallelFile {
    pub(crate) key: String,
    schema: SchemaRef,
    file: SerializedFileWriter<Blocks>,
    factory: ArrowRowGroupWriterFactory,
    /// The column writers of the row group in progress.
    columns: Vec<ArrowColumnWriter>,
    in_progress_rows: usize,
    max_row_group_rows: usize,
    max_row_group_bytes: usize,
    /// Rows given to the column writers since the slice in progress began, or since a row
    /// group began within it (see [`crate::compact::Sink::part_rows`]).
    pub(crate) since_split: usize,
    object: BufWriter,
    pub(crate) rows: u64,
    pub(crate) event_types: BTreeMap<String, u64>,
}

impl ParallelFile {
    pub(crate) fn try_new(
        key: String,
        object: BufWriter,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self> {
        let max_row_group_rows = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
        let max_row_group_bytes = props.max_row_group_bytes().unwrap_or(usize::MAX);
        let (file, factory) =
            ArrowWriter::try_new(Blocks::default(), Arc::clone(&schema), Some(props))?
                .into_serialized_writer()?;
        let columns = factory.create_column_writers(0)?;
        assert_eq!(
            columns.len(),
            schema.fields().len(),
            "the curated schema is flat: one Parquet column per field"
        );
        Ok(Self {
            key,
            schema,
            file,
            factory,
            columns,
            in_progress_rows: 0,
            max_row_group_rows,
            max_row_group_bytes,
            since_split: 0,
            object,
            rows: 0,
            event_types: BTreeMap::new(),
        })
    }

    /// Rows buffered in the row group in progress.
    pub(crate) fn in_progress_rows(&self) -> usize {
        self.in_progress_rows
    }

    /// An estimate of the encoded bytes of the row group in progress.
    pub(crate) fn in_progress_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(ArrowColumnWriter::get_estimated_total_bytes)
            .sum()
    }

    /// Whether the row group in progress has reached the properties' byte limit. Asked by the
    /// caller where a slice ends, not after each part, so that a slice written in parts ends its
    /// row groups where a whole slice does.
    pub(crate) fn group_bytes_full(&self) -> bool {
        self.in_progress_rows > 0 && self.in_progress_bytes() >= self.max_row_group_bytes
    }

    /// Bytes written so far plus an estimate of the row group in progress.
    pub(crate) fn estimated_size(&self) -> usize {
        self.file.bytes_written() + self.in_progress_bytes()
    }

    /// Appends the rows at `positions` of `batches` (whose first columns are the file's), of one
    /// event type, starting a new row group whenever one reaches the row limit (as `ArrowWriter`
    /// does).
    pub(crate) async fn write(
        &mut self,
        batches: &[RecordBatch],
        positions: &[(usize, usize)],
        event_type: &str,
    ) -> Result<()> {
        let mut rest = positions;
        while !rest.is_empty() {
            let room = self.max_row_group_rows - self.in_progress_rows;
            let (now, later) = rest.split_at(rest.len().min(room));
            self.encode(batches, now)?;
            self.in_progress_rows += now.len();
            self.since_split += now.len();
            if self.in_progress_rows >= self.max_row_group_rows {
                self.flush().await?;
                self.since_split = 0;
            }
            rest = later;
        }
        self.rows += positions.len() as u64;
        *self.event_types.entry(event_type.to_owned()).or_default() += positions.len() as u64;
        Ok(())
    }

    /// Gathers and encodes each column of the rows at `positions`, the columns shared out among
    /// threads.
    fn encode(&mut self, batches: &[RecordBatch], positions: &[(usize, usize)]) -> Result<()> {
        let fields = self.schema.fields();
        let queue = Mutex::new(self.columns.iter_mut().enumerate());
        let work = || -> Result<()> {
            loop {
                let next = queue.lock().expect("no thread panics holding it").next();
                let Some((i, writer)) = next else {
                    return Ok(());
                };
                let arrays: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(i).as_ref()).collect();
                let column = gather(&arrays, positions)?;
                for leaf in compute_leaves(&fields[i], &column)? {
                    writer.write(&leaf)?;
                }
            }
        };
        let threads = if positions.len() < MIN_PARALLEL_ROWS {
            1
        } else {
            // Cores that other partitions of the run keep busy are left to them.
            let partitions = IN_PROGRESS.load(Ordering::Relaxed).max(1);
            (encoding_threads() / partitions).max(1)
        };
        if threads == 1 {
            return work();
        }
        let helped = Mutex::new(Ok(()));
        helpers()
            .in_place_scope(|s| {
                for _ in 1..threads {
                    s.spawn(|_| {
                        let r = work();
                        let mut helped = helped.lock().expect("no thread panics holding it");
                        *helped = std::mem::replace(&mut *helped, Ok(())).and(r);
                    });
                }
                // A panic on a helper is raised here once the scope ends.
                work()
            })
            .and(helped.into_inner().expect("no thread panics holding it"))
    }

    /// Closes the row group in progress (if it has rows) and sends the bytes written so far.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if self.in_progress_rows == 0 {
            return Ok(());
        }
        let next = self
            .factory
            .create_column_writers(self.file.flushed_row_groups().len() + 1)?;
        let closed = std::mem::replace(&mut self.columns, next)
            .into_iter()
            .map(ArrowColumnWriter::close)
            .collect::<parquet::errors::Result<Vec<ArrowColumnChunk>>>()?;
        let mut group = self.file.next_row_group()?;
        for chunk in closed {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.in_progress_rows = 0;
        self.send().await
    }

    async fn send(&mut self) -> Result<()> {
        for block in self.file.inner_mut().take() {
            // Handed over as they are: the upload keeps them until they are sent, not a copy.
            self.object
                .put(block)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        }
        Ok(())
    }

    /// Writes the last row group and the footer, completes the upload and returns the file's
    /// size in bytes.
    pub(crate) async fn finish(&mut self) -> Result<u64> {
        self.flush().await?;
        self.file.finish()?;
        self.send().await?;
        self.object.complete().await?;
        Ok(self.file.bytes_written() as u64)
    }
}

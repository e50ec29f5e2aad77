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
use arrow::compute::interleave;
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

/// Slices with fewer rows than this are encoded on the calling thread alone.
const MIN_PARALLEL_ROWS: usize = 4_096;

/// Threads that encode one file's columns: the machine's cores, at most four.
fn encoding_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Partitions being compacted in this process right now.
static IN_PROGRESS: AtomicUsize = AtomicUsize::new(0);

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

pub(crate) struct ParallelFile {
    pub(crate) key: String,
    schema: SchemaRef,
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// The column writers of the row group in progress.
    columns: Vec<ArrowColumnWriter>,
    in_progress_rows: usize,
    max_row_group_rows: usize,
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
        let (file, factory) = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props))?
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
            object,
            rows: 0,
            event_types: BTreeMap::new(),
        })
    }

    /// Rows buffered in the row group in progress.
    pub(crate) fn in_progress_rows(&self) -> usize {
        self.in_progress_rows
    }

    /// Bytes written so far plus an estimate of the row group in progress.
    pub(crate) fn estimated_size(&self) -> usize {
        self.file.bytes_written()
            + self
                .columns
                .iter()
                .map(ArrowColumnWriter::get_estimated_total_bytes)
                .sum::<usize>()
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
            if self.in_progress_rows >= self.max_row_group_rows {
                self.flush().await?;
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
                let column = interleave(&arrays, positions)?;
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
        let bytes = std::mem::take(self.file.inner_mut());
        if !bytes.is_empty() {
            self.object.write(bytes.into()).await?;
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

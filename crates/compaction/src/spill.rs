//! Partitions larger than memory: sorted runs on local disk, merged into the files.
//!
//! While a partition is read, its rows are held in memory until they take
//! [`CompactOptions::spill_bytes`](crate::compact::CompactOptions::spill_bytes). Then they are
//! sorted by [`SORT_ORDER`](crate::compact::SORT_ORDER) and written to a local file (Arrow IPC)
//! as a run, each row with its line number in the partition, and dropped. What de-duplication
//! needs of each line (its id hash, `received_at` and fingerprint) goes to a run of its own,
//! sorted by id hash, and those runs are merged before the rows are (see [`crate::keys`]), so
//! no table of the partition's ids is held in memory.
//! Once every object is read, the runs are merged (on a thread of their own while the writer
//! encodes, when a core is to spare): the rows come out in the sort order, the lines
//! de-duplication dropped are skipped, and the writer gets the slices an in-memory compaction
//! gives it, a part at a time, so the files are the same, byte for byte.
//!
//! Memory then holds one batch per run and the part of a slice being written (a few thousand
//! rows: [`crate::compact::PART_ROWS`]). Past the runs one merge takes (16 to 64, as many as
//! [`MERGE_BYTES`] of batches hold), runs are first merged into longer ones, that many at a
//! time, so the final merge reads at most that many side by side, whatever the partition's size.
//! The runs live in a temporary folder (under `TMPDIR`, or `--spill-dir`), removed when the
//! compaction ends, whether it succeeded or not.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use eventlake_contract::schema::file_schema;

use crate::compact::{PART_ROWS, SLICE_ROWS, Sink, sorted_order};
use crate::error::{Error, Result};
use crate::gather;
use crate::read::Chunk;

/// Rows in each batch of a run. The merge holds a batch of each run it reads: at 4,096 rows,
/// 16 runs held about 22 MiB of generated events a partition; at 1,024, a partition of
/// 476,000 lines peaks about 10 MiB lower, for 2 to 3 % more time.
const RUN_BATCH_ROWS: usize = 1024;

/// Runs merged at once, at most: a batch of each is held, about 360 KiB of generated events.
/// More runs than a merge takes are first merged into longer ones, which writes and reads their
/// rows once more: 12 of a 2,000,000-line partition's 42 runs, about a tenth of its time.
const MAX_MERGED_RUNS: usize = 64;

/// Runs merged at once, at least, however wide the events.
const MIN_MERGED_RUNS: usize = 16;

/// Bytes of the batches a merge holds, one of each run, which decides how many runs it takes
/// (between [`MIN_MERGED_RUNS`] and [`MAX_MERGED_RUNS`]): 64 runs of generated events, 19 of
/// events with 40 extra properties (1.3 MB a batch), where 64 held 80 MB more.
const MERGE_BYTES: usize = 24 << 20;

/// Runs one merge takes when a batch of [`RUN_BATCH_ROWS`] rows is `batch_bytes` bytes.
fn merge_width(batch_bytes: usize, budget: usize) -> usize {
    (budget / batch_bytes.max(1)).clamp(MIN_MERGED_RUNS, MAX_MERGED_RUNS)
}

/// The sorted runs of one partition.
pub(crate) struct Spill {
    dir: tempfile::TempDir,
    /// The process's spill folder `dir` is in (declared after it, so it outlives it).
    scratch: Arc<crate::scratch::Scratch>,
    /// The runs to merge, in the order they were written.
    runs: Vec<PathBuf>,
    /// Runs written so far, the merged ones included.
    written: usize,
    /// The key runs (see [`crate::keys`]), one a run of rows.
    key_runs: Vec<PathBuf>,
    /// Valid lines written to runs so far.
    lines: usize,
    /// Bytes of run files written so far (merged runs not counted again).
    run_bytes: u64,
    /// [`MERGE_BYTES`], but in tests.
    merge_budget: usize,
}

/// The curated columns, then each row's line number in the partition.
fn run_schema() -> SchemaRef {
    let mut fields: Vec<Field> = file_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("line", DataType::UInt32, false));
    Arc::new(Schema::new(fields))
}

/// A spill file or folder that could not be made, written or read, and where.
pub(crate) fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Spill(format!("cannot {what} {}: {e}", path.display()))
}

impl Spill {
    /// A new temporary folder for runs, in the process's spill folder in `parent` or the
    /// system's temporary folder (see [`crate::scratch`]).
    pub(crate) fn new(parent: Option<&Path>) -> Result<Self> {
        let scratch = crate::scratch::scratch(parent)?;
        let dir = tempfile::Builder::new()
            .prefix("eventlake-spill-")
            .tempdir_in(scratch.path())
            .map_err(|e| io_error("create a spill folder in", scratch.path(), e))?;
        Ok(Self {
            dir,
            scratch,
            runs: Vec::new(),
            written: 0,
            key_runs: Vec::new(),
            lines: 0,
            run_bytes: 0,
            merge_budget: MERGE_BYTES,
        })
    }

    /// Runs written so far.
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Sorts the rows of `chunks` (the partition's next lines) and writes them as a run, and
    /// their keys as a key run.
    pub(crate) fn write_run(&mut self, chunks: &[Chunk]) -> Result<()> {
        let first_line = self.lines;
        let order = sorted_order(chunks, None);
        let starts: Vec<usize> = chunks
            .iter()
            .scan(first_line, |at, c| {
                let here = *at;
                *at += c.batch.num_rows();
                Some(here)
            })
            .collect();
        if first_line + order.len() > u32::MAX as usize {
            return Err(Error::InvalidArgument(
                "a partition has more than 4,294,967,295 valid lines".into(),
            ));
        }

        let path = self.next_path();
        let mut writer = RunWriter::create(&path)?;
        let schema = run_schema();
        let columns = file_schema().fields().len();
        for positions in order.chunks(RUN_BATCH_ROWS) {
            let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns + 1);
            for i in 0..columns {
                let sources: Vec<&dyn Array> =
                    chunks.iter().map(|c| c.batch.column(i).as_ref()).collect();
                arrays.push(gather::gather(&sources, positions)?);
            }
            let lines: UInt32Array = positions
                .iter()
                .map(|&(c, r)| (starts[c] + r) as u32)
                .collect();
            arrays.push(Arc::new(lines));
            writer.write(&RecordBatch::try_new(Arc::clone(&schema), arrays)?)?;
        }
        writer.finish()?;
        self.run_bytes += std::fs::metadata(&path)
            .map_err(|e| io_error("read the size of", &path, e))?
            .len();
        self.runs.push(path);
        let keys = self
            .dir
            .path()
            .join(format!("keys-{:04}.bin", self.key_runs.len() + 1));
        crate::keys::write_run(&keys, chunks, first_line)?;
        self.key_runs.push(keys);
        self.lines += order.len();
        Ok(())
    }

    /// Merges the key runs: which lines to keep (`earlier` and `window` as
    /// [`crate::keys::merge_runs`] takes them), and every line's keys in one sorted file in the
    /// process's spill folder, which outlives this spill.
    pub(crate) fn merge_keys(
        &mut self,
        earlier: &[crate::earlier::PartitionIds],
        window: std::time::Duration,
    ) -> Result<crate::keys::Merged> {
        let merged = crate::keys::merge_runs(
            &self.key_runs,
            self.lines,
            Arc::clone(&self.scratch),
            earlier,
            window,
        )?;
        for done in self.key_runs.drain(..) {
            std::fs::remove_file(&done).map_err(|e| io_error("remove", &done, e))?;
        }
        Ok(merged)
    }

    /// Where the next run goes.
    fn next_path(&mut self) -> PathBuf {
        self.written += 1;
        self.dir
            .path()
            .join(format!("run-{:04}.arrows", self.written))
    }

    /// Merges runs into longer ones until no more are left than one merge takes (see
    /// [`merge_width`]): the final merge then holds a batch of each, however large the
    /// partition. The first merge takes only as many runs as it must for every later one to take
    /// that many, so the fewest rows are merged twice (21 runs, 16 at a time: 6 merged into one,
    /// where merging 16 first moved nearly three times the rows).
    fn narrow(&mut self) -> Result<()> {
        let batch_bytes = usize::try_from(self.run_bytes).unwrap_or(usize::MAX) / self.lines.max(1)
            * RUN_BATCH_ROWS;
        let width = merge_width(batch_bytes, self.merge_budget);
        while self.runs.len() > width {
            let take = first_merge(self.runs.len(), width);
            let group: Vec<PathBuf> = self.runs.drain(..take).collect();
            let path = self.next_path();
            let mut merge = Merge::open(&group)?;
            let mut writer = RunWriter::create(&path)?;
            let mut rows: Vec<(usize, usize)> = Vec::with_capacity(RUN_BATCH_ROWS);
            while let Some(m) = merge.next() {
                if rows.len() == RUN_BATCH_ROWS {
                    writer.write(&merge.gather(&rows)?)?;
                    rows.clear();
                    merge.release();
                }
                rows.push(merge.cursors[m].place());
                merge.advance(m)?;
            }
            if !rows.is_empty() {
                writer.write(&merge.gather(&rows)?)?;
            }
            writer.finish()?;
            drop(merge);
            for done in &group {
                std::fs::remove_file(done).map_err(|e| io_error("remove", done, e))?;
            }
            self.runs.push(path);
        }
        Ok(())
    }

    /// Merges the runs into `sink`, in the sort order, skipping the lines `keep` does not keep.
    /// The merge hands the rows over a piece at a time (see [`Pieces`]), and the writer cuts
    /// the pieces into the parts [`Sink::part_rows`] asks for, so the files are those an
    /// in-memory compaction writes. While fewer partitions than cores are being compacted, the
    /// merge runs on a thread of its own and goes on while the writer encodes the rows before:
    /// on one partition alone, merging and encoding took turns on 1.5 of two cores. With as many
    /// partitions as cores, the cores are busy already, and the thread only cost memory.
    pub(crate) async fn merge(&mut self, keep: &[bool], sink: &mut Sink<'_>) -> Result<()> {
        self.merge_with(keep, sink, crate::encode::cores_to_spare())
            .await
    }

    /// [`Spill::merge`], on a thread of its own (`beside`) or here.
    async fn merge_with(&mut self, keep: &[bool], sink: &mut Sink<'_>, beside: bool) -> Result<()> {
        self.narrow()?;
        let pieces = Pieces::open(&self.runs, keep.to_vec())?;
        if !beside {
            return write_pieces(&mut Source::Here(pieces), sink).await;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Vec<RecordBatch>>();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("merge-runs".into())
            .spawn(move || {
                for piece in pieces {
                    let failed = piece.is_err();
                    if tx.blocking_send(piece).is_err() || failed {
                        // The writer stopped, with its own error, or has this one.
                        break;
                    }
                    // The batches come back here to be freed by the thread that made them:
                    // freed on another, their memory stayed with this thread once it ended,
                    // and a backfill's peak grew with each partition merged.
                    while let Ok(batches) = done_rx.try_recv() {
                        drop(batches);
                    }
                }
                drop(tx);
                for batches in done_rx {
                    drop(batches);
                }
                let _ = ended_tx.send(());
            })
            .map_err(|e| {
                Error::Spill(format!("cannot start a thread to merge spilled runs: {e}"))
            })?;
        write_pieces(&mut Source::Thread(rx, done_tx), sink).await?;
        // Every piece is taken: the merge has ended, or failed (and sent its error, given
        // above), or panicked, which ends the thread without this signal.
        ended_rx
            .await
            .map_err(|_| Error::Spill("the merge of spilled runs panicked".into()))
    }
}

/// Where the writer takes the merge's pieces from.
enum Source {
    /// The merge, run here between the writer's parts.
    Here(Pieces),
    /// The merge's thread, and the way back to it for the batches done with.
    Thread(
        tokio::sync::mpsc::Receiver<Result<Piece>>,
        std::sync::mpsc::Sender<Vec<RecordBatch>>,
    ),
}

impl Source {
    async fn next(&mut self) -> Option<Result<Piece>> {
        match self {
            Source::Here(pieces) => pieces.next(),
            Source::Thread(rx, _) => rx.recv().await,
        }
    }

    /// Batches the writer is done with.
    fn done(&self, batches: Vec<RecordBatch>) {
        if let Source::Thread(_, back) = self {
            // A merge that has ended frees them as it goes.
            let _ = back.send(batches);
        }
    }
}

/// Writes the pieces `source` brings into `sink`, cut into the parts [`Sink::part_rows`] asks
/// for.
async fn write_pieces(source: &mut Source, sink: &mut Sink<'_>) -> Result<()> {
    // The batches the rows of `part` point into: those of the pieces it takes rows from.
    let mut held: Vec<RecordBatch> = Vec::new();
    let mut part: Vec<(usize, usize)> = Vec::with_capacity(PART_ROWS);
    while let Some(piece) = source.next().await {
        let Piece {
            batches,
            rows,
            event_type,
            slice_ends,
        } = piece?;
        let mut base = held.len();
        held.extend(batches);
        for (b, r) in rows {
            part.push((base + b, r));
            if part.len() == sink.part_rows() {
                sink.append(&held, &part, &event_type).await?;
                part.clear();
                // Only this piece's batches are pointed into by the rows to come.
                source.done(held.drain(..base).collect());
                base = 0;
            }
        }
        if let Some(type_ends) = slice_ends {
            if !part.is_empty() {
                sink.append(&held, &part, &event_type).await?;
                part.clear();
            }
            sink.slice_ends(type_ends).await?;
            source.done(std::mem::take(&mut held));
        }
    }
    Ok(())
}

/// Pieces the merge's thread may have handed over that the writer has not taken yet.
const PIECES_IN_FLIGHT: usize = 2;

/// Rows of one event type, in the sort order, that the merge hands the writer at once: at most
/// [`PART_ROWS`] of them, within one slice of the writer.
struct Piece {
    /// The batches `rows` point into (the merge's live ones when the piece was cut).
    batches: Vec<RecordBatch>,
    rows: Vec<(usize, usize)>,
    event_type: String,
    /// Set when the slice ends with these rows: whether the rows of its type end too.
    slice_ends: Option<bool>,
}

/// The merge of runs as pieces, skipping the lines `keep` does not keep and cutting the slices
/// an in-memory compaction cuts: [`SLICE_ROWS`] rows at most, of one event type.
struct Pieces {
    merge: Merge,
    keep: Vec<bool>,
    rows: Vec<(usize, usize)>,
    /// Rows of the slice in progress, those of pieces already cut included.
    taken: usize,
    slice_type: String,
    /// Set once the last piece is cut, or the merge failed.
    ended: bool,
}

impl Pieces {
    fn open(runs: &[PathBuf], keep: Vec<bool>) -> Result<Self> {
        Ok(Self {
            merge: Merge::open(runs)?,
            keep,
            rows: Vec::with_capacity(PART_ROWS),
            taken: 0,
            slice_type: String::new(),
            ended: false,
        })
    }

    /// The rows taken so far as a piece; the merge's batches they point into are let go.
    fn cut(&mut self, slice_ends: Option<bool>) -> Piece {
        let piece = Piece {
            batches: self.merge.live.clone(),
            rows: std::mem::replace(&mut self.rows, Vec::with_capacity(PART_ROWS)),
            event_type: self.slice_type.clone(),
            slice_ends,
        };
        self.merge.release();
        piece
    }

    /// Takes rows until a piece is cut.
    fn step(&mut self) -> Result<Option<Piece>> {
        while let Some(m) = self.merge.next() {
            let c = &self.merge.cursors[m];
            if !self.keep[c.lines.value(c.row) as usize] {
                self.merge.advance(m)?;
                continue;
            }
            let event_type = c.types.value(c.row);
            let type_ends = self.taken > 0 && self.slice_type != event_type;
            if type_ends || self.taken == SLICE_ROWS {
                self.taken = 0;
                return Ok(Some(self.cut(Some(type_ends))));
            }
            if self.rows.len() == PART_ROWS {
                return Ok(Some(self.cut(None)));
            }
            if self.taken == 0 {
                self.slice_type.clear();
                self.slice_type.push_str(event_type);
            }
            self.rows.push(c.place());
            self.taken += 1;
            self.merge.advance(m)?;
        }
        self.ended = true;
        Ok((self.taken > 0).then(|| self.cut(Some(true))))
    }
}

impl Iterator for Pieces {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
        if self.ended {
            return None;
        }
        let step = self.step();
        if step.is_err() {
            self.ended = true;
        }
        step.transpose()
    }
}

/// How many of `runs` runs the first merge takes when a merge takes `width`: all of them when
/// they are no more than that; else just enough that every later merge takes `width` and leaves
/// exactly `width` for the final one.
fn first_merge(runs: usize, width: usize) -> usize {
    if runs <= width {
        return runs;
    }
    (runs - 2) % (width - 1) + 2
}

/// Bytes a run writer gathers before it writes them to its file. Arrow's IPC writer writes
/// each buffer of a batch (a column's values, offsets and validity, then padding) on its own:
/// about 24 writes a batch of [`RUN_BATCH_ROWS`] rows, which a buffer of the default 8 KiB
/// passed through one by one, 10,000 system calls for each spilled partition of 430,000 lines.
const RUN_WRITE_BUFFER: usize = 1 << 20;

/// A run being written.
struct RunWriter {
    path: PathBuf,
    writer: StreamWriter<BufWriter<File>>,
}

impl RunWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| io_error("create", path, e))?;
        let writer = StreamWriter::try_new(
            BufWriter::with_capacity(RUN_WRITE_BUFFER, file),
            &run_schema(),
        )
        .map_err(|e| io_error("write", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer
            .write(batch)
            .map_err(|e| io_error("write", &self.path, e))
    }

    fn finish(mut self) -> Result<()> {
        let path = self.path;
        let failed = |e: arrow::error::ArrowError| io_error("write", &path, e);
        self.writer.finish().map_err(failed)?;
        let buffered = self.writer.into_inner().map_err(failed)?;
        buffered
            .into_inner()
            .map_err(|e| io_error("write", &path, e.into_error()))?;
        Ok(())
    }
}

/// Runs read side by side, row by row in the sort order.
struct Merge {
    cursors: Vec<Cursor>,
    /// The cursors by the key of their row, smallest first: the next row is the first's, and a
    /// cursor that moves on is put back in its place with a binary search (about four key
    /// comparisons for 16 runs, where a scan of every cursor took fifteen).
    order: Vec<usize>,
    /// The batches the rows taken since the last [`Merge::release`] point into: each cursor's
    /// current one, and those it has moved past since.
    live: Vec<RecordBatch>,
}

impl Merge {
    fn open(runs: &[PathBuf]) -> Result<Self> {
        let mut cursors = Vec::with_capacity(runs.len());
        for path in runs {
            if let Some(c) = Cursor::open(path)? {
                cursors.push(c);
            }
        }
        let mut order: Vec<usize> = (0..cursors.len()).collect();
        order.sort_by(|&a, &b| cursors[a].key().cmp(&cursors[b].key()));
        let mut merge = Self {
            cursors,
            order,
            live: Vec::new(),
        };
        merge.release();
        Ok(merge)
    }

    /// The cursor whose row comes next, if any is left.
    fn next(&self) -> Option<usize> {
        self.order.first().copied()
    }

    /// Moves cursor `m`, the one [`Merge::next`] gave, past its row.
    fn advance(&mut self, m: usize) -> Result<()> {
        assert_eq!(
            self.order.first(),
            Some(&m),
            "the merge advances its next cursor"
        );
        match self.cursors[m].advance()? {
            Step::Row => {}
            Step::Batch => {
                self.cursors[m].slot = self.live.len();
                self.live.push(self.cursors[m].batch.clone());
            }
            Step::End => {
                self.order.remove(0);
                let last = self.cursors.len() - 1;
                self.cursors.swap_remove(m);
                // The last cursor took its place.
                for i in &mut self.order {
                    if *i == last {
                        *i = m;
                    }
                }
                return Ok(());
            }
        }
        // Its new row goes after every row that is not larger (rows with equal keys share an id,
        // and at most one of them is kept, so their order among themselves does not matter).
        let key = self.cursors[m].key();
        let at = self.order[1..].partition_point(|&i| self.cursors[i].key() <= key);
        self.order.copy_within(1..=at, 0);
        self.order[at] = m;
        Ok(())
    }

    /// The rows taken are written: only the cursors' current batches stay live.
    fn release(&mut self) {
        self.live.clear();
        for c in &mut self.cursors {
            c.slot = self.live.len();
            self.live.push(c.batch.clone());
        }
    }

    /// The rows at `places` (in the live batches), as one batch of a run.
    fn gather(&self, places: &[(usize, usize)]) -> Result<RecordBatch> {
        let schema = run_schema();
        let columns = (0..schema.fields().len())
            .map(|i| {
                let sources: Vec<&dyn Array> =
                    self.live.iter().map(|b| b.column(i).as_ref()).collect();
                gather::gather(&sources, places)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// Where a run's reading stands.
struct Cursor {
    path: PathBuf,
    reader: StreamReader<BufReader<File>>,
    batch: RecordBatch,
    /// The batch's place among the merge's live batches.
    slot: usize,
    row: usize,
    ids: StringArray,
    types: StringArray,
    times: TimestampMicrosecondArray,
    lines: UInt32Array,
}

enum Step {
    /// The next row is in the same batch.
    Row,
    /// The next row starts a new batch.
    Batch,
    /// The run has no more rows.
    End,
}

impl Cursor {
    fn open(path: &Path) -> Result<Option<Self>> {
        let file = File::open(path).map_err(|e| io_error("open", path, e))?;
        let mut reader = StreamReader::try_new(BufReader::new(file), None)
            .map_err(|e| io_error("read", path, e))?;
        let Some(batch) = next_batch(&mut reader, path)? else {
            return Ok(None);
        };
        let columns = columns_of(&batch);
        Ok(Some(Self {
            path: path.to_path_buf(),
            reader,
            batch,
            slot: 0,
            row: 0,
            ids: columns.0,
            types: columns.1,
            times: columns.2,
            lines: columns.3,
        }))
    }

    /// The row's place in the sort order.
    fn key(&self) -> (&str, i64, &str) {
        (
            self.types.value(self.row),
            self.times.value(self.row),
            self.ids.value(self.row),
        )
    }

    /// Where its row is among the merge's live batches.
    fn place(&self) -> (usize, usize) {
        (self.slot, self.row)
    }

    fn advance(&mut self) -> Result<Step> {
        self.row += 1;
        if self.row < self.batch.num_rows() {
            return Ok(Step::Row);
        }
        let Some(batch) = next_batch(&mut self.reader, &self.path)? else {
            return Ok(Step::End);
        };
        (self.ids, self.types, self.times, self.lines) = columns_of(&batch);
        self.batch = batch;
        self.row = 0;
        Ok(Step::Batch)
    }
}

/// The next non-empty batch of a run.
fn next_batch(
    reader: &mut StreamReader<BufReader<File>>,
    path: &Path,
) -> Result<Option<RecordBatch>> {
    for batch in reader.by_ref() {
        let batch = batch.map_err(|e| io_error("read", path, e))?;
        if batch.num_rows() > 0 {
            return Ok(Some(batch));
        }
    }
    Ok(None)
}

fn columns_of(
    b: &RecordBatch,
) -> (
    StringArray,
    StringArray,
    TimestampMicrosecondArray,
    UInt32Array,
) {
    (
        b.column(0).as_string::<i32>().clone(),
        b.column(1).as_string::<i32>().clone(),
        b.column(2)
            .as_primitive::<TimestampMicrosecondType>()
            .clone(),
        b.column(b.num_columns() - 1)
            .as_primitive::<arrow::datatypes::UInt32Type>()
            .clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::{CompactOptions, sorted_order, write_files};
    use crate::read::read_object;
    use eventlake_catalog::Lake;
    use eventlake_contract::{PartitionDate, PartitionKey, TeamName};

    /// Valid lines, most of one event type (more than a writer's slice of it), at times and with
    /// ids that are not in line order; `n` of them.
    fn chunks(n: usize, per_chunk: usize, partition: &PartitionKey) -> Vec<Chunk> {
        let types = ["page_view", "click", "purchase"];
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let ty = if i % 10 < 8 { types[0] } else { types[1 + i % 2] };
                let (h, m, s) = ((i * 7919) % 24, (i * 31) % 60, (i * 17) % 60);
                format!(
                    "{{\"event_id\":\"id-{:08}\",\"event_type\":\"{ty}\",\"event_time\":\"2026-11-25T{h:02}:{m:02}:{s:02}.{:03}Z\",\"received_at\":\"2026-11-25T23:00:00Z\",\"user_id\":\"u{}\",\"properties\":{{\"n\":{i}}}}}\n",
                    (i * 104_729) % 1_000_003,
                    i % 1000,
                    i % 97
                )
            })
            .collect();
        lines
            .chunks(per_chunk)
            .map(|part| {
                read_object("raw/x.ndjson", part.concat().as_bytes(), partition)
                    .chunk
                    .expect("valid rows")
            })
            .collect()
    }

    async fn file_bytes(lake: &Lake, files: &[eventlake_catalog::DataFile]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for f in files {
            out.push(lake.get(&f.key).await.unwrap().to_vec());
        }
        out
    }

    /// A lake in a temporary folder, and the partition the tests compact.
    fn scratch_lake() -> (tempfile::TempDir, Lake, PartitionKey) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), true).unwrap();
        let partition = PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-25").unwrap(),
        };
        (dir, lake, partition)
    }

    #[tokio::test]
    async fn merged_runs_write_the_files_an_in_memory_sort_writes() {
        let (dir, lake, partition) = scratch_lake();
        // 90,000 lines: 72,000 page views, more than one slice of the writer.
        let chunks = chunks(90_000, 700, &partition);
        let lines: usize = chunks.iter().map(|c| c.batch.num_rows()).sum();
        assert_eq!(lines, 90_000);
        // Some lines dropped, as de-duplication drops them.
        let keep: Vec<bool> = (0..lines).map(|i| i % 13 != 5).collect();
        let order = sorted_order(&chunks, Some(&keep));
        // A few runs, merged at once; 43 merged at once, as these events are narrow; and 43
        // where a merge takes the fewest runs, first merged into longer ones twice (13 into one,
        // then 16 of the 31 left), and 16 merged at the end.
        for (chunks_a_run, runs, budget, merged) in [
            (23, 6, MERGE_BYTES, 6),
            (3, 43, MERGE_BYTES, 43),
            (3, 43, 0, MIN_MERGED_RUNS),
        ] {
            let mut spill = Spill::new(Some(dir.path())).unwrap();
            spill.merge_budget = budget;
            for group in chunks.chunks(chunks_a_run) {
                spill.write_run(group).unwrap();
            }
            assert_eq!(spill.runs(), runs);
            same_files_both_ways(&lake, &partition, &chunks, &keep, &order, &mut spill).await;
            assert_eq!(spill.runs(), merged);
            let left = std::fs::read_dir(spill.dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("run-")
                })
                .count();
            assert_eq!(
                left,
                spill.runs(),
                "runs merged into longer ones are removed"
            );
            let folder = spill.dir.path().to_path_buf();
            drop(spill);
            assert!(!folder.exists(), "the runs are removed");
        }
    }

    /// A run the merge cannot read fails it, naming the run, whether the merge runs here or
    /// on a thread of its own beside the writer.
    #[tokio::test]
    async fn a_run_cut_short_fails_the_merge_with_its_path() {
        let (dir, lake, partition) = scratch_lake();
        let chunks = chunks(20_000, 700, &partition);
        let mut spill = Spill::new(Some(dir.path())).unwrap();
        for group in chunks.chunks(5) {
            spill.write_run(group).unwrap();
        }
        let run = spill.runs[1].clone();
        let len = std::fs::metadata(&run).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&run)
            .unwrap()
            .set_len(len / 2 + 3)
            .unwrap();
        let keep = vec![true; 20_000];
        let opts = CompactOptions::default();
        for beside in [false, true] {
            let mut sink = Sink::new(&lake, &partition, "c", 0, keep.len(), &opts).unwrap();
            let err = spill
                .merge_with(&keep, &mut sink, beside)
                .await
                .expect_err("a run cut short fails the merge");
            assert!(
                err.to_string().contains(&run.display().to_string()),
                "{err}"
            );
        }
    }

    /// The files the merge of `spill` writes are those the in-memory path writes.
    async fn same_files_both_ways(
        lake: &Lake,
        partition: &PartitionKey,
        chunks: &[Chunk],
        keep: &[bool],
        order: &[(usize, usize)],
        spill: &mut Spill,
    ) {
        // One file (a slice's end within it decides where a row group ends), then small files
        // (the merge must also start a new file where the in-memory path does), then row groups
        // cut at a row limit within slices and parts (the pages after such a cut begin where
        // the in-memory path's do), then row groups cut by their bytes where a slice ends.
        let mut groups = Vec::new();
        for (target, files, group_rows, group_bytes) in [
            (256 * 1024 * 1024, 1, 1024 * 1024, 64 << 20),
            (256 * 1024, 2, 1024 * 1024, 64 << 20),
            (256 * 1024 * 1024, 1, 7_777, 64 << 20),
            (256 * 1024 * 1024, 1, 1024 * 1024, 4 << 10),
        ] {
            let opts = CompactOptions {
                target_file_bytes: target,
                row_group_rows: group_rows,
                row_group_bytes: group_bytes,
                ..CompactOptions::default()
            };
            let expected = write_files(lake, partition, "a", 0, chunks, order, &opts)
                .await
                .unwrap();
            let rows = keep.iter().filter(|k| **k).count();
            // Merged here, then on a thread of its own beside the writer.
            let mut sink = Sink::new(lake, partition, "b", 0, rows, &opts).unwrap();
            spill.merge_with(keep, &mut sink, false).await.unwrap();
            let here = sink.finish().await.unwrap();
            let here_bytes = file_bytes(lake, &here).await;
            let mut sink = Sink::new(lake, partition, "b", 0, rows, &opts).unwrap();
            spill.merge_with(keep, &mut sink, true).await.unwrap();
            let merged = sink.finish().await.unwrap();
            assert!(
                here_bytes == file_bytes(lake, &merged).await,
                "the files differ"
            );

            assert!(
                expected.len() >= files,
                "{files} files or more: {expected:?}"
            );
            let summary = |files: &[eventlake_catalog::DataFile]| -> Vec<_> {
                files
                    .iter()
                    .map(|f| (f.rows, f.size, f.event_types.clone()))
                    .collect()
            };
            assert_eq!(summary(&merged), summary(&expected));
            let bytes = file_bytes(lake, &merged).await;
            assert!(
                bytes == file_bytes(lake, &expected).await,
                "the files differ"
            );
            groups.push(bytes.into_iter().map(row_groups).sum::<usize>());
        }
        // Where a row group ends by its bytes, it ends with a slice, within an event type.
        assert!(groups[3] > groups[0], "{groups:?}");
    }

    /// Row groups in a Parquet file.
    fn row_groups(file: Vec<u8>) -> usize {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        SerializedFileReader::new(bytes::Bytes::from(file))
            .unwrap()
            .metadata()
            .num_row_groups()
    }

    #[test]
    fn only_the_first_merge_takes_fewer_runs() {
        for width in [MIN_MERGED_RUNS, 18, 41, MAX_MERGED_RUNS] {
            for runs in 1..=300 {
                let mut left = runs;
                let mut takes = Vec::new();
                while left > width {
                    let take = first_merge(left, width);
                    assert!((2..=width).contains(&take), "{runs}: {take}");
                    takes.push(take);
                    left = left - take + 1;
                }
                assert!(left <= width);
                // Every merge but the first takes as many runs as it may, and the last leaves
                // exactly that many for the final merge: no pass could have been spared.
                assert!(
                    takes.iter().skip(1).all(|&t| t == width),
                    "{runs}: {takes:?}"
                );
                if runs > width {
                    assert_eq!(left, width, "{runs}: {takes:?}");
                }
                let passes = runs.saturating_sub(2) / (width - 1);
                assert_eq!(takes.len(), passes, "{runs}: {takes:?}");
            }
            assert_eq!(first_merge(width, width), width);
        }
        assert_eq!(first_merge(21, 16), 6);
        assert_eq!(first_merge(42, 64), 42);
    }

    /// Narrow events merge as many runs as a merge may take, wide ones fewer, never fewer than
    /// the least.
    #[test]
    fn a_merge_takes_fewer_runs_of_wider_events() {
        // 360 KiB batches of generated events, 1.3 MB of events with 40 extra properties.
        assert_eq!(merge_width(360 << 10, MERGE_BYTES), MAX_MERGED_RUNS);
        assert_eq!(merge_width(1_300_000, MERGE_BYTES), 19);
        assert_eq!(merge_width(usize::MAX, MERGE_BYTES), MIN_MERGED_RUNS);
        assert_eq!(merge_width(0, MERGE_BYTES), MAX_MERGED_RUNS);
    }

    #[test]
    fn a_spill_folder_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"x").unwrap();
        let err = Spill::new(Some(&file)).err().expect("a file is no folder");
        assert!(err.to_string().contains("not-a-folder"), "{err}");
    }
}

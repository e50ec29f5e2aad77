//! De-duplication keys of a spilled partition, on local disk.
//!
//! A partition whose rows spill (see [`crate::spill`]) spills what de-duplication needs of each
//! line as well: its id's hash, its `received_at`, its content fingerprint and its line number,
//! [`KEY_BYTES`] a line. Each run's keys are sorted by id hash, the lines of one id in line
//! order. Once every object is read, the runs are merged in one pass that
//! - picks each id's kept line (the first received, ties going to the earlier line) and counts
//!   the duplicates and conflicts, as the in-memory table of kept lines does;
//! - drops that line when an earlier day received its id within the window, reading the earlier
//!   days' ids in the same order beside the runs (a merge join), and
//! - writes every line's keys, in that order, to one file: the partition's id index, which the
//!   commit encodes and the later days of the run read beside their own.
//!
//! Memory then holds a buffer a run and a flag a line (kept or not), where the in-memory table
//! holds about 40 bytes a line.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;

use crate::earlier::{Ids, PartitionIds, hashes_of, id_hash, within_window};
use crate::error::{Error, Result};
use crate::read::Chunk;
use crate::scratch::Scratch;
use crate::spill::io_error;

/// Bytes of one line's keys on disk: hash, `received_at`, fingerprint and line number.
const KEY_BYTES: usize = 16 + 8 + 8 + 4;

/// Buffer of each file read or written.
const BUFFER_BYTES: usize = 64 * 1024;

/// What de-duplication needs of one valid line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// [`id_hash`] of its event id.
    pub(crate) hash: u128,
    pub(crate) received: i64,
    pub(crate) fingerprint: u64,
    /// Its place among the partition's valid lines.
    pub(crate) line: u32,
}

impl Key {
    /// The order of a sorted file: by id hash, then by line.
    fn order(&self) -> (u128, u32) {
        (self.hash, self.line)
    }

    fn encode(&self) -> [u8; KEY_BYTES] {
        let mut out = [0; KEY_BYTES];
        out[..16].copy_from_slice(&self.hash.to_le_bytes());
        out[16..24].copy_from_slice(&self.received.to_le_bytes());
        out[24..32].copy_from_slice(&self.fingerprint.to_le_bytes());
        out[32..].copy_from_slice(&self.line.to_le_bytes());
        out
    }

    fn decode(b: &[u8; KEY_BYTES]) -> Self {
        Self {
            hash: u128::from_le_bytes(b[..16].try_into().expect("16 bytes")),
            received: i64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
            fingerprint: u64::from_le_bytes(b[24..32].try_into().expect("8 bytes")),
            line: u32::from_le_bytes(b[32..].try_into().expect("4 bytes")),
        }
    }
}

/// The keys of the lines of `chunks` (the partition's valid lines from `first_line` on), sorted.
fn sorted_keys(chunks: &[Chunk], first_line: usize) -> Vec<Key> {
    let lines: usize = chunks.iter().map(|c| c.batch.num_rows()).sum();
    let mut keys = Vec::with_capacity(lines);
    let mut line = first_line as u32;
    for c in chunks {
        let ids = c.batch.column(0).as_string::<i32>();
        let received = c.batch.column(3).as_primitive::<TimestampMicrosecondType>();
        for (r, &fingerprint) in c.fingerprints.iter().enumerate() {
            keys.push(Key {
                hash: id_hash(ids.value(r)),
                received: received.value(r),
                fingerprint,
                line,
            });
            line += 1;
        }
    }
    // Lines are distinct, so an unstable sort gives the one order.
    keys.sort_unstable_by_key(Key::order);
    keys
}

/// Writes the keys of `chunks`' lines (numbered from `first_line`), sorted, to `path`.
pub(crate) fn write_run(path: &Path, chunks: &[Chunk], first_line: usize) -> Result<()> {
    let mut w = KeyWriter::create(path)?;
    for k in sorted_keys(chunks, first_line) {
        w.push(&k)?;
    }
    w.finish()
}

struct KeyWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl KeyWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = File::create(path).map_err(|e| io_error("create", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
        })
    }

    fn push(&mut self, k: &Key) -> Result<()> {
        self.out
            .write_all(&k.encode())
            .map_err(|e| io_error("write", &self.path, e))
    }

    fn finish(self) -> Result<()> {
        let path = self.path;
        self.out
            .into_inner()
            .map_err(|e| io_error("write", &path, e.into_error()))?;
        Ok(())
    }
}

/// A file of keys read in its order.
pub(crate) struct KeyReader {
    path: PathBuf,
    input: BufReader<File>,
}

impl KeyReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| io_error("open", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(BUFFER_BYTES, file),
        })
    }

    /// The next line's keys; `None` at the end of the file.
    pub(crate) fn next_key(&mut self) -> Result<Option<Key>> {
        // Decoded where the buffer holds it, unless it is cut by the buffer's end.
        let buffered = self
            .input
            .fill_buf()
            .map_err(|e| io_error("read", &self.path, e))?;
        if let Some(b) = buffered.first_chunk::<KEY_BYTES>() {
            let k = Key::decode(b);
            self.input.consume(KEY_BYTES);
            return Ok(Some(k));
        }
        let mut b = [0; KEY_BYTES];
        let mut got = 0;
        while got < KEY_BYTES {
            match self.input.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("read", &self.path, e)),
            }
        }
        match got {
            0 => Ok(None),
            KEY_BYTES => Ok(Some(Key::decode(&b))),
            _ => Err(io_error(
                "read",
                &self.path,
                format!("it ends inside a record ({got} of {KEY_BYTES} bytes)"),
            )),
        }
    }
}

/// Every valid line's keys of a spilled partition, sorted by id hash (then line), in a local
/// file removed when the last holder lets go of it.
#[derive(Debug)]
pub struct SortedKeys {
    path: tempfile::TempPath,
    lines: u64,
    /// The spill folder `path` is in (declared after it, so it outlives the file).
    _scratch: Arc<Scratch>,
}

impl SortedKeys {
    /// Valid lines, one record each.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    pub(crate) fn reader(&self) -> Result<KeyReader> {
        KeyReader::open(&self.path)
    }
}

/// What merging a partition's key runs decided.
pub(crate) struct Merged {
    /// Whether each valid line becomes a row.
    pub(crate) keep: Vec<bool>,
    pub(crate) duplicates: u64,
    pub(crate) conflicts: u64,
    pub(crate) cross_partition_duplicates: u64,
    pub(crate) keys: SortedKeys,
}

/// Merges the key runs `runs` of a partition of `lines` valid lines into one sorted file in
/// `scratch`, keeping one line per id: the first received, unless an `earlier` partition received
/// its id within `window` before it (the latest such line, as the in-memory path decides). The
/// earlier partitions' ids are read in the same order, beside the runs.
pub(crate) fn merge_runs(
    runs: &[PathBuf],
    lines: usize,
    scratch: Arc<Scratch>,
    earlier: &[PartitionIds],
    window: Duration,
) -> Result<Merged> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut earlier = earlier
        .iter()
        .map(EarlierCursor::open)
        .collect::<Result<Vec<_>>>()?;
    let mut readers = runs
        .iter()
        .map(|p| KeyReader::open(p))
        .collect::<Result<Vec<_>>>()?;
    // Each run's next line, and the runs by that line's place in the order, first on top.
    let mut next: Vec<Option<Key>> = Vec::with_capacity(readers.len());
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (i, r) in readers.iter_mut().enumerate() {
        let k = r.next_key()?;
        if let Some(k) = &k {
            heap.push(Reverse((k.order(), i)));
        }
        next.push(k);
    }
    let file = tempfile::Builder::new()
        .prefix("eventlake-ids-")
        .tempfile_in(scratch.path())
        .map_err(|e| io_error("create a key file in", scratch.path(), e))?;
    let path = file.into_temp_path();
    let mut out = KeyWriter::create(&path)?;
    let mut merged = Merged {
        keep: vec![true; lines],
        duplicates: 0,
        conflicts: 0,
        cross_partition_duplicates: 0,
        keys: SortedKeys {
            path,
            lines: 0,
            _scratch: scratch,
        },
    };
    // The lines of the id being merged, in line order.
    let mut group: Vec<Key> = Vec::new();
    while let Some(Reverse((_, i))) = heap.pop() {
        let k = next[i].expect("a run in the heap has a next line");
        next[i] = readers[i].next_key()?;
        if let Some(n) = &next[i] {
            heap.push(Reverse((n.order(), i)));
        }
        if group.first().is_some_and(|g| g.hash != k.hash) {
            settle(&group, &mut merged, &mut earlier, window)?;
            group.clear();
        }
        out.push(&k)?;
        merged.keys.lines += 1;
        group.push(k);
    }
    settle(&group, &mut merged, &mut earlier, window)?;
    out.finish()?;
    if merged.keys.lines != lines as u64 {
        return Err(Error::Spill(format!(
            "the key runs hold {} lines where {lines} were read",
            merged.keys.lines
        )));
    }
    Ok(merged)
}

/// Keeps the first received of the lines of one id (`group`, in line order: ties go to the
/// earlier line); a dropped line whose content differs from the kept one's is a conflict. That
/// line is dropped too when an earlier partition's latest line of the id was received within
/// `window` before it.
fn settle(
    group: &[Key],
    merged: &mut Merged,
    earlier: &mut [EarlierCursor<'_>],
    window: Duration,
) -> Result<()> {
    let Some(mut winner) = group.first() else {
        return Ok(());
    };
    for k in &group[1..] {
        if k.received < winner.received {
            winner = k;
        }
    }
    for k in group {
        if k.line == winner.line {
            continue;
        }
        drop_line(&mut merged.keep, k.line)?;
        merged.duplicates += 1;
        merged.conflicts += u64::from(k.fingerprint != winner.fingerprint);
    }
    let mut latest: Option<i64> = None;
    for c in earlier {
        if let Some(t) = c.latest_of(winner.hash)? {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
    }
    if latest.is_some_and(|at| within_window(at, winner.received, window)) {
        drop_line(&mut merged.keep, winner.line)?;
        merged.cross_partition_duplicates += 1;
    }
    Ok(())
}

/// Unsets `line` in `keep`.
fn drop_line(keep: &mut [bool], line: u32) -> Result<()> {
    let place = keep
        .get_mut(line as usize)
        .ok_or_else(|| Error::Spill(format!("a key names line {line}, past the partition")))?;
    *place = false;
    Ok(())
}

/// An earlier partition's ids in id-hash order: its `(hash, received_at)` pairs, one a line.
enum EarlierCursor<'a> {
    File {
        reader: KeyReader,
        next: Option<Key>,
    },
    Memory {
        hashes: &'a [[u8; 16]],
        received: &'a [i64],
        order: Vec<u32>,
        at: usize,
    },
}

impl<'a> EarlierCursor<'a> {
    fn open(ids: &'a PartitionIds) -> Result<Self> {
        Ok(match ids {
            PartitionIds::Sorted(keys) => {
                let mut reader = keys.reader()?;
                let next = reader.next_key()?;
                Self::File { reader, next }
            }
            PartitionIds::Memory(ids) => {
                let hashes = hashes_of(ids);
                let order = hash_order(ids);
                Self::Memory {
                    hashes,
                    received: ids
                        .column(1)
                        .as_primitive::<TimestampMicrosecondType>()
                        .values(),
                    order,
                    at: 0,
                }
            }
        })
    }

    fn peek(&self) -> Option<(u128, i64)> {
        match self {
            Self::File { next, .. } => next.map(|k| (k.hash, k.received)),
            Self::Memory {
                hashes,
                received,
                order,
                at,
            } => order.get(*at).map(|&i| {
                (
                    u128::from_le_bytes(hashes[i as usize]),
                    received[i as usize],
                )
            }),
        }
    }

    fn advance(&mut self) -> Result<()> {
        match self {
            Self::File { reader, next } => *next = reader.next_key()?,
            Self::Memory { at, .. } => *at += 1,
        }
        Ok(())
    }

    /// Moves past every line whose hash is below `hash`, then past those equal to it: the
    /// latest `received_at` among those.
    fn latest_of(&mut self, hash: u128) -> Result<Option<i64>> {
        let mut latest = None;
        while let Some((h, t)) = self.peek() {
            if h > hash {
                break;
            }
            if h == hash {
                latest = Some(latest.map_or(t, |l: i64| l.max(t)));
            }
            self.advance()?;
        }
        Ok(latest)
    }
}

/// The lines of an id index in the order of a sorted key file: by id hash, the lines of one id
/// in their order. Hashes are uniform, so the lines are first dealt into about one bucket a line
/// by their hash's top bits, in line order, and each bucket (a line or two) is then sorted.
pub(crate) fn hash_order(ids: &Ids) -> Vec<u32> {
    let hashes = hashes_of(ids);
    let n = hashes.len();
    let bits = n.next_power_of_two().trailing_zeros().clamp(1, 24);
    let bucket = |h: &[u8; 16]| (u128::from_le_bytes(*h) >> (128 - bits)) as usize;
    let mut starts = vec![0u32; (1 << bits) + 1];
    for h in hashes {
        starts[bucket(h) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut order = vec![0u32; n];
    let mut next = starts.clone();
    for (i, h) in hashes.iter().enumerate() {
        let b = bucket(h);
        order[next[b] as usize] = i as u32;
        next[b] += 1;
    }
    for w in starts.windows(2) {
        let lines = &mut order[w[0] as usize..w[1] as usize];
        if lines.len() > 1 {
            // Stable: lines of one id keep their order.
            lines.sort_by_key(|&i| u128::from_le_bytes(hashes[i as usize]));
        }
    }
    order
}

/// Calls `each` with the hash (its 16 bytes) and `received_at` of every line of `keys`.
pub(crate) fn for_each_line(keys: &SortedKeys, mut each: impl FnMut(&[u8; 16], i64)) -> Result<()> {
    let mut r = keys.reader()?;
    while let Some(k) = r.next_key()? {
        each(&k.hash.to_le_bytes(), k.received);
    }
    Ok(())
}

/// The id index of `keys`, in their order, `rows` lines a batch.
pub(crate) fn index_batches(
    keys: &SortedKeys,
    rows: usize,
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let mut r = keys.reader()?;
    let mut hashes: Vec<u8> = Vec::with_capacity(rows * 16);
    let mut received: Vec<i64> = Vec::with_capacity(rows);
    let mut fingerprints: Vec<u64> = Vec::with_capacity(rows);
    loop {
        let next = r.next_key()?;
        if let Some(k) = next {
            hashes.extend_from_slice(&k.hash.to_le_bytes());
            received.push(k.received);
            fingerprints.push(k.fingerprint);
        }
        if received.len() == rows || (next.is_none() && !received.is_empty()) {
            each(&crate::earlier::index_batch(
                std::mem::take(&mut hashes),
                std::mem::take(&mut received),
                std::mem::take(&mut fingerprints),
            )?)?;
        }
        if next.is_none() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::{LineKeys, first_received};
    use crate::earlier::{decode_index, encode_index, ids_of, latest_earlier};
    use crate::read::read_object;
    use eventlake_contract::{PartitionDate, PartitionKey, TeamName};

    fn partition(d: &str) -> PartitionKey {
        PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse(d).unwrap(),
        }
    }

    /// `n` valid lines of `d`, ids drawn from `ids` of them (so most repeat), receipt times that
    /// tie often, and content that differs between some copies of an id; `per_chunk` a chunk.
    fn chunks(d: &str, n: usize, ids: usize, salt: usize, per_chunk: usize) -> Vec<Chunk> {
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let id = (i * 7919 + salt) % ids;
                let (h, m) = ((i * 13 + salt) % 24, (i * 31) % 3);
                format!(
                    "{{\"event_id\":\"id-{id}\",\"event_type\":\"click\",\"event_time\":\"{d}T01:00:00Z\",\"received_at\":\"{d}T{h:02}:{m:02}:00Z\",\"user_id\":\"u{}\",\"properties\":{{}}}}\n",
                    i % 3
                )
            })
            .collect();
        lines
            .chunks(per_chunk)
            .map(|part| {
                read_object("raw/x.ndjson", part.concat().as_bytes(), &partition(d))
                    .chunk
                    .expect("valid rows")
            })
            .collect()
    }

    /// `chunks` written as key runs of `per_run` chunks, then merged with `earlier` ids.
    fn spilled_beside(
        dir: &Path,
        chunks: &[Chunk],
        per_run: usize,
        earlier: &[PartitionIds],
        window: Duration,
    ) -> Merged {
        let mut runs = Vec::new();
        let mut first = 0;
        for (i, group) in chunks.chunks(per_run).enumerate() {
            let path = dir.join(format!("keys-{i}.bin"));
            write_run(&path, group, first).unwrap();
            first += group.iter().map(|c| c.batch.num_rows()).sum::<usize>();
            runs.push(path);
        }
        let scratch = crate::scratch::scratch(Some(dir)).unwrap();
        merge_runs(&runs, first, scratch, earlier, window).unwrap()
    }

    fn spilled(dir: &Path, chunks: &[Chunk], per_run: usize) -> Merged {
        spilled_beside(dir, chunks, per_run, &[], Duration::ZERO)
    }

    #[test]
    fn hash_order_is_a_stable_sort_by_hash() {
        for (n, ids) in [(0, 1), (1, 1), (2, 2), (5_000, 1_700), (70_000, 70_000)] {
            let c = chunks("2026-11-25", n, ids, 3, 1_000);
            let index = ids_of(&c).unwrap();
            let hashes = hashes_of(&index);
            let mut expected: Vec<u32> = (0..hashes.len() as u32).collect();
            expected.sort_by_key(|&i| u128::from_le_bytes(hashes[i as usize]));
            assert_eq!(hash_order(&index), expected, "{n} lines");
        }
    }

    #[test]
    fn merged_runs_keep_the_lines_the_in_memory_table_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = chunks("2026-11-25", 5_000, 1_700, 0, 97);
        let ids = ids_of(&chunks).unwrap();
        let expected = first_received(&LineKeys::of(&ids));
        assert!(expected.duplicates > 3_000 && expected.conflicts > 1_000);
        for per_run in [1, 7, 1_000] {
            let m = spilled(dir.path(), &chunks, per_run);
            assert_eq!(m.keep, expected.keep, "{per_run} chunks a run");
            assert_eq!(
                (m.duplicates, m.conflicts),
                (expected.duplicates, expected.conflicts)
            );
            assert_eq!(m.keys.lines(), 5_000);
            // Its index holds the lines an in-memory partition's holds, sorted by hash.
            let from_file = encode_index(&PartitionIds::Sorted(Arc::new(m.keys))).unwrap();
            let order = arrow::array::UInt32Array::from(hash_order(&ids));
            assert_eq!(
                decode_index(from_file.into()).unwrap(),
                arrow::compute::take_record_batch(&ids, &order).unwrap()
            );
        }
        // The merged files are temporary: only the runs this test wrote are left.
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, chunks.len());
    }

    #[test]
    fn earlier_days_drop_what_the_in_memory_lookup_drops() {
        let dir = tempfile::tempdir().unwrap();
        let own = chunks("2026-11-25", 3_000, 2_000, 0, 50);
        let ids = ids_of(&own).unwrap();
        let keys = LineKeys::of(&ids);
        let kept = first_received(&keys);
        let (c24, c25) = (
            chunks("2026-11-24", 2_000, 4_000, 5, 64),
            chunks("2026-11-25", 2_000, 4_000, 11, 64),
        );
        let earlier = [
            Arc::new(ids_of(&c24).unwrap()),
            Arc::new(ids_of(&c25).unwrap()),
        ];
        assert_eq!(spilled(dir.path(), &own, 9).keep, kept.keep);
        // The same day's ids stand in for ids received after or within the window, so both
        // sides of the window's edges are met.
        for window in [Duration::ZERO, Duration::from_secs(4 * 3600), Duration::MAX] {
            let latest = latest_earlier(
                &earlier
                    .iter()
                    .cloned()
                    .map(PartitionIds::from)
                    .collect::<Vec<_>>(),
                |h| (0..keys.hashes.len()).find(|&i| kept.keep[i] && keys.hashes[i] == *h),
            )
            .unwrap();
            let mut expected = kept.keep.clone();
            for (line, at) in latest {
                if within_window(at, keys.received[line], window) {
                    expected[line] = false;
                }
            }
            let dropped = kept
                .keep
                .iter()
                .zip(&expected)
                .filter(|(a, b)| a != b)
                .count();
            // In memory and in a sorted file alike.
            let first = spilled(dir.path(), &c24, 1);
            let sources = [
                vec![
                    PartitionIds::from(Arc::clone(&earlier[0])),
                    earlier[1].clone().into(),
                ],
                vec![
                    PartitionIds::Sorted(Arc::new(first.keys)),
                    earlier[1].clone().into(),
                ],
            ];
            for sources in sources {
                let m = spilled_beside(dir.path(), &own, 9, &sources, window);
                assert_eq!(m.keep, expected, "{window:?}");
                assert_eq!(m.cross_partition_duplicates as usize, dropped);
                assert_eq!(
                    (m.duplicates, m.conflicts),
                    (kept.duplicates, kept.conflicts)
                );
            }
            if window == Duration::MAX {
                assert!(dropped > 100, "{dropped}");
            }
        }
    }
}

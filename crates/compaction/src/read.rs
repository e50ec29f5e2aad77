//! Raw object → Arrow rows and quarantine records.
//!
//! An object is decompressed as a stream and cut into lines with a bounded buffer: a line longer
//! than the limit is skipped to its end and quarantined, never held whole in memory. Each line is
//! validated by the contract and appended straight into Arrow builders; `properties` stays JSON
//! text. Nothing fails the object because of one line. A broken gzip stream keeps every line read
//! before the break and records the break itself as an object-level quarantine record.

use std::io::Read;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int32Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use eventlake_contract::event::trim_line;
use eventlake_contract::schema::file_schema;
use eventlake_contract::{
    MAX_RAW_LINE_BYTES, PartitionKey, Reason, Rejection, ValidEvent, parse_raw_line,
};
use flate2::bufread::MultiGzDecoder;
use serde::Serialize;

/// A quarantined line (or, with `line` unset, a whole object's failure).
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRecord {
    /// Raw object key relative to the lake root.
    pub source: String,
    /// 1-based line number in the decompressed object; `None` for an object-level record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub reason: Reason,
    pub detail: String,
    /// The line as text (invalid UTF-8 replaced), cut to 4 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The line's length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_bytes: Option<usize>,
}

const QUARANTINE_RAW_CAP: usize = 4096;

/// The valid rows of one raw object, in line order, with a content fingerprint per row.
#[derive(Debug)]
pub struct Chunk {
    pub batch: RecordBatch,
    /// Hash of everything but `received_at`: equal ids with different fingerprints are conflicts.
    pub fingerprints: Vec<u64>,
}

/// What reading one raw object gave.
#[derive(Debug, Default)]
pub struct ObjectOutcome {
    pub chunk: Option<Chunk>,
    /// Lines read, valid or not.
    pub lines: u64,
    /// Quarantined lines.
    pub quarantined: Vec<QuarantineRecord>,
    /// An object-level failure (not gzip, corrupt or truncated gzip).
    pub object_failure: Option<QuarantineRecord>,
    /// Decompressed bytes.
    pub bytes_read: u64,
    /// Stored bytes this outcome stands for: the object's, or a part's share of them.
    pub stored: u64,
}

struct Builders {
    event_id: StringBuilder,
    event_type: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    user_id: StringBuilder,
    session_id: StringBuilder,
    source: StringBuilder,
    schema_version: Int32Builder,
    properties: StringBuilder,
    context_ip: StringBuilder,
    context_user_agent: StringBuilder,
    context_locale: StringBuilder,
    context_app_version: StringBuilder,
    fingerprints: Vec<u64>,
}

/// What the objects a thread has read so far held: their decompressed bytes, their valid rows
/// and the bytes of each string column (in [`Builders::strings`] order).
#[derive(Clone, Copy, Default)]
struct Shape {
    bytes: u64,
    rows: u64,
    strings: [u64; STRINGS],
}

/// The string columns.
const STRINGS: usize = 10;

thread_local! {
    static SHAPE: std::cell::Cell<Shape> = std::cell::Cell::new(Shape::default());
}

impl Shape {
    /// Room for the rows of an object of about `bytes` decompressed bytes, if objects so far
    /// say how much: a little more than their share per byte, so that the builders seldom grow
    /// (each growth copies what they hold) and give back little when they are shrunk.
    fn room(&self, bytes: u64) -> Option<(usize, [usize; STRINGS])> {
        if self.bytes == 0 || bytes == 0 {
            return None;
        }
        let scale = bytes as f64 * 1.1 / self.bytes as f64;
        let of = |n: u64| (n as f64 * scale) as usize + 64;
        Some((of(self.rows), self.strings.map(of)))
    }
}

impl Builders {
    fn with_room(room: Option<(usize, [usize; STRINGS])>) -> Self {
        let (rows, bytes) = room.unwrap_or((1024, [1024 * 16; STRINGS]));
        let string = |i: usize| StringBuilder::with_capacity(rows, bytes[i]);
        Self {
            event_id: string(0),
            event_type: string(1),
            event_time: TimestampMicrosecondBuilder::with_capacity(rows),
            received_at: TimestampMicrosecondBuilder::with_capacity(rows),
            user_id: string(2),
            session_id: string(3),
            source: string(4),
            schema_version: Int32Builder::with_capacity(rows),
            properties: string(5),
            context_ip: string(6),
            context_user_agent: string(7),
            context_locale: string(8),
            context_app_version: string(9),
            fingerprints: Vec::with_capacity(rows),
        }
    }

    /// The string columns' builders, in [`Shape::strings`] order.
    fn strings(&self) -> [&StringBuilder; STRINGS] {
        [
            &self.event_id,
            &self.event_type,
            &self.user_id,
            &self.session_id,
            &self.source,
            &self.properties,
            &self.context_ip,
            &self.context_user_agent,
            &self.context_locale,
            &self.context_app_version,
        ]
    }

    /// Adds this object's rows to the thread's [`Shape`].
    fn record(&self, bytes: u64) {
        let mut shape = SHAPE.get();
        shape.bytes += bytes;
        shape.rows += self.fingerprints.len() as u64;
        for (n, b) in shape.strings.iter_mut().zip(self.strings()) {
            *n += b.values_slice().len() as u64;
        }
        SHAPE.set(shape);
    }

    fn push(&mut self, e: &ValidEvent<'_>) {
        self.event_id.append_value(&e.event_id);
        self.event_type.append_value(&e.event_type);
        self.event_time.append_value(e.event_time);
        self.received_at.append_value(e.received_at);
        self.user_id.append_option(e.user_id.as_deref());
        self.session_id.append_option(e.session_id.as_deref());
        self.source.append_option(e.source.as_deref());
        self.schema_version.append_value(e.schema_version);
        self.properties.append_option(e.properties);
        self.context_ip.append_option(e.context_ip.as_deref());
        self.context_user_agent
            .append_option(e.context_user_agent.as_deref());
        self.context_locale
            .append_option(e.context_locale.as_deref());
        self.context_app_version
            .append_option(e.context_app_version.as_deref());
        self.fingerprints.push(fingerprint(e));
    }

    fn finish(mut self) -> Option<Chunk> {
        if self.fingerprints.is_empty() {
            return None;
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.event_time.finish().with_timezone("UTC")),
            Arc::new(self.received_at.finish().with_timezone("UTC")),
            Arc::new(self.user_id.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.schema_version.finish()),
            Arc::new(self.properties.finish()),
            Arc::new(self.context_ip.finish()),
            Arc::new(self.context_user_agent.finish()),
            Arc::new(self.context_locale.finish()),
            Arc::new(self.context_app_version.finish()),
        ];
        // Builders grow by doubling and start with room for 1,024 rows: an object of a few dozen
        // lines would otherwise hold several times its rows' bytes until its partition is written.
        for c in &mut columns {
            Array::shrink_to_fit(c);
        }
        let batch = RecordBatch::try_new(file_schema(), columns).expect("columns match the schema");
        Some(Chunk {
            batch,
            fingerprints: self.fingerprints,
        })
    }
}

thread_local! {
    /// The bytes a fingerprint hashes, gathered in one buffer per thread: one call to the hash
    /// instead of a streaming update for each of twenty pieces.
    static FINGERPRINT_BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Hash of the event's content without `received_at` (a retry re-stamps it), over the bytes
/// [`fingerprint_bytes`] gives.
fn fingerprint(e: &ValidEvent<'_>) -> u64 {
    FINGERPRINT_BYTES.with_borrow_mut(|bytes| {
        bytes.clear();
        fingerprint_bytes(e, |piece| bytes.extend_from_slice(piece));
        xxhash_rust::xxh3::xxh3_64(bytes)
    })
}

/// Hands `put` the bytes a fingerprint hashes, piece by piece. The committed id indexes keep
/// fingerprints, so these bytes never change: each field as its length (u64, LE) and its bytes,
/// `u64::MAX` for an absent one, then `event_time` (i64, LE).
fn fingerprint_bytes(e: &ValidEvent<'_>, mut put: impl FnMut(&[u8])) {
    let fields = [
        Some(&*e.event_type),
        e.user_id.as_deref(),
        e.session_id.as_deref(),
        e.source.as_deref(),
        e.properties,
        e.context_ip.as_deref(),
        e.context_user_agent.as_deref(),
        e.context_locale.as_deref(),
        e.context_app_version.as_deref(),
    ];
    for field in fields {
        match field {
            Some(s) => {
                put(&(s.len() as u64).to_le_bytes());
                put(s.as_bytes());
            }
            None => put(&u64::MAX.to_le_bytes()),
        }
    }
    put(&e.event_time.to_le_bytes());
}

fn raw_text(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(QUARANTINE_RAW_CAP)]).into_owned()
}

/// One piece of a raw object, as the line splitter hands it over.
enum Piece<'a> {
    /// A whole line (without its `\n`).
    Line(&'a [u8]),
    /// A line longer than the limit: its length and its first bytes.
    TooLong(usize, &'a [u8]),
}

/// How splitting a stream into lines ended: its decompressed bytes, or the error that broke it
/// with the unfinished line at the break and the bytes before it.
type Split = Result<u64, (std::io::Error, Vec<u8>, u64)>;

/// Bytes asked of the reader at a time.
const READ: usize = 256 * 1024;

thread_local! {
    /// The line splitter's buffer, kept by each thread between objects: a compaction reads
    /// thousands of objects, most far smaller than one read, and a fresh buffer each time was
    /// fresh memory zeroed for every object.
    static LINE_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A buffer grown past this (by a long line, or a large object decompressed whole) is not kept
/// for the next object. A request's body is at most 1 MiB (the contract's limit).
const KEEP_BUFFER: usize = 2 << 20;

/// Cuts `reader` into lines, holding at most `max_line` bytes of one line. On a read error, the
/// bytes of the unfinished line are returned with the error.
fn split_lines<R: Read>(mut reader: R, max_line: usize, mut f: impl FnMut(Piece<'_>)) -> Split {
    let mut buf = LINE_BUFFER.take();
    let result = split_into(&mut reader, max_line, &mut buf, &mut f);
    if buf.len() <= KEEP_BUFFER {
        LINE_BUFFER.set(buf);
    }
    result
}

/// [`split_lines`] with `buf`, which is initialised (zeroed once) up to its length.
fn split_into<R: Read>(
    reader: &mut R,
    max_line: usize,
    buf: &mut Vec<u8>,
    f: &mut impl FnMut(Piece<'_>),
) -> Split {
    // The first `filled` bytes of `buf` are data not yet handed over.
    let mut filled = 0;
    let mut total: u64 = 0;
    // While skipping an over-long line: its length so far and its head.
    let mut skipping: Option<(usize, Vec<u8>)> = None;
    loop {
        if buf.len() < filled + READ {
            buf.resize(filled + READ, 0);
        }
        let n = match reader.read(&mut buf[filled..filled + READ]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((e, buf[..filled].to_vec(), total)),
        };
        total += n as u64;
        if n == 0 {
            if let Some((len, head)) = skipping.take() {
                f(Piece::TooLong(len, &head));
            } else if filled > 0 {
                f(Piece::Line(&buf[..filled]));
            }
            return Ok(total);
        }
        let start = filled;
        filled += n;
        let mut pos = 0;
        if let Some((len, _)) = skipping.as_mut() {
            match memchr::memchr(b'\n', &buf[start..filled]) {
                Some(i) => {
                    *len += i;
                    let (len, head) = skipping.take().expect("skipping");
                    f(Piece::TooLong(len, &head));
                    pos = start + i + 1;
                }
                None => {
                    *len += n;
                    filled = 0;
                    continue;
                }
            }
        }
        // Only the new bytes can hold a newline: the ones before were searched already.
        let mut search = start.max(pos);
        while let Some(i) = memchr::memchr(b'\n', &buf[search..filled]) {
            f(Piece::Line(&buf[pos..search + i]));
            pos = search + i + 1;
            search = pos;
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if filled > max_line {
            let head = buf[..QUARANTINE_RAW_CAP.min(filled)].to_vec();
            skipping = Some((filled, head));
            filled = 0;
        }
    }
}

/// Cuts `text`, a whole object, into lines in place, as [`split_lines`] would, when none of them
/// is longer than `max_line`; `None` (before that line is handed over) when one is. Where such a
/// line comes out of the streaming splitter whole, or skipped with only its head kept, depends
/// on where its reads end, so an object with one is read by the streaming splitter alone.
fn split_slice(text: &[u8], max_line: usize, f: &mut impl FnMut(Piece<'_>)) -> Option<u64> {
    let mut pos = 0;
    for i in memchr::memchr_iter(b'\n', text) {
        if i - pos > max_line {
            return None;
        }
        f(Piece::Line(&text[pos..i]));
        pos = i + 1;
    }
    if pos < text.len() {
        if text.len() - pos > max_line {
            return None;
        }
        f(Piece::Line(&text[pos..]));
    }
    Some(text.len() as u64)
}

/// Decompressed bytes past which builders are not given room ahead: they grow from there.
const MAX_ROOM_HINT: u64 = 64 << 20;

/// About how many bytes `data` holds once decompressed: a gzip object's trailer gives its last
/// member's size (the whole object's, as the ingestion Lambda writes one member), bounded here
/// because a trailer is not to be trusted (at most 32 bytes per stored byte, and
/// [`MAX_ROOM_HINT`]); 0 when there is nothing to go by.
fn decompressed_hint(data: &[u8], is_gzip: bool) -> u64 {
    let hint = if !is_gzip {
        data.len() as u64
    } else {
        crate::gunzip::trailer_size(data)
            .map_or(0, |size| (size as u64).min(data.len() as u64 * 32))
    };
    hint.min(MAX_ROOM_HINT)
}

/// Reads one raw object of `partition` (`key` is for the records). `data` is the object as stored:
/// gzip is recognised by its magic bytes, so plain NDJSON works too; a name ending in `.gz` that
/// is not gzip is an object-level failure.
pub fn read_object(key: &str, data: &[u8], partition: &PartitionKey) -> ObjectOutcome {
    let is_gzip = data.starts_with(&[0x1f, 0x8b]);
    if let Some(refused) = refused(key, data, is_gzip, data.len() as u64) {
        return refused;
    }

    // Decompressed whole (see `gunzip`) and cut into lines in place where it can be; streamed
    // through the line splitter where it cannot. The lines are the same either way.
    let mut buf = LINE_BUFFER.take();
    let text = if is_gzip {
        crate::gunzip::gunzip_whole(data, &mut buf).map(|n| &buf[..n])
    } else {
        Some(data)
    };
    let whole = text.and_then(|text| read_lines(key, data, partition, is_gzip, Some(text)));
    if buf.len() <= KEEP_BUFFER {
        LINE_BUFFER.set(buf);
    }
    whole.unwrap_or_else(|| {
        read_lines(key, data, partition, is_gzip, None).expect("a stream is read to its end")
    })
}

/// Bytes at an object's start that say how it is compressed: enough for every format of
/// [`other_compression`].
const MAGIC_BYTES: usize = 10;

/// The compression other than gzip whose magic bytes `head` (an object's first bytes) starts
/// with. None of them can start a line of JSON text.
fn other_compression(head: &[u8]) -> Option<&'static str> {
    let formats: [(&str, &[u8]); 6] = [
        ("zstd", &[0x28, 0xb5, 0x2f, 0xfd]),
        ("xz", &[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
        ("zip", b"PK\x03\x04"),
        ("LZ4", &[0x04, 0x22, 0x4d, 0x18]),
        ("Snappy", b"\xff\x06\x00\x00sNaPpY"),
        ("bzip2", b"BZh"),
    ];
    let (name, _) = formats.iter().find(|(_, magic)| head.starts_with(magic))?;
    // bzip2's three letters could start a line of text: its block's magic must follow.
    if *name == "bzip2"
        && !(head.len() >= 10 && head[3].is_ascii_digit() && head[4..10] == *b"1AY&SY")
    {
        return None;
    }
    Some(name)
}

/// What an object that is not read at all gives, if it is one (`head` its first bytes, at least
/// [`MAGIC_BYTES`] of them when it has that many): one named `.gz` that is not gzip, or one
/// compressed otherwise. An object-level failure, no line read; the object stays in the raw
/// zone.
fn refused(key: &str, head: &[u8], is_gzip: bool, stored: u64) -> Option<ObjectOutcome> {
    if is_gzip {
        return None;
    }
    let (reason, detail) = match other_compression(head) {
        Some(format) => (
            Reason::UnsupportedCompression,
            format!(
                "object is {format}-compressed, by its magic bytes; raw objects are read as gzip or plain NDJSON: put it back decompressed or gzipped ({stored} bytes kept in the raw zone)"
            ),
        ),
        None if key.ends_with(".gz") => (
            Reason::NotGzip,
            format!(
                "object is named .gz but does not start with the gzip magic bytes ({stored} bytes kept in the raw zone)"
            ),
        ),
        None => return None,
    };
    Some(ObjectOutcome {
        object_failure: Some(QuarantineRecord {
            source: key.to_owned(),
            line: None,
            reason,
            detail,
            raw: None,
            raw_bytes: Some(stored as usize),
        }),
        stored,
        ..ObjectOutcome::default()
    })
}

/// [`read_object`] of `data`, with its lines cut from `text` when given (its whole decompressed
/// bytes), else streamed; `None` when `text` has a line too long to be cut from it (see
/// [`split_slice`]).
fn read_lines(
    key: &str,
    data: &[u8],
    partition: &PartitionKey,
    is_gzip: bool,
    text: Option<&[u8]>,
) -> Option<ObjectOutcome> {
    let mut lines = Lines::new(key, partition, decompressed_hint(data, is_gzip), 0);
    let mut on_piece = |piece: Piece<'_>| lines.take(piece);
    let result = match text {
        Some(text) => Ok(split_slice(text, MAX_RAW_LINE_BYTES, &mut on_piece)?),
        // Straight from the slice: no buffer between it and the decoder.
        None if is_gzip => {
            split_lines(MultiGzDecoder::new(data), MAX_RAW_LINE_BYTES, &mut on_piece)
        }
        None => split_lines(data, MAX_RAW_LINE_BYTES, &mut on_piece),
    };
    let mut out = ObjectOutcome {
        stored: data.len() as u64,
        ..ObjectOutcome::default()
    };
    match result {
        Ok(n) => out.bytes_read = n,
        Err((e, partial, n)) => {
            out.bytes_read = n;
            out.object_failure = Some(broke(
                key,
                &mut lines.line_no,
                &mut lines.quarantined,
                &e,
                &partial,
                n,
                data.len() as u64,
            ));
        }
    }
    let bytes = out.bytes_read;
    lines.finish_into(&mut out, bytes);
    Some(out)
}

/// Stored bytes past which an object is read in parts ([`cut_in_parts`]) rather than whole.
pub const PARTS_FROM_BYTES: u64 = 8 << 20;

/// A part ends after the line that brings its text to this many bytes, or its lines to
/// [`PART_LINES`].
const PART_BYTES: usize = 1 << 20;
const PART_LINES: usize = 16 * 1024;

/// Whole lines of an object read in parts, copied out of the decompressed stream.
pub(crate) struct Part {
    /// Lines of the object before this part's.
    first: u64,
    text: Vec<u8>,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
    /// The lines too long to keep (their index among the part's lines, length and head); they
    /// have no text.
    too_long: Vec<(usize, usize, Vec<u8>)>,
}

/// Buffers of parts that were validated, for the parts cut next: a part is cut on one thread
/// and validated on another, and its buffers, freed there, were otherwise kept by the
/// allocator for the thread that made them (hundreds of MiB over a backfill of such objects).
static SPARE: std::sync::Mutex<Vec<(Vec<u8>, Vec<usize>)>> = std::sync::Mutex::new(Vec::new());

/// Spare buffers kept at most: about what the parts of two objects in flight use.
const SPARE_MAX: usize = 16;

impl Part {
    fn starting_at(first: u64) -> Self {
        let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (text, ends) = spare.unwrap_or_else(|| {
            (
                Vec::with_capacity(PART_BYTES + MAX_RAW_LINE_BYTES),
                Vec::new(),
            )
        });
        Self {
            first,
            text,
            ends,
            too_long: Vec::new(),
        }
    }

    fn add(&mut self, piece: Piece<'_>) {
        match piece {
            Piece::TooLong(len, head) => self.too_long.push((self.ends.len(), len, head.to_vec())),
            Piece::Line(line) => self.text.extend_from_slice(line),
        }
        self.ends.push(self.text.len());
    }

    fn is_full(&self) -> bool {
        self.text.len() >= PART_BYTES || self.ends.len() >= PART_LINES
    }

    fn next_first(&self) -> u64 {
        self.first + self.ends.len() as u64
    }

    /// Its lines validated as [`read_object`] would: rows, quarantine records and counts, the
    /// `stored` bytes it stands for.
    pub(crate) fn read(&self, key: &str, partition: &PartitionKey, stored: u64) -> ObjectOutcome {
        let mut lines = Lines::new(key, partition, self.text.len() as u64, self.first);
        let mut too_long = self.too_long.iter().peekable();
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            match too_long.next_if(|t| t.0 == i) {
                Some((_, len, head)) => lines.take(Piece::TooLong(*len, head)),
                None => lines.take(Piece::Line(&self.text[start..end])),
            }
            start = end;
        }
        let mut out = ObjectOutcome::default();
        lines.finish_into(&mut out, self.text.len() as u64);
        // The object's decompressed bytes (newlines too) are said by its end.
        ObjectOutcome { stored, ..out }
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let (mut text, mut ends) = (
            std::mem::take(&mut self.text),
            std::mem::take(&mut self.ends),
        );
        if text.capacity() < PART_BYTES {
            return;
        }
        text.clear();
        ends.clear();
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_MAX {
            spare.push((text, ends));
        }
    }
}

/// The end of an object read in parts: how it ended, after how many lines.
pub(crate) struct End {
    /// Lines before the end.
    lines: u64,
    /// Stored bytes no part stood for, and the object's.
    stored_left: u64,
    stored: u64,
    /// Its decompressed bytes, or where and how its stream broke.
    result: Split,
}

impl End {
    /// The last outcome of the object: its decompressed bytes, and its failure if it has one
    /// (the line cut off at a break is quarantined with it).
    pub(crate) fn outcome(self, key: &str) -> ObjectOutcome {
        let mut out = match self.result {
            Ok(n) => ObjectOutcome {
                bytes_read: n,
                ..ObjectOutcome::default()
            },
            Err((e, partial, n)) => {
                let mut out = ObjectOutcome {
                    bytes_read: n,
                    ..ObjectOutcome::default()
                };
                let mut line_no = self.lines;
                out.object_failure = Some(broke(
                    key,
                    &mut line_no,
                    &mut out.quarantined,
                    &e,
                    &partial,
                    n,
                    self.stored,
                ));
                out.lines = line_no - self.lines;
                out
            }
        };
        out.stored = self.stored_left;
        out
    }
}

/// What cutting a large object into parts gives, in order: its parts, then its end; or, for an
/// object not read at all, its outcome alone.
pub(crate) enum Cut {
    /// Lines to validate ([`Part::read`]), and the stored bytes they stand for.
    Part(Part, u64),
    End(End),
    Refused(ObjectOutcome),
}

/// Cuts an object too large to be held whole (see [`PARTS_FROM_BYTES`]), read from `reader`
/// (its `stored` bytes as stored), into parts of whole lines of about a MiB, handed to `hand` as
/// they are cut, then its end: whoever validates the parts ([`Part::read`]) holds the rows of
/// the parts it is given, not of the object, and can validate several side by side. The parts'
/// outcomes and the end's give the lines, rows and records [`read_object`] gives.
pub(crate) fn cut_in_parts(
    key: &str,
    stored: u64,
    mut reader: impl Read,
    mut hand: impl FnMut(Cut),
) {
    // The magic bytes say whether it is gzip (an error here is met again below).
    let mut head = [0u8; MAGIC_BYTES];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let is_gzip = head[..got].starts_with(&[0x1f, 0x8b]);
    if let Some(refused) = refused(key, &head[..got], is_gzip, stored) {
        return hand(Cut::Refused(refused));
    }
    // The stored bytes read so far: each part stands for those read since the one before.
    let taken = std::cell::Cell::new(0u64);
    let mut handed = 0u64;
    let mut share = || {
        let now = taken.get().min(stored);
        let share = now - handed.min(now);
        handed += share;
        share
    };
    let mut part = Part::starting_at(0);
    let mut on_piece = |piece: Piece<'_>| {
        part.add(piece);
        if part.is_full() {
            let next = Part::starting_at(part.next_first());
            hand(Cut::Part(std::mem::replace(&mut part, next), share()));
        }
    };
    let counted = Counted {
        inner: (&head[..got]).chain(reader),
        taken: &taken,
    };
    let result = if is_gzip {
        let buffered = std::io::BufReader::with_capacity(READ, counted);
        split_lines(
            MultiGzDecoder::new(buffered),
            MAX_RAW_LINE_BYTES,
            &mut on_piece,
        )
    } else {
        split_lines(counted, MAX_RAW_LINE_BYTES, &mut on_piece)
    };
    let lines = part.next_first();
    if !part.ends.is_empty() {
        hand(Cut::Part(part, share()));
    }
    hand(Cut::End(End {
        lines,
        stored_left: stored - handed.min(stored),
        stored,
        result,
    }));
}

/// [`cut_in_parts`] with each part validated as it is cut, on this thread: the outcomes of all
/// but the last handed to `hand`, the last returned. What [`read_object`] gives, summed over
/// the parts, holding one part's rows at a time.
pub(crate) fn read_in_parts(
    key: &str,
    stored: u64,
    reader: impl Read,
    partition: &PartitionKey,
    mut hand: impl FnMut(ObjectOutcome),
) -> ObjectOutcome {
    let mut last = None;
    cut_in_parts(key, stored, reader, |cut| match cut {
        Cut::Part(part, stored) => hand(part.read(key, partition, stored)),
        Cut::End(end) => last = Some(end.outcome(key)),
        Cut::Refused(refused) => last = Some(refused),
    });
    last.expect("an object's cutting ends with its end")
}

/// A reader that counts the bytes it gives.
struct Counted<'a, R> {
    inner: R,
    taken: &'a std::cell::Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.set(self.taken.get() + n as u64);
        Ok(n)
    }
}

/// An object's pieces (from line `first + 1` on) taken in order: valid lines into Arrow builders,
/// the others into quarantine records.
struct Lines<'a> {
    key: &'a str,
    partition: &'a PartitionKey,
    builders: Builders,
    /// The line before the first, and the last line taken.
    first: u64,
    line_no: u64,
    quarantined: Vec<QuarantineRecord>,
}

impl<'a> Lines<'a> {
    /// For about `bytes` decompressed bytes of lines, the first of them line `first + 1`.
    fn new(key: &'a str, partition: &'a PartitionKey, bytes: u64, first: u64) -> Self {
        Self {
            key,
            partition,
            builders: Builders::with_room(SHAPE.get().room(bytes)),
            first,
            line_no: first,
            quarantined: Vec::new(),
        }
    }

    fn take(&mut self, piece: Piece<'_>) {
        self.line_no += 1;
        let (r, raw, raw_bytes) = match piece {
            Piece::Line(line) => match parse_raw_line(line, self.partition) {
                Ok(event) => {
                    self.builders.push(&event);
                    return;
                }
                Err(r) => (r, raw_text(trim_line(line)), line.len()),
            },
            Piece::TooLong(len, head) => (
                Rejection::new(
                    Reason::LineTooLarge,
                    format!("line is {len} bytes, the limit is {MAX_RAW_LINE_BYTES}"),
                ),
                raw_text(head),
                len,
            ),
        };
        self.quarantined.push(QuarantineRecord {
            source: self.key.to_owned(),
            line: Some(self.line_no),
            reason: r.reason,
            detail: r.detail,
            raw: Some(raw),
            raw_bytes: Some(raw_bytes),
        });
    }

    /// Hands the lines taken to `out`: their count, quarantine records and rows (`bytes` the
    /// decompressed bytes they came from).
    fn finish_into(self, out: &mut ObjectOutcome, bytes: u64) {
        out.lines = self.line_no - self.first;
        out.quarantined = self.quarantined;
        self.builders.record(bytes);
        out.chunk = self.builders.finish();
    }
}

/// The stream of `key` broke (`e`) after `n` decompressed bytes and `line_no` lines, `partial`
/// the unfinished line at the break: that line is quarantined, so it is accounted for, and the
/// object's failure is returned (`stored` its bytes as stored).
fn broke(
    key: &str,
    line_no: &mut u64,
    quarantined: &mut Vec<QuarantineRecord>,
    e: &std::io::Error,
    partial: &[u8],
    n: u64,
    stored: u64,
) -> QuarantineRecord {
    if !partial.is_empty() {
        *line_no += 1;
        quarantined.push(QuarantineRecord {
            source: key.to_owned(),
            line: Some(*line_no),
            reason: Reason::CorruptGzip,
            detail: "line cut off where the gzip stream broke".to_owned(),
            raw: Some(raw_text(partial)),
            raw_bytes: Some(partial.len()),
        });
    }
    QuarantineRecord {
        source: key.to_owned(),
        line: None,
        reason: Reason::CorruptGzip,
        detail: format!(
            "gzip stream broke after {n} decompressed bytes and {line_no} lines ({e}); the lines before the break were kept"
        ),
        raw: None,
        raw_bytes: Some(stored as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint as it was first defined, its pieces fed one by one to a streaming hash:
    /// the values kept in committed id indexes were made this way.
    fn streamed_fingerprint(e: &ValidEvent<'_>) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        fingerprint_bytes(e, |piece| h.update(piece));
        h.digest()
    }

    #[test]
    fn fingerprints_keep_their_committed_values() {
        let partition = checkout();
        let long = "x".repeat(700);
        let lines = [
            r#"{"event_id":"e1","event_type":"page_view","event_time":"2026-11-20T13:45:12.345Z","received_at":"2026-11-20T13:45:13Z"}"#.to_owned(),
            r#"{"event_id":"e2","event_type":"buy","event_time":"2026-11-20T13:45:12Z","received_at":"2026-11-20T13:45:13Z","user_id":"u-\u00e9","session_id":"s","source":"web","properties":{"a":[1,{"b":null}]},"context":{"ip":"203.0.113.7","user_agent":"UA","locale":"fr-FR","app_version":"3.2.1"}}"#.to_owned(),
            format!(r#"{{"event_id":"e3","event_type":"t","event_time":"2026-11-20T00:00:00Z","received_at":"2026-11-20T00:00:01Z","properties":{{"p":"{long}"}},"context":{{"user_agent":"{long}"}}}}"#),
        ];
        for line in &lines {
            let e = parse_raw_line(line.as_bytes(), &partition).unwrap();
            assert_eq!(fingerprint(&e), streamed_fingerprint(&e), "{line}");
        }
        // And values pinned once, so that a change of the hash or of the fields' order is seen
        // too.
        let e = parse_raw_line(lines[0].as_bytes(), &partition).unwrap();
        assert_eq!(fingerprint(&e), 1_114_027_486_002_843_921);
        let e = parse_raw_line(lines[1].as_bytes(), &partition).unwrap();
        assert_eq!(fingerprint(&e), 15_204_721_468_933_107_210);
    }

    #[test]
    fn the_size_hint_reads_the_trailer_and_does_not_trust_it() {
        let text: String = (0..1000u64)
            .map(|i| format!("{{\"a\":{}}}\n", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let mut data = gzip(text.as_bytes());
        assert_eq!(decompressed_hint(&data, true), text.len() as u64);
        // A trailer claiming 4 GiB is held to 32 bytes per stored byte.
        let n = data.len();
        data[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decompressed_hint(&data, true), 32 * n as u64);
        assert_eq!(decompressed_hint(&[0x1f, 0x8b, 8], true), 0);
        assert_eq!(decompressed_hint(b"{}\n", false), 3);
        // However large the object, no more than MAX_ROOM_HINT.
        let big = vec![b'x'; 2 * MAX_ROOM_HINT as usize];
        assert_eq!(decompressed_hint(&big, false), MAX_ROOM_HINT);
        // Nothing read yet, or nothing to go by: no room is guessed.
        assert!(Shape::default().room(1000).is_none());
        let seen = Shape {
            bytes: 1000,
            rows: 10,
            strings: [100; STRINGS],
        };
        assert!(seen.room(0).is_none());
        let (rows, bytes) = seen.room(2000).unwrap();
        assert!((22..=22 + 64).contains(&rows), "{rows}");
        assert!(
            bytes.iter().all(|b| (220..=220 + 64).contains(b)),
            "{bytes:?}"
        );
    }

    fn checkout() -> PartitionKey {
        PartitionKey {
            team: eventlake_contract::TeamName::new("checkout").unwrap(),
            dt: eventlake_contract::PartitionDate::parse("2026-11-20").unwrap(),
        }
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    /// `a` and `b` say the same: rows, counts and records.
    fn assert_same(a: ObjectOutcome, b: &ObjectOutcome, what: &str) {
        assert_eq!(said(&a), said(b), "{what}");
        assert_eq!(
            a.chunk.map(|c| c.batch),
            b.chunk.as_ref().map(|c| c.batch.clone()),
            "{what}"
        );
    }

    /// What an outcome says, as text: its rows' number and fingerprints, its counts and
    /// records. Whether its rows are the same is checked on the batches themselves.
    fn said(o: &ObjectOutcome) -> String {
        let rows = o
            .chunk
            .as_ref()
            .map(|c| (c.batch.num_rows(), c.fingerprints.clone()));
        format!(
            "{rows:?}\nlines {} bytes {}\n{}\n{}",
            o.lines,
            o.bytes_read,
            serde_json::to_string(&o.quarantined).unwrap(),
            serde_json::to_string(&o.object_failure).unwrap()
        )
    }

    #[test]
    fn an_object_read_whole_gives_what_a_streamed_one_does() {
        let partition = checkout();
        let line = |i: usize, pad: usize| {
            format!(
                "{{\"event_id\":\"e{i}\",\"event_type\":\"t{}\",\"event_time\":\"2026-11-20T10:00:00Z\",\"received_at\":\"2026-11-20T10:00:01Z\",\"properties\":{{\"p\":\"{}\"}}}}",
                i % 3,
                "x".repeat(pad)
            )
        };
        let lines: String = (0..300).map(|i| line(i, i % 40) + "\n").collect();
        let long = line(1000, MAX_RAW_LINE_BYTES);
        let texts: Vec<(&str, String)> = vec![
            ("plain lines", lines.clone()),
            ("no final newline", lines.trim_end().to_owned()),
            (
                "empty lines, a BOM, CRLF, bad lines",
                format!(
                    "\n\n\u{feff}{}\r\n{{}}\nnot json\n\n{}",
                    line(1, 3),
                    line(2, 3)
                ),
            ),
            (
                "a line over the limit",
                format!("{lines}{long}\n{}\n", line(2000, 1)),
            ),
            ("a last line over the limit", format!("{lines}{long}")),
            (
                "a line just at the limit",
                format!("{}\n", line(7, MAX_RAW_LINE_BYTES - line(7, 0).len())),
            ),
            ("nothing", String::new()),
        ];
        for (what, text) in &texts {
            let gz = gzip(text.as_bytes());
            let mut buf = Vec::new();
            assert!(
                crate::gunzip::gunzip_whole(&gz, &mut buf).is_some(),
                "{what}"
            );
            let streamed = read_lines("raw/a.ndjson.gz", &gz, &partition, true, None).unwrap();
            assert_same(
                read_object("raw/a.ndjson.gz", &gz, &partition),
                &streamed,
                what,
            );
            let plain =
                read_lines("raw/a.ndjson", text.as_bytes(), &partition, false, None).unwrap();
            assert_eq!(
                said(&read_object("raw/a.ndjson", text.as_bytes(), &partition)),
                said(&plain),
                "{what}"
            );
            assert_eq!(
                said(&plain).replace(".ndjson", ""),
                said(&streamed).replace(".ndjson.gz", ""),
                "{what}"
            );
        }
        // Objects the whole path leaves to the stream: two members, a cut-off one.
        let two = [gzip(lines.as_bytes()), gzip(lines.as_bytes())].concat();
        let both = read_object("raw/b.ndjson.gz", &two, &partition);
        assert_eq!(both.lines, 600);
        let cut = &two[..two.len() / 3];
        let broken = read_object("raw/c.ndjson.gz", cut, &partition);
        assert!(broken.object_failure.is_some());
        assert!(broken.lines > 0, "the lines before the break are kept");
    }

    /// Reads `data` in parts as a large object is read: the parts summed into one outcome, once
    /// their stored bytes are checked to add up.
    fn in_parts(key: &str, data: &[u8]) -> ObjectOutcome {
        let mut parts = Vec::new();
        let last = read_in_parts(key, data.len() as u64, data, &checkout(), |p| parts.push(p));
        parts.push(last);
        let stored: u64 = parts.iter().map(|p| p.stored).sum();
        assert_eq!(
            stored,
            data.len() as u64,
            "{key}: every stored byte is counted once"
        );
        let chunks: Vec<Chunk> = parts.iter_mut().filter_map(|p| p.chunk.take()).collect();
        let mut whole = ObjectOutcome {
            lines: parts.iter().map(|p| p.lines).sum(),
            bytes_read: parts.iter().map(|p| p.bytes_read).sum(),
            ..ObjectOutcome::default()
        };
        for p in parts {
            whole.quarantined.extend(p.quarantined);
            whole.object_failure = whole.object_failure.or(p.object_failure);
        }
        if !chunks.is_empty() {
            let batches: Vec<&RecordBatch> = chunks.iter().map(|c| &c.batch).collect();
            whole.chunk = Some(Chunk {
                batch: arrow::compute::concat_batches(&file_schema(), batches).unwrap(),
                fingerprints: chunks.iter().flat_map(|c| c.fingerprints.clone()).collect(),
            });
        }
        whole
    }

    #[test]
    fn an_object_read_in_parts_gives_what_it_gives_whole() {
        let partition = checkout();
        let line = |i: usize| {
            format!(
                "{{\"event_id\":\"e{i}\",\"event_type\":\"t{}\",\"event_time\":\"2026-11-20T10:00:00Z\",\"received_at\":\"2026-11-20T10:00:01Z\",\"properties\":{{\"p\":\"{}\"}}}}",
                i % 7,
                "x".repeat(i % 50)
            )
        };
        // Enough lines for several parts and more than one round of them, with every kind of
        // line among them, at places that fall on either side of a part's end.
        let mut text = String::new();
        for i in 0..70_000 {
            match i % 9_973 {
                1 => text.push_str("not json"),
                2 => text.push_str(&"y".repeat(MAX_RAW_LINE_BYTES + 5)),
                3 => {}
                4 => text.push_str(&(line(i) + "\r")),
                _ => text.push_str(&line(i)),
            }
            text.push('\n');
        }
        text.push_str(&line(99));
        let gz = gzip(text.as_bytes());
        let two = [gzip(text.as_bytes()), gzip(b"\n{}\n")].concat();
        let zstd_like = [&[0x28, 0xb5, 0x2f, 0xfd][..], text.as_bytes()].concat();
        let objects: Vec<(&str, &[u8])> = vec![
            ("raw/a.ndjson.gz", &gz),
            ("raw/a.ndjson", text.as_bytes()),
            ("raw/two.ndjson.gz", &two),
            ("raw/cut.ndjson.gz", &gz[..gz.len() * 2 / 3]),
            ("raw/not-gzip.ndjson.gz", text.as_bytes()),
            ("raw/empty.ndjson", b""),
            ("raw/a.ndjson.zst", &zstd_like),
            ("raw/bzh.ndjson", b"BZh91AY&SY but text\n"),
        ];
        for (key, data) in objects {
            let whole = read_object(key, data, &partition);
            let parts = in_parts(key, data);
            assert_same(parts, &whole, key);
        }
        assert!(read_object("raw/a.ndjson.gz", &gz, &partition).lines > 70_000);
    }

    #[test]
    fn objects_compressed_otherwise_are_refused_whole_and_text_is_not() {
        let partition = checkout();
        let body = b"{\"event_id\":\"e\"}\n";
        for (format, magic) in [
            ("zstd", &[0x28, 0xb5, 0x2f, 0xfd][..]),
            ("xz", &[0xfd, b'7', b'z', b'X', b'Z', 0x00][..]),
            ("zip", &b"PK\x03\x04"[..]),
            ("LZ4", &[0x04, 0x22, 0x4d, 0x18][..]),
            ("Snappy", &b"\xff\x06\x00\x00sNaPpY"[..]),
            ("bzip2", &b"BZh91AY&SY"[..]),
        ] {
            let data = [magic, body].concat();
            let o = read_object("raw/x.ndjson", &data, &partition);
            let failure = o.object_failure.as_ref().expect(format);
            assert_eq!(failure.reason, Reason::UnsupportedCompression, "{format}");
            assert!(
                failure
                    .detail
                    .starts_with(&format!("object is {format}-compressed")),
                "{}",
                failure.detail
            );
            assert_eq!(
                (o.lines, failure.raw_bytes),
                (0, Some(data.len())),
                "{format}"
            );
            assert!(o.chunk.is_none() && o.quarantined.is_empty(), "{format}");
        }
        // Text that starts as bzip2 does is text: its line is read.
        for text in [&b"BZh no block\n"[..], b"BZh9 1AY&SY\n", b"PK"] {
            let o = read_object("raw/t.ndjson", text, &partition);
            assert!(o.object_failure.is_none(), "{text:?}");
            assert_eq!(o.lines, 1, "{text:?}");
        }
    }

    #[test]
    fn a_damaged_object_gives_what_the_stream_gives() {
        use rand::{Rng, SeedableRng};
        let partition = checkout();
        let text: String = (0..200)
            .map(|i| format!("{{\"event_id\":\"e{i}\",\"event_type\":\"t\",\"event_time\":\"2026-11-20T10:00:00Z\",\"received_at\":\"2026-11-20T10:00:01Z\"}}\n"))
            .collect();
        let clean = gzip(text.as_bytes());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let mut whole = 0;
        for round in 0..1500 {
            let mut object = clean.clone();
            match round % 4 {
                // Bytes flipped anywhere: header, stream or trailer.
                0 | 1 => {
                    for _ in 0..rng.random_range(1..4) {
                        let at = rng.random_range(0..object.len());
                        object[at] ^= rng.random_range(1..=255u8);
                    }
                }
                // Cut off.
                2 => object.truncate(rng.random_range(0..object.len())),
                // Bytes after the member.
                _ => object.extend((0..rng.random_range(1..40)).map(|_| rng.random::<u8>())),
            }
            if crate::gunzip::gunzip_whole(&object, &mut Vec::new()).is_some() {
                whole += 1;
            }
            let read = read_object("raw/d.ndjson.gz", &object, &partition);
            let is_gzip = object.starts_with(&[0x1f, 0x8b]);
            if !is_gzip {
                continue;
            }
            let streamed = read_lines("raw/d.ndjson.gz", &object, &partition, true, None).unwrap();
            assert_same(read, &streamed, &format!("round {round}"));
        }
        // Some damage leaves a member whole (a flipped byte of the header's time, say).
        assert!(whole > 0);
    }

    /// The same rows whatever room the builders start with.
    #[test]
    fn rows_do_not_depend_on_the_room_guessed() {
        let partition = checkout();
        let text: String = (0..500)
            .map(|i| format!("{{\"event_id\":\"e{i}\",\"event_type\":\"t{}\",\"event_time\":\"2026-11-20T10:00:00Z\",\"received_at\":\"2026-11-20T10:00:01Z\",\"properties\":{{\"n\":\"{}\"}}}}\n", i % 3, "x".repeat(i % 50)))
            .collect();
        let fresh = std::thread::spawn({
            let (text, partition) = (text.clone(), partition.clone());
            move || read_object("raw/a.ndjson", text.as_bytes(), &partition)
        })
        .join()
        .unwrap();
        // On this thread, after objects of other shapes: lines that were no rows (too little
        // room), and rows far shorter, without properties (too many rows, too few bytes).
        let short = (0..3)
            .map(|i| format!("{{\"event_id\":\"s{i}\",\"event_type\":\"t\",\"event_time\":\"2026-11-20T10:00:00Z\",\"received_at\":\"2026-11-20T10:00:01Z\"}}\n"))
            .collect::<String>();
        for small in ["{}\n", &short] {
            SHAPE.set(Shape::default());
            let rows = read_object("raw/s.ndjson", small.as_bytes(), &partition)
                .chunk
                .map_or(0, |c| c.batch.num_rows());
            assert_eq!(rows, if small == short { 3 } else { 0 });
            let again = read_object("raw/a.ndjson", text.as_bytes(), &partition);
            assert_eq!(
                again.chunk.unwrap().batch,
                fresh.chunk.as_ref().unwrap().batch
            );
        }
    }

    /// A reader that hands over at most `step` bytes a call, then fails after `fail_at` bytes.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        fail_at: Option<usize>,
        pos: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(std::io::Error::other("broken"));
            }
            let end = (self.pos + self.step.min(out.len())).min(self.data.len());
            let end = self.fail_at.map_or(end, |f| end.min(f));
            let n = end - self.pos;
            out[..n].copy_from_slice(&self.data[self.pos..end]);
            self.pos = end;
            Ok(n)
        }
    }

    /// The pieces of `data` read `step` bytes at a time: lines as text, long ones as `<len>` (a
    /// long line that fits the read buffer comes whole, and the contract rejects it by length;
    /// one that does not is skipped: both end as `line_too_large`).
    fn pieces(data: &[u8], step: usize, max: usize, fail_at: Option<usize>) -> (Vec<String>, bool) {
        let mut got = Vec::new();
        let r = split_lines(
            Trickle {
                data,
                step,
                fail_at,
                pos: 0,
            },
            max,
            |p| {
                got.push(match p {
                    Piece::Line(l) if l.len() > max => format!("<{}>", l.len()),
                    Piece::Line(l) => String::from_utf8_lossy(l).into_owned(),
                    Piece::TooLong(n, _) => format!("<{n}>"),
                })
            },
        );
        (got, r.is_ok())
    }

    #[test]
    fn lines_come_whole_whatever_the_read_size() {
        let data = b"a\r\nbb\n\nccc";
        for step in [1, 2, 3, 7, 64] {
            let (got, ok) = pieces(data, step, 16, None);
            assert!(ok);
            assert_eq!(got, vec!["a\r", "bb", "", "ccc"], "step {step}");
        }
        assert_eq!(pieces(b"", 4, 16, None).0, Vec::<String>::new());
        assert_eq!(pieces(b"x\n", 4, 16, None).0, vec!["x"]);
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_to_its_end_and_counted() {
        let long = "y".repeat(1000);
        let data = format!("ok\n{long}\nafter\n{long}");
        for step in [1, 5, 100, 4096] {
            let (got, _) = pieces(data.as_bytes(), step, 64, None);
            assert_eq!(got, vec!["ok", "<1000>", "after", "<1000>"], "step {step}");
        }
    }

    #[test]
    fn a_read_error_returns_the_unfinished_line() {
        let mut lines = Vec::new();
        let r = split_lines(
            Trickle {
                data: b"one\ntwo\nthr",
                step: 3,
                fail_at: Some(11),
                pos: 0,
            },
            64,
            |p| {
                if let Piece::Line(l) = p {
                    lines.push(l.to_vec())
                }
            },
        );
        let (_, partial, total) = r.unwrap_err();
        assert_eq!(lines, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(partial, b"thr".to_vec());
        assert_eq!(total, 11);
    }
}

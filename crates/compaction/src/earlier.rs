//! Cross-partition de-duplication: the event ids of a team's earlier partitions.
//!
//! A row whose `event_id` has a valid line in an earlier partition of the same team, received at
//! most the de-duplication window before it, is a duplicate of that line's row: a client retry
//! that crossed midnight. What counts is a pure function of raw data (every valid line of the
//! earlier partitions, whatever became of it there), so a partition's rows do not depend on
//! whether, or in which order, its neighbours were compacted.
//!
//! An earlier partition's ids come from the first of:
//! 1. the same run, which publishes each partition's ids as soon as it has read them
//!    ([`IdBoard`]), so a backfill reads every raw object once;
//! 2. its committed version's id index (`_ids.parquet`, `event_id` and the latest `received_at`
//!    of every valid line), when that version was built from the raw objects there are now;
//! 3. its raw objects, read and validated as its own compaction would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch, StringBuilder, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use eventlake_catalog::{Catalog, Lake};
use eventlake_contract::PartitionKey;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::compact::Manifest;
use crate::error::{Error, Result};
use crate::plan::{Earlier, RawObject};
use crate::read::{Chunk, ObjectOutcome, read_object};

/// The ids of a partition's valid lines: one row per distinct `event_id`, with the latest
/// `received_at` among its lines (the id index's schema, [`index_schema`]).
pub type Ids = RecordBatch;

/// Looks up an id's latest `received_at` in the earlier partitions.
pub type Lookup<'a> = HashMap<&'a str, i64>;

/// The id index of a committed version, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdIndex {
    /// Key of the index file, relative to the lake root.
    pub key: String,
    /// Fingerprint of the raw objects it was built from.
    pub raw_fingerprint: String,
    /// Distinct event ids in it.
    pub ids: u64,
}

/// The file name of a version's id index (hidden from readers of the table by its `_`).
pub const ID_INDEX_FILE: &str = "_ids.parquet";

/// The ids of `rows` (`event_id`, latest `received_at`), each id once.
pub fn ids_batch<'a>(rows: impl ExactSizeIterator<Item = (&'a str, i64)>) -> Result<Ids> {
    let mut ids = StringBuilder::with_capacity(rows.len(), rows.len() * 36);
    let mut received = Vec::with_capacity(rows.len());
    for (id, t) in rows {
        ids.append_value(id);
        received.push(t);
    }
    Ok(RecordBatch::try_new(
        index_schema(),
        vec![
            Arc::new(ids.finish()),
            Arc::new(TimestampMicrosecondArray::from(received).with_timezone("UTC")),
        ],
    )?)
}

/// The ids of the valid lines of `chunks` (an earlier partition read from its raw objects).
pub fn ids_of(chunks: &[Chunk]) -> Result<Ids> {
    let mut ids = Lookup::with_capacity(chunks.iter().map(|c| c.batch.num_rows()).sum());
    for c in chunks {
        let id = c.batch.column(0).as_string::<i32>();
        let received = c.batch.column(3).as_primitive::<TimestampMicrosecondType>();
        for r in 0..id.len() {
            let t = received.value(r);
            ids.entry(id.value(r))
                .and_modify(|max| *max = (*max).max(t))
                .or_insert(t);
        }
    }
    ids_batch(ids.into_iter())
}

/// One lookup over the ids of several earlier partitions; an id in more than one keeps its
/// latest `received_at`.
pub fn lookup(earlier: &[Arc<Ids>]) -> Lookup<'_> {
    let mut all = Lookup::with_capacity(earlier.iter().map(|b| b.num_rows()).sum());
    for batch in earlier {
        let id = batch.column(0).as_string::<i32>();
        let received = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        for r in 0..batch.num_rows() {
            let t = received.value(r);
            all.entry(id.value(r))
                .and_modify(|max| *max = (*max).max(t))
                .or_insert(t);
        }
    }
    all
}

/// Whether a row received at `received_at` duplicates an earlier line of its id.
pub fn is_earlier_duplicate(
    earlier: &Lookup,
    id: &str,
    received_at: i64,
    window: Duration,
) -> bool {
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    earlier
        .get(id)
        .is_some_and(|&t| t <= received_at && received_at.saturating_sub(t) <= window)
}

fn index_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

/// The id index file: [`Ids`] as Parquet. Ids are near-random, so no dictionary and no
/// statistics; a fast ZSTD level keeps the file small without slowing the commit.
pub fn encode_index(ids: &Ids) -> Result<Vec<u8>> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(
            parquet::basic::ZstdLevel::try_new(1)?,
        ))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, index_schema(), Some(props))?;
    w.write(ids)?;
    w.close()?;
    Ok(out)
}

/// Reads an id index file.
pub fn decode_index(data: bytes::Bytes) -> Result<Ids> {
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data)?.build()?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow::compute::concat_batches(&index_schema(), &batches)?)
}

/// The partitions of one run publish their ids here as soon as they have read their raw
/// objects; later days of the same team wait for them instead of reading those objects again.
#[derive(Debug, Clone, Default)]
pub struct IdBoard {
    slots: Arc<Mutex<HashMap<PartitionKey, Slot>>>,
}

#[derive(Debug)]
struct Slot {
    sender: Option<watch::Sender<Option<Arc<Ids>>>>,
    receiver: watch::Receiver<Option<Arc<Ids>>>,
}

impl IdBoard {
    /// A board on which each of `partitions` will publish its ids (or close its slot).
    pub fn expecting<'a>(partitions: impl IntoIterator<Item = &'a PartitionKey>) -> Self {
        let board = Self::default();
        {
            let mut slots = board.slots.lock().expect("board lock");
            for p in partitions {
                let (sender, receiver) = watch::channel(None);
                slots.insert(
                    p.clone(),
                    Slot {
                        sender: Some(sender),
                        receiver,
                    },
                );
            }
        }
        board
    }

    /// `partition` has read its raw objects: these are its ids.
    pub fn publish(&self, partition: &PartitionKey, ids: Arc<Ids>) {
        if let Some(slot) = self.slots.lock().expect("board lock").get_mut(partition)
            && let Some(sender) = slot.sender.take()
        {
            sender.send_replace(Some(ids));
        }
    }

    /// `partition` is done (or failed): whoever still waits for it stops waiting.
    pub fn close(&self, partition: &PartitionKey) {
        if let Some(slot) = self.slots.lock().expect("board lock").get_mut(partition) {
            slot.sender.take();
        }
    }

    /// The ids `partition` published in this run, waiting for them if it is still reading;
    /// `None` when it is not part of the run or ended without publishing.
    async fn wait(&self, partition: &PartitionKey) -> Option<Arc<Ids>> {
        let mut receiver = self
            .slots
            .lock()
            .expect("board lock")
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
    futures::stream::iter(objects.iter().cloned())
        .map(|o| {
            let lake = lake.clone();
            let partition = partition.clone();
            tokio::spawn(async move {
                let data = lake.get(&o.key).await?;
                Ok::<_, Error>(read_object(&o.key, &data, &partition))
            })
        })
        .buffered(concurrency.max(1))
        .map(|joined| joined.map_err(Error::from).and_then(|r| r))
        .try_collect()
        .await
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
    match manifest.ids {
        Some(index) if index.raw_fingerprint == earlier.raw_fingerprint => {
            Ok(Some(decode_index(lake.get(&index.key).await?)?))
        }
        _ => Ok(None),
    }
}

/// The ids of every earlier partition.
pub(crate) async fn earlier_ids(
    lake: &Lake,
    catalog: &dyn Catalog,
    earlier: &[Earlier],
    board: &IdBoard,
    read_concurrency: usize,
) -> Result<Vec<Arc<Ids>>> {
    let mut all = Vec::with_capacity(earlier.len());
    for e in earlier {
        if let Some(ids) = board.wait(&e.partition).await {
            all.push(ids);
        } else if let Some(ids) = from_committed(lake, catalog, e).await? {
            all.push(Arc::new(ids));
        } else {
            tracing::debug!(partition = %e.partition, "reading an earlier partition's raw objects for its ids");
            let outcomes = read_objects(lake, &e.partition, &e.objects, read_concurrency).await?;
            let chunks: Vec<Chunk> = outcomes.into_iter().filter_map(|o| o.chunk).collect();
            all.push(Arc::new(ids_of(&chunks)?));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rows: &[(&str, i64)]) -> Arc<Ids> {
        Arc::new(ids_batch(rows.iter().copied()).unwrap())
    }

    #[test]
    fn the_window_is_inclusive_and_only_looks_back() {
        let hour = Duration::from_secs(3600);
        let earlier = [ids(&[("a", 1_000_000)])];
        let ids = lookup(&earlier);
        let h = 3_600_000_000;
        assert!(is_earlier_duplicate(&ids, "a", 1_000_000 + h, hour));
        assert!(!is_earlier_duplicate(&ids, "a", 1_000_001 + h, hour));
        assert!(!is_earlier_duplicate(&ids, "b", 1_000_001, hour));
        assert!(!is_earlier_duplicate(&ids, "a", 999_999, hour));
        assert!(!is_earlier_duplicate(
            &ids,
            "a",
            1_000_000 + h,
            Duration::ZERO
        ));
    }

    #[test]
    fn the_index_round_trips_and_lookups_keep_the_latest() {
        let b = ids(&[("b", 2), ("a", 5)]);
        let decoded = decode_index(encode_index(&b).unwrap().into()).unwrap();
        assert_eq!(&decoded, b.as_ref());
        let earlier = [ids(&[("a", 9)]), b];
        assert_eq!(lookup(&earlier), [("a", 9), ("b", 2)].into());
    }

    #[test]
    fn raw_lines_give_each_id_once_with_its_latest_time() {
        let partition = PartitionKey {
            team: eventlake_contract::TeamName::new("checkout").unwrap(),
            dt: eventlake_contract::PartitionDate::parse("2026-11-30").unwrap(),
        };
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
        let chunk = read_object("k", body.as_bytes(), &partition).chunk.unwrap();
        let got = ids_of(&[chunk]).unwrap();
        let got = lookup(std::slice::from_ref(&Arc::new(got)))
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<HashMap<_, _>>();
        let hour = 3_600_000_000;
        let midnight = 1_795_996_800_000_000;
        assert_eq!(
            got,
            [
                ("a".to_owned(), midnight + 3 * hour),
                ("b".to_owned(), midnight + 2 * hour)
            ]
            .into()
        );
    }

    #[tokio::test]
    async fn the_board_hands_over_ids_or_gives_up_when_closed() {
        let k = |d: &str| PartitionKey {
            team: eventlake_contract::TeamName::new("checkout").unwrap(),
            dt: eventlake_contract::PartitionDate::parse(d).unwrap(),
        };
        let board = IdBoard::expecting([&k("2026-11-24"), &k("2026-11-25")]);
        let waiting = {
            let board = board.clone();
            tokio::spawn(async move { board.wait(&k("2026-11-24")).await })
        };
        board.publish(&k("2026-11-24"), ids(&[("x", 1)]));
        assert_eq!(waiting.await.unwrap().unwrap().num_rows(), 1);
        board.close(&k("2026-11-25"));
        assert!(board.wait(&k("2026-11-25")).await.is_none());
        assert!(board.wait(&k("2026-11-23")).await.is_none());
    }
}

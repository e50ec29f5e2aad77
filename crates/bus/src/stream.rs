//! Reading the ledger's stream and handing each committed batch to the fan-out.
//!
//! On AWS a Lambda event source mapping reads the stream (bisecting a failing batch, partial
//! batch responses, bounded retries and record age, an S3 on-failure destination). On a laptop
//! and in tests a [`StreamPoller`] reads the same records with `GetRecords` and [`FanOut`]
//! handles them the same way: records in order, each retried a bounded number of times, and one
//! that still fails is kept with its reason (under `_bus/failed/` in the lake) instead of
//! blocking the records after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::json;

use crate::deliver::{Deliver, Notify};
use crate::fanout::{lines, messages};
use crate::outbox::{Committed, from_lambda_record, from_record};
use crate::{Error, Subscriptions};

/// One record of the ledger's stream, as the poller or the Lambda reads it.
#[derive(Debug)]
pub struct StreamItem {
    pub sequence_number: String,
    /// The committed batch it announces (none for a claim, an expiry, a dead-lettered batch).
    pub batch: Result<Option<Committed>, Error>,
}

impl StreamItem {
    /// A record read with `GetRecords`.
    pub fn from_sdk(record: &Record) -> Self {
        Self {
            sequence_number: record
                .dynamodb()
                .and_then(|d| d.sequence_number())
                .unwrap_or("unknown")
                .to_owned(),
            batch: from_record(record),
        }
    }

    /// A record of the event a Lambda on the stream receives.
    pub fn from_lambda(record: &aws_lambda_events::event::dynamodb::EventRecord) -> Self {
        Self {
            sequence_number: record
                .change
                .sequence_number
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            batch: from_lambda_record(record),
        }
    }
}

/// What to do with a record that still fails (retryably) after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenExhausted {
    /// Keep it under `_bus/failed/` and go on (the poller: nothing else would retry it).
    Keep,
    /// Stop there and report it, so the event source mapping retries from it (bisecting,
    /// bounded) and finally hands it to its on-failure destination.
    Report,
}

/// Delivers committed batches: reads each one's raw object and sends its events.
#[derive(Debug, Clone)]
pub struct FanOut {
    lake: eventlake_store::Location,
    subs: Arc<Subscriptions>,
    deliver: Arc<dyn Deliver>,
    notify: Option<Arc<dyn Notify>>,
    attempts: u32,
}

/// What became of a run of stream records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handled {
    /// Committed batches delivered.
    pub batches: usize,
    /// Messages sent (an event to each receiving team).
    pub messages: usize,
    /// Records that still failed after their retries, kept with their reason.
    pub kept: Vec<String>,
    /// With [`WhenExhausted::Report`]: the first record not handled, to be retried from.
    pub retry_from: Option<String>,
}

impl FanOut {
    pub fn new(
        lake: eventlake_store::Location,
        subs: Arc<Subscriptions>,
        deliver: Arc<dyn Deliver>,
    ) -> Self {
        Self {
            lake,
            subs,
            deliver,
            notify: None,
            attempts: 3,
        }
    }

    /// Also sends one notification per batch to each receiving team that wants one.
    pub fn with_notify(mut self, notify: Arc<dyn Notify>) -> Self {
        self.notify = Some(notify);
        self
    }

    /// The messages of one committed batch, from its raw object.
    async fn messages_of(&self, c: &Committed) -> Result<Vec<crate::fanout::Message>, Error> {
        let path = eventlake_store::key_path(&self.lake.root, &c.stored_at);
        let data = match self.lake.store.get(&path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::Poison {
                record: c.stored_at.clone(),
                reason: "the raw object the ledger names is not in the lake".into(),
            },
            e => Error::Lake {
                key: c.stored_at.clone(),
                source: e,
            },
        })?;
        let text = lines(&data, &c.stored_at)?;
        messages(c, &text, &self.subs)
    }

    /// One notification per receiving team of a delivered batch, for the teams that ask.
    async fn notify_batch(
        &self,
        c: &Committed,
        messages: &[crate::fanout::Message],
    ) -> Result<(), Error> {
        let Some(notify) = &self.notify else {
            return Ok(());
        };
        let mut per_team: std::collections::BTreeMap<&eventlake_contract::TeamName, usize> =
            Default::default();
        for m in messages {
            *per_team.entry(&m.to).or_default() += 1;
        }
        for (to, events) in per_team {
            if self.subs.notifies(to) {
                notify.notify(to, c, events).await?;
            }
        }
        Ok(())
    }

    /// Delivers one committed batch; the number of messages sent.
    pub async fn batch(&self, c: &Committed) -> Result<usize, Error> {
        let messages = self.messages_of(c).await?;
        self.deliver.deliver(&messages).await?;
        self.notify_batch(c, &messages).await?;
        Ok(messages.len())
    }

    /// Delivers the batches of several records in one go: their raw objects read at once, their
    /// messages sent together in record order (lanes per message group keep each user's order).
    /// `None` when any of it fails, for the record-by-record path to sort out (the repeats it
    /// sends are dropped by their deduplication ids).
    async fn all_at_once(&self, items: &[StreamItem]) -> Option<Handled> {
        use futures::StreamExt;
        let mut batches = Vec::new();
        for item in items {
            match &item.batch {
                Ok(Some(c)) => batches.push(c),
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        if batches.len() < 2 {
            return None;
        }
        let read: Vec<Result<Vec<crate::fanout::Message>, Error>> =
            futures::stream::iter(batches.iter().map(|c| self.messages_of(c)))
                .buffered(16)
                .collect()
                .await;
        let mut per_batch = Vec::with_capacity(read.len());
        for r in read {
            per_batch.push(r.ok()?);
        }
        let all: Vec<crate::fanout::Message> = per_batch.iter().flatten().cloned().collect();
        if let Err(e) = self.deliver.deliver(&all).await {
            tracing::warn!(error = %e, "delivery of several batches at once failed; going record by record");
            return None;
        }
        for (c, m) in batches.iter().zip(&per_batch) {
            if self.notify_batch(c, m).await.is_err() {
                return None;
            }
        }
        Some(Handled {
            batches: batches.len(),
            messages: all.len(),
            ..Handled::default()
        })
    }

    /// Handles stream records read with `GetRecords` in order, each retried up to a bound; one
    /// that still fails is kept under `_bus/failed/` with its reason, and the records after it
    /// go on.
    pub async fn records(&self, records: &[Record]) -> Result<Handled, Error> {
        let items: Vec<StreamItem> = records.iter().map(StreamItem::from_sdk).collect();
        self.handle(items, WhenExhausted::Keep).await
    }

    /// Handles stream records in order, each retried up to a bound. A poison record (one no
    /// retry can deliver) is kept under `_bus/failed/` with its reason and the records after it
    /// go on; one that still fails retryably is kept or reported, as `when` says.
    pub async fn handle(
        &self,
        items: Vec<StreamItem>,
        when: WhenExhausted,
    ) -> Result<Handled, Error> {
        if let Some(handled) = self.all_at_once(&items).await {
            return Ok(handled);
        }
        let mut handled = Handled::default();
        for item in items {
            let seq = item.sequence_number;
            let committed = item.batch.as_ref().ok().cloned().flatten();
            let mut pause = Duration::from_millis(100);
            let mut outcome = match item.batch {
                Ok(batch) => Ok(batch.map(|c| (c, 0))),
                Err(e) => Err(e),
            };
            if let Ok(Some((c, _))) = &outcome {
                let c = c.clone();
                for attempt in 0..self.attempts {
                    if attempt > 0 {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                    outcome = self.batch(&c).await.map(|n| Some((c.clone(), n)));
                    match &outcome {
                        Err(e) if e.is_retryable() => continue,
                        _ => break,
                    }
                }
            }
            match outcome {
                Ok(Some((c, n))) => {
                    tracing::info!(team = %c.team, batch_id = c.batch_id, messages = n, "batch delivered");
                    handled.batches += 1;
                    handled.messages += n;
                }
                Ok(None) => {}
                Err(e) if e.is_retryable() && when == WhenExhausted::Report => {
                    tracing::warn!(sequence = seq, error = %e, "stream record failed; reported for a retry");
                    handled.retry_from = Some(seq);
                    break;
                }
                Err(e) => {
                    self.keep(&seq, committed.as_ref(), &e).await?;
                    handled.kept.push(format!("{seq}: {e}"));
                }
            }
        }
        Ok(handled)
    }

    /// Keeps a record that could not be delivered, with its reason, for a later redrive.
    async fn keep(&self, seq: &str, batch: Option<&Committed>, e: &Error) -> Result<(), Error> {
        tracing::error!(sequence = seq, error = %e, "stream record kept undelivered");
        let body = json!({
            "sequence_number": seq,
            "reason": e.to_string(),
            "batch": batch.map(|c| json!({
                "team": c.team.to_string(),
                "batch_id": c.batch_id,
                "stored_at": c.stored_at,
            })),
        });
        let key = format!("_bus/failed/{seq}.json");
        self.lake
            .store
            .put(
                &eventlake_store::key_path(&self.lake.root, &key),
                PutPayload::from(Bytes::from(body.to_string())),
            )
            .await
            .map_err(|source| Error::Lake { key, source })?;
        Ok(())
    }
}

/// Reads a table's stream from its oldest records, shard by shard.
#[derive(Debug)]
pub struct StreamPoller {
    client: Client,
    stream_arn: String,
    /// Shard id → its next iterator (`None` once the shard is closed and read).
    iterators: HashMap<String, Option<String>>,
}

fn stream_error<E: std::error::Error>(operation: &str, e: E) -> Error {
    Error::Stream {
        detail: format!("{operation}: {}", DisplayErrorContext(&e)),
    }
}

impl StreamPoller {
    /// The poller of `table`'s latest stream.
    pub async fn for_table(sdk: &aws_config::SdkConfig, table: &str) -> Result<Self, Error> {
        let client = Client::new(sdk);
        let streams = client
            .list_streams()
            .table_name(table)
            .send()
            .await
            .map_err(|e| stream_error("ListStreams", e))?;
        let arn = streams
            .streams()
            .last()
            .and_then(|s| s.stream_arn())
            .ok_or_else(|| Error::Stream {
                detail: format!("table {table} has no stream: enable one with new images"),
            })?
            .to_owned();
        Ok(Self {
            client,
            stream_arn: arn,
            iterators: HashMap::new(),
        })
    }

    /// Opens an iterator for every shard not seen before.
    async fn discover(&mut self) -> Result<(), Error> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| stream_error("DescribeStream", e))?;
        let shards = described
            .stream_description()
            .map(|d| d.shards().to_vec())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.iterators.contains_key(id) {
                continue;
            }
            let it = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| stream_error("GetShardIterator", e))?;
            self.iterators.insert(id.to_owned(), it.shard_iterator);
        }
        Ok(())
    }

    /// The records written since the last call, in each shard's order.
    pub async fn poll(&mut self) -> Result<Vec<Record>, Error> {
        self.discover().await?;
        let mut all = Vec::new();
        for next in self.iterators.values_mut() {
            let Some(it) = next.clone() else { continue };
            let out = self
                .client
                .get_records()
                .shard_iterator(it)
                .limit(1000)
                .send()
                .await
                .map_err(|e| stream_error("GetRecords", e))?;
            all.extend(out.records().iter().cloned());
            *next = out.next_shard_iterator;
        }
        Ok(all)
    }
}

/// What [`FanOut::redrive`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// Kept objects whose batches are now delivered (and the objects removed).
    pub delivered: usize,
    /// Objects left where they are: still failing, or not something this build can read.
    pub left: Vec<String>,
}

impl FanOut {
    /// Delivers again what was kept under `prefix` of the lake (`_bus/failed/`, where the
    /// fan-out keeps records; or the stream mapping's on-failure destination, whose objects hold
    /// the stream records themselves) and removes each object once its batch is delivered.
    pub async fn redrive(&self, prefix: &str) -> Result<Redriven, Error> {
        // Every object under the prefix, folder by folder (the on-failure destination nests).
        let mut objects: Vec<object_store::ObjectMeta> = Vec::new();
        let mut folders = vec![eventlake_store::key_path(
            &self.lake.root,
            prefix.trim_end_matches('/'),
        )];
        while let Some(folder) = folders.pop() {
            let listed = self
                .lake
                .store
                .list_with_delimiter(Some(&folder))
                .await
                .map_err(|source| Error::Lake {
                    key: folder.to_string(),
                    source,
                })?;
            objects.extend(listed.objects);
            folders.extend(listed.common_prefixes);
        }
        let mut out = Redriven::default();
        for meta in objects {
            let key = meta.location.to_string();
            let lake_error = |source| Error::Lake {
                key: key.clone(),
                source,
            };
            let data = self
                .lake
                .store
                .get(&meta.location)
                .await
                .map_err(lake_error)?
                .bytes()
                .await
                .map_err(lake_error)?;
            let done = match serde_json::from_slice::<serde_json::Value>(&data) {
                Ok(v) => self.redrive_one(&key, &v).await?,
                Err(_) => false,
            };
            if done {
                self.lake
                    .store
                    .delete(&meta.location)
                    .await
                    .map_err(lake_error)?;
                out.delivered += 1;
            } else {
                out.left.push(key);
            }
        }
        Ok(out)
    }

    /// Delivers one kept object's batch or records; whether all of it went out.
    async fn redrive_one(&self, key: &str, v: &serde_json::Value) -> Result<bool, Error> {
        // A record the fan-out kept: its batch.
        if let Some(b) = v.get("batch").filter(|b| !b.is_null()) {
            let s = |f: &str| b.get(f).and_then(|x| x.as_str()).map(str::to_owned);
            let (Some(team), Some(batch_id), Some(stored_at)) =
                (s("team"), s("batch_id"), s("stored_at"))
            else {
                return Ok(false);
            };
            let Ok(team) = eventlake_contract::TeamName::new(&team) else {
                return Ok(false);
            };
            let c = Committed {
                team,
                batch_id,
                stored_at,
            };
            return match self.batch(&c).await {
                Ok(n) => {
                    tracing::info!(key, messages = n, "kept batch delivered");
                    Ok(true)
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "kept batch still not delivered");
                    Ok(false)
                }
            };
        }
        // The stream mapping's on-failure record with its payload (the stream event), or a
        // stream event as such.
        let event = v
            .get("payload")
            .map(|p| match p {
                serde_json::Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
                other => other.clone(),
            })
            .unwrap_or_else(|| v.clone());
        if event.get("Records").is_none() {
            return Ok(false);
        }
        let Ok(event) = serde_json::from_value::<aws_lambda_events::event::dynamodb::Event>(event)
        else {
            return Ok(false);
        };
        let items = event.records.iter().map(StreamItem::from_lambda).collect();
        let handled = self.handle(items, WhenExhausted::Report).await?;
        tracing::info!(
            key,
            batches = handled.batches,
            "kept stream records delivered"
        );
        Ok(handled.retry_from.is_none())
    }
}

//! Team consumers: a team's events from its queue, each once.
//!
//! The FIFO queue drops a repeated message within its five-minute window; after it (a stream
//! record retried later, a redrive), the same event can arrive again. A [`Consumer`] drops an
//! event whose id it has already handed over, remembering ids in a file of its own (one id a
//! line, appended and flushed before the message is deleted), so a restarted consumer keeps
//! dropping them. An event is written out before its message is deleted: a consumer that dies
//! in between gets it again and drops it by its id.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;

use crate::Error;

/// The ids already handed over, kept in a file when one is given.
#[derive(Debug, Default)]
pub struct SeenIds {
    ids: HashSet<String>,
    file: Option<(PathBuf, File)>,
}

impl SeenIds {
    /// Ids remembered in `path` (created if absent).
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io = |e: std::io::Error| Error::Consumer {
            detail: format!("{}: {e}", path.display()),
        };
        let mut ids = HashSet::new();
        if path.exists() {
            for line in BufReader::new(File::open(path).map_err(io)?).lines() {
                let line = line.map_err(io)?;
                if !line.is_empty() {
                    ids.insert(line);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            ids,
            file: Some((path.to_owned(), file)),
        })
    }

    /// Ids remembered for this process only.
    pub fn in_memory() -> Self {
        Self::default()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, id: &str) -> Result<(), Error> {
        if let Some((path, file)) = &mut self.file {
            writeln!(file, "{id}")
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::Consumer {
                    detail: format!("{}: {e}", path.display()),
                })?;
        }
        self.ids.insert(id.to_owned());
        Ok(())
    }

    /// Hands an event over once: writes `body` to `out` as one NDJSON line, unless its id was
    /// handed over before, and remembers the id (on disk first, when a file is kept).
    pub fn hand_over(&mut self, body: &str, out: &mut impl Write) -> Result<HandOver, Error> {
        let Some(id) = crate::fanout::event_id(body) else {
            return Ok(HandOver::NotAnEvent);
        };
        if self.contains(&id) {
            return Ok(HandOver::Repeat);
        }
        writeln!(out, "{body}")
            .and_then(|()| out.flush())
            .map_err(|e| Error::Consumer {
                detail: format!("writing out: {e}"),
            })?;
        self.insert(&id)?;
        Ok(HandOver::New)
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOver {
    /// Written out.
    New,
    /// Dropped: its event was handed over before.
    Repeat,
    /// Not an event (no `event_id`): not written.
    NotAnEvent,
}

/// What one receive handed over.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// Events written out.
    pub events: usize,
    /// Messages dropped: their event was handed over before.
    pub repeats: usize,
}

/// Reads one team's queue.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    url: String,
    seen: SeenIds,
    wait: Duration,
}

impl Consumer {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: &str, seen: SeenIds) -> Self {
        Self {
            client: Client::new(sdk),
            url: queue_url.to_owned(),
            seen,
            wait: Duration::from_secs(1),
        }
    }

    /// Receives up to ten messages (waiting up to a second for the first), writes each new
    /// event to `out` as one NDJSON line, and deletes the messages.
    pub async fn receive(&mut self, out: &mut impl Write) -> Result<Received, Error> {
        let failed = |op: &str, e: &dyn std::fmt::Display| Error::Consumer {
            detail: format!("{op} {}: {e}", self.url),
        };
        let got = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait.as_secs() as i32)
            .send()
            .await
            .map_err(|e| failed("ReceiveMessage", &DisplayErrorContext(&e)))?;
        let mut received = Received::default();
        let mut handled = Vec::new();
        for m in got.messages() {
            match self.seen.hand_over(m.body().unwrap_or_default(), out)? {
                HandOver::New => received.events += 1,
                HandOver::Repeat => received.repeats += 1,
                // Not an event: left in the queue, whose redrive policy moves it to the DLQ.
                HandOver::NotAnEvent => {
                    tracing::error!(queue = self.url, "a message that is not an event");
                    continue;
                }
            }
            if let Some(handle) = m.receipt_handle() {
                handled.push(handle);
            }
        }
        // Every handed-over message in one call (a receive brings at most ten). One that is not
        // deleted comes back and is dropped as a repeat.
        if !handled.is_empty() {
            let entries = handled
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*h)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| failed("DeleteMessageBatch", &DisplayErrorContext(&e)))?;
            for f in out.failed() {
                tracing::warn!(
                    queue = self.url,
                    code = f.code(),
                    "a handed-over message was not deleted; it will be dropped as a repeat"
                );
            }
        }
        Ok(received)
    }
}

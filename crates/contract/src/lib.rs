//! The eventlake event contract, v1.
//!
//! One format ties the ingestion API, the raw landing zone, the compaction job and the analysts'
//! table together. This crate is that format as code: validated names ([`TeamName`],
//! [`PartitionDate`]), the object layout of a lake ([`layout`]), the validation of one raw line with
//! a typed reason for every rejection ([`event`]), and the curated Arrow schema ([`schema`]).
//!
//! It does no I/O, so the ingestion function and the batch job share it without sharing their
//! dependencies.

pub mod duration;
pub mod event;
pub mod hive;
pub mod layout;
pub mod names;
mod scan;
#[cfg(feature = "arrow")]
pub mod schema;

pub use event::{Reason, Rejection, ValidEvent, parse_raw_line};
pub use names::{NameError, PartitionDate, PartitionKey, TeamName};

/// The version stamped on every event by the ingestion function.
pub const SCHEMA_VERSION: i32 = 1;

/// Largest event a client may send, in bytes (contract section 1).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;

/// Largest raw line the compaction job accepts: a client event plus the server's stamps
/// (`team`, `received_at`, `schema_version`), with room to spare. Longer lines are quarantined
/// with [`Reason::LineTooLarge`].
pub const MAX_RAW_LINE_BYTES: usize = MAX_EVENT_BYTES + 1024;

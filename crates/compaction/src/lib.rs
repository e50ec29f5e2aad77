//! The compaction engine: raw JSON in, committed Parquet out, every line accounted for.
//!
//! - [`plan`]: which partitions have raw data in range, and whether each needs work (a value:
//!   `--dry-run` prints it).
//! - [`read`]: one raw object to Arrow rows and quarantine records (a bad line never fails the
//!   object); [`gunzip`]: a gzip object decompressed whole.
//! - [`compact`]: one partition from raw objects to a new committed version: validated,
//!   de-duplicated, sorted Parquet, a manifest, quarantine, one catalog commit.
//! - [`incremental`]: a committed version plus the raw objects added since, when that gives what
//!   a full compaction would.
//! - [`backfill`]: a plan run `jobs` partitions at a time, one partition's failure never losing
//!   another's work.
//! - [`earlier`]: cross-partition de-duplication, with the ids of a team's earlier days.
//! - `spill`: a partition larger than memory, as sorted runs on local disk merged into its files;
//!   `keys`: its de-duplication keys, spilled and merged the same way; `scratch`: the process's
//!   spill folder, and the removal of those a killed process left.
//! - [`replay`]: quarantined lines run through today's validation, and taken in when they pass.
//! - [`gc`]: removal of versions no catalog points to; [`sync`]: a catalog rebuilt from the
//!   manifests.
//! - [`generate`]: synthetic raw data with its ground truth, for tests, benchmarks and demos.
//!
//! Storage and commits go through [`eventlake_catalog`]'s `Lake` and `Catalog`, so the same code
//! runs on a folder and on S3 with any catalog.

pub mod backfill;
pub mod compact;
pub mod earlier;
mod encode;
mod error;
mod gather;
pub mod gc;
pub mod generate;
pub mod gunzip;
pub mod incremental;
mod keys;
pub mod plan;
pub mod read;
pub mod replay;
mod scratch;
mod spill;
pub mod sync;

pub use error::{Error, Result};

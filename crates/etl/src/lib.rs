//! eventlake's batch jobs.
//!
//! - [`generate`]: synthetic raw data and its ground truth.
//! - [`plan`]: which partitions have raw data and what to do with them.
//! - [`compact`]: one partition from raw JSON to committed Parquet, every line accounted for.
//! - [`backfill`]: a plan run `jobs` partitions at a time.
//! - [`catalog`]: which version of each partition readers see.
//! - [`query`]: SQL over the committed versions.
//! - [`gc`]: removal of versions nobody points to.
//!
//! The same code runs on a laptop against a folder and in the cloud; only the [`lake::Lake`] and
//! the [`catalog::Catalog`] differ.

pub mod athena;
pub mod aws;
pub mod backfill;
pub mod catalog;
pub mod cli;
pub mod compact;
pub mod error;
pub mod gc;
pub mod generate;
pub mod lake;
pub mod p95;
pub mod plan;
pub mod query;
pub mod read;
pub mod saved;
pub mod sync;
pub mod task;
pub mod trino;

pub use error::{Error, Result};

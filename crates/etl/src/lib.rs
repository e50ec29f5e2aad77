//! The `etl` command: parses arguments, opens the lake and its catalog, and hands the work to the
//! library parts; also the scheduled job's task entry point (Lambda and Fargate).
//!
//! | module | holds |
//! | --- | --- |
//! | [`args`] | every flag, its default and its environment variable |
//! | [`commands`] | what each command does with the parts, and the process entry point |
//! | [`task`] | the Step Functions payloads (`etl task`, `etl lambda`) and their error names |
//! | [`output`], [`progress`] | what people see: tables, summaries, a progress bar |
//! | [`metrics`] | CloudWatch embedded-metric lines of a run |
//! | [`remote`] | `backfill --remote`: the compaction workflow started and followed from a laptop |
//!
//! The parts: [`eventlake_catalog`] (the lake and its catalogs), [`eventlake_compaction`]
//! (plan, compact, backfill, gc, sync), [`eventlake_query`] (the local engine, Athena, saved
//! queries, the P95 check).

mod allocator;
pub mod args;
pub mod commands;
mod error;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod remote;
pub mod task;

pub use allocator::tune_allocator;
pub use commands::main;
pub use error::{Error, Result};

//! End-to-end tests of the batch jobs on a local lake (one test binary for the crate).

mod aws;
mod bad_input;
mod catalog;
mod cli;
mod common;
mod conformance;
mod crash;
mod cross_day;
mod engine;
mod ground_truth;
mod incremental;
mod ingest_to_query;
mod lease;
mod metrics;
mod replay;
mod saved_queries;
mod spill;
mod task;
mod versions;

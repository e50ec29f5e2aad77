//! eventlake's ingestion API.
//!
//! `POST /v1/events` takes a team's events (JSON envelope or NDJSON, optionally gzip), validates
//! each one exactly as the compaction job will, stamps `team` (from the bearer token, never from
//! the body), `received_at` and `schema_version`, and lands the batch as one gzip NDJSON object in
//! the raw zone with create-if-absent. A `2xx` means the accepted events are durable, in the raw
//! zone or, when storage stays down, in the dead-letter queue.
//!
//! The [`app::router`] is the whole app: the Lambda and the local server run the same router.

pub mod app;
pub mod auth;
pub mod aws;
pub mod sink;

pub use app::{AppState, Limits, router};

//! eventlake's ingestion API.
//!
//! `POST /v1/events` takes a team's events (JSON envelope or NDJSON, optionally gzip), validates
//! each one exactly as the compaction job will, stamps `team` (from the bearer token, never from
//! the body), `received_at` and `schema_version`, and lands the batch as one gzip NDJSON object in
//! the raw zone with create-if-absent. A `2xx` means the accepted events are durable, in the raw
//! zone or, when storage stays down, in the dead-letter queue.
//!
//! An `Idempotency-Key` is a claim ([`idempotency`]): the first request with a key claims it with
//! its body's fingerprint before anything is stored; a retry with the same body gets the first
//! answer, the same key with another body gets `422`. Storage, the dead-letter queue and the
//! answer happen within one [`deadline`] per request.
//!
//! The [`app::router`] is the whole app: the Lambda and the local server ([`server`]: header, body
//! and stall timeouts, a bounded number of connections) run the same router.

pub mod api;
pub mod app;
pub mod auth;
pub mod aws;
pub mod body;
pub mod deadline;
pub mod idempotency;
pub mod ledger;
pub mod server;
pub mod sink;

pub use app::{AppState, Limits, router};

//! The query engine: Athena's SQL over the committed partitions, locally and on Athena.
//!
//! - [`session`]: a DataFusion session with the `events` table ([`table`]), Athena's (Trino's)
//!   functions with their semantics ([`trino`]) and the planner rules ([`rules`]); running SQL
//!   and rendering results.
//! - [`table`]: the `events` table over exactly the files the catalog's entries name.
//! - [`rules`]: planner rules that use the catalog's statistics to do less work, for any query
//!   whose shape they fit, never changing an answer.
//! - [`athena`]: the same SQL on Amazon Athena.
//! - [`saved`]: the analysts' saved queries (`sql/*.sql`) with their parameters and budgets;
//!   [`p95`]: each one run N times on an engine against its P95 budget.
//! - `with_once`: a `WITH` query read more than once, computed once.

pub mod athena;
mod error;
pub mod information_schema;
pub mod p95;
pub mod rules;
pub mod saved;
pub mod session;
pub mod table;
pub mod trino;
mod with_once;

pub use error::{Error, Result};
pub use session::{
    Format, functions_session, prepare, render, run_sql, session, session_named, write_sql,
};

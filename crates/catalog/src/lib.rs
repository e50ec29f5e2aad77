//! The lake and its catalogs.
//!
//! A [`Lake`] is one root (a local folder or a bucket prefix) holding `raw/`, `curated/`,
//! `quarantine/` and, by default, the catalog. A [`Catalog`] says, for each partition
//! `(team, dt)`, which committed version readers see, and switches a partition to a new version
//! in one step. Three catalogs implement the trait, and one conformance suite holds them to it:
//!
//! - [`LocalCatalog`]: a folder inside a local lake (the embedded default, no server);
//! - [`ObjectCatalog`]: objects inside an S3 lake, committed with conditional writes;
//! - [`GlueCatalog`]: the AWS Glue Data Catalog, which Athena reads.
//!
//! A [`Lease`] per partition keeps two runs from working on one partition at once, in every
//! catalog (Glue's commit is a read then a write).
//!
//! [`open`] opens a lake and its catalog from a [`Target`]: the command, the scheduled task, the
//! benchmarks and the tests all go through it. Errors say by their variant whether a retry can
//! help ([`Error::is_retryable`]).

mod catalog;
mod error;
mod glue;
mod lake;
mod lease;
mod local;
mod object;
mod open;

pub use catalog::{Catalog, CommitOutcome, DataFile, MAX_TYPE_COUNTS, PartitionEntry};
pub use error::{AwsFailure, Error, Result, Unreachable, storage_is_retryable};
pub use glue::{GlueCatalog, GlueTarget};
pub use lake::Lake;
pub use lease::{
    DEFAULT_LEASE_TTL, LEASE_PREFIX, Lease, LeasedCatalog, Leases, Taken, this_holder,
};
pub use local::LocalCatalog;
pub use object::ObjectCatalog;
pub use open::{CatalogKind, Context, Target, open};

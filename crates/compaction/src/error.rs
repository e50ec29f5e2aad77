//! The compaction engine's error. Each variant decides whether running the same step again can
//! help ([`Error::is_retryable`]); a broken invariant is a bug, never retried.

use eventlake_contract::PartitionKey;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lake or the catalog failed (storage, Glue, a commit race, a local file).
    #[error(transparent)]
    Lake(#[from] eventlake_catalog::Error),

    /// An option is wrong; nothing was read or written.
    #[error("{0}")]
    InvalidArgument(String),

    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// `rows + duplicates + cross_partition_duplicates + quarantined != lines`: a bug in the job,
    /// not a condition a retry can change. Nothing was committed.
    #[error(
        "bug: {partition}: accounting does not balance (rows {rows} + duplicates {duplicates} + duplicates of earlier days {cross_partition_duplicates} + quarantined {quarantined} != lines {lines}); nothing was committed"
    )]
    Unbalanced {
        partition: PartitionKey,
        rows: u64,
        duplicates: u64,
        cross_partition_duplicates: u64,
        quarantined: u64,
        lines: u64,
    },

    /// A large partition's sorted runs could not be written to or read from local disk.
    #[error("spill: {0}")]
    Spill(String),

    /// A background task was cancelled, or panicked (a bug).
    #[error("task {}: {message}", if *panicked { "panicked" } else { "was cancelled" })]
    Task { panicked: bool, message: String },
}

impl Error {
    /// Can running the same step again succeed?
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Lake(e) => e.is_retryable(),
            // Parquet's writer reports the store's failures as external errors.
            Error::Parquet(parquet::errors::ParquetError::External(_)) => true,
            Error::Parquet(_) | Error::Arrow(_) | Error::InvalidArgument(_) => false,
            Error::Unbalanced { .. } => false,
            // A full or read-only disk stays so for the next attempt.
            Error::Spill(_) => false,
            Error::Task { panicked, .. } => !panicked,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task {
            panicked: e.is_panic(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventlake_contract::{PartitionDate, TeamName};

    /// One case per variant: what a retry can fix.
    #[test]
    fn retries_are_decided_by_variant() {
        let partition = PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-25").unwrap(),
        };
        let cases: Vec<(Error, bool)> = vec![
            (
                eventlake_catalog::Error::io("cannot read", "f", std::io::Error::other("x")).into(),
                true,
            ),
            (eventlake_catalog::Error::Config("bad".into()).into(), false),
            (Error::InvalidArgument("bad".into()), false),
            (
                parquet::errors::ParquetError::External("store down".into()).into(),
                true,
            ),
            (
                parquet::errors::ParquetError::General("bad schema".into()).into(),
                false,
            ),
            (
                arrow::error::ArrowError::InvalidArgumentError("x".into()).into(),
                false,
            ),
            (
                Error::Unbalanced {
                    partition,
                    rows: 1,
                    duplicates: 0,
                    cross_partition_duplicates: 0,
                    quarantined: 0,
                    lines: 2,
                },
                false,
            ),
            (
                Error::Task {
                    panicked: false,
                    message: "cancelled".into(),
                },
                true,
            ),
            (
                Error::Task {
                    panicked: true,
                    message: "bug".into(),
                },
                false,
            ),
        ];
        for (e, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
        }
    }
}

//! The `etl` crate's error: one enum with structured fields, each variant knowing whether a retry
//! can help (the Step Functions task reports that as a stable error name).

use eventlake_contract::{NameError, PartitionKey};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line argument or configuration value is wrong; nothing was read or written.
    #[error("{0}")]
    InvalidArgument(String),

    #[error(transparent)]
    Name(#[from] NameError),

    /// Object storage failed for one object (after the store's own retries).
    #[error("storage error on {path}: {source}")]
    Storage {
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// The lake's bucket is missing or refuses the credentials in use.
    #[error("lake {lake}: {reason}: {source}")]
    Unreachable {
        lake: String,
        reason: String,
        #[source]
        source: object_store::Error,
    },

    /// The Glue Data Catalog refused or failed a call (after the SDK's retries).
    #[error("Glue {operation} on {target}: {message}")]
    Glue {
        operation: &'static str,
        target: String,
        message: String,
        retryable: bool,
    },

    /// Athena refused or failed a query.
    #[error("Athena: {0}")]
    Athena(String),

    /// A saved SQL file is unusable (syntax, header, parameters); nothing ran.
    #[error("{path}:{line}: {message}")]
    SavedQuery {
        path: String,
        line: usize,
        message: String,
    },

    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A JSON document of ours (manifest, catalog entry) is unreadable.
    #[error("unreadable {what} {path}: {source}")]
    Json {
        what: &'static str,
        path: String,
        #[source]
        source: serde_json::Error,
    },

    /// Another run committed the partition after this run planned it.
    #[error(
        "{partition}: committed by another run (version {found}) while this run was working; run it again to pick up the latest raw data"
    )]
    CommitConflict {
        partition: PartitionKey,
        found: String,
    },

    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("query: {0}")]
    Query(#[from] datafusion::error::DataFusionError),

    /// A background task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

impl Error {
    /// Can running the same step again succeed? (Storage hiccups and commit races can; a bad
    /// argument or a corrupt manifest cannot.)
    pub fn is_retryable(&self) -> bool {
        match self {
            // Parquet's writer reports the store's failures as external errors.
            Error::Parquet(parquet::errors::ParquetError::External(_)) => true,
            Error::Unreachable { reason, .. } => reason.ends_with("cannot be reached"),
            Error::Storage { source, .. } => !matches!(
                source,
                object_store::Error::NotFound { .. }
                    | object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
            ),
            Error::Io { .. } | Error::CommitConflict { .. } | Error::Task(_) => true,
            Error::Glue { retryable, .. } => *retryable,
            _ => false,
        }
    }

    pub(crate) fn storage(path: impl ToString, source: object_store::Error) -> Self {
        Error::Storage {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn io(what: &'static str, path: impl ToString, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.to_string(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}

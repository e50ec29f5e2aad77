//! The lake's and the catalogs' error: structured variants, each deciding by itself whether running
//! the same step again can help ([`Error::is_retryable`]); nothing is decided from a message's
//! wording.

use eventlake_contract::{NameError, PartitionKey};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a lake's bucket could not be used (from the first request, before any work).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("bucket {bucket:?} does not exist")]
    NoSuchBucket { bucket: String },
    #[error(
        "access to bucket {bucket:?} was refused for access key id {key_id} (check the credentials and the bucket policy)"
    )]
    Refused { bucket: String, key_id: String },
    #[error("bucket {bucket:?} cannot be reached")]
    Unreachable { bucket: String },
}

/// What kind of failure an AWS call met, from the SDK's typed error (its code or its transport
/// failure), never from its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFailure {
    /// The service asked us to slow down.
    Throttled,
    /// A fault on the service's side or in between (5xx, timeout, dropped connection).
    Unavailable,
    /// Another writer changed the same thing at the same time.
    Conflict,
    /// Our identity may not do this: retrying cannot help.
    AccessDenied,
    /// The request itself was refused (validation, not found, ...): retrying cannot help.
    Refused,
}

impl AwsFailure {
    /// Classifies an AWS error code (`ThrottlingException`, ...).
    pub fn from_code(code: &str) -> Self {
        match code {
            "ThrottlingException" | "TooManyRequestsException" | "SlowDown" => Self::Throttled,
            "InternalServiceException"
            | "InternalServerException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "OperationTimeoutException"
            | "ResourceNotReadyException" => Self::Unavailable,
            "ConcurrentModificationException" => Self::Conflict,
            "AccessDeniedException" | "AccessDenied" => Self::AccessDenied,
            _ => Self::Refused,
        }
    }

    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable | Self::Conflict)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lake or catalog configuration is wrong; nothing was read or written.
    #[error("{0}")]
    Config(String),

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
        reason: Box<Unreachable>,
        #[source]
        source: object_store::Error,
    },

    /// The Glue Data Catalog refused or failed a call (after the SDK's retries).
    #[error("Glue {operation} on {target}: {message}")]
    Glue {
        operation: &'static str,
        target: String,
        message: String,
        failure: AwsFailure,
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

    /// This run's lease of the partition expired and another run took it over: committing now
    /// could overwrite that run's work.
    #[error(
        "{partition}: this run no longer holds the partition's lease ({detail}); nothing was committed, run it again"
    )]
    LeaseLost {
        partition: PartitionKey,
        detail: String,
    },

    /// A background task was cancelled, or panicked (a bug).
    #[error("task {}: {message}", if *panicked { "panicked" } else { "was cancelled" })]
    Task { panicked: bool, message: String },
}

/// Whether a failed storage request may succeed when made again.
pub fn storage_is_retryable(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. }
            | object_store::Error::UnknownConfigurationKey { .. }
    )
}

impl Error {
    /// Can running the same step again succeed? Storage hiccups, throttling and commit races
    /// can; a bad argument, a refused credential or a corrupt document cannot.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Config(_) | Error::Name(_) | Error::Json { .. } => false,
            Error::Storage { source, .. } => storage_is_retryable(source),
            Error::Unreachable { reason, .. } => {
                matches!(reason.as_ref(), Unreachable::Unreachable { .. })
            }
            Error::Glue { failure, .. } => failure.is_transient(),
            Error::Io { .. } | Error::CommitConflict { .. } | Error::LeaseLost { .. } => true,
            Error::Task { panicked, .. } => !panicked,
        }
    }

    pub fn storage(path: impl ToString, source: object_store::Error) -> Self {
        Error::Storage {
            path: path.to_string(),
            source,
        }
    }

    pub fn io(what: &'static str, path: impl ToString, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.to_string(),
            source,
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

    fn store_error(kind: &str) -> object_store::Error {
        let source: Box<dyn std::error::Error + Send + Sync> = "x".into();
        match kind {
            "not_found" => object_store::Error::NotFound {
                path: "p".into(),
                source,
            },
            "denied" => object_store::Error::PermissionDenied {
                path: "p".into(),
                source,
            },
            "precondition" => object_store::Error::Precondition {
                path: "p".into(),
                source,
            },
            _ => object_store::Error::Generic {
                store: "S3",
                source,
            },
        }
    }

    /// One case per variant (and per kind of storage failure): what a retry can fix.
    #[test]
    fn retries_are_decided_by_variant() {
        let partition = PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-25").unwrap(),
        };
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let io = std::io::Error::other("disk");
        let bucket = || "b".to_owned();
        let glue = |failure| Error::Glue {
            operation: "GetPartition",
            target: "t".into(),
            message: "m".into(),
            failure,
        };
        let unreachable = |reason| Error::Unreachable {
            lake: "s3://b".into(),
            reason: Box::new(reason),
            source: store_error("generic"),
        };
        let cases: Vec<(Error, bool)> = vec![
            (Error::Config("bad".into()), false),
            (TeamName::new("A B").unwrap_err().into(), false),
            (Error::storage("p", store_error("generic")), true),
            (Error::storage("p", store_error("precondition")), true),
            (Error::storage("p", store_error("not_found")), false),
            (Error::storage("p", store_error("denied")), false),
            (
                unreachable(Unreachable::Unreachable { bucket: bucket() }),
                true,
            ),
            (
                unreachable(Unreachable::NoSuchBucket { bucket: bucket() }),
                false,
            ),
            (
                unreachable(Unreachable::Refused {
                    bucket: bucket(),
                    key_id: "AKIA".into(),
                }),
                false,
            ),
            (glue(AwsFailure::Throttled), true),
            (glue(AwsFailure::Unavailable), true),
            (glue(AwsFailure::Conflict), true),
            (glue(AwsFailure::AccessDenied), false),
            (glue(AwsFailure::Refused), false),
            (Error::io("cannot read", "f", io), true),
            (
                Error::Json {
                    what: "manifest",
                    path: "m".into(),
                    source: json,
                },
                false,
            ),
            (
                Error::CommitConflict {
                    partition,
                    found: "v".into(),
                },
                true,
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

    #[test]
    fn aws_codes_are_classified() {
        assert_eq!(
            AwsFailure::from_code("ThrottlingException"),
            AwsFailure::Throttled
        );
        assert_eq!(
            AwsFailure::from_code("ConcurrentModificationException"),
            AwsFailure::Conflict
        );
        assert_eq!(
            AwsFailure::from_code("AccessDeniedException"),
            AwsFailure::AccessDenied
        );
        assert_eq!(
            AwsFailure::from_code("EntityNotFoundException"),
            AwsFailure::Refused
        );
    }
}

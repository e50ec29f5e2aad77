//! The command's error: the parts' errors, and its own argument checks. Whether a retry can help
//! is each part's call ([`Error::is_retryable`]); the scheduled task reports it as `Retryable` or
//! `NonRetryable`.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line argument is wrong; nothing was read or written.
    #[error("{0}")]
    InvalidArgument(String),

    #[error(transparent)]
    Lake(#[from] eventlake_catalog::Error),

    #[error(transparent)]
    Compaction(#[from] eventlake_compaction::Error),

    #[error(transparent)]
    Query(#[from] eventlake_query::Error),

    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The Lambda runtime stopped serving.
    #[error("Lambda runtime: {0}")]
    Lambda(String),

    /// Step Functions refused or failed a call of `backfill --remote` (after the SDK's retries).
    #[error("{0}")]
    Remote(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Can running the same step again succeed?
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::InvalidArgument(_) | Error::Lambda(_) => false,
            Error::Remote(_) => true,
            Error::Lake(e) => e.is_retryable(),
            Error::Compaction(e) => e.is_retryable(),
            Error::Query(e) => e.is_retryable(),
            Error::Io { .. } => true,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One case per variant: the parts decide for their own errors.
    #[test]
    fn retries_are_decided_by_variant() {
        let cases: Vec<(Error, bool)> = vec![
            (Error::InvalidArgument("bad".into()), false),
            (Error::Lambda("stopped".into()), false),
            (
                eventlake_catalog::Error::io("cannot read", "f", std::io::Error::other("x")).into(),
                true,
            ),
            (eventlake_catalog::Error::Config("bad".into()).into(), false),
            (
                eventlake_compaction::Error::Task {
                    panicked: false,
                    message: "cancelled".into(),
                }
                .into(),
                true,
            ),
            (
                eventlake_compaction::Error::InvalidArgument("bad".into()).into(),
                false,
            ),
            (
                eventlake_query::Error::InvalidArgument("bad".into()).into(),
                false,
            ),
            (
                eventlake_query::Error::io("cannot read", "q", std::io::Error::other("x")).into(),
                true,
            ),
            (
                Error::io("cannot write chart", "p95.svg", std::io::Error::other("x")),
                true,
            ),
        ];
        for (e, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{e}");
        }
    }
}

//! Opens the object store behind a lake location.
//!
//! - a local path or `file:///path`: the local file system (the folder is created if asked);
//! - `s3://bucket[/prefix]`: Amazon S3 or a compatible store, configured from the standard AWS
//!   variables (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` for a
//!   stand-in; plain `http://` endpoints are allowed only when such an endpoint is configured).
//!
//! Endpoints come from the environment, never from code.
//!
//! On S3, the objects of a team listed in `EVENTLAKE_TEAM_KMS_KEYS` are written under that
//! team's own KMS key ([`team_keys`]).
//!
//! With the `sdk` feature, [`open_with_sdk`] takes credentials and region from an AWS SDK
//! configuration instead (the whole standard chain: profiles, SSO, web identity, container and
//! instance roles), so S3, Glue and Athena act as one identity.
//!
//! Retries: object storage requests are retried with exponential backoff on 5xx answers (S3's
//! `503 SlowDown`) and dropped connections, up to `EVENTLAKE_S3_MAX_RETRIES` times (default 10)
//! within `EVENTLAKE_S3_RETRY_TIMEOUT_SECS` (default 180).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{ObjectStore, RetryConfig};

mod local;
#[cfg(feature = "sdk")]
mod sdk;
pub mod team_keys;
pub use local::LocalFolder;
#[cfg(feature = "sdk")]
pub use sdk::{open_with_sdk, sdk_config};

/// A store and the root of the lake inside it.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The lake root inside the store: no leading or trailing `/`.
    pub root: String,
    /// `file://` or `s3://bucket`: the URL DataFusion knows the store by.
    pub store_url: String,
    /// The folder, for a local lake.
    pub local_dir: Option<PathBuf>,
    /// How to show the location to people.
    pub display: String,
    /// The bucket, for an S3 lake.
    pub bucket: Option<String>,
    /// The access key id requests are signed with (never the secret), once known: for error
    /// messages that must say which identity was refused.
    pub access_key_id: Arc<Mutex<Option<String>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("lake {0}: unsupported scheme (use a local path, file:// or s3://bucket/prefix)")]
    Scheme(String),
    #[error("lake {location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lake {location}: {message}")]
    Config { location: String, message: String },
    #[error("lake {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: object_store::Error,
    },
}

/// The store path of `key`, a key relative to the lake root `root` (as in [`Location::root`]).
///
/// A key is the text of a store path, as a listing gives it, and is taken as it is: an object
/// whose name has characters the store encodes (`%`, `#`, `{`, ...) is read back under the
/// name it was listed by, where encoding the text again named an object that is not there. Keys
/// the job makes have no such characters. Only a key that is no store path's text (one with a
/// control character) is encoded.
pub fn key_path(root: &str, key: &str) -> object_store::path::Path {
    use object_store::path::Path;
    // The root is a store path's text too: a folder named `my lake%1` is that folder, not
    // `my lake%251`.
    let as_text = |text: &str| Path::parse(text).unwrap_or_else(|_| Path::from(text));
    let key = as_text(key.trim_matches('/'));
    if root.is_empty() {
        return key;
    }
    as_text(root).parts().chain(key.parts()).collect()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The retry policy of object storage requests (see the module documentation).
pub fn retry_config() -> RetryConfig {
    let mut retry = RetryConfig::default();
    if let Some(n) = env_number("EVENTLAKE_S3_MAX_RETRIES") {
        retry.max_retries = n as usize;
    }
    if let Some(s) = env_number("EVENTLAKE_S3_RETRY_TIMEOUT_SECS") {
        retry.retry_timeout = Duration::from_secs(s);
    }
    retry
}

/// Opens `location`; a local folder is created when `create` is set. S3 credentials and region
/// come from the standard environment variables and the container or instance role.
pub fn open(location: &str, create: bool) -> Result<Location, OpenError> {
    open_inner(location, create, |b| b)
}

fn open_inner(
    location: &str,
    create: bool,
    configure: impl FnOnce(AmazonS3Builder) -> AmazonS3Builder,
) -> Result<Location, OpenError> {
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(OpenError::Scheme(location.to_owned()));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(retry_config());
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok();
        if let Some(ep) = endpoint {
            // Stand-ins listen on plain HTTP, addressed by path.
            builder = builder
                .with_endpoint(&ep)
                .with_allow_http(ep.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let env_key_id = builder.get_config_value(&AmazonS3ConfigKey::AccessKeyId);
        let builder = configure(builder);
        let store_error = |source| OpenError::Store {
            location: location.to_owned(),
            source,
        };
        let keys = team_keys::team_kms_keys_from_env().map_err(|message| OpenError::Config {
            location: location.to_owned(),
            message,
        })?;
        let mut teams = std::collections::HashMap::new();
        for (team, key) in keys {
            let keyed = builder
                .clone()
                .with_sse_kms_encryption(key)
                // One data key per object prefix and hour instead of a KMS request per object.
                .with_bucket_key(true)
                .build()
                .map_err(store_error)?;
            teams.insert(team, Arc::new(keyed) as Arc<dyn ObjectStore>);
        }
        let store: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(store_error)?);
        let store = if teams.is_empty() {
            store
        } else {
            Arc::new(team_keys::TeamKeys::new(store, teams))
        };
        return Ok(Location {
            store,
            root: prefix.trim_matches('/').to_owned(),
            store_url: format!("s3://{bucket}"),
            local_dir: None,
            display: location.to_owned(),
            bucket: Some(bucket.to_owned()),
            access_key_id: Arc::new(Mutex::new(env_key_id)),
        });
    }
    if let Some((scheme, _)) = location.split_once("://")
        && scheme != "file"
    {
        return Err(OpenError::Scheme(location.to_owned()));
    }
    let path = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
    let io = |source| OpenError::Io {
        location: location.to_owned(),
        source,
    };
    if create {
        std::fs::create_dir_all(&path).map_err(io)?;
    }
    let dir = path.canonicalize().map_err(io)?;
    let root = dir
        .to_str()
        .ok_or_else(|| OpenError::Scheme(location.to_owned()))?
        .trim_matches('/')
        .to_owned();
    Ok(Location {
        store: Arc::new(LocalFolder::new()),
        root,
        store_url: "file://".into(),
        display: dir.display().to_string(),
        local_dir: Some(dir),
        bucket: None,
        access_key_id: Arc::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_s3_locations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lake");
        assert!(open(p.to_str().unwrap(), false).is_err());
        let l = open(p.to_str().unwrap(), true).unwrap();
        assert_eq!(
            l.local_dir.as_deref(),
            Some(p.canonicalize().unwrap().as_path())
        );
        let s = open("s3://bucket/some/prefix/", false).unwrap();
        assert_eq!(
            (s.root.as_str(), s.store_url.as_str()),
            ("some/prefix", "s3://bucket")
        );
        assert!(matches!(open("gs://x", false), Err(OpenError::Scheme(_))));
        assert!(matches!(open("s3://", false), Err(OpenError::Scheme(_))));
        assert_eq!(key_path("a/b", "/raw/x/").as_ref(), "a/b/raw/x");
        assert_eq!(key_path("a/b", "").as_ref(), "a/b");
        assert_eq!(key_path("", "raw/x").as_ref(), "raw/x");
        // A listed key's text names the object it was listed by.
        let listed = object_store::path::Path::from("raw/a b%20c#1.json");
        assert_eq!(listed.as_ref(), "raw/a b%2520c%231.json");
        assert_eq!(key_path("", listed.as_ref()), listed);
        assert_eq!(
            key_path("a/b", listed.as_ref()).as_ref(),
            "a/b/raw/a b%2520c%231.json"
        );
        assert_eq!(key_path("", "raw/a\u{1}b").as_ref(), "raw/a%01b");
        // So is the root's: a folder named with `%` is that folder.
        assert_eq!(
            key_path("tmp/my lake%1", "raw").as_ref(),
            "tmp/my lake%1/raw"
        );
    }
}

//! A lake: one root (a local folder or a bucket prefix) holding `raw/`, `curated/`,
//! `quarantine/` and the local catalog. Every job reaches storage through [`Lake`], so the same
//! code runs on a laptop and against object storage.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result, Unreachable};

/// The root of a lake and the store that holds it.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    /// The root inside `store` (no leading or trailing `/`).
    root: String,
    /// `file://` or `s3://bucket`: the URL query engines know the store by.
    store_url: String,
    local_dir: Option<PathBuf>,
    display: String,
    bucket: Option<String>,
    access_key_id: Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Lake {
    /// Opens the lake named by `--lake`: a local path (created when `create` is set), a
    /// `file://` URL or `s3://bucket/prefix`.
    pub fn open(location: &str, create: bool) -> Result<Self> {
        Self::from_location(eventlake_store::open(location, create))
    }

    /// Like [`Lake::open`], with S3 credentials and region from an AWS SDK configuration (the one
    /// the Glue and Athena clients of the same run use).
    pub fn open_with_sdk(
        location: &str,
        create: bool,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Self> {
        Self::from_location(eventlake_store::open_with_sdk(location, create, sdk))
    }

    fn from_location(
        loc: std::result::Result<eventlake_store::Location, eventlake_store::OpenError>,
    ) -> Result<Self> {
        let loc = loc.map_err(|e| match e {
            eventlake_store::OpenError::Io { location, source } => Error::io(
                "cannot open lake folder (run `etl generate` or pass --lake)",
                location,
                source,
            ),
            other => Error::Config(other.to_string()),
        })?;
        Ok(Self {
            store: loc.store,
            root: loc.root,
            store_url: loc.store_url,
            local_dir: loc.local_dir,
            display: loc.display,
            bucket: loc.bucket,
            access_key_id: loc.access_key_id,
        })
    }

    /// Whether the lake lives in S3 (or a compatible store).
    pub fn is_s3(&self) -> bool {
        self.bucket.is_some()
    }

    /// The bucket of an S3 lake.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    /// The absolute URL of a key relative to the root (`s3://bucket/root/key`).
    pub fn key_url(&self, key: &str) -> String {
        let slash = if key.ends_with('/') { "/" } else { "" };
        match &self.bucket {
            Some(b) => format!("s3://{b}/{}{slash}", self.path(key)),
            None => format!("file:///{}{slash}", self.path(key)),
        }
    }

    /// The key relative to the root of an absolute URL under this lake, if it is under it.
    pub fn key_of_url(&self, url: &str) -> Option<String> {
        let rest = match &self.bucket {
            Some(b) => url.strip_prefix("s3://")?.strip_prefix(b.as_str())?,
            None => url.strip_prefix("file://")?,
        };
        let rest = rest.trim_start_matches('/');
        let key = if self.root.is_empty() {
            rest
        } else {
            rest.strip_prefix(self.root.as_str())?
        };
        Some(key.trim_start_matches('/').to_owned())
    }

    /// Checks that the lake can be reached with the credentials in use, so that a wrong key or a
    /// missing bucket is reported once, clearly, before any work starts.
    pub async fn check(&self) -> Result<()> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        let path = self.path("");
        match self.store.list_with_delimiter(Some(&path)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let key_id = self
                    .access_key_id
                    .lock()
                    .ok()
                    .and_then(|k| k.clone())
                    .unwrap_or_else(|| "(none found)".into());
                let text = e.to_string();
                // object_store keeps S3's error code in its message only: classify it here,
                // once, into a variant that decides everything after.
                let reason = if text.contains("NoSuchBucket")
                    || matches!(e, object_store::Error::NotFound { .. })
                {
                    Unreachable::NoSuchBucket {
                        bucket: bucket.clone(),
                    }
                } else if matches!(
                    e,
                    object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. }
                ) || text.contains("403")
                    || text.contains("InvalidAccessKeyId")
                    || text.contains("SignatureDoesNotMatch")
                    || text.contains("AccessDenied")
                {
                    Unreachable::Refused {
                        bucket: bucket.clone(),
                        key_id,
                    }
                } else {
                    Unreachable::Unreachable {
                        bucket: bucket.clone(),
                    }
                };
                Err(Error::Unreachable {
                    lake: self.display.clone(),
                    reason: Box::new(reason),
                    source: e,
                })
            }
        }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL query engines know the store by (`file://` or `s3://bucket`).
    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// The lake's folder, when it is local.
    pub fn local_dir(&self) -> Option<&FsPath> {
        self.local_dir.as_deref()
    }

    /// The full store path of a key relative to the lake root.
    pub fn path(&self, key: &str) -> Path {
        eventlake_store::key_path(&self.root, key)
    }

    /// The key relative to the lake root of a full store path.
    pub fn key(&self, path: &Path) -> String {
        let p = path.as_ref();
        if self.root.is_empty() {
            return p.to_owned();
        }
        p.strip_prefix(&self.root)
            .map(|k| k.trim_start_matches('/').to_owned())
            .unwrap_or_else(|| p.to_owned())
    }

    /// Every object under `prefix` (relative to the root), keys relative to the root.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let path = self.path(prefix);
        let mut out: Vec<ObjectMeta> = match self.store.list(Some(&path)).try_collect().await {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(Error::storage(path, e)),
        };
        for m in &mut out {
            m.location = eventlake_store::key_path("", &self.key(&m.location));
        }
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// The immediate sub-folders of `prefix` (relative to the root), as their last segment.
    pub async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.list_level(prefix).await?.0)
    }

    /// The immediate sub-folders of `prefix` (as their last segment) and the objects directly
    /// under it (as their last segment), each sorted.
    pub async fn list_level(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        let path = self.path(prefix);
        let listing = match self.store.list_with_delimiter(Some(&path)).await {
            Ok(l) => l,
            Err(object_store::Error::NotFound { .. }) => return Ok(Default::default()),
            Err(e) => return Err(Error::storage(path, e)),
        };
        let names = |paths: &mut dyn Iterator<Item = &Path>| {
            let mut out: Vec<String> = paths
                .filter_map(|p| p.filename().map(str::to_owned))
                .collect();
            out.sort();
            out
        };
        Ok((
            names(&mut listing.common_prefixes.iter()),
            names(&mut listing.objects.iter().map(|m| &m.location)),
        ))
    }

    pub async fn get(&self, key: &str) -> Result<bytes::Bytes> {
        let (path, r) = self.get_result(key).await?;
        r.bytes().await.map_err(|e| Error::storage(&path, e))
    }

    /// The object at `key` as a stream of its bytes in the pieces the store gives them, for an
    /// object too large to be held whole.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes>>> {
        use futures::StreamExt;
        let (path, r) = self.get_result(key).await?;
        Ok(r.into_stream()
            .map_err(move |e| Error::storage(&path, e))
            .boxed())
    }

    /// The store's answer to a read of `key`, and the path it read.
    async fn get_result(&self, key: &str) -> Result<(Path, object_store::GetResult)> {
        let path = self.path(key);
        match self.store.get(&path).await {
            Ok(r) => Ok((path, r)),
            Err(e) => Err(Error::storage(&path, e)),
        }
    }

    /// Copies the object at `from` to `to` (within the store: on S3 no byte passes through
    /// this process, and a folder links the file).
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.store
            .copy(&self.path(from), &self.path(to))
            .await
            .map_err(|e| Error::storage(self.path(from), e))
    }

    /// Writes a whole object (atomically: readers see the old object, or the new one).
    pub async fn put(&self, key: &str, data: impl Into<PutPayload>) -> Result<()> {
        let path = self.path(key);
        self.store
            .put(&path, data.into())
            .await
            .map(|_| ())
            .map_err(|e| Error::storage(&path, e))
    }

    /// Deletes every object under `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let objects = self.list(prefix).await?;
        let n = objects.len();
        let paths: Vec<object_store::Result<Path>> = objects
            .iter()
            .map(|m| Ok(self.path(m.location.as_ref())))
            .collect();
        let paths = futures::stream::iter(paths);
        let deleted: Vec<Path> = self
            .store
            .delete_stream(Box::pin(paths))
            .try_collect()
            .await
            .map_err(|e| Error::storage(self.path(prefix), e))?;
        debug_assert!(deleted.len() <= n);
        if let Some(dir) = &self.local_dir {
            remove_local_leftovers(&dir.join(prefix.trim_matches('/')));
        }
        Ok(n)
    }
}

/// Removes `dir` and the folders under it once they hold no file (a local store leaves them),
/// and the files of uploads that never completed in them: the local store writes an object to
/// `<name>#<n>` before it renames it, leaves that file behind when its process is killed, and
/// never lists it, so nothing else would remove it (nor the version folder that holds it).
fn remove_local_leftovers(dir: &FsPath) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else {
                continue;
            };
            if kind.is_dir() {
                remove_local_leftovers(&e.path());
            } else if kind.is_file() && is_unfinished_upload(&e.file_name()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Whether a file's name is that of an upload the local store has not completed: its name, `#`,
/// and digits only.
fn is_unfinished_upload(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.split_once('#'))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

//! A lake folder: object_store's local file system, with ranged reads done in place.
//!
//! `LocalFileSystem` hands every read to tokio's blocking pool, which costs a thread hand-off per
//! request. A query reads a few column chunks per row group from files that are nearly always in
//! the page cache, where a read takes microseconds and the hand-off costs more than the read
//! (and, on a busy machine, a wake-up of another thread). Bounded ranged reads, the only kind a
//! Parquet reader makes, are therefore served on the calling thread, and so are whole reads of
//! files up to 16 MiB: a compaction reads thousands of small raw objects, and each took two
//! hand-offs (open and read, then collect). Everything else (listing, writes, bigger files,
//! conditional requests) goes to `LocalFileSystem` unchanged.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions, Result,
};

/// Ranges up to this size are read on the calling thread; larger ones (a whole big file) go to
/// the blocking pool so they do not hold up an async worker.
const INLINE_MAX: u64 = 16 * 1024 * 1024;

/// See the module documentation.
#[derive(Debug)]
pub struct LocalFolder {
    inner: Arc<LocalFileSystem>,
}

impl LocalFolder {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(LocalFileSystem::new()),
        }
    }

    /// Reads `range` (the whole file when `None`) of `location` in place, or `None` to leave the
    /// request (and its errors) to `LocalFileSystem`: a missing file, a range past the end, a
    /// file over [`INLINE_MAX`], a read error.
    fn read_in_place(
        &self,
        location: &Path,
        range: Option<&Range<u64>>,
    ) -> Option<(Bytes, ObjectMeta, Range<u64>)> {
        if let Some(range) = range
            && (range.end <= range.start || range.end - range.start > INLINE_MAX)
        {
            return None;
        }
        let path = self.inner.path_to_filesystem(location).ok()?;
        let mut file = std::fs::File::open(&path).ok()?;
        let metadata = file.metadata().ok()?;
        let range = match range {
            Some(r) => r.clone(),
            None if metadata.len() <= INLINE_MAX => 0..metadata.len(),
            None => return None,
        };
        if !metadata.is_file() || range.end > metadata.len() {
            return None;
        }
        // Read into spare capacity: a zeroed buffer of this size is fresh memory from the
        // system, whose page faults and zeroing cost more than the read itself.
        let len = (range.end - range.start) as usize;
        let mut buf = Vec::with_capacity(len);
        file.seek(SeekFrom::Start(range.start)).ok()?;
        (&mut file).take(len as u64).read_to_end(&mut buf).ok()?;
        if buf.len() != len {
            return None;
        }
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: metadata.modified().ok()?.into(),
            size: metadata.len(),
            e_tag: Some(e_tag(&metadata)),
            version: None,
        };
        Some((Bytes::from(buf), meta, range))
    }
}

/// The e-tag `LocalFileSystem` gives the same file (inode, modification time in microseconds and
/// size, in hex), so a listing's e-tag and a read's agree whichever served the read.
fn e_tag(metadata: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0u64;
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("{inode:x}-{mtime:x}-{:x}", metadata.len())
}

impl Default for LocalFolder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LocalFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalFolder({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LocalFolder {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        let range = match &options.range {
            None => Some(None),
            Some(GetRange::Bounded(r)) => Some(Some(r)),
            Some(_) => None,
        };
        if plain
            && let Some(range) = range
            && let Some((bytes, meta, range)) = self.read_in_place(location, range)
        {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(Box::pin(futures::stream::once(
                    futures::future::ready(Ok(bytes)),
                ))),
                meta,
                range,
                attributes: Attributes::default(),
            });
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if total <= INLINE_MAX {
            let in_place: Option<Vec<Bytes>> = ranges
                .iter()
                .map(|r| self.read_in_place(location, Some(r)).map(|(b, ..)| b))
                .collect();
            if let Some(out) = in_place {
                return Ok(out);
            }
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;

    #[tokio::test]
    async fn ranged_reads_match_the_file_and_errors_stay_local_file_system_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFolder::new();
        let location =
            Path::from_absolute_path(dir.path().join("a.bin")).expect("a path in the folder");
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        store
            .put(&location, PutPayload::from(data.clone()))
            .await
            .unwrap();
        assert_eq!(
            store.get_range(&location, 100..300).await.unwrap(),
            &data[100..300]
        );
        let parts = store
            .get_ranges(&location, &[0..10, 9_990..10_000, 5..6])
            .await
            .unwrap();
        assert_eq!(parts[0], &data[0..10]);
        assert_eq!(parts[1], &data[9_990..10_000]);
        assert_eq!(parts[2], &data[5..6]);
        // Past the end, and a missing file: LocalFileSystem's own answers.
        assert!(store.get_range(&location, 9_000..20_000).await.is_ok());
        assert!(store.get_range(&location, 20_000..20_010).await.is_err());
        let missing = Path::from_absolute_path(dir.path().join("missing.bin")).unwrap();
        let err = store.get_range(&missing, 0..10).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        // A whole-object read, with the metadata LocalFileSystem gives.
        let got = store.get(&location).await.unwrap();
        let want = LocalFileSystem::new().get(&location).await.unwrap();
        assert_eq!(got.meta, want.meta);
        assert_eq!(got.range, want.range);
        assert_eq!(got.bytes().await.unwrap(), data);
        let err = store.get(&missing).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }
}

//! A team's own KMS key for its objects in the lake.
//!
//! `EVENTLAKE_TEAM_KMS_KEYS` maps teams to KMS key ARNs (`{"checkout":"arn:aws:kms:…"}`, written
//! by Terraform for the teams of `team_kms_key_teams`). Every object written under a path with a
//! `team=<team>` segment of such a team (its raw batches, curated files, manifests, quarantine and
//! id index) is then written with SSE-KMS under that key, copies included; other objects keep the
//! bucket's default encryption. Reads, lists and deletes need no key and use one store.
//!
//! S3 takes the encryption setting per request, and `object_store` per store, so there is one
//! store per keyed team over the same bucket, and [`TeamKeys`] routes each write to the store
//! of the team its path names.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// The environment variable with the teams' keys.
pub const TEAM_KMS_KEYS_VAR: &str = "EVENTLAKE_TEAM_KMS_KEYS";

/// The teams' keys from `EVENTLAKE_TEAM_KMS_KEYS`; empty when it is unset or blank.
pub fn team_kms_keys_from_env() -> Result<BTreeMap<String, String>, String> {
    match std::env::var(TEAM_KMS_KEYS_VAR) {
        Ok(text) if !text.trim().is_empty() => parse_team_kms_keys(&text),
        _ => Ok(BTreeMap::new()),
    }
}

/// Parses a map of team to key ARN; a key must be a non-empty string.
pub fn parse_team_kms_keys(text: &str) -> Result<BTreeMap<String, String>, String> {
    let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
        format!("{TEAM_KMS_KEYS_VAR}: not a JSON object of team to KMS key ARN: {e}")
    })?;
    if let Some((team, _)) = map.iter().find(|(_, k)| k.trim().is_empty()) {
        return Err(format!(
            "{TEAM_KMS_KEYS_VAR}: the key of team {team:?} is empty"
        ));
    }
    Ok(map)
}

/// The team a path belongs to: the value of its first `team=` segment.
fn team_of(path: &Path) -> Option<&str> {
    path.as_ref()
        .split('/')
        .find_map(|segment| segment.strip_prefix("team="))
}

/// Writes each keyed team's objects through a store that encrypts with the team's key.
#[derive(Debug)]
pub struct TeamKeys {
    default: Arc<dyn ObjectStore>,
    teams: HashMap<String, Arc<dyn ObjectStore>>,
}

impl TeamKeys {
    /// `default` serves every read and every unkeyed write; `teams` the writes of each team.
    pub fn new(
        default: Arc<dyn ObjectStore>,
        teams: HashMap<String, Arc<dyn ObjectStore>>,
    ) -> Self {
        Self { default, teams }
    }

    fn writer(&self, path: &Path) -> &Arc<dyn ObjectStore> {
        team_of(path)
            .and_then(|t| self.teams.get(t))
            .unwrap_or(&self.default)
    }
}

impl fmt::Display for TeamKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut teams: Vec<&str> = self.teams.keys().map(String::as_str).collect();
        teams.sort_unstable();
        write!(f, "{} (own keys: {})", self.default, teams.join(", "))
    }
}

#[async_trait::async_trait]
impl ObjectStore for TeamKeys {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.writer(location)
            .put_opts(location, payload, opts)
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.writer(location)
            .put_multipart_opts(location, opts)
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.default.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.default.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.default.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.default.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.default.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.default.list_with_delimiter(prefix).await
    }

    /// A copy is a write of its destination: it takes the destination team's key.
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.writer(to).copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};
    use std::sync::Mutex;

    /// One shared bucket seen through several stores, each recording the writes it made.
    #[derive(Debug)]
    struct Recording {
        name: &'static str,
        inner: Arc<InMemory>,
        log: Arc<Mutex<Vec<(String, &'static str)>>>,
    }

    impl fmt::Display for Recording {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Recording {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.log.lock().unwrap().push((l.to_string(), self.name));
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.log.lock().unwrap().push((l.to_string(), self.name));
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(l, o).await
        }
        fn delete_stream(
            &self,
            s: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(s)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> Result<()> {
            self.log.lock().unwrap().push((t.to_string(), self.name));
            self.inner.copy_opts(f, t, o).await
        }
    }

    #[tokio::test]
    async fn a_keyed_teams_writes_and_copies_take_its_key_and_reads_see_everything() {
        let bucket = Arc::new(InMemory::new());
        let log = Arc::new(Mutex::new(Vec::new()));
        let store = |name| -> Arc<dyn ObjectStore> {
            Arc::new(Recording {
                name,
                inner: bucket.clone(),
                log: log.clone(),
            })
        };
        let keys = TeamKeys::new(
            store("default"),
            HashMap::from([("checkout".to_string(), store("checkout-key"))]),
        );
        let raw = Path::from("lake/raw/team=checkout/dt=2026-11-20/hour=07/b.ndjson.gz");
        let other = Path::from("lake/raw/team=search/dt=2026-11-20/hour=07/b.ndjson.gz");
        let curated =
            Path::from("lake/curated/events/team=checkout/dt=2026-11-20/v=2/part-0.parquet");
        let lease = Path::from("lake/_leases/events/team=checkout/dt=2026-11-20.json");
        let plan = Path::from("lake/_workflow/plans/p.json");
        for p in [&raw, &other, &lease, &plan] {
            keys.put(p, PutPayload::from_static(b"x")).await.unwrap();
        }
        keys.copy(&raw, &curated).await.unwrap();
        let mut upload = keys.put_multipart(&other).await.unwrap();
        upload
            .put_part(PutPayload::from_static(b"y"))
            .await
            .unwrap();
        upload.complete().await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                (raw.to_string(), "checkout-key"),
                (other.to_string(), "default"),
                // A lease names the team too: its key is the team's as well.
                (lease.to_string(), "checkout-key"),
                (plan.to_string(), "default"),
                (curated.to_string(), "checkout-key"),
                (other.to_string(), "default"),
            ]
        );
        // Reads go through one store and see every team's objects.
        assert_eq!(
            keys.get(&curated).await.unwrap().bytes().await.unwrap(),
            "x"
        );
        assert_eq!(keys.get(&other).await.unwrap().bytes().await.unwrap(), "y");
    }

    #[test]
    fn the_map_is_parsed_and_refused_clearly() {
        let keys = parse_team_kms_keys(r#"{"checkout":"arn:aws:kms:eu-west-1:1:key/a"}"#).unwrap();
        assert_eq!(keys["checkout"], "arn:aws:kms:eu-west-1:1:key/a");
        let e = parse_team_kms_keys(r#"["a"]"#).unwrap_err();
        assert!(e.contains(TEAM_KMS_KEYS_VAR), "{e}");
        let e = parse_team_kms_keys(r#"{"checkout":" "}"#).unwrap_err();
        assert!(e.contains("checkout") && e.contains("empty"), "{e}");
    }
}

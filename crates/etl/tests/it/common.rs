use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use eventlake_catalog::Lake;
use eventlake_catalog::{Catalog, LocalCatalog};
use eventlake_compaction::backfill::{self, Quiet, Summary};
use eventlake_compaction::compact::CompactOptions;
use eventlake_compaction::plan::{DEFAULT_DEDUPE_WINDOW, Selection, plan};
use eventlake_contract::{PartitionDate, PartitionKey, TeamName};
use eventlake_query::{run_sql, session};
use flate2::Compression;
use flate2::write::GzEncoder;

pub fn etl_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etl"));
    c.env_remove("EVENTLAKE_LAKE").env("ETL_LOG", "warn");
    c
}

pub fn etl(lake: &Path, args: &[&str]) -> Output {
    etl_bin()
        .arg("--lake")
        .arg(lake)
        .args(args)
        .output()
        .expect("etl runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub struct TestLake {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub lake: Lake,
    pub catalog: Arc<LocalCatalog>,
}

impl TestLake {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lake");
        let lake = Lake::open(path.to_str().unwrap(), true).expect("lake");
        let catalog = Arc::new(LocalCatalog::new(lake.local_dir().unwrap()));
        Self {
            _dir: dir,
            path,
            lake,
            catalog,
        }
    }

    /// Writes a raw object (gzip when the key ends in .gz) from raw bytes.
    pub fn put_raw(&self, key: &str, body: &[u8]) {
        let data = if key.ends_with(".gz") {
            gzip(body)
        } else {
            body.to_vec()
        };
        self.put_bytes(key, &data);
    }

    pub fn put_bytes(&self, key: &str, data: &[u8]) {
        let p = self.path.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    pub async fn backfill(&self, force: bool) -> Summary {
        self.backfill_with(self.catalog.clone(), force).await
    }

    pub async fn backfill_with(&self, catalog: Arc<dyn Catalog>, force: bool) -> Summary {
        backfill_lake(&self.lake, catalog, force, &CompactOptions::default()).await
    }

    /// Runs SQL over the committed partitions; the result rendered as CSV.
    pub async fn query(&self, sql: &str) -> String {
        let ctx = session(&self.lake, self.catalog.as_ref())
            .await
            .expect("session");
        let (schema, batches) = run_sql(&ctx, sql).await.expect("query");
        eventlake_query::render(&schema, &batches, eventlake_query::Format::Csv).unwrap()
    }

    /// Reads every quarantine record of the committed partitions.
    pub async fn quarantine(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for e in self.catalog.list().await.unwrap() {
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(self.path.join(&e.manifest)).unwrap())
                    .unwrap();
            if let Some(q) = manifest["quarantine"].as_str() {
                for line in std::fs::read_to_string(self.path.join(q)).unwrap().lines() {
                    out.push(serde_json::from_str(line).unwrap());
                }
            }
        }
        out
    }
}

/// Plans every partition with raw data in `lake` and runs the plan with `opts`, two partitions at
/// a time.
pub async fn backfill_lake(
    lake: &Lake,
    catalog: Arc<dyn Catalog>,
    force: bool,
    opts: &CompactOptions,
) -> Summary {
    let p = plan(
        lake,
        catalog.as_ref(),
        &Selection::default(),
        force,
        DEFAULT_DEDUPE_WINDOW,
    )
    .await
    .expect("plan");
    backfill::run(lake, catalog, p, 2, opts, &Quiet).await
}

/// Every file under `dir`, at any depth (none when it does not exist).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(body).unwrap();
    gz.finish().unwrap()
}

pub fn key(team: &str, dt: &str) -> PartitionKey {
    PartitionKey {
        team: TeamName::new(team).unwrap(),
        dt: PartitionDate::parse(dt).unwrap(),
    }
}

/// A valid raw line for team `checkout`, received on 2026-11-20.
pub fn line(id: &str, received: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"page_view","event_time":"2026-11-20T10:00:00.000Z","user_id":"u-1","properties":{{"path":"/x"}},"context":{{"ip":"203.0.113.1"}},"team":"checkout","received_at":"{received}","schema_version":1}}"#
    )
}

pub const RAW: &str = "raw/team=checkout/dt=2026-11-20/hour=10";

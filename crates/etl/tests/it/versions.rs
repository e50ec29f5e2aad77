//! Versions, commits, failures and gc: readers only ever see committed versions.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eventlake_catalog::{Catalog, CommitOutcome, LocalCatalog, PartitionEntry};
use eventlake_compaction::backfill::Status;
use eventlake_compaction::gc::gc;
use eventlake_compaction::plan::Action;
use eventlake_contract::PartitionKey;

use crate::common::{RAW, TestLake, key, line};

fn two_partitions(t: &TestLake) {
    t.put_raw(
        &format!("{RAW}/a.ndjson.gz"),
        format!("{}\n", line("a-1", "2026-11-20T10:00:01.000Z")).as_bytes(),
    );
    t.put_raw(
        "raw/team=search/dt=2026-11-20/hour=10/a.ndjson.gz",
        line("s-1", "2026-11-20T10:00:01.000Z")
            .replace("\"checkout\"", "\"search\"")
            .as_bytes(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_raw_data_makes_a_new_version_and_gc_removes_the_old_one() {
    let t = TestLake::new();
    two_partitions(&t);
    assert_eq!(t.backfill(false).await.committed, 2);
    let first = t
        .catalog
        .get(&key("checkout", "2026-11-20"))
        .await
        .unwrap()
        .unwrap();

    t.put_raw(
        &format!("{RAW}/b.ndjson.gz"),
        format!("{}\n", line("a-2", "2026-11-20T10:00:05.000Z")).as_bytes(),
    );
    let p = eventlake_compaction::plan::plan(
        &t.lake,
        t.catalog.as_ref(),
        &Default::default(),
        false,
        eventlake_compaction::plan::DEFAULT_DEDUPE_WINDOW,
    )
    .await
    .unwrap();
    let actions: Vec<Action> = p.partitions.iter().map(|p| p.action).collect();
    assert_eq!(actions, vec![Action::Changed, Action::Unchanged]);

    let s = t.backfill(false).await;
    assert_eq!((s.committed, s.unchanged), (1, 1));
    let second = t
        .catalog
        .get(&key("checkout", "2026-11-20"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first.version, second.version);
    assert_eq!(
        t.query("select event_id from events where team = 'checkout' order by 1")
            .await,
        "event_id\na-1\na-2\n"
    );

    // The old version is still there (readers may hold it) until gc, after the grace period.
    assert!(t.path.join(&first.location).exists());
    let kept = gc(
        &t.lake,
        t.catalog.as_ref(),
        Duration::from_secs(3600),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        (kept.removed.len(), kept.kept_in_grace, kept.live),
        (0, 1, 2)
    );
    let dry = gc(&t.lake, t.catalog.as_ref(), Duration::ZERO, true)
        .await
        .unwrap();
    assert_eq!(dry.removed.len(), 1);
    assert!(t.path.join(&first.location).exists());
    let done = gc(&t.lake, t.catalog.as_ref(), Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(
        done.removed,
        vec![format!("team=checkout/dt=2026-11-20/v={}", first.version)]
    );
    assert!(!t.path.join(&first.location).exists());
    assert!(t.path.join(&second.location).exists());
    assert_eq!(t.query("select count(*) as n from events").await, "n\n3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_versions_are_never_read() {
    let t = TestLake::new();
    two_partitions(&t);
    t.backfill(false).await;
    // What a crashed run leaves: files under a version no catalog entry points to.
    let stray = "curated/events/team=checkout/dt=2026-11-20/v=20261120T000000000Z-deadbeef/part-00000.parquet";
    t.put_bytes(stray, b"not even parquet");
    t.put_bytes(
        "curated/events/team=checkout/dt=2026-11-21/v=20261120T000000000Z-deadbeef/part-00000.parquet",
        b"junk",
    );
    // A folder's upload that a killed run never completed: the store does not list it.
    let unfinished = "curated/events/team=search/dt=2026-11-20/v=20261120T000000000Z-deadbeef";
    t.put_bytes(
        &format!("{unfinished}/part-00000.parquet#3"),
        b"half a file",
    );
    t.put_bytes(&format!("{unfinished}/_ids.parquet"), b"junk");
    assert_eq!(t.query("select count(*) as n from events").await, "n\n2\n");
    let r = gc(&t.lake, t.catalog.as_ref(), Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(r.removed.len(), 3, "{:?}", r.removed);
    assert!(!t.path.join(stray).exists());
    assert!(!t.path.join(unfinished).exists(), "its folder is gone");
    // Nothing is left to remove.
    let r = gc(&t.lake, t.catalog.as_ref(), Duration::ZERO, false)
        .await
        .unwrap();
    assert!(r.removed.is_empty(), "{:?}", r.removed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_filters_prune_before_any_file_is_opened() {
    let t = TestLake::new();
    two_partitions(&t);
    t.backfill(false).await;
    let plan = t
        .query(
            "explain select max(event_id) from events where team = 'search' and dt = '2026-11-20'",
        )
        .await;
    assert!(plan.contains("team=search"), "{plan}");
    assert!(!plan.contains("team=checkout"), "{plan}");
    let none = t
        .query("explain select count(*) from events where dt > '2030-01-01'")
        .await;
    assert!(!none.contains(".parquet"), "{none}");
    assert_eq!(
        t.query("select count(*) as n from events where dt > '2030-01-01'")
            .await,
        "n\n0\n"
    );
}

/// A catalog whose commits fail for one partition, as if the process died at that point.
#[derive(Debug)]
pub(crate) struct FailingCommit {
    pub(crate) inner: LocalCatalog,
    pub(crate) fail: PartitionKey,
}

#[async_trait]
impl Catalog for FailingCommit {
    async fn get(&self, p: &PartitionKey) -> eventlake_catalog::Result<Option<PartitionEntry>> {
        self.inner.get(p).await
    }
    async fn list(&self) -> eventlake_catalog::Result<Vec<PartitionEntry>> {
        self.inner.list().await
    }
    async fn commit(
        &self,
        e: &PartitionEntry,
        expected: Option<&str>,
    ) -> eventlake_catalog::Result<CommitOutcome> {
        if e.partition == self.fail {
            return Err(eventlake_catalog::Error::Task {
                panicked: false,
                message: "injected commit failure".into(),
            });
        }
        self.inner.commit(e, expected).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_partition_loses_no_other_work_and_keeps_its_last_version() {
    let t = TestLake::new();
    two_partitions(&t);
    t.backfill(false).await;
    let before = t.query("select event_id from events order by 1").await;

    // New data for both partitions; the checkout commit fails.
    t.put_raw(
        &format!("{RAW}/b.ndjson.gz"),
        line("a-2", "2026-11-20T10:00:05.000Z").as_bytes(),
    );
    t.put_raw(
        "raw/team=search/dt=2026-11-20/hour=11/b.ndjson.gz",
        line("s-2", "2026-11-20T11:00:01.000Z")
            .replace("\"checkout\"", "\"search\"")
            .as_bytes(),
    );
    let failing = Arc::new(FailingCommit {
        inner: LocalCatalog::new(&t.path),
        fail: key("checkout", "2026-11-20"),
    });
    let s = t.backfill_with(failing, false).await;
    assert_eq!(s.failed, vec!["team=checkout/dt=2026-11-20".to_string()]);
    let failed = s
        .partitions
        .iter()
        .find(|r| r.status == Status::Failed)
        .unwrap();
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("injected commit failure")
    );
    assert_eq!(s.committed, 1);
    assert_eq!(before, "event_id\na-1\ns-1\n");
    // checkout still shows its last committed version; search has its new row.
    assert_eq!(
        t.query("select event_id from events order by 1").await,
        "event_id\na-1\ns-1\ns-2\n"
    );
    // A later run picks the failed partition up.
    let s = t.backfill(false).await;
    assert_eq!((s.committed, s.unchanged), (1, 1));
    assert_eq!(
        t.query("select event_id from events order by 1").await,
        "event_id\na-1\na-2\ns-1\ns-2\n"
    );
}

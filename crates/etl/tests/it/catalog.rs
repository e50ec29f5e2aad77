//! The local catalog under concurrent commits, from threads and from processes.

use std::sync::Arc;

use eventlake_catalog::Error;
use eventlake_catalog::{Catalog, CommitOutcome, DataFile, LocalCatalog, PartitionEntry};

use crate::common::{TestLake, etl, key};

pub(crate) fn entry(team: &str, dt: &str, version: &str, fingerprint: &str) -> PartitionEntry {
    PartitionEntry {
        partition: key(team, dt),
        version: version.into(),
        location: format!("curated/events/team={team}/dt={dt}/v={version}/"),
        manifest: format!("curated/events/team={team}/dt={dt}/v={version}/_manifest.json"),
        raw_fingerprint: fingerprint.into(),
        rows: 1,
        files: vec![DataFile {
            key: "k".into(),
            size: 1,
            rows: 1,
            event_types: [("click".to_owned(), 1)].into(),
        }],
        committed_at: "2026-11-25T00:00:00.000Z".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_lose_no_registration() {
    let t = TestLake::new();
    let catalog = Arc::new(LocalCatalog::new(&t.path));
    let mut tasks = Vec::new();
    for day in 1..=28 {
        for team in ["a", "b", "c"] {
            let c = Arc::clone(&catalog);
            tasks.push(tokio::spawn(async move {
                let dt = format!("2026-02-{day:02}");
                c.commit(&entry(team, &dt, "v1", "f"), None).await
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), CommitOutcome::Committed);
    }
    assert_eq!(catalog.list().await.unwrap().len(), 84);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_commits_of_one_partition_are_serialised() {
    let t = TestLake::new();
    let catalog = Arc::new(LocalCatalog::new(&t.path));
    // Eight runs planned against an empty partition; two built other raw data.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = Arc::clone(&catalog);
        let fp = if i < 6 { "same" } else { "other" };
        tasks.push(tokio::spawn(async move {
            c.commit(&entry("a", "2026-11-20", &format!("v{i}"), fp), None)
                .await
        }));
    }
    let mut committed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(CommitOutcome::Committed) => committed += 1,
            Ok(CommitOutcome::AlreadyCurrent) => {}
            Err(Error::CommitConflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(committed, 1);
    // A stale expectation is refused, a current one accepted.
    let current = catalog.get(&key("a", "2026-11-20")).await.unwrap().unwrap();
    let stale = catalog
        .commit(&entry("a", "2026-11-20", "v9", "new"), Some("v-none"))
        .await;
    assert!(
        matches!(stale, Err(Error::CommitConflict { .. })),
        "{stale:?}"
    );
    let ok = catalog
        .commit(
            &entry("a", "2026-11-20", "v9", "new"),
            Some(&current.version),
        )
        .await
        .unwrap();
    assert_eq!(ok, CommitOutcome::Committed);
}

#[test]
fn two_processes_backfilling_one_lake_register_every_partition() {
    let t = TestLake::new();
    let out = etl(
        &t.path,
        &[
            "generate",
            "--events",
            "6000",
            "--days",
            "4",
            "--batch-size",
            "100",
        ],
    );
    assert!(out.status.success());
    let lake = t.path.clone();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let lake = lake.clone();
            std::thread::spawn(move || etl(&lake, &["backfill", "--jobs", "2", "--json"]))
        })
        .collect();
    for r in runs {
        let out = r.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = etl(&lake, &["catalog", "list", "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(entries.len(), 12);
    let q = etl(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "--sql",
            "select count(*) - count(distinct event_id) as extra from events",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&q.stdout), "extra\n0\n");
}

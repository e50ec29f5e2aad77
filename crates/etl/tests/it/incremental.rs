//! Incremental compaction: a run that adds only the new raw objects to a committed version gives
//! the rows, counts and quarantine a full compaction of the same raw data gives, or compacts in
//! full when it could not.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eventlake_catalog::{Catalog, LocalCatalog};
use eventlake_compaction::backfill::Summary;
use eventlake_compaction::compact::CompactOptions;
use eventlake_compaction::gc::gc;
use eventlake_compaction::generate::{GenerateOptions, generate};
use eventlake_contract::PartitionDate;
use serde_json::Value;

use crate::common::{RAW, TestLake, backfill_lake, key, line, walk};
use crate::versions::FailingCommit;

async fn run(t: &TestLake, catalog: Arc<dyn Catalog>, incremental: bool, force: bool) -> Summary {
    let opts = CompactOptions {
        incremental,
        ..CompactOptions::default()
    };
    backfill_lake(&t.lake, catalog, force, &opts).await
}

async fn manifests(t: &TestLake) -> Vec<Value> {
    let mut out = Vec::new();
    for e in t.catalog.list().await.unwrap() {
        out.push(
            serde_json::from_slice(&std::fs::read(t.path.join(&e.manifest)).unwrap()).unwrap(),
        );
    }
    out
}

fn balanced(c: &Value) -> bool {
    let n = |k: &str| c[k].as_u64().unwrap();
    n("rows") + n("duplicates") + n("cross_partition_duplicates") + n("quarantined") == n("lines")
}

/// Moves the raw objects of hours 12 and later out of the lake (into `aside`), or back.
fn shift_late_hours(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let late = rel.components().any(|c| {
            c.as_os_str()
                .to_str()
                .is_some_and(|s| s >= "hour=12" && s.starts_with("hour="))
        });
        if late {
            let dest = to.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::rename(&entry, dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_new_objects_gives_what_a_full_compaction_gives() {
    appended_equals_full(usize::MAX).await;
}

/// The committed version an append starts from spilled (its id index then lists its lines by id
/// hash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_to_a_spilled_version_gives_what_a_full_compaction_gives() {
    appended_equals_full(64 * 1024).await;
}

/// A day's morning compacted with a `first_spill_bytes` budget, its afternoon appended, and the
/// same raw data compacted in full: the same rows, counts and quarantine.
async fn appended_equals_full(first_spill_bytes: usize) {
    let t = TestLake::new();
    let opts = GenerateOptions {
        start: PartitionDate::parse("2026-11-20").unwrap(),
        // One day: new raw data in a day re-plans the day after it in full (its rows depend on
        // the earlier day's ids), so only single days can be appended to here.
        days: 1,
        events: 6000,
        // Re-sends, many of them of morning events in the afternoon, some with other content.
        duplicate_rate: 0.03,
        conflict_share: 0.3,
        cross_day_rate: 0.0,
        malformed_rate: 0.02,
        ..GenerateOptions::default()
    };
    generate(&t.lake, &opts).await.unwrap();
    let aside = t.path.with_file_name("aside");
    shift_late_hours(&t.path.join("raw"), &aside);

    // The morning, compacted; then the afternoon added to it.
    let spill_dir = tempfile::tempdir().unwrap();
    let first = CompactOptions {
        incremental: true,
        spill_bytes: first_spill_bytes,
        spill_dir: Some(spill_dir.path().to_path_buf()),
        ..CompactOptions::default()
    };
    let s = backfill_lake(&t.lake, t.catalog.clone(), false, &first).await;
    assert!(s.ok(), "{:?}", s.failed);
    let spilled = manifests(&t)
        .await
        .iter()
        .all(|m| m["timings"]["spilled_runs"].as_u64().unwrap_or(0) > 1);
    assert_eq!(spilled, first_spill_bytes < usize::MAX);
    shift_late_hours(&aside, &t.path.join("raw"));
    let s = run(&t, t.catalog.clone(), true, false).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(s.committed, s.partitions.len());
    let appended = manifests(&t).await;
    for m in &appended {
        assert!(m["appended"].is_object(), "{}", m["partition"]);
        assert!(
            balanced(&m["counts"]) && balanced(&m["appended"]["counts"]),
            "{m}"
        );
        assert!(m["files"].as_array().unwrap().len() >= 2);
        assert!(m["counts"]["quarantined"].as_u64().unwrap() > 0);
        assert!(m["appended"]["counts"]["duplicates"].as_u64().unwrap() > 0);
    }
    let rows = "select * from events order by event_id";
    let incremental = t.query(rows).await;

    // The same raw data compacted in full.
    let s = run(&t, t.catalog.clone(), false, true).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(t.query(rows).await, incremental);
    let full = manifests(&t).await;
    for (a, f) in appended.iter().zip(&full) {
        assert!(f["appended"].is_null());
        assert_eq!(a["partition"], f["partition"]);
        assert_eq!(a["counts"], f["counts"], "{}", a["partition"]);
        let lines = |m: &Value| {
            let q = t.path.join(m["quarantine"].as_str().unwrap());
            let mut v: Vec<String> = std::fs::read_to_string(q)
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
            v.sort();
            v
        };
        assert_eq!(lines(a), lines(f), "{}", a["partition"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_ids_are_appended_when_received_later_and_a_rewritten_object_is_not() {
    let t = TestLake::new();
    let put = |name: &str, lines: &[String]| {
        t.put_raw(
            &format!("{RAW}/{name}.jsonl"),
            format!("{}\n", lines.join("\n")).as_bytes(),
        )
    };
    put(
        "a",
        &[
            line("e-1", "2026-11-20T10:00:01.000Z"),
            line("e-2", "2026-11-20T10:00:02.000Z"),
        ],
    );
    run(&t, t.catalog.clone(), true, false).await;

    // A new object repeating committed ids, received after them: the committed copies stay, the
    // repeats count as duplicates (a conflict where the content differs), the new row is added.
    put(
        "b",
        &[
            line("e-3", "2026-11-20T10:00:03.000Z"),
            line("e-1", "2026-11-20T10:00:04.000Z"),
            line("e-2", "2026-11-20T10:00:05.000Z").replace("u-1", "u-2"),
        ],
    );
    let s = run(&t, t.catalog.clone(), true, false).await;
    assert_eq!(s.committed, 1);
    let counts = |m: &Value, at: &str| {
        let c = &m[at];
        (
            c["rows"].as_u64(),
            c["duplicates"].as_u64(),
            c["conflicts"].as_u64(),
        )
    };
    let m = &manifests(&t).await[0];
    assert_eq!(m["appended"]["objects"], 1, "{m}");
    assert_eq!(
        counts(&m["appended"], "counts"),
        (Some(1), Some(2), Some(1))
    );
    assert_eq!(counts(m, "counts"), (Some(3), Some(2), Some(1)));
    assert!(balanced(&m["counts"]) && balanced(&m["appended"]["counts"]));
    // A full compaction of the same raw data says the same.
    let s = run(&t, t.catalog.clone(), false, true).await;
    assert!(s.ok(), "{:?}", s.failed);
    let m = &manifests(&t).await[0];
    assert!(m["appended"].is_null(), "{m}");
    assert_eq!(counts(m, "counts"), (Some(3), Some(2), Some(1)));

    // A repeat received before the committed copy would replace a written row: in full.
    put("b0", &[line("e-3", "2026-11-20T10:00:02.500Z")]);
    let s = run(&t, t.catalog.clone(), true, false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let m = &manifests(&t).await[0];
    assert!(m["appended"].is_null(), "{m}");
    assert_eq!(counts(m, "counts"), (Some(3), Some(3), Some(1)));

    // A new object alone is appended.
    put("c", &[line("e-4", "2026-11-20T10:00:05.000Z")]);
    run(&t, t.catalog.clone(), true, false).await;
    let m = &manifests(&t).await[0];
    assert_eq!(m["appended"]["counts"]["rows"], 1, "{m}");
    assert_eq!(m["counts"]["rows"], 4);

    // An object rewritten in place changes rows already written: compacted in full.
    put(
        "a",
        &[
            line("e-1", "2026-11-20T10:00:01.000Z"),
            line("e-9", "2026-11-20T10:00:02.000Z"),
        ],
    );
    put("d", &[line("e-5", "2026-11-20T10:00:06.000Z")]);
    let s = run(&t, t.catalog.clone(), true, false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let m = &manifests(&t).await[0];
    assert!(m["appended"].is_null(), "{m}");
    assert_eq!(
        t.query("select event_id from events order by 1").await,
        "event_id\ne-1\ne-2\ne-3\ne-4\ne-5\ne-9\n"
    );
}

/// An appended version keeps the committed version's id index files and adds one of the lines
/// it read; a later append and the next day's check for retries across midnight read them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_index_in_several_files_is_read_whole() {
    let t = TestLake::new();
    let put = |raw: &str, name: &str, lines: &[String]| {
        t.put_raw(
            &format!("{raw}/{name}.jsonl"),
            format!("{}\n", lines.join("\n")).as_bytes(),
        )
    };
    let day2 = "raw/team=checkout/dt=2026-11-21/hour=00";
    put(
        RAW,
        "a",
        &[
            line("e-1", "2026-11-20T10:00:01.000Z"),
            line("e-2", "2026-11-20T10:00:02.000Z"),
        ],
    );
    run(&t, t.catalog.clone(), true, false).await;
    put(RAW, "b", &[line("e-3", "2026-11-20T10:00:03.000Z")]);
    run(&t, t.catalog.clone(), true, false).await;
    // Repeats of an id of each file of the index (one with other content), and a new id.
    put(
        RAW,
        "c",
        &[
            line("e-4", "2026-11-20T10:00:04.000Z"),
            line("e-3", "2026-11-20T10:00:05.000Z"),
            line("e-1", "2026-11-20T10:00:06.000Z").replace("u-1", "u-2"),
        ],
    );
    let s = run(&t, t.catalog.clone(), true, false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let m = &manifests(&t).await[0];
    assert!(m["appended"].is_object(), "{m}");
    // No one-file index: a build that reads only that field finds none, and reads raw data.
    assert!(m["ids"].is_null(), "{m}");
    let files: Vec<(String, u64)> = m["id_segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_owned(),
                f["ids"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        files.iter().map(|f| f.1).collect::<Vec<_>>(),
        [2, 1, 3],
        "{m}"
    );
    let version = m["version"].as_str().unwrap();
    for (key, _) in &files {
        assert!(key.contains(version), "{key} is the new version's");
        assert!(t.path.join(key).exists(), "{key}");
    }
    let c = &m["appended"]["counts"];
    assert_eq!(
        (
            c["rows"].as_u64(),
            c["duplicates"].as_u64(),
            c["conflicts"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{m}"
    );

    // The next day: retries of ids of each file, received after midnight, and a new id.
    put(
        day2,
        "d",
        &[
            line("e-2", "2026-11-21T00:00:01.000Z"),
            line("e-3", "2026-11-21T00:00:02.000Z"),
            line("e-4", "2026-11-21T00:00:03.000Z"),
            line("e-5", "2026-11-21T00:00:04.000Z"),
        ],
    );
    let s = run(&t, t.catalog.clone(), true, false).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(s.committed, 1, "only the new day: {:?}", s.partitions);
    let counts = |m: &Value| {
        let c = &m["counts"];
        (
            c["rows"].as_u64(),
            c["duplicates"].as_u64(),
            c["cross_partition_duplicates"].as_u64(),
        )
    };
    let days = manifests(&t).await;
    assert_eq!(counts(&days[1]), (Some(1), Some(0), Some(3)), "{}", days[1]);
    let rows = "select event_id, user_id from events order by event_id";
    let appended = t.query(rows).await;
    assert_eq!(
        appended,
        "event_id,user_id\ne-1,u-1\ne-2,u-1\ne-3,u-1\ne-4,u-1\ne-5,u-1\n"
    );

    // Both days compacted in full say the same.
    let s = run(&t, t.catalog.clone(), false, true).await;
    assert!(s.ok(), "{:?}", s.failed);
    let full = manifests(&t).await;
    for (a, f) in days.iter().zip(&full) {
        assert!(f["appended"].is_null() && f["ids"].is_object(), "{f}");
        assert_eq!(a["counts"], f["counts"], "{}", a["partition"]);
    }
    assert_eq!(t.query(rows).await, appended);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_new_file_and_the_commit_changes_nothing() {
    let t = TestLake::new();
    t.put_raw(
        &format!("{RAW}/a.jsonl"),
        format!("{}\n", line("e-1", "2026-11-20T10:00:01.000Z")).as_bytes(),
    );
    run(&t, t.catalog.clone(), true, false).await;
    let before = t.catalog.list().await.unwrap();

    t.put_raw(
        &format!("{RAW}/b.jsonl"),
        format!("{}\n", line("e-2", "2026-11-20T10:00:02.000Z")).as_bytes(),
    );
    let failing = Arc::new(FailingCommit {
        inner: LocalCatalog::new(&t.path),
        fail: key("checkout", "2026-11-20"),
    });
    let s = run(&t, failing, true, false).await;
    assert_eq!(s.failed.len(), 1);
    // The new version's files are there, but nothing points at them.
    assert_eq!(t.catalog.list().await.unwrap(), before);
    assert_eq!(t.query("select count(*) as n from events").await, "n\n1\n");

    let s = run(&t, t.catalog.clone(), true, false).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(t.query("select count(*) as n from events").await, "n\n2\n");
    let r = gc(&t.lake, t.catalog.as_ref(), Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(
        r.removed.len(),
        2,
        "the first version and the uncommitted one: {:?}",
        r.removed
    );
    assert_eq!(t.query("select count(*) as n from events").await, "n\n2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn on_s3_the_committed_files_are_copied_into_the_appended_version() {
    use eventlake_catalog::{Lake, ObjectCatalog};
    let sdk = crate::aws::sdk().await;
    let url = crate::aws::s3_lake("incremental");
    let lake = Lake::open_with_sdk(&url, false, &sdk).unwrap();
    let catalog: Arc<dyn Catalog> = Arc::new(ObjectCatalog::new(&lake));
    let raw = |name: &str, id: &str, at: &str| {
        let lake = lake.clone();
        let body = format!("{}\n", line(id, at));
        let key = format!("{RAW}/{name}.jsonl");
        async move { lake.put(&key, body.into_bytes()).await.unwrap() }
    };
    let opts = CompactOptions {
        incremental: true,
        read_concurrency: 8,
        ..CompactOptions::default()
    };
    let backfill = |catalog: Arc<dyn Catalog>| backfill_lake(&lake, catalog, false, &opts);
    raw("a", "s-1", "2026-11-20T10:00:01.000Z").await;
    assert!(backfill(Arc::clone(&catalog)).await.ok());
    raw("b", "s-2", "2026-11-20T10:00:02.000Z").await;
    let s = backfill(Arc::clone(&catalog)).await;
    assert!(s.ok(), "{:?}", s.failed);
    let e = catalog
        .get(&key("checkout", "2026-11-20"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.rows, e.files.len()), (2, 2));
    let manifest: Value = serde_json::from_slice(&lake.get(&e.manifest).await.unwrap()).unwrap();
    assert!(manifest["appended"].is_object(), "{manifest}");
    // Every file of the version sits under its own prefix (what a Glue partition points at).
    for f in &e.files {
        assert!(
            f.key.starts_with(&e.location),
            "{} outside {}",
            f.key,
            e.location
        );
        assert!(lake.get(&f.key).await.is_ok());
    }
    let listed = lake.list(&e.location).await.unwrap();
    let parquet = listed
        .iter()
        .filter(|m| {
            m.location.as_ref().ends_with(".parquet") && !m.location.as_ref().contains("/_")
        })
        .count();
    assert_eq!(parquet, 2);
    // So is its id index: the committed version's file, copied, and the run's own.
    let index = manifest["id_segments"].as_array().unwrap();
    assert_eq!(index.len(), 2, "{manifest}");
    for f in index {
        let k = f["key"].as_str().unwrap();
        assert!(k.starts_with(&e.location), "{k} outside {}", e.location);
        assert!(lake.get(k).await.is_ok(), "{k}");
    }
}

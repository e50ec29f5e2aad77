//! At most one run works on a partition: a run that finds the partition's lease held skips it as
//! busy, a lease whose holder died expires, and a run whose lease was taken over cannot commit.

use std::sync::Arc;
use std::time::Duration;

use eventlake_catalog::{
    Catalog, Error, GlueCatalog, GlueTarget, Lake, LeasedCatalog, Leases, ObjectCatalog, Taken,
};
use eventlake_compaction::backfill::{Status, Summary};
use eventlake_compaction::compact::CompactOptions;
use eventlake_compaction::plan::{DEFAULT_DEDUPE_WINDOW, Selection, plan};
use object_store::ObjectStoreExt;

use crate::aws::{database, run_ok, s3_lake, sdk};
use crate::common::{RAW, TestLake, backfill_lake, key, line};

fn held(t: Taken) -> eventlake_catalog::Lease {
    match t {
        Taken::Held(l) => l,
        Taken::Busy { holder, .. } => panic!("busy, held by {holder}"),
    }
}

async fn backfill(lake: &Lake, catalog: Arc<dyn Catalog>, ttl: Duration) -> Summary {
    let opts = CompactOptions {
        lease_ttl: ttl,
        ..CompactOptions::default()
    };
    backfill_lake(lake, catalog, false, &opts).await
}

#[tokio::test]
async fn a_held_partition_is_skipped_as_busy_and_compacted_once_free() {
    let t = TestLake::new();
    t.put_raw(
        &format!("{RAW}/a.jsonl"),
        format!("{}\n", line("e-1", "2026-11-20T10:00:01.000Z")).as_bytes(),
    );
    let other = Leases::new(&t.lake, Duration::from_secs(60), "the other run");
    let lease = held(other.take(&key("checkout", "2026-11-20")).await.unwrap());

    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(s.committed, 0);
    assert_eq!(s.busy, vec!["team=checkout/dt=2026-11-20".to_string()]);
    let r = &s.partitions[0];
    assert_eq!(r.status, Status::Busy);
    assert_eq!(r.held_by.as_deref(), Some("the other run"));
    assert!(t.catalog.list().await.unwrap().is_empty());

    // A second taker of the same lease is told who holds it.
    match other.take(&key("checkout", "2026-11-20")).await.unwrap() {
        Taken::Busy { holder, .. } => assert_eq!(holder, "the other run"),
        Taken::Held(_) => panic!("a local lease was taken twice"),
    }

    lease.release().await.unwrap();
    let s = t.backfill(false).await;
    assert_eq!((s.committed, s.busy.len()), (1, 0), "{:?}", s.partitions);
    assert_eq!(t.query("select count(*) as n from events").await, "n\n1\n");
}

#[tokio::test]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
async fn a_dead_holders_lease_expires_and_a_stale_holder_cannot_commit() {
    let sdk = sdk().await;
    let url = s3_lake("lease");
    run_ok(&[
        "--lake", &url, "generate", "--events", "3000", "--days", "1",
    ]);
    let lake = Lake::open_with_sdk(&url, false, &sdk).unwrap();
    let catalog: Arc<dyn Catalog> = Arc::new(ObjectCatalog::new(&lake));
    let entries = plan(
        &lake,
        catalog.as_ref(),
        &Selection::default(),
        false,
        DEFAULT_DEDUPE_WINDOW,
    )
    .await
    .unwrap();
    let first = entries.partitions[0].partition.clone();
    let n = entries.partitions.len();

    // A run took the lease and died: it no longer extends it.
    let ttl = Duration::from_secs(2);
    let dead = Leases::new(&lake, ttl, "a run that died");
    held(dead.take(&first).await.unwrap()).abandon();
    let s = backfill(&lake, Arc::clone(&catalog), ttl).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(s.busy, vec![first.to_string()]);
    assert_eq!(s.committed, n - 1);
    let r = s
        .partitions
        .iter()
        .find(|r| r.status == Status::Busy)
        .unwrap();
    assert_eq!(r.held_by.as_deref(), Some("a run that died"));

    // Once the time to live has passed, the next run takes the partition over.
    tokio::time::sleep(ttl + Duration::from_millis(500)).await;
    let s = backfill(&lake, Arc::clone(&catalog), ttl).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!((s.committed, s.busy.len()), (1, 0), "{:?}", s.partitions);
    // ... and gives the lease back when done.
    let lease = held(dead.take(&first).await.unwrap());

    // A holder whose lease another run replaced (it stalled past the expiry) cannot commit.
    let store = lake.store();
    let path = lake.path(&format!(
        "_leases/events/team={}/dt={}.json",
        first.team, first.dt
    ));
    store
        .put(
            &path,
            br#"{"holder":"x","acquired_at":"","expires_at":""}"#.to_vec().into(),
        )
        .await
        .unwrap();
    let lease = Arc::new(lease);
    let guarded = LeasedCatalog::new(Arc::clone(&catalog), Arc::clone(&lease));
    let current = catalog.get(&first).await.unwrap().unwrap();
    let mut entry = current.clone();
    entry.raw_fingerprint = "something else".into();
    entry.version = "v-stale".into();
    match guarded.commit(&entry, Some(&current.version)).await {
        Err(Error::LeaseLost { partition, .. }) => assert_eq!(partition, first),
        other => panic!("a stale holder committed: {other:?}"),
    }
    assert_eq!(catalog.get(&first).await.unwrap().unwrap(), current);
}

#[test]
#[ignore = "needs the S3 and AWS stand-ins: run tests/run.sh"]
fn two_forced_backfills_on_glue_commit_each_partition_once() {
    let url = s3_lake("lease-glue");
    let db = database("lease");
    run_ok(&[
        "--lake", &url, "generate", "--events", "6000", "--days", "2",
    ]);
    let glue = [
        "--lake",
        url.as_str(),
        "--catalog",
        "glue",
        "--glue-database",
        db.as_str(),
    ];
    let first: serde_json::Value =
        serde_json::from_str(&run_ok(&[&glue[..], &["backfill", "--json"]].concat())).unwrap();
    let partitions = first["committed"].as_u64().unwrap();
    assert!(partitions >= 4, "{first}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sdk, lake) = rt.block_on(async {
        let sdk = sdk().await;
        let lake = Lake::open_with_sdk(&url, false, &sdk).unwrap();
        (sdk, lake)
    });
    let catalog = GlueCatalog::new(
        &sdk,
        GlueTarget {
            database: db.clone(),
            table: "events".into(),
        },
        &lake,
    );
    let before = rt.block_on(catalog.list()).unwrap();

    // A partition another run holds is left alone, in Glue too.
    let held_key = before[0].partition.clone();
    let holder = Leases::new(&lake, Duration::from_secs(60), "the scheduled run");
    let lease = held(rt.block_on(holder.take(&held_key)).unwrap());
    let forced: serde_json::Value = serde_json::from_str(&run_ok(
        &[&glue[..], &["backfill", "--force", "--json"]].concat(),
    ))
    .unwrap();
    assert_eq!(
        forced["busy"],
        serde_json::json!([held_key.to_string()]),
        "{forced}"
    );
    assert_eq!(
        forced["committed"].as_u64().unwrap(),
        partitions - 1,
        "{forced}"
    );
    let p = forced["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "busy")
        .unwrap();
    assert_eq!(p["held_by"], "the scheduled run", "{p}");
    let after = rt.block_on(catalog.get(&held_key)).unwrap().unwrap();
    assert_eq!(after.version, before[0].version);
    rt.block_on(lease.release()).unwrap();

    // Glue's commit is a read then a write: two forced runs at once must not both rewrite a
    // partition. Each partition is rewritten by one of them; the other finds it busy or done.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut args: Vec<String> = glue.iter().map(|s| s.to_string()).collect();
            args.extend(["backfill", "--force", "--jobs", "1", "--json"].map(String::from));
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                serde_json::from_str::<serde_json::Value>(&run_ok(&args)).unwrap()
            })
        })
        .collect();
    let summaries: Vec<serde_json::Value> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let mut committed = 0;
    for s in &summaries {
        assert_eq!(s["failed"].as_array().unwrap().len(), 0, "{s}");
        committed += s["committed"].as_u64().unwrap();
    }
    assert_eq!(committed, partitions, "{summaries:?}");
    for s in &summaries {
        for p in s["partitions"].as_array().unwrap() {
            let status = p["status"].as_str().unwrap();
            assert!(
                ["committed", "busy", "already_current"].contains(&status),
                "{p}"
            );
        }
    }

    // What Glue points at is one of the forced versions, and the rows are all there once.
    rt.block_on(async {
        let forced: Vec<&str> = summaries
            .iter()
            .flat_map(|s| s["partitions"].as_array().unwrap())
            .filter(|p| p["status"] == "committed")
            .map(|p| p["version"].as_str().unwrap())
            .collect();
        for e in catalog.list().await.unwrap() {
            assert!(forced.contains(&e.version.as_str()), "{}", e.partition);
        }
    });
    let q = run_ok(
        &[
            &glue[..],
            &[
                "query",
                "--format",
                "csv",
                "--sql",
                "select count(*) as n from events",
            ],
        ]
        .concat(),
    );
    let before = first["totals"]["rows"].as_u64().unwrap();
    assert_eq!(q, format!("n\n{before}\n"));
}

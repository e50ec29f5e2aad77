//! One suite of catalog cases, run against every catalog: the local folder catalog here, the
//! object-storage catalog on the S3 stand-in and the Glue catalog on the Glue stand-in in
//! `aws.rs`.

use std::sync::Arc;

use eventlake_catalog::Error;
use eventlake_catalog::{Catalog, CommitOutcome, LocalCatalog};

use crate::catalog::entry;
use crate::common::{TestLake, key};

/// The cases every catalog must pass. `c` must be empty.
pub async fn conformance(c: Arc<dyn Catalog>) {
    // Empty.
    assert_eq!(c.get(&key("a", "2026-11-20")).await.unwrap(), None);
    assert!(c.list().await.unwrap().is_empty());

    // A first commit, read back field by field.
    let v1 = entry("a", "2026-11-20", "v1", "f1");
    assert_eq!(c.commit(&v1, None).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(c.get(&v1.partition).await.unwrap().as_ref(), Some(&v1));

    // The same raw data committed again by a run that planned before v1: nothing changes.
    let v1b = entry("a", "2026-11-20", "v1b", "f1");
    assert_eq!(
        c.commit(&v1b, None).await.unwrap(),
        CommitOutcome::AlreadyCurrent
    );
    assert_eq!(c.get(&v1.partition).await.unwrap().unwrap().version, "v1");

    // A run that saw v1 replaces it.
    let v2 = entry("a", "2026-11-20", "v2", "f2");
    assert_eq!(
        c.commit(&v2, Some("v1")).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(c.get(&v2.partition).await.unwrap().as_ref(), Some(&v2));

    // A run that planned against v1 with other raw data loses, and says to whom.
    let stale = entry("a", "2026-11-20", "v3", "f3");
    match c.commit(&stale, Some("v1")).await {
        Err(Error::CommitConflict { found, .. }) => assert_eq!(found, "v2"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nor may a run that thought the partition new overwrite it.
    assert!(matches!(
        c.commit(&stale, None).await,
        Err(Error::CommitConflict { .. })
    ));
    assert_eq!(c.get(&v2.partition).await.unwrap().unwrap().version, "v2");

    // Many partitions at once; list is ordered by team then date.
    let mut tasks = Vec::new();
    for (team, day) in [("b", 21), ("a", 22), ("c", 20), ("a", 21), ("b", 20)] {
        let c = Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            let dt = format!("2026-11-{day}");
            c.commit(&entry(team, &dt, "v1", "f"), None).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), CommitOutcome::Committed);
    }
    let listed: Vec<String> = c
        .list()
        .await
        .unwrap()
        .iter()
        .map(|e| e.partition.to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "team=a/dt=2026-11-20",
            "team=a/dt=2026-11-21",
            "team=a/dt=2026-11-22",
            "team=b/dt=2026-11-20",
            "team=b/dt=2026-11-21",
            "team=c/dt=2026-11-20",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_catalog_conforms() {
    let t = TestLake::new();
    conformance(Arc::new(LocalCatalog::new(&t.path))).await;
}

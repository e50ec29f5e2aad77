//! A partition larger than its memory budget: its rows spill to sorted runs on disk and are merged
//! back, and the version is the one an in-memory compaction commits, byte for byte (its id
//! index holds the same lines, sorted by id hash).

use eventlake_catalog::Catalog;
use eventlake_compaction::compact::CompactOptions;
use eventlake_compaction::earlier::{decode_index, hashes_of};
use eventlake_compaction::generate::{GenerateOptions, generate};
use eventlake_contract::PartitionDate;
use serde_json::Value;

use crate::common::{TestLake, backfill_lake};

/// Each committed partition's manifest and the bytes of its files, quarantine and id index.
async fn versions(t: &TestLake) -> Vec<(Value, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut entries = t.catalog.list().await.unwrap();
    entries.sort_by_key(|e| e.partition.to_string());
    for e in entries {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(t.path.join(&e.manifest)).unwrap()).unwrap();
        let mut keys: Vec<&str> = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        keys.extend(manifest["quarantine"].as_str());
        keys.push(manifest["ids"]["key"].as_str().unwrap());
        let bytes = keys
            .iter()
            .map(|k| std::fs::read(t.path.join(k)).unwrap())
            .collect();
        out.push((manifest, bytes));
    }
    out
}

/// The lines of an id index file: id hash, `received_at` and fingerprint, in the file's order.
fn index_lines(file: &[u8]) -> Vec<(u128, i64, u64)> {
    use arrow::array::AsArray;
    use arrow::datatypes::{TimestampMicrosecondType, UInt64Type};
    let ids = decode_index(bytes::Bytes::copy_from_slice(file)).unwrap();
    let received = ids.column(1).as_primitive::<TimestampMicrosecondType>();
    let fingerprints = ids.column(2).as_primitive::<UInt64Type>();
    hashes_of(&ids)
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (
                u128::from_le_bytes(*h),
                received.value(i),
                fingerprints.value(i),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spilled_partition_commits_what_an_in_memory_one_does() {
    let opts = GenerateOptions {
        start: PartitionDate::parse("2026-11-20").unwrap(),
        days: 2,
        events: 20_000,
        duplicate_rate: 0.03,
        conflict_share: 0.3,
        malformed_rate: 0.01,
        // Retries across midnight: the second day's rows are also checked against the first's.
        cross_day_rate: 0.01,
        ..GenerateOptions::default()
    };
    let (in_memory, spilled) = (TestLake::new(), TestLake::new());
    generate(&in_memory.lake, &opts).await.unwrap();
    generate(&spilled.lake, &opts).await.unwrap();

    let s = backfill_lake(
        &in_memory.lake,
        in_memory.catalog.clone(),
        false,
        &CompactOptions::default(),
    )
    .await;
    assert!(s.ok(), "{:?}", s.failed);
    let spill_dir = tempfile::tempdir().unwrap();
    // What a killed run left there: its folder, its lock file (nobody holds it) and a run.
    let left = spill_dir.path().join("eventlake-tmp-killed");
    std::fs::create_dir_all(left.join("eventlake-spill-x")).unwrap();
    std::fs::write(left.join("owner.lock"), b"").unwrap();
    std::fs::write(left.join("eventlake-spill-x/run-0001.arrows"), [0u8; 1024]).unwrap();
    let small = CompactOptions {
        spill_bytes: 256 * 1024,
        spill_dir: Some(spill_dir.path().to_path_buf()),
        ..CompactOptions::default()
    };
    let s = backfill_lake(&spilled.lake, spilled.catalog.clone(), false, &small).await;
    assert!(s.ok(), "{:?}", s.failed);

    let (expected, got) = (versions(&in_memory).await, versions(&spilled).await);
    assert_eq!(expected.len(), 6, "3 teams, 2 days");
    assert_eq!(got.len(), expected.len());
    for ((want, want_bytes), (have, have_bytes)) in expected.iter().zip(&got) {
        let partition = &have["partition"];
        assert_eq!(have["partition"], want["partition"]);
        assert_eq!(have["counts"], want["counts"], "{partition}");
        assert!(want["timings"].get("spilled_runs").is_none(), "{partition}");
        let runs = have["timings"]["spilled_runs"].as_u64().unwrap_or(0);
        assert!(runs > 1, "{partition}: {runs} runs");
        assert_eq!(have_bytes.len(), want_bytes.len(), "{partition}");
        // The data files and the quarantine, byte for byte; then the id index, whose lines a
        // spilled partition writes sorted by id hash (those of one id in line order).
        let files = have_bytes.len() - 1;
        for (i, (h, w)) in have_bytes[..files].iter().zip(want_bytes).enumerate() {
            assert!(h == w, "{partition}: file {i} differs");
        }
        let mut want_ids = index_lines(&want_bytes[files]);
        want_ids.sort_by_key(|l| l.0);
        assert!(
            index_lines(&have_bytes[files]) == want_ids,
            "{partition}: the id indexes differ"
        );
    }
    let cross_day: u64 = got
        .iter()
        .map(|(m, _)| m["counts"]["cross_partition_duplicates"].as_u64().unwrap())
        .sum();
    assert!(cross_day > 0, "retries across midnight were dropped");
    assert_eq!(
        std::fs::read_dir(spill_dir.path()).unwrap().count(),
        0,
        "the runs are removed, and what the killed run left"
    );
}

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

/// The data files of each committed partition, in the catalog's order.
async fn data_files(t: &TestLake) -> Vec<(String, Value, Vec<Vec<u8>>)> {
    versions(t)
        .await
        .into_iter()
        .map(|(manifest, mut bytes)| {
            let files = manifest["files"].as_array().unwrap().len();
            bytes.truncate(files);
            (
                manifest["partition"].to_string(),
                manifest["counts"].clone(),
                bytes,
            )
        })
        .collect()
}

/// A partition whose raw data is one object far larger than the rest (an export dropped into the
/// lake by hand, a producer that batches a whole hour) is read in parts as it streams, so its
/// rows are spilled as they come, and commits the rows it commits when the same lines come in
/// many small objects: the same files, byte for byte, in memory or spilled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_one_large_object_commits_what_many_small_ones_do() {
    use std::io::Read;
    let opts = GenerateOptions {
        teams: vec![eventlake_contract::TeamName::new("checkout").unwrap()],
        start: PartitionDate::parse("2026-11-20").unwrap(),
        days: 2,
        events: 40_000,
        duplicate_rate: 0.03,
        conflict_share: 0.3,
        malformed_rate: 0.01,
        cross_day_rate: 0.01,
        ..GenerateOptions::default()
    };
    let small = TestLake::new();
    generate(&small.lake, &opts).await.unwrap();
    // The same lines, each partition's in one plain NDJSON object, in the order of the objects.
    let (large, large_spilled) = (TestLake::new(), TestLake::new());
    let mut by_partition: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    let mut objects = crate::common::walk(&small.path.join("raw"));
    objects.sort();
    for object in objects {
        let key = object.strip_prefix(&small.path).unwrap().to_str().unwrap();
        let partition = key.split("/hour=").next().unwrap().to_owned();
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&object).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        by_partition.entry(partition).or_default().extend(text);
    }
    assert_eq!(by_partition.len(), 2);
    for (partition, text) in &by_partition {
        assert!(
            text.len() as u64 > eventlake_compaction::read::PARTS_FROM_BYTES,
            "{partition}: {} bytes is not a large object",
            text.len()
        );
        for t in [&large, &large_spilled] {
            t.put_bytes(&format!("{partition}/hour=00/export.ndjson"), text);
        }
    }

    let defaults = CompactOptions::default();
    let spill_dir = tempfile::tempdir().unwrap();
    let spilling = CompactOptions {
        spill_bytes: 256 * 1024,
        spill_dir: Some(spill_dir.path().to_path_buf()),
        ..CompactOptions::default()
    };
    for (t, opts) in [
        (&small, &defaults),
        (&large, &defaults),
        (&large_spilled, &spilling),
    ] {
        let s = backfill_lake(&t.lake, t.catalog.clone(), false, opts).await;
        assert!(s.ok(), "{:?}", s.failed);
    }
    let want = data_files(&small).await;
    assert_eq!(want.len(), 2);
    for got in [data_files(&large).await, data_files(&large_spilled).await] {
        assert_eq!(got.len(), want.len());
        for ((partition, have_counts, have), (_, want_counts, want)) in got.iter().zip(&want) {
            for count in ["lines", "rows", "duplicates", "conflicts", "quarantined"] {
                assert_eq!(
                    have_counts[count], want_counts[count],
                    "{partition}: {count}"
                );
            }
            assert_eq!(have_counts["objects"], 1, "{partition}");
            assert!(have == want, "{partition}: the data files differ");
        }
    }
    // Each quarantined line of the large object names its own line in it.
    for q in large.quarantine().await {
        let source = q["source"].as_str().unwrap();
        let partition = source.split("/hour=").next().unwrap();
        let text = &by_partition[partition];
        let line = q["line"].as_u64().unwrap() as usize;
        let at = text.split(|b| *b == b'\n').nth(line - 1).unwrap();
        let raw = q["raw"].as_str().unwrap();
        assert!(
            String::from_utf8_lossy(at).starts_with(raw.trim_end_matches('\r')),
            "{source}:{line}: {raw:?}"
        );
    }
    let spilled_runs: u64 = versions(&large_spilled)
        .await
        .iter()
        .map(|(m, _)| m["timings"]["spilled_runs"].as_u64().unwrap_or(0))
        .sum();
    assert!(spilled_runs > 2, "{spilled_runs} runs");
}

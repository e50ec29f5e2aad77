//! `etl replay`: quarantined lines that today's validation accepts become rows, once.

use eventlake_catalog::Catalog;
use serde_json::{Value, json};

use crate::common::{RAW, TestLake, etl, line, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_that_pass_today_are_taken_in_once() {
    let t = TestLake::new();
    let object = format!("{RAW}/a.jsonl");
    t.put_raw(
        &object,
        format!(
            "{}\nnot json\n{}\n",
            line("r-1", "2026-11-20T10:00:01.000Z"),
            line("r-3", "2026-11-20T10:00:03.000Z")
        )
        .as_bytes(),
    );
    assert!(etl(&t.path, &["backfill"]).status.success());

    // What a version built by an older validation looks like: it also quarantined line 3.
    let entry = t.catalog.list().await.unwrap().remove(0);
    let manifest_path = t.path.join(&entry.manifest);
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let quarantine = t.path.join(manifest["quarantine"].as_str().unwrap());
    let mut records = std::fs::read_to_string(&quarantine).unwrap();
    records += &format!(
        "{}\n",
        json!({"source": object, "line": 3, "reason": "unknown_field", "detail": "rejected by an older contract", "raw": line("r-3", "2026-11-20T10:00:03.000Z")})
    );
    std::fs::write(&quarantine, records).unwrap();
    manifest["counts"]["rows"] = json!(1);
    manifest["counts"]["quarantined"] = json!(2);
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();

    // A dry run says what would be taken in, and writes nothing.
    let dry = etl(
        &t.path,
        &[
            "replay",
            "--team",
            "checkout",
            "--date",
            "2026-11-20",
            "--dry-run",
            "--json",
        ],
    );
    assert!(dry.status.success(), "{}", stderr(&dry));
    let report: Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(report["quarantined"], 2);
    assert_eq!(
        report["replayable"],
        json!([{"source": object, "line": 3, "reason": "unknown_field"}])
    );
    assert_eq!(t.catalog.list().await.unwrap()[0].version, entry.version);

    // The replay: line 3 becomes a row, line 2 stays quarantined, the identity holds.
    let out = etl(
        &t.path,
        &[
            "replay",
            "--team",
            "checkout",
            "--date",
            "2026-11-20",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let counts = &report["run"]["partitions"][0]["counts"];
    assert_eq!(counts["replayed"], 1, "{report}");
    assert_eq!(
        (
            counts["rows"].as_u64(),
            counts["quarantined"].as_u64(),
            counts["lines"].as_u64()
        ),
        (Some(2), Some(1), Some(3))
    );
    assert_eq!(
        t.query("select event_id from events order by 1").await,
        "event_id\nr-1\nr-3\n"
    );
    let q = t.quarantine().await;
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0]["line"].as_u64(), q[0]["reason"].as_str()),
        (Some(2), Some("invalid_json"))
    );

    // Again: nothing left to replay, nothing written.
    let version = t.catalog.list().await.unwrap()[0].version.clone();
    let again = etl(
        &t.path,
        &["replay", "--team", "checkout", "--date", "2026-11-20"],
    );
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("0 pass today's validation"),
        "{}",
        stdout(&again)
    );
    assert!(stdout(&again).contains("nothing to replay"));
    assert_eq!(t.catalog.list().await.unwrap()[0].version, version);

    // A partition never committed is an error that says so.
    let none = etl(
        &t.path,
        &["replay", "--team", "search", "--date", "2026-11-20"],
    );
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("never committed"),
        "{}",
        stderr(&none)
    );
}

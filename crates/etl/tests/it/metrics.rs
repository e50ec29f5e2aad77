//! The run's CloudWatch embedded-metric lines: parsed as CloudWatch would, they say what the
//! summary says.

use serde_json::Value;

use crate::common::{RAW, TestLake, etl, line, stderr, stdout};

/// Each EMF document on stderr, checked against the format: every declared metric is a number
/// at the top level, every dimension a string.
fn documents(err: &str) -> Vec<Value> {
    err.lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
        .map(|l| {
            let d: Value = serde_json::from_str(l).expect("a metric line is JSON");
            let m = &d["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(m["Namespace"], "eventlake/etl", "{d}");
            assert!(d["_aws"]["Timestamp"].as_i64().unwrap() > 0);
            for set in m["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(
                        d[dim.as_str().unwrap()].is_string(),
                        "dimension {dim} in {d}"
                    );
                }
            }
            for metric in m["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(d[name].is_number(), "metric {name} in {d}");
                assert!(metric["Unit"].is_string());
            }
            d
        })
        .collect()
}

#[test]
fn backfill_writes_a_metric_document_per_partition_reason_and_run() {
    let t = TestLake::new();
    let ok = line("m-1", "2026-11-20T10:00:01.000Z");
    let again = line("m-1", "2026-11-20T10:00:02.000Z");
    let body = format!("{ok}\n{again}\nnot json\n{{}}\n");
    t.put_raw(&format!("{RAW}/a.jsonl"), body.as_bytes());

    // Off by default on a laptop.
    let quiet = etl(&t.path, &["backfill", "--json", "--dry-run"]);
    assert!(!stderr(&quiet).contains("\"_aws\""));

    let out = etl(&t.path, &["backfill", "--json", "--metrics", "emf"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(&stdout(&out)).expect("stdout stays one document");
    let docs = documents(&stderr(&out));

    let partition: Vec<&Value> = docs
        .iter()
        .filter(|d| d["message"] == "partition metrics")
        .collect();
    assert_eq!(partition.len(), 1, "{docs:?}");
    let p = partition[0];
    let counts = &summary["partitions"][0]["counts"];
    assert_eq!(
        (p["team"].as_str(), p["dt"].as_str()),
        (Some("checkout"), Some("2026-11-20"))
    );
    assert_eq!(p["Lines"], counts["lines"]);
    assert_eq!(p["Lines"], 4);
    assert_eq!(p["Rows"], 1);
    assert_eq!(p["Duplicates"], 1);
    assert_eq!(p["Quarantined"], 2);
    assert_eq!(p["QuarantinedShare"], 50.0);
    assert!(p["LagSeconds"].as_f64().unwrap() >= 0.0, "{p}");
    assert!(p["RawBytes"].as_u64().unwrap() > 0);

    let reasons: Vec<&Value> = docs
        .iter()
        .filter(|d| d["message"] == "quarantine metrics")
        .collect();
    let by_reason: u64 = reasons
        .iter()
        .map(|d| d["QuarantinedByReason"].as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, 2, "{reasons:?}");
    for d in &reasons {
        assert_eq!(
            counts["by_reason"][d["reason"].as_str().unwrap()],
            d["QuarantinedByReason"],
            "{d}"
        );
    }

    let run: Vec<&Value> = docs
        .iter()
        .filter(|d| d["message"] == "run metrics")
        .collect();
    assert_eq!(run.len(), 1);
    assert_eq!(run[0]["PartitionsCommitted"], 1);
    assert_eq!(run[0]["RunSucceeded"], 1);
    assert_eq!(run[0]["job"], "backfill");

    // A re-run that finds nothing new still reports the run (the freshness alarm counts runs).
    let out = etl(&t.path, &["backfill", "--json", "--metrics", "emf"]);
    let docs = documents(&stderr(&out));
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["PartitionsCommitted"], 0);
    assert_eq!(docs[0]["RunSucceeded"], 1);
}

//! CloudWatch metrics of a compaction run, as embedded-metric (EMF) log lines: one document per
//! partition the run worked on (dimension `team`), one per quarantine reason of a partition
//! (dimension `reason`) and one for the run (no dimension). Every count of the run is in the
//! documents; only those the alarms and dashboards read are declared as metrics (custom metrics
//! are billed each), the others stay in the log for Logs Insights. CloudWatch Logs turns the
//! lines into metrics where the job runs (a Lambda function or a Fargate task with the `awslogs`
//! driver); no `PutMetricData` call, no extra permission.
//!
//! On AWS the lines are written by default; elsewhere with `--metrics emf` (or
//! `EVENTLAKE_METRICS=emf`). They go to stderr, one JSON object per line, so the stdout of
//! `etl backfill --json` and `etl task` stays one document.

use chrono::Utc;
use eventlake_compaction::backfill::{PartitionReport, Status, Summary};
use serde_json::{Map, Value, json};

/// The metrics' namespace in CloudWatch.
pub const NAMESPACE: &str = "eventlake/etl";

/// Whether this process writes metric lines: `EVENTLAKE_METRICS` (`emf` or `off`) or the flag
/// decides; unset, a process running as a Lambda function or an ECS task does.
pub fn enabled(choice: Option<&str>) -> bool {
    match choice {
        Some(c) => c.eq_ignore_ascii_case("emf"),
        None => {
            std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
                || std::env::var_os("ECS_CONTAINER_METADATA_URI_V4").is_some()
        }
    }
}

fn emf(dimensions: Value, metrics: &[(&str, &str)], mut fields: Map<String, Value>) -> Value {
    if metrics.is_empty() {
        // Nothing to declare (a busy or failed partition): a plain structured log line.
        return Value::Object(fields);
    }
    let defs: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    fields.insert(
        "_aws".into(),
        json!({
            "Timestamp": Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": defs,
            }]
        }),
    );
    Value::Object(fields)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn partition_documents(r: &PartitionReport, out: &mut Vec<Value>) {
    let status = serde_json::to_value(r.status).unwrap_or(Value::Null);
    let mut fields = object(json!({
        "message": "partition metrics",
        "team": r.team,
        "dt": r.dt,
        "status": status,
        "version": r.version,
        "Seconds": r.elapsed_ms as f64 / 1000.0,
        "BytesWritten": r.bytes_written,
        "Failed": u64::from(r.status == Status::Failed),
        "Busy": u64::from(r.status == Status::Busy),
    }));
    let mut reasons = Vec::new();
    // Declared metrics are billed per team: the ones the alarms and dashboards read. The rest of
    // the document stays in the log, for Logs Insights.
    let mut metrics = vec![];
    if let Some(c) = &r.counts {
        let share = if c.lines == 0 {
            0.0
        } else {
            100.0 * c.quarantined as f64 / c.lines as f64
        };
        for (k, v) in [
            ("Lines", json!(c.lines)),
            ("Rows", json!(c.rows)),
            ("Duplicates", json!(c.duplicates)),
            ("CrossDayDuplicates", json!(c.cross_partition_duplicates)),
            ("Conflicts", json!(c.conflicts)),
            ("Quarantined", json!(c.quarantined)),
            ("QuarantinedShare", json!((share * 1000.0).round() / 1000.0)),
            ("RawBytes", json!(c.raw_bytes)),
            ("RawObjects", json!(c.objects)),
        ] {
            fields.insert(k.into(), v);
        }
        metrics.extend([
            ("Lines", "Count"),
            ("Rows", "Count"),
            ("Quarantined", "Count"),
            ("QuarantinedShare", "Percent"),
        ]);
        for (reason, n) in &c.by_reason {
            let reason = serde_json::to_value(reason).unwrap_or(Value::Null);
            // By reason across teams (the team stays in the log): one metric per reason seen.
            reasons.push(emf(
                json!([["reason"]]),
                &[("QuarantinedByReason", "Count")],
                object(json!({
                    "message": "quarantine metrics",
                    "team": r.team,
                    "dt": r.dt,
                    "reason": reason,
                    "QuarantinedByReason": n,
                })),
            ));
        }
    }
    if let Some(lag) = r.lag_seconds {
        fields.insert("LagSeconds".into(), json!(lag));
        metrics.push(("LagSeconds", "Seconds"));
    }
    out.push(emf(json!([["team"]]), &metrics, fields));
    out.extend(reasons);
}

/// The metric documents of a run: its partitions' (those it did not find unchanged), then the
/// run's own.
pub fn documents(s: &Summary, job: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for r in s
        .partitions
        .iter()
        .filter(|r| r.status != Status::Unchanged)
    {
        partition_documents(r, &mut out);
    }
    let t = &s.totals;
    out.push(emf(
        json!([[]]),
        &[
            ("PartitionsCommitted", "Count"),
            ("PartitionsFailed", "Count"),
            ("PartitionsBusy", "Count"),
            ("RunSucceeded", "Count"),
        ],
        object(json!({
            "message": "run metrics",
            "job": job,
            "Partitions": s.partitions.len(),
            "PartitionsCommitted": s.committed,
            "PartitionsFailed": s.failed.len(),
            "PartitionsBusy": s.busy.len(),
            "RunSucceeded": u64::from(s.ok()),
            "Lines": t.lines,
            "Rows": t.rows,
            "Quarantined": t.quarantined,
            "RawBytes": t.raw_bytes,
            "BytesWritten": s.partitions.iter().map(|r| r.bytes_written).sum::<u64>(),
            "RunSeconds": s.elapsed_ms as f64 / 1000.0,
        })),
    ));
    out
}

/// Writes the documents, one line each, to stderr.
pub fn emit(docs: &[Value]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for d in docs {
        // One write per line, so no other output lands inside a document.
        let _ = err.write_all(format!("{d}\n").as_bytes());
    }
}

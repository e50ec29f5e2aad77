//! `etl backfill --remote`: the same backfill, run by the compaction workflow on AWS.
//!
//! The command starts one execution of the state machine with a range input (`jobs/README.md`),
//! prints each partition as the workflow finishes it, and exits as a local backfill does: 0 when
//! every partition was compacted or left unchanged, 1 when one failed or the run itself did.
//!
//! A small plan runs in an inline Map, whose iterations are in the execution's history: each
//! partition is printed as its iteration ends. A large plan runs in a Distributed Map, whose
//! iterations are child executions: the command follows the map run's counts (DescribeMapRun)
//! and prints them as they move, then names the failed partitions from the run's summary.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use eventlake_contract::{PartitionDate, TeamName};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The states that end one partition's iteration in `jobs/compact.asl.json`.
const PARTITION_END_STATES: [&str; 4] = [
    "LambdaCompacted",
    "FargateCompacted",
    "PartitionFailed",
    "UnknownRunner",
];

/// The most days one execution plans (the plan refuses more).
const MAX_DAYS: i64 = crate::task::MAX_RANGE_DAYS;

/// The state that summarises a Distributed Map run (`jobs/compact.asl.json`).
const MAP_RUN_SUMMARY_STATE: &str = "SummariseMapRun";

/// What to backfill remotely.
pub struct RemoteBackfill<'a> {
    /// ARN of the compaction state machine.
    pub state_machine: &'a str,
    pub from: PartitionDate,
    pub to: PartitionDate,
    pub teams: &'a [TeamName],
    pub json: bool,
    /// How often the execution is polled.
    pub every: Duration,
}

fn aws_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Remote(format!("{what}: {e}"))
}

/// The execution's input: a range plan, for these teams or all.
pub fn input(from: PartitionDate, to: PartitionDate, teams: &[TeamName]) -> Value {
    let mut v = json!({
        "run": "backfill",
        "scope": "range",
        "from": from.to_string(),
        "to": to.to_string(),
        "check_p95": false,
    });
    if !teams.is_empty() {
        v["teams"] = json!(teams.iter().map(|t| t.to_string()).collect::<Vec<_>>());
    }
    v
}

/// One line for a finished partition (its iteration's record).
fn describe(record: &Value) -> (String, bool) {
    let key = format!(
        "team={}/dt={}",
        record["team"].as_str().unwrap_or("?"),
        record["dt"].as_str().unwrap_or("?")
    );
    if record["failed"].as_bool() == Some(true) {
        let e = &record["error"];
        let why = e["Cause"]
            .as_str()
            .or_else(|| e["Error"].as_str())
            .unwrap_or("failed");
        return (format!("{key:<40} failed          {why}"), true);
    }
    let r = &record["result"];
    let status = r["status"].as_str().unwrap_or("committed");
    let mut line = format!("{key:<40} {status:<15}");
    if let Some(rows) = r["rows"].as_u64() {
        line += &format!(" {rows} rows");
    }
    if let Some(q) = r["quarantined"].as_u64() {
        line += &format!(", {q} quarantined");
    }
    if let Some(task) = r["task_arn"].as_str() {
        line += &format!(" (Fargate task {task})");
    }
    (line, false)
}

pub async fn run(sdk: &aws_config::SdkConfig, b: RemoteBackfill<'_>) -> Result<ExitCode> {
    if b.from > b.to {
        return Err(Error::InvalidArgument(format!(
            "--from {} is after --to {}",
            b.from, b.to
        )));
    }
    let days = (b.to.date() - b.from.date()).num_days() + 1;
    if days > MAX_DAYS {
        return Err(Error::InvalidArgument(format!(
            "--remote runs at most {MAX_DAYS} days per execution ({days} from {} to {}); run one per part",
            b.from, b.to
        )));
    }
    let client = Client::new(sdk);
    // Unique per state machine (names are kept 90 days): the range, then when and by whom.
    let name = format!(
        "backfill-{}-{}-{}-{}",
        b.from,
        b.to,
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3f"),
        std::process::id()
    );
    let started = client
        .start_execution()
        .state_machine_arn(b.state_machine)
        .name(&name)
        .input(input(b.from, b.to, b.teams).to_string())
        .send()
        .await
        .map_err(|e| {
            aws_error(
                "cannot start the backfill",
                aws_sdk_sfn::error::DisplayErrorContext(e),
            )
        })?;
    let arn = started.execution_arn().to_string();
    eprintln!("started {arn}");

    let mut seen_events: i64 = 0;
    let mut done: HashSet<String> = HashSet::new();
    let mut failed = 0usize;
    let mut planned: Option<i64> = None;
    let mut map_run: Option<MapRunProgress> = None;
    loop {
        // New history first, so that the last partitions are printed before the verdict.
        let mut token: Option<String> = None;
        loop {
            let page = client
                .get_execution_history()
                .execution_arn(&arn)
                .max_results(1000)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        "cannot read the execution's history",
                        aws_sdk_sfn::error::DisplayErrorContext(e),
                    )
                })?;
            for ev in page.events() {
                if ev.id() <= seen_events {
                    continue;
                }
                seen_events = ev.id();
                if ev.r#type() == &HistoryEventType::MapStateStarted
                    && let Some(d) = ev.map_state_started_event_details()
                {
                    planned = Some(i64::from(d.length()));
                    if !b.json {
                        eprintln!("{} partitions planned", d.length());
                    }
                }
                if ev.r#type() == &HistoryEventType::MapRunStarted
                    && let Some(d) = ev.map_run_started_event_details()
                    && let Some(arn) = d.map_run_arn()
                {
                    if !b.json {
                        eprintln!("the plan is large: partitions run as child executions of {arn}");
                    }
                    map_run = Some(MapRunProgress::new(arn));
                }
                let Some(d) = ev.state_exited_event_details() else {
                    continue;
                };
                if d.name() == MAP_RUN_SUMMARY_STATE {
                    let out: Value = d
                        .output()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or(Value::Null);
                    let summary = &out["summary"];
                    let listed = summary["failed"].as_array().cloned().unwrap_or_default();
                    if !b.json {
                        for record in &listed {
                            println!("{}", describe(record).0);
                        }
                        let count = summary["failed_count"].as_u64().unwrap_or(0) as usize;
                        if count > listed.len() {
                            println!(
                                "... and {} more failed partitions (the map run's FAILED result files list them all)",
                                count - listed.len()
                            );
                        }
                    }
                    continue;
                }
                if !PARTITION_END_STATES.contains(&d.name()) {
                    continue;
                }
                let record: Value = d
                    .output()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null);
                let key = format!("{}/{}", record["team"], record["dt"]);
                if !done.insert(key) {
                    continue;
                }
                let (line, bad) = describe(&record);
                failed += usize::from(bad);
                if !b.json {
                    let of = planned.map(|n| format!(" of {n}")).unwrap_or_default();
                    println!("[{}{of}] {line}", done.len());
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        if let Some(m) = &mut map_run {
            m.poll(&client, b.json).await?;
        }
        let d = client
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "cannot read the execution",
                    aws_sdk_sfn::error::DisplayErrorContext(e),
                )
            })?;
        let status = d.status().clone();
        if status == ExecutionStatus::Running || status == ExecutionStatus::PendingRedrive {
            tokio::time::sleep(b.every).await;
            continue;
        }
        let output: Value = d
            .output()
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or(Value::Null);
        // A map run's partitions are counted, not listed in the history.
        let mut partitions = done.len();
        if let Some(m) = &mut map_run {
            m.poll(&client, b.json).await?;
            failed += m.failed;
            partitions += m.succeeded + m.failed;
        }
        let ok = status == ExecutionStatus::Succeeded && failed == 0;
        if b.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "execution": arn,
                    "status": status.as_str(),
                    "error": d.error(),
                    "cause": d.cause(),
                    "partitions": partitions,
                    "failed": failed,
                    "output": output,
                }))
                .expect("serialises")
            );
        } else if ok {
            println!("{partitions} partitions done by {arn}: {failed} failed");
        } else {
            println!(
                "backfill {}: {} of {} partitions failed{}{}",
                status.as_str(),
                failed,
                partitions,
                d.error().map(|e| format!("; {e}")).unwrap_or_default(),
                d.cause().map(|c| format!(": {c}")).unwrap_or_default()
            );
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
}

/// A Distributed Map run followed through its counts.
struct MapRunProgress {
    arn: String,
    succeeded: usize,
    failed: usize,
    last: Option<(i64, i64, i64, i64)>,
}

impl MapRunProgress {
    fn new(arn: &str) -> Self {
        Self {
            arn: arn.to_string(),
            succeeded: 0,
            failed: 0,
            last: None,
        }
    }

    /// Reads the run's item counts and prints them when they moved.
    async fn poll(&mut self, client: &Client, json: bool) -> Result<()> {
        let run = client
            .describe_map_run()
            .map_run_arn(&self.arn)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    "cannot read the map run",
                    aws_sdk_sfn::error::DisplayErrorContext(e),
                )
            })?;
        let Some(c) = run.item_counts() else {
            return Ok(());
        };
        let failed = c.failed() + c.aborted() + c.timed_out();
        let now = (c.total(), c.succeeded(), failed, c.running());
        self.succeeded = usize::try_from(c.succeeded()).unwrap_or(0);
        self.failed = usize::try_from(failed).unwrap_or(0);
        if self.last != Some(now) && !json {
            println!(
                "[{} of {}] partitions finished: {} compacted or unchanged, {} failed, {} running",
                c.succeeded() + failed,
                c.total(),
                c.succeeded(),
                failed,
                c.running()
            );
        }
        self.last = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_a_range_for_the_teams_given() {
        let d = |s| PartitionDate::parse(s).unwrap();
        let v = input(d("2026-11-01"), d("2026-11-30"), &[]);
        assert_eq!(v["scope"], "range");
        assert!(v.get("teams").is_none());
        let t = [TeamName::new("checkout").unwrap()];
        assert_eq!(
            input(d("2026-11-01"), d("2026-11-30"), &t)["teams"],
            json!(["checkout"])
        );
        let (line, bad) = describe(&json!({"team": "a", "dt": "2026-11-01", "failed": true,
            "error": {"Error": "NonRetryable", "Cause": "access denied"}}));
        assert!(bad && line.contains("access denied"), "{line}");
        let (line, bad) = describe(&json!({"team": "a", "dt": "2026-11-01", "failed": false,
            "result": {"status": "committed", "rows": 5, "quarantined": 1}}));
        assert!(!bad && line.contains("5 rows, 1 quarantined"), "{line}");
    }
}

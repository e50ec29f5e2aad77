//! Running a plan: partitions compacted `jobs` at a time, each on its own task, so one partition's
//! failure never loses another's work. The summary names every failed partition.

use std::sync::Arc;
use std::time::Instant;

use eventlake_contract::PartitionKey;
use futures::StreamExt;
use serde::Serialize;

use crate::compact::{CompactOptions, Counts, compact_partition};
use crate::earlier::IdBoard;
use crate::error::Error;
use crate::plan::{PartitionPlan, Plan, Unread};
use eventlake_catalog::Lake;
use eventlake_catalog::{Catalog, CommitOutcome, LeasedCatalog, Leases, Taken};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A new version was written and committed.
    Committed,
    /// Same raw data as the committed version: nothing was done.
    Unchanged,
    /// Another run committed the same raw data first; this run's version was left for `gc`.
    AlreadyCurrent,
    /// Another run holds the partition's lease: skipped, nothing read or written.
    Busy,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    pub team: String,
    pub dt: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    pub files: usize,
    pub bytes_written: u64,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// For a busy partition: who holds its lease, and until when (an S3 lease).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<String>,
    /// For a committed partition: seconds from its newest raw object's arrival to the commit,
    /// how late the curated table shows an event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub partitions: Vec<PartitionReport>,
    pub committed: usize,
    pub unchanged: usize,
    /// Partitions another run was working on (`team=…/dt=…`): skipped, not failed.
    pub busy: Vec<String>,
    pub failed: Vec<String>,
    /// Raw data outside every partition, not read (see [`Plan::unread`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<Unread>,
    pub totals: Counts,
    pub elapsed_ms: u64,
    pub lines_per_sec: u64,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// How a long run shows its progress. The command draws a bar on a terminal; [`LogProgress`]
/// logs a line per partition; [`Quiet`] says nothing.
pub trait Progress: Send + Sync {
    /// One partition is done; `lines` were read so far, since `started`.
    fn partition_done(&self, report: &PartitionReport, lines: u64, started: Instant);
    /// Every partition is done.
    fn finish(&self) {}
}

/// No progress at all (programs that read the summary).
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn partition_done(&self, _: &PartitionReport, _: u64, _: Instant) {}
}

/// One log line per partition (`tracing`), for logs that are read later.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogProgress;

/// Lines per second since `started`.
pub fn rate(lines: u64, started: Instant) -> f64 {
    lines as f64 / started.elapsed().as_secs_f64().max(1e-3)
}

impl Progress for LogProgress {
    fn partition_done(&self, r: &PartitionReport, lines: u64, started: Instant) {
        match r.status {
            Status::Failed => tracing::error!(
                team = %r.team, dt = %r.dt, error = r.error.as_deref().unwrap_or(""),
                "partition failed"
            ),
            _ => tracing::info!(
                team = %r.team, dt = %r.dt, status = ?r.status,
                rows = r.counts.as_ref().map(|c| c.rows).unwrap_or(0),
                elapsed_ms = r.elapsed_ms, lines_per_sec = rate(lines, started) as u64,
                "partition done"
            ),
        }
    }
}

fn report(p: &PartitionKey, status: Status) -> PartitionReport {
    PartitionReport {
        team: p.team.to_string(),
        dt: p.dt.to_string(),
        status,
        version: None,
        counts: None,
        files: 0,
        bytes_written: 0,
        elapsed_ms: 0,
        error: None,
        retryable: None,
        held_by: None,
        held_until: None,
        lag_seconds: None,
    }
}

async fn run_one(
    lake: Lake,
    catalog: Arc<dyn Catalog>,
    leases: Leases,
    plan: PartitionPlan,
    opts: CompactOptions,
    board: IdBoard,
) -> PartitionReport {
    let started = Instant::now();
    let mut r = report(&plan.partition, Status::Failed);
    if !plan.needs_work() {
        r.status = Status::Unchanged;
        r.version = plan.current.as_ref().map(|c| c.version.clone());
        return r;
    }
    let partition = plan.partition.clone();
    let earlier = plan.earlier.clone();
    let newest_raw = plan.objects.iter().filter_map(|o| o.last_modified).max();
    let closing = board.clone();
    // Whoever waits for this partition's ids and has not got them (it failed or was skipped
    // before it read them) reads them elsewhere.
    let close = || {
        closing.close(&partition);
        closing.release(&earlier);
    };
    let lease = match leases.take(&partition).await {
        Ok(Taken::Held(l)) => Arc::new(l),
        Ok(Taken::Busy { holder, until }) => {
            close();
            r.status = Status::Busy;
            r.held_by = Some(holder);
            r.held_until = until;
            r.elapsed_ms = started.elapsed().as_millis() as u64;
            return r;
        }
        Err(e) => {
            close();
            let e = Error::from(e);
            r.retryable = Some(e.is_retryable());
            r.error = Some(format!("cannot take the partition's lease: {e}"));
            r.elapsed_ms = started.elapsed().as_millis() as u64;
            return r;
        }
    };
    let guarded = LeasedCatalog::new(catalog, Arc::clone(&lease));
    let result =
        tokio::spawn(async move { compact_partition(&lake, &guarded, &plan, &opts, &board).await })
            .await
            .map_err(Error::from)
            .and_then(|r| r);
    if result.is_ok() {
        // Its ids are in its committed id index now, for the days after it that come later.
        closing.committed(&partition);
    }
    close();
    // The task is over, so this is the last handle on the lease.
    if let Ok(lease) = Arc::try_unwrap(lease)
        && let Err(e) = lease.release().await
    {
        tracing::warn!(partition = %partition, error = %e, "cannot give the lease back; it expires on its own");
    }
    match result {
        Ok(c) => {
            r.status = match c.outcome {
                CommitOutcome::Committed => Status::Committed,
                CommitOutcome::AlreadyCurrent => Status::AlreadyCurrent,
            };
            if r.status == Status::Committed {
                r.lag_seconds = newest_raw.map(|t| {
                    let ms = (chrono::Utc::now() - t).num_milliseconds().max(0);
                    ms as f64 / 1000.0
                });
            }
            r.version = Some(c.version);
            r.files = c.files.len();
            r.bytes_written = c.bytes_written;
            r.counts = Some(c.counts);
        }
        Err(e) => {
            r.retryable = Some(e.is_retryable());
            r.error = Some(e.to_string());
        }
    }
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    r
}

/// Compacts every partition of `plan` that needs it, `jobs` at a time.
pub async fn run(
    lake: &Lake,
    catalog: Arc<dyn Catalog>,
    plan: Plan,
    jobs: usize,
    opts: &CompactOptions,
    progress: &dyn Progress,
) -> Summary {
    let started = Instant::now();
    let Plan {
        mut partitions,
        unread,
    } = plan;
    // Day by day, so a partition's earlier days are read before it (or alongside it) and it
    // takes their ids from the board; within a day, largest first keeps every worker busy.
    partitions.sort_by_key(|p| (p.partition.dt, std::cmp::Reverse(p.bytes)));
    let board = IdBoard::for_run(&partitions);
    let leases = Leases::new(lake, opts.lease_ttl, eventlake_catalog::this_holder());
    let mut lines_done = 0u64;
    let mut reports: Vec<PartitionReport> = Vec::with_capacity(partitions.len());
    let mut stream = futures::stream::iter(partitions)
        .map(|p| {
            run_one(
                lake.clone(),
                Arc::clone(&catalog),
                leases.clone(),
                p,
                opts.clone(),
                board.clone(),
            )
        })
        .buffer_unordered(jobs.max(1));
    while let Some(r) = stream.next().await {
        lines_done += r.counts.as_ref().map(|c| c.lines).unwrap_or(0);
        progress.partition_done(&r, lines_done, started);
        reports.push(r);
    }
    progress.finish();
    reports.sort_by(|a, b| (&a.team, &a.dt).cmp(&(&b.team, &b.dt)));

    let mut totals = Counts::default();
    for c in reports.iter().filter_map(|r| r.counts.as_ref()) {
        totals.add(c);
    }
    let elapsed = started.elapsed();
    Summary {
        committed: reports
            .iter()
            .filter(|r| r.status == Status::Committed)
            .count(),
        unchanged: reports
            .iter()
            .filter(|r| matches!(r.status, Status::Unchanged | Status::AlreadyCurrent))
            .count(),
        busy: reports
            .iter()
            .filter(|r| r.status == Status::Busy)
            .map(|r| format!("team={}/dt={}", r.team, r.dt))
            .collect(),
        failed: reports
            .iter()
            .filter(|r| r.status == Status::Failed)
            .map(|r| format!("team={}/dt={}", r.team, r.dt))
            .collect(),
        lines_per_sec: (totals.lines as f64 / elapsed.as_secs_f64().max(1e-3)) as u64,
        elapsed_ms: elapsed.as_millis() as u64,
        unread,
        totals,
        partitions: reports,
    }
}

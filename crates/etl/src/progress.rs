//! Progress of a long run on a terminal: a bar with partitions done, lines per second and an ETA.
//! Elsewhere (a log file, a container) one log line per partition.

use std::time::{Duration, Instant};

use eventlake_compaction::backfill::{LogProgress, PartitionReport, Progress, Status, rate};
use indicatif::{ProgressBar, ProgressStyle};

/// A bar when stderr is a terminal, log lines otherwise.
pub fn auto(total: u64) -> Box<dyn Progress> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return Box::new(LogProgress);
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} partitions  {msg}  ETA {eta}",
        )
        .expect("template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Box::new(Bar(bar))
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn partition_done(&self, r: &PartitionReport, lines: u64, started: Instant) {
        self.0.inc(1);
        self.0
            .set_message(format!("{:.0} lines/s", rate(lines, started)));
        if r.status == Status::Failed {
            self.0.println(format!(
                "FAILED team={} dt={}: {}",
                r.team,
                r.dt,
                r.error.as_deref().unwrap_or("")
            ));
        }
        if r.status == Status::Busy {
            self.0.println(format!(
                "busy team={} dt={}: held by {}",
                r.team,
                r.dt,
                r.held_by.as_deref().unwrap_or("another run")
            ));
        }
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

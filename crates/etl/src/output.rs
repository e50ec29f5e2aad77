//! What `etl` prints for people: plans, summaries and the ground truth of generated data.

use eventlake_compaction::backfill::{Status, Summary};
use eventlake_compaction::generate::Truth;
use eventlake_compaction::plan::{Plan, Unread};

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn format_plan(plan: &Plan) -> String {
    let mut s = format!(
        "{:<40} {:<10} {:>8} {:>12}\n",
        "partition", "action", "objects", "bytes"
    );
    for p in &plan.partitions {
        s += &format!(
            "{:<40} {:<10} {:>8} {:>12}\n",
            p.partition.to_string(),
            format!("{:?}", p.action).to_lowercase(),
            p.objects.len(),
            mib(p.bytes)
        );
    }
    s += &format!(
        "dry run: {} partitions, {} to compact, {} raw objects, {}; nothing written\n",
        plan.partitions.len(),
        plan.to_compact(),
        plan.partitions
            .iter()
            .map(|p| p.objects.len())
            .sum::<usize>(),
        mib(plan.partitions.iter().map(|p| p.bytes).sum())
    );
    s += &format_unread(&plan.unread);
    s
}

/// The raw zone's folders and objects that no partition reads, a line each.
fn format_unread(unread: &[Unread]) -> String {
    if unread.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "not read, outside every raw/team=<team>/dt=<YYYY-MM-DD>/ folder ({}; move the data into its partition's folder):
",
        unread.len()
    );
    for u in unread {
        s += &format!(
            "  {}: {}
",
            u.key, u.reason
        );
    }
    s
}

pub fn format_summary(s: &Summary) -> String {
    let mut out = format!(
        "{:<40} {:<15} {:>9} {:>9} {:>6} {:>9} {:>6} {:>11}\n",
        "partition", "status", "lines", "rows", "dups", "conflicts", "cross", "quarantined"
    );
    for r in &s.partitions {
        let key = format!("team={}/dt={}", r.team, r.dt);
        let status = format!("{:?}", r.status).to_lowercase();
        match (&r.counts, r.status) {
            (Some(c), _) => {
                out += &format!(
                    "{key:<40} {status:<15} {:>9} {:>9} {:>6} {:>9} {:>6} {:>11}\n",
                    c.lines,
                    c.rows,
                    c.duplicates,
                    c.conflicts,
                    c.cross_partition_duplicates,
                    c.quarantined
                )
            }
            (None, Status::Busy) => {
                out += &format!(
                    "{key:<40} {status:<15} held by {}{}\n",
                    r.held_by.as_deref().unwrap_or("another run"),
                    r.held_until
                        .as_deref()
                        .map(|u| format!(" until {u}"))
                        .unwrap_or_default()
                )
            }
            (None, Status::Failed) => {
                out += &format!(
                    "{key:<40} {status:<15} {}\n",
                    r.error.as_deref().unwrap_or("")
                )
            }
            (None, _) => out += &format!("{key:<40} {status:<15}\n"),
        }
    }
    let t = &s.totals;
    out += &format!(
        "{} partitions: {} committed, {} unchanged, {} busy, {} failed; {} lines -> {} rows + {} duplicates ({} conflicts) + {} duplicates of earlier days + {} quarantined; {} raw ({} uncompressed) in {:.1} s, {} lines/s\n",
        s.partitions.len(),
        s.committed,
        s.unchanged,
        s.busy.len(),
        s.failed.len(),
        t.lines,
        t.rows,
        t.duplicates,
        t.conflicts,
        t.cross_partition_duplicates,
        t.quarantined,
        mib(t.raw_bytes),
        mib(t.raw_uncompressed_bytes),
        s.elapsed_ms as f64 / 1000.0,
        s.lines_per_sec
    );
    if !s.busy.is_empty() {
        out += &format!(
            "skipped, another run is working on them (run again once it is done): {}\n",
            s.busy.join(", ")
        );
    }
    if s.committed == 0 && s.failed.is_empty() && s.busy.is_empty() && !s.partitions.is_empty() {
        out += "nothing to do: every partition is unchanged since its last commit (use --force to rewrite)\n";
    }
    out += &format_unread(&s.unread);
    if !s.failed.is_empty() {
        out += &format!("FAILED: {}\n", s.failed.join(", "));
    }
    out
}

pub fn format_truth(t: &Truth, lake: &str) -> String {
    let mut s = format!(
        "{:<40} {:>8} {:>9} {:>9} {:>6} {:>9} {:>6} {:>9}\n",
        "partition", "objects", "lines", "events", "dups", "conflicts", "cross", "malformed"
    );
    for (k, p) in &t.partitions {
        s += &format!(
            "{k:<40} {:>8} {:>9} {:>9} {:>6} {:>9} {:>6} {:>9}\n",
            p.objects,
            p.lines,
            p.events,
            p.duplicates,
            p.conflicts,
            p.cross_partition_duplicates,
            p.malformed
        );
    }
    let x = &t.totals;
    s += &format!(
        "wrote {} lines in {} objects ({} gzip, {} NDJSON) to {lake}/raw: {} distinct events, {} duplicates ({} conflicts), {} retries across midnight, {} malformed, {} late\n",
        x.lines,
        x.objects,
        mib(t.bytes),
        mib(t.uncompressed_bytes),
        x.events,
        x.duplicates,
        x.conflicts,
        x.cross_partition_duplicates,
        x.malformed,
        x.late
    );
    s
}

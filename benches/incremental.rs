//! Incremental compaction against a full one, on a day's partition that gets 15 more minutes.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench incremental -- [--events 300000] [--runs 3]
//! ```
//!
//! Generates (once) one team's day of raw objects. Each run sets aside the last quarter of the
//! objects of hour 23 (about 15 minutes of a day's 24 hours), compacts the rest in full, brings
//! the set-aside objects back, and times `etl backfill --incremental` (which reads only them)
//! against `etl backfill --force` (which reads the whole day again), run by run. Both must end
//! with the same rows. The incremental run should take time in proportion to the new events, not
//! the day's.

use std::path::{Path, PathBuf};

use eventlake_benches::{arg, etl_command, median, root, run_as_etl_if_asked, run_measured, walk};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    run_as_etl_if_asked();
    let events = arg("--events", 300_000);
    let runs = arg("--runs", 3);
    let lake = root().join(format!("target/bench-lakes/incremental-{events}"));
    let aside = root().join(format!("target/bench-lakes/incremental-{events}-aside"));
    let marker = lake.join("_generated");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&lake);
        eprintln!("generating {events} events into {} ...", lake.display());
        let mut g = etl_command();
        g.arg("--lake").arg(&lake).args([
            "generate",
            "--teams",
            "checkout",
            "--days",
            "1",
            "--events",
            &events.to_string(),
            "--json",
        ]);
        run_measured(g);
        std::fs::write(&marker, "").unwrap();
    }
    let raw = lake.join("raw");
    // The last quarter (by name) of hour 23's objects: about 15 minutes of the day.
    let mut late: Vec<PathBuf> = walk(&raw)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/hour=23/"))
        .collect();
    late.sort();
    let late: Vec<PathBuf> = late
        .split_off(late.len() - late.len().div_ceil(4))
        .into_iter()
        .map(|p| p.strip_prefix(&raw).unwrap().to_path_buf())
        .collect();
    assert!(!late.is_empty(), "the generated day has objects in hour 23");
    let backfill = |extra: &str| {
        let mut c = etl_command();
        c.arg("--lake")
            .arg(&lake)
            .args(["backfill", "--json", extra]);
        let m = run_measured(c);
        let s: serde_json::Value = serde_json::from_slice(&m.stdout).expect("etl --json summary");
        (m, s)
    };
    let rows = |s: &serde_json::Value| s["partitions"][0]["counts"]["rows"].as_u64();

    let (mut incremental, mut full) = (Vec::new(), Vec::new());
    let mut new_lines = 0;
    let mut day_lines = 0;
    for run in 0..runs {
        for d in ["curated", "quarantine", "_catalog", "_leases"] {
            let _ = std::fs::remove_dir_all(lake.join(d));
        }
        move_all(&late, &raw, &aside);
        let (_, base) = backfill("--jobs=1");
        let base_rows = rows(&base).expect("the day compacted");
        move_all(&late, &aside, &raw);

        let (m, s) = backfill("--incremental");
        let appended = &s["partitions"][0];
        assert_eq!(
            appended["status"], "committed",
            "the incremental run commits: {appended}"
        );
        new_lines = appended["counts"]["lines"].as_u64().unwrap();
        let got = manifest_rows(&lake);
        let (f, s) = backfill("--force");
        day_lines = s["totals"]["lines"].as_u64().unwrap();
        assert_eq!(
            Some(got),
            rows(&s),
            "incremental and full compaction give the same rows"
        );
        assert!(got >= base_rows);
        println!(
            "run {}: incremental {:>6.3} s ({new_lines} new lines)   full {:>6.3} s ({day_lines} lines)",
            run + 1,
            m.wall.as_secs_f64(),
            f.wall.as_secs_f64()
        );
        incremental.push(m.wall.as_secs_f64());
        full.push(f.wall.as_secs_f64());
    }
    let ratio = median(incremental.iter().zip(&full).map(|(i, f)| i / f).collect());
    println!(
        "\nincremental: median {:.3} s; full: median {:.3} s; incremental/full {ratio:.3} (median of pairs) for {:.1} % of the day's lines",
        median(incremental),
        median(full),
        100.0 * new_lines as f64 / day_lines as f64
    );
}

/// The rows of the partition's committed version, from its manifest.
fn manifest_rows(lake: &Path) -> u64 {
    let manifests: Vec<PathBuf> = walk(&lake.join("curated"))
        .into_iter()
        .filter(|p| p.ends_with("_manifest.json"))
        .collect();
    let newest = manifests.iter().max().expect("a committed version");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(newest).unwrap()).unwrap();
    m["counts"]["rows"].as_u64().unwrap()
}

/// Moves the objects at `files` (relative paths) from one folder to the other.
fn move_all(files: &[PathBuf], from: &Path, to: &Path) {
    for rel in files {
        let (src, dest) = (from.join(rel), to.join(rel));
        if src.exists() {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::rename(&src, &dest).unwrap();
        }
    }
}

//! Whole-job benchmark of `etl backfill`, with DuckDB doing the same job side by side.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench compact -- [--events 3000000] [--runs 3] [--jobs 2] [--no-duckdb] [--spark]
//! ```
//!
//! Generates (once, cached under `target/bench-lakes/`) a lake of gzip NDJSON with 1 % duplicates
//! and 0.1 % malformed lines, then times `etl backfill` as a separate process, run by run, each
//! against an empty curated zone and catalog. When DuckDB is importable from `python3`, each run is
//! paired with a DuckDB run of the same job on the same files, and the ratio is taken pair by pair,
//! so a noisy machine skews both sides alike. With `--spark` (and `pip install pyspark`, Java 17),
//! Spark local[2] runs the same job too. Prints wall time, lines/s, raw MB/s (uncompressed) and
//! peak RSS (the job's own process; for Spark only its Python driver, not the JVM it starts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use eventlake_benches::{CHILD_ENV, Measured, median, run_as_etl_if_asked, run_measured};
use eventlake_catalog::Lake;
use eventlake_compaction::generate::{GenerateOptions, generate};

// The same allocator as the `etl` binary, since this binary runs the job as `etl` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    events: u64,
    runs: usize,
    jobs: usize,
    duckdb: bool,
    spark: bool,
    days: u32,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 3_000_000,
        runs: 3,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        duckdb: true,
        spark: false,
        days: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a number")
        };
        match arg.as_str() {
            "--events" => a.events = num(),
            "--runs" => a.runs = num() as usize,
            "--jobs" => a.jobs = num() as usize,
            "--days" => a.days = num() as u32,
            "--no-duckdb" => a.duckdb = false,
            "--spark" => a.spark = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() {
    run_as_etl_if_asked();
    let args = parse_args();
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-lakes");
    let lake_dir = target.join(format!("lake-{}-{}d", args.events, args.days));
    let truth_file = lake_dir.join("_truth.json");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if !truth_file.exists() {
        eprintln!(
            "generating {} events into {} ...",
            args.events,
            lake_dir.display()
        );
        let _ = std::fs::remove_dir_all(&lake_dir);
        let started = Instant::now();
        let lake = Lake::open(lake_dir.to_str().unwrap(), true).unwrap();
        let opts = GenerateOptions {
            events: args.events,
            days: args.days,
            batch_size: 480,
            duplicate_rate: 0.01,
            malformed_rate: 0.001,
            ..GenerateOptions::default()
        };
        let truth = runtime.block_on(generate(&lake, &opts)).unwrap();
        std::fs::write(&truth_file, serde_json::to_vec_pretty(&truth).unwrap()).unwrap();
        eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
    }
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&truth_file).unwrap()).unwrap();
    let lines = truth["totals"]["lines"].as_u64().unwrap();
    let raw_bytes = truth["uncompressed_bytes"].as_u64().unwrap();
    let objects = truth["totals"]["objects"].as_u64().unwrap();

    let importable = |module: &str| {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let duckdb = args.duckdb && importable("duckdb");
    let spark = args.spark && importable("pyspark");
    assert!(
        !args.spark || spark,
        "--spark needs `pip install pyspark` and Java 17"
    );
    println!(
        "input: {lines} lines, {objects} objects, {:.0} MB NDJSON ({:.0} MB gzip); {} runs, --jobs {}{}",
        raw_bytes as f64 / 1e6,
        truth["bytes"].as_f64().unwrap() / 1e6,
        args.runs,
        args.jobs,
        match (duckdb, spark) {
            (true, true) => ", paired with DuckDB and Spark",
            (true, false) => ", paired with DuckDB",
            (false, true) => ", paired with Spark",
            (false, false) => "",
        }
    );

    let me = std::env::current_exe().unwrap();
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut ours: Vec<Measured> = Vec::new();
    let mut baselines: Vec<(&str, Vec<Measured>)> = Vec::new();
    if duckdb {
        baselines.push(("duckdb", Vec::new()));
    }
    if spark {
        baselines.push(("spark", Vec::new()));
    }
    for run in 0..args.runs {
        reset(&lake_dir);
        let mut cmd = Command::new(&me);
        cmd.env(CHILD_ENV, "1")
            .env("ETL_LOG", "warn")
            .arg("--lake")
            .arg(&lake_dir)
            .args(["backfill", "--json", "--jobs", &args.jobs.to_string()]);
        let m = run_measured(cmd);
        let summary: serde_json::Value =
            serde_json::from_slice(&m.stdout).expect("etl --json summary");
        assert_eq!(
            summary["totals"]["lines"].as_u64(),
            Some(lines),
            "every line read"
        );
        assert_eq!(
            summary["totals"]["rows"].as_u64(),
            truth["totals"]["events"].as_u64(),
            "rows match the ground truth"
        );
        println!(
            "run {}: etl    {:>7.2} s  {:>6} MiB peak RSS",
            run + 1,
            m.wall.as_secs_f64(),
            m.max_rss_kib / 1024
        );
        ours.push(m);
        for (name, runs) in &mut baselines {
            let out = target.join(format!("{name}-out"));
            let _ = std::fs::remove_dir_all(&out);
            let mut cmd = Command::new("python3");
            cmd.arg(here.join(format!("{name}_compact.py")))
                .arg(&lake_dir)
                .arg(&out);
            let d = run_measured(cmd);
            let said = String::from_utf8_lossy(&d.stdout);
            println!(
                "run {}: {name:<6} {:>7.2} s  {:>6} MiB peak RSS  ({})",
                run + 1,
                d.wall.as_secs_f64(),
                d.max_rss_kib / 1024,
                said.trim()
            );
            runs.push(d);
        }
    }
    reset(&lake_dir);

    let wall = median(ours.iter().map(|m| m.wall.as_secs_f64()).collect());
    let rss = ours.iter().map(|m| m.max_rss_kib).max().unwrap_or(0);
    println!(
        "\netl backfill: median {wall:.2} s, {:.0} lines/s, {:.0} MB/s raw (uncompressed), peak RSS {} MiB",
        lines as f64 / wall,
        raw_bytes as f64 / 1e6 / wall,
        rss / 1024
    );
    for (name, runs) in &baselines {
        let wall = median(runs.iter().map(|m| m.wall.as_secs_f64()).collect());
        let ratio = median(
            ours.iter()
                .zip(runs)
                .map(|(a, b)| b.wall.as_secs_f64() / a.wall.as_secs_f64())
                .collect(),
        );
        let rss = runs.iter().map(|m| m.max_rss_kib).max().unwrap_or(0);
        println!(
            "{name:<12}  median {wall:.2} s, {:.0} lines/s, peak RSS {} MiB",
            lines as f64 / wall,
            rss / 1024
        );
        println!("throughput ratio etl/{name} (median of pairs): {ratio:.2}x");
    }
}

/// Empties the curated zone, quarantine and catalog, keeping the raw zone.
fn reset(lake: &Path) {
    for d in ["curated", "quarantine", "_catalog"] {
        let _ = std::fs::remove_dir_all(lake.join(d));
    }
}

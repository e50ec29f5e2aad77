//! The saved queries' and the analyst queries' P95 latency on the local engine against DuckDB's,
//! same Parquet files, one run.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench query_p95 -- [--events 3000000] [--runs 20] [--rounds 2]
//! ```
//!
//! Generates and compacts (once, cached under `target/bench-lakes/`) a lake of `--events` events
//! over 7 days and 3 teams, then alternates `etl check-p95 sql/` and DuckDB running the same saved
//! queries (translated from Athena SQL by sqlglot; `benches/duckdb_queries.py`) over exactly the
//! committed files: `--rounds` rounds of `--runs / --rounds` runs each, so a noisy spell of the
//! machine falls on both. Each side runs in one process per round, one untimed pass over the
//! queries first, then every run timed.
//! Two sets run: the saved queries (`sql/`) and `benches/analyst/`, queries of the shapes
//! analysts write (high-cardinality distinct counts, filters on string columns, joins,
//! `DISTINCT`, window functions, Athena's date, string and JSON functions), which no planner rule
//! was written for. For the analyst set it also prints the geometric mean of the DuckDB/etl
//! ratios and the queries slower than DuckDB at P95.
//! Needs `pip install duckdb sqlglot`.

use std::collections::BTreeMap;
use std::process::Command;

use eventlake_benches::{arg, etl_command, percentile, root, run_as_etl_if_asked, run_measured};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    run_as_etl_if_asked();
    let events = arg("--events", 3_000_000);
    let runs = arg("--runs", 20);
    let rounds = arg("--rounds", 2).max(1);
    let per_round = (runs / rounds).max(1);
    let lake = root().join(format!("target/bench-lakes/query-{events}"));
    let ready = lake.join("_ready");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&lake);
        eprintln!(
            "generating and compacting {events} events into {} ...",
            lake.display()
        );
        let mut g = etl_command();
        g.arg("--lake").arg(&lake).args([
            "generate",
            "--events",
            &events.to_string(),
            "--days",
            "7",
        ]);
        run_measured(g);
        let mut b = etl_command();
        b.arg("--lake").arg(&lake).args(["backfill", "--json"]);
        run_measured(b);
        std::fs::write(&ready, b"").unwrap();
    }
    let mut c = etl_command();
    c.arg("--lake")
        .arg(&lake)
        .args(["catalog", "list", "--json"]);
    let catalog = lake.join("catalog.json");
    std::fs::write(&catalog, run_measured(c).stdout).unwrap();

    for (set, dir) in [
        ("saved queries", root().join("sql")),
        ("analyst queries", root().join("benches/analyst")),
    ] {
        compare(set, &dir, &lake, &catalog, events, rounds, per_round);
    }
}

/// One set of queries on both engines, alternating in rounds, and its table of figures.
fn compare(
    set: &str,
    sql: &std::path::Path,
    lake: &std::path::Path,
    catalog: &std::path::Path,
    events: u64,
    rounds: u64,
    per_round: u64,
) {
    let chart = root().join(format!("target/bench-p95-{}.svg", set.replace(' ', "-")));
    let mut ours: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut duck: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 0..rounds {
        let mut c = etl_command();
        c.arg("--lake").arg(lake).arg("check-p95").arg(sql).args([
            "--runs",
            &per_round.to_string(),
            "--json",
            "--chart",
        ]);
        c.arg(&chart);
        let report: serde_json::Value =
            serde_json::from_slice(&run_measured(c).stdout).expect("check-p95 JSON");
        for q in report["queries"].as_array().unwrap() {
            ours.entry(q["name"].as_str().unwrap().to_owned())
                .or_default()
                .extend(
                    q["samples_ms"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap()),
                );
        }
        let mut d = Command::new("python3");
        d.arg(root().join("benches/duckdb_queries.py"))
            .arg(catalog)
            .arg(sql)
            .arg(per_round.to_string());
        let out: serde_json::Value =
            serde_json::from_slice(&run_measured(d).stdout).expect("duckdb JSON");
        for (name, v) in out["queries"].as_object().unwrap() {
            duck.entry(name.clone())
                .or_default()
                .extend(v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
        }
        eprintln!("{set}: round {} of {rounds} done", round + 1);
    }
    println!(
        "\n{set}: {events} events, {} runs per query per engine, alternating in {rounds} rounds\n",
        per_round * rounds
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "query", "etl p50", "etl p95", "duck p50", "duck p95", "duck/etl p95"
    );
    let mut worst: f64 = f64::INFINITY;
    let mut log_sum = 0.0;
    let mut slower = Vec::new();
    for (name, v) in &ours {
        let d = &duck[name];
        let ratio = percentile(d, 95.0) / percentile(v, 95.0);
        worst = worst.min(ratio);
        log_sum += ratio.ln();
        if ratio < 1.0 / 1.25 {
            slower.push(name.as_str());
        }
        println!(
            "{name:<28} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>11.2}x",
            percentile(v, 50.0),
            percentile(v, 95.0),
            percentile(d, 50.0),
            percentile(d, 95.0),
            ratio
        );
    }
    let geomean = (log_sum / ours.len().max(1) as f64).exp();
    println!(
        "\n{set}: geometric mean of DuckDB/etl P95 {geomean:.2}x; lowest {worst:.2}x; \
         {} of {} slower than DuckDB by more than 1.25x{}; chart of etl's runs: {}",
        slower.len(),
        ours.len(),
        if slower.is_empty() {
            String::new()
        } else {
            format!(" ({})", slower.join(", "))
        },
        chart.display()
    );
}

//! `etl backfill` from and to S3 (the SeaweedFS stand-in) against the same job on a local folder.
//!
//! ```text
//! cargo bench -p eventlake-benches --bench s3_compact -- [--events 1000000] [--runs 3] [--jobs 2]
//! ```
//!
//! Starts SeaweedFS with the project's script, generates the same raw data (same seed and options)
//! into a local folder and into `s3://eventlake-test/bench-<events>/`, then alternates
//! `etl backfill --force` on each, and reports the median of the per-pair S3/local wall-time ratio
//! (the goal: within 1.5x, which needs concurrent object reads and multipart writes).

use eventlake_benches::{
    arg, etl_command, median, root, run_as_etl_if_asked, run_measured, seaweedfs,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    run_as_etl_if_asked();
    let events = arg("--events", 1_000_000);
    let runs = arg("--runs", 3);
    let jobs = arg("--jobs", 2);
    let env = seaweedfs();
    let local = root().join(format!("target/bench-lakes/s3cmp-{events}"));
    let s3 = format!("s3://eventlake-test/bench-{events}");
    let generate = |lake: &str| {
        let mut g = etl_command();
        g.envs(env.iter().map(|(k, v)| (k, v))).args([
            "--lake",
            lake,
            "generate",
            "--events",
            &events.to_string(),
            "--days",
            "7",
            "--json",
        ]);
        let truth: serde_json::Value = serde_json::from_slice(&run_measured(g).stdout).unwrap();
        truth["totals"]["events"].as_u64().unwrap()
    };
    let marker = local.join("_generated");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&local);
        eprintln!(
            "generating {events} events into {} and {s3} ...",
            local.display()
        );
        let a = generate(local.to_str().unwrap());
        let b = generate(&s3);
        assert_eq!(a, b, "both lakes hold the same data");
        std::fs::write(&marker, a.to_string()).unwrap();
    }
    let expected: u64 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let backfill = |lake: &str| {
        let mut c = etl_command();
        c.envs(env.iter().map(|(k, v)| (k, v))).args([
            "--lake",
            lake,
            "backfill",
            "--force",
            "--json",
            "--jobs",
            &jobs.to_string(),
        ]);
        let m = run_measured(c);
        let s: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
        assert_eq!(
            s["totals"]["rows"].as_u64(),
            Some(expected),
            "{lake}: every row"
        );
        m
    };
    let mut local_s = Vec::new();
    let mut s3_s = Vec::new();
    let mut ratios = Vec::new();
    for run in 0..runs {
        let l = backfill(local.to_str().unwrap()).wall.as_secs_f64();
        let s = backfill(&s3).wall.as_secs_f64();
        println!(
            "run {}: local {l:.2} s, s3 {s:.2} s, s3/local {:.2}x",
            run + 1,
            s / l
        );
        local_s.push(l);
        s3_s.push(s);
        ratios.push(s / l);
    }
    let ratio = median(ratios);
    println!(
        "\n{events} events, --jobs {jobs}: local median {:.2} s, S3 (SeaweedFS) median {:.2} s; S3/local {ratio:.2}x (median of pairs; goal <= 1.5x)",
        median(local_s),
        median(s3_s)
    );
    // Old versions from the --force runs: keep the bench lakes small.
    for lake in [local.to_str().unwrap(), s3.as_str()] {
        let mut gc = etl_command();
        gc.envs(env.iter().map(|(k, v)| (k, v)))
            .args(["--lake", lake, "gc", "--grace", "0s", "--json"]);
        run_measured(gc);
    }
}

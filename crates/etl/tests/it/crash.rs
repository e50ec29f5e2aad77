//! `etl backfill` killed with SIGKILL mid-run, then run again, gives the same committed rows as a
//! run that was never interrupted.

use std::time::{Duration, Instant};

use crate::common::{etl, etl_bin, stdout, walk};

fn table_digest(lake: &std::path::Path) -> String {
    let out = etl(
        lake,
        &[
            "query",
            "--format",
            "csv",
            "--sql",
            "select team, dt, count(*) as n, count(distinct event_id) as ids, \
             sum(cast(event_time as bigint)) as t, sum(length(properties)) as p \
             from events group by team, dt order by team, dt",
        ],
    );
    assert!(out.status.success());
    stdout(&out)
}

#[test]
fn sigkill_mid_backfill_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let killed = dir.path().join("killed");
    let clean = dir.path().join("clean");
    for lake in [&killed, &clean] {
        let out = etl(
            lake,
            &[
                "generate",
                "--events",
                "40000",
                "--days",
                "8",
                "--teams",
                "a,b",
                "--batch-size",
                "200",
                "--seed",
                "3",
            ],
        );
        assert!(out.status.success());
    }

    let mut child = etl_bin()
        .arg("--lake")
        .arg(&killed)
        .args(["backfill", "--jobs", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the first partition is committed (bounded wait).
    let catalog = killed.join("_catalog/events");
    let deadline = Instant::now() + Duration::from_secs(60);
    let committed = |dir: &std::path::Path| {
        walk(dir)
            .iter()
            // Entries only: a commit's temporary file (`.tmp-…`) is not one until renamed.
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("dt="))
            })
            .count()
    };
    while committed(&catalog) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let after_kill = committed(&catalog);
    assert!(
        after_kill >= 1,
        "the run was killed before its first commit"
    );
    assert!(
        after_kill < 16,
        "the run finished before it could be killed"
    );

    // What was committed before the kill is readable as it is.
    let partial = table_digest(&killed);
    assert_eq!(partial.lines().count() - 1, after_kill);

    assert!(etl(&killed, &["backfill"]).status.success());
    assert!(etl(&clean, &["backfill"]).status.success());
    assert_eq!(table_digest(&killed), table_digest(&clean));
    assert_eq!(committed(&catalog), 16);
}

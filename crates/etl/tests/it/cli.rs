//! The `etl` command as a user runs it: messages, exit codes, formats.

use crate::common::{TestLake, etl, etl_bin, stderr, stdout};

#[test]
fn bad_arguments_are_refused_before_any_io() {
    let t = TestLake::new();
    let out = etl(
        &t.path,
        &["compact", "--team", "../etc", "--date", "2026-11-20"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid team name \"../etc\""),
        "{}",
        stderr(&out)
    );
    let out = etl(&t.path, &["backfill", "--from", "2026-02-30"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid date \"2026-02-30\": expected YYYY-MM-DD"));
    let out = etl(
        &t.path,
        &["backfill", "--from", "2026-11-21", "--to", "2026-11-20"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--from 2026-11-21 is after --to 2026-11-20"));
    // A remote backfill says what it lacks before it calls AWS.
    for (args, says) in [
        (
            vec!["backfill", "--remote", "--state-machine", "arn:x"],
            "--remote needs --from and --to",
        ),
        (
            vec![
                "backfill",
                "--remote",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-02",
            ],
            "--remote needs --state-machine",
        ),
        (
            vec![
                "backfill",
                "--remote",
                "--state-machine",
                "arn:x",
                "--from",
                "2026-01-01",
                "--to",
                "2027-01-02",
            ],
            "at most 366 days",
        ),
    ] {
        let out = etl_bin()
            .env_remove("EVENTLAKE_STATE_MACHINE_ARN")
            .arg("--lake")
            .arg(&t.path)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let out = etl(&t.path.join("nope"), &["query", "--sql", "select 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot open lake folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn generate_backfill_query_round_trip() {
    let t = TestLake::new();
    let gen_out = etl(
        &t.path,
        &["generate", "--events", "3000", "--days", "1", "--json"],
    );
    assert!(gen_out.status.success());
    let truth: serde_json::Value = serde_json::from_slice(&gen_out.stdout).unwrap();

    // A dry run prints the plan and writes nothing.
    let dry = etl(&t.path, &["backfill", "--dry-run"]);
    assert!(dry.status.success());
    assert!(
        stdout(&dry).contains("dry run: 3 partitions, 3 to compact"),
        "{}",
        stdout(&dry)
    );
    assert!(!t.path.join("curated").exists());
    assert!(!t.path.join("_catalog").exists());

    let run = etl(&t.path, &["backfill", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["committed"], 3);
    assert_eq!(summary["totals"]["rows"], truth["totals"]["events"]);
    assert_eq!(
        summary["totals"]["quarantined"],
        truth["totals"]["malformed"]
    );

    let again = etl(&t.path, &["backfill"]);
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );

    let one = etl(
        &t.path,
        &[
            "compact",
            "--team",
            "search",
            "--date",
            "2026-11-20",
            "--force",
        ],
    );
    assert!(
        stdout(&one).contains("1 partitions: 1 committed"),
        "{}",
        stdout(&one)
    );

    let csv = etl(
        &t.path,
        &[
            "query",
            "--format",
            "csv",
            "--sql",
            "select count(*) as n from events",
        ],
    );
    assert_eq!(stdout(&csv), format!("n\n{}\n", truth["totals"]["events"]));
    let json = etl(
        &t.path,
        &[
            "query",
            "--format",
            "json",
            "--sql",
            "select team from events group by team order by team",
        ],
    );
    assert_eq!(
        stdout(&json),
        "{\"team\":\"checkout\"}\n{\"team\":\"growth\"}\n{\"team\":\"search\"}\n"
    );
    let table = etl(
        &t.path,
        &[
            "query",
            "--sql",
            "select count(*) as n from events where team = 'nobody'",
        ],
    );
    assert!(stdout(&table).contains("| 0 |"), "{}", stdout(&table));
    // The names a query written for Athena gives the table, the Glue database's included.
    let n = format!("n\n{}\n", truth["totals"]["events"]);
    for table in [
        "eventlake.events",
        "\"eventlake\".\"events\"",
        "\"AwsDataCatalog\".\"eventlake\".\"events\"",
    ] {
        let sql = format!("select count(*) as n from {table}");
        let out = etl(&t.path, &["query", "--format", "csv", &sql]);
        assert_eq!(stdout(&out), n, "{sql}: {}", stderr(&out));
    }
    let renamed = etl(
        &t.path,
        &[
            "--glue-database",
            "prod",
            "--glue-table",
            "clicks",
            "query",
            "--format",
            "csv",
            "select count(*) as n from prod.clicks",
        ],
    );
    assert_eq!(stdout(&renamed), n, "{}", stderr(&renamed));
    let elsewhere = etl(&t.path, &["query", "select count(*) from other.events"]);
    assert!(!elsewhere.status.success());
    assert!(
        stderr(&elsewhere).contains("other.events' not found"),
        "{}",
        stderr(&elsewhere)
    );

    let sql = t.path.join("q.sql");
    std::fs::write(&sql, "select count(distinct dt) as days from events").unwrap();
    let file = etl(
        &t.path,
        &["query", "--format", "csv", "--file", sql.to_str().unwrap()],
    );
    assert_eq!(stdout(&file), "days\n1\n");
    // The SQL as the only argument, and from standard input.
    let positional = etl(
        &t.path,
        &[
            "query",
            "--format",
            "csv",
            "select count(distinct dt) as days from events",
        ],
    );
    assert_eq!(stdout(&positional), "days\n1\n", "{}", stderr(&positional));
    let mut piped = etl_bin()
        .arg("--lake")
        .arg(&t.path)
        .args(["query", "--format", "csv", "--file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut piped.stdin.take().unwrap(),
        b"select count(distinct team) as teams from events",
    )
    .unwrap();
    let piped = piped.wait_with_output().unwrap();
    assert_eq!(stdout(&piped), "teams\n3\n");
    // A reader that stops early (`| head -1`) ends the export, which is not a failure.
    let mut export = etl_bin()
        .arg("--lake")
        .arg(&t.path)
        .args(["query", "--format", "csv", "select * from events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(export.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(
        first.starts_with("event_id,event_type,event_time"),
        "{first}"
    );
    let export = export.wait_with_output().unwrap();
    assert!(export.status.success(), "{}", stderr(&export));

    let bad = etl(&t.path, &["query", "--sql", "select nope from events"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("nope"), "{}", stderr(&bad));

    // Athena's functions on the committed rows, with Athena's answers.
    let athena = etl(
        &t.path,
        &[
            "query",
            "--format",
            "csv",
            "--sql",
            "select count_if(year(event_time) = year(date_add('day', 1, event_time))) > 0 as ok, \
             typeof(date(event_time)) as t, to_hex(md5(to_utf8('x'))) as h \
             from events group by 2, 3",
        ],
    );
    assert_eq!(
        stdout(&athena),
        "ok,t,h\ntrue,date,9DD4E461268C8034F5C8564E155C67A6\n",
        "{}",
        stderr(&athena)
    );
    // A function the engine lacks fails before it runs, with its file, line and column.
    let lacking = t.path.join("lacking.sql");
    std::fs::write(
        &lacking,
        "select team,\n  checksum(user_id) as n\nfrom events group by team",
    )
    .unwrap();
    let missing = etl(&t.path, &["query", "--file", lacking.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert!(
        err.contains("lacking.sql:2:3: checksum() is an Athena function"),
        "{err}"
    );

    let gc = etl(&t.path, &["gc", "--grace", "0s"]);
    assert!(
        stdout(&gc).contains("removed 1 versions"),
        "{}",
        stdout(&gc)
    );
    let list = etl(&t.path, &["catalog", "list"]);
    assert!(stdout(&list).contains("3 partitions"));
}

#[test]
fn logs_are_structured_when_asked() {
    let t = TestLake::new();
    assert!(
        etl(&t.path, &["generate", "--events", "300", "--days", "1"])
            .status
            .success()
    );
    let out = crate::common::etl_bin()
        .env("ETL_LOG", "info")
        .args([
            "--lake",
            t.path.to_str().unwrap(),
            "--log-format",
            "json",
            "backfill",
        ])
        .output()
        .unwrap();
    let line = stderr(&out).lines().next().unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["fields"]["message"], "partition done");
}

/// A lake folder whose name has characters the store encodes (`%`, a space, `[`) is that
/// folder: the data files, quarantine and catalog all go under it, and everything reads back.
/// Its raw and curated zones once went to a sibling folder named `...%25...` instead.
#[test]
fn a_lake_folder_named_with_characters_the_store_encodes_is_that_folder() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("my lake%1 [a]");
    let gen_out = etl(
        &lake,
        &["generate", "--events", "2000", "--days", "1", "--json"],
    );
    assert!(gen_out.status.success(), "{}", stderr(&gen_out));
    let truth: serde_json::Value = serde_json::from_slice(&gen_out.stdout).unwrap();
    let run = etl(&lake, &["backfill", "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["totals"]["rows"], truth["totals"]["events"]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["my lake%1 [a]"]);
    for zone in ["raw", "curated", "quarantine", "_catalog"] {
        assert!(lake.join(zone).is_dir(), "{zone} under the lake folder");
    }
    let csv = etl(
        &lake,
        &[
            "query",
            "--format",
            "csv",
            "--sql",
            "select count(*) as n from events",
        ],
    );
    assert!(csv.status.success(), "{}", stderr(&csv));
    assert_eq!(stdout(&csv), format!("n\n{}\n", truth["totals"]["events"]));
    let again = etl(&lake, &["backfill"]);
    assert!(
        stdout(&again).contains("nothing to do"),
        "{}",
        stdout(&again)
    );
    let gc = etl(&lake, &["gc", "--grace", "0s"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
}

/// A committed data file deleted by hand: a query that reads it names the file and the command
/// that writes its partition again from the raw zone, and that command mends it.
#[test]
fn a_missing_data_file_is_named_with_the_command_that_mends_it() {
    let t = TestLake::new();
    let gen_out = etl(
        &t.path,
        &["generate", "--events", "900", "--days", "1", "--json"],
    );
    assert!(gen_out.status.success(), "{}", stderr(&gen_out));
    let truth: serde_json::Value = serde_json::from_slice(&gen_out.stdout).unwrap();
    assert!(etl(&t.path, &["backfill"]).status.success());
    let file = crate::common::walk(&t.path.join("curated"))
        .into_iter()
        .find(|p| {
            let p = p.to_string_lossy();
            p.contains("team=search/") && p.ends_with(".parquet") && !p.contains("/_")
        })
        .expect("a data file of team search");
    std::fs::remove_file(&file).unwrap();
    let sql = [
        "query",
        "--format",
        "csv",
        "--sql",
        "select count(distinct event_id) as n from events",
    ];
    let failed = etl(&t.path, &sql);
    assert!(!failed.status.success());
    let said = stderr(&failed);
    assert!(
        said.contains("team=search/dt=2026-11-20 is missing"),
        "{said}"
    );
    let command = said
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in: {said}"));
    assert_eq!(
        command,
        "etl backfill --force --team search --from 2026-11-20 --to 2026-11-20"
    );
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let mended = etl(&t.path, &args);
    assert!(mended.status.success(), "{}", stderr(&mended));
    let again = etl(&t.path, &sql);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        format!("n\n{}\n", truth["totals"]["events"])
    );
}

//! The scheduled job's task entry point, called directly and as `etl task`.

use eventlake_catalog::{CatalogKind, GlueTarget, Target};
use eventlake_compaction::generate::{GenerateOptions, generate};
use eventlake_contract::PartitionDate;
use eventlake_etl::task::{TaskContext, handle};
use serde_json::json;

use crate::common::{TestLake, etl, stdout};

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

fn target(t: &TestLake) -> TaskContext {
    TaskContext::new(Target {
        lake: t.path.to_str().unwrap().to_owned(),
        catalog: CatalogKind::Lake,
        glue: GlueTarget::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_compact_and_check_p95_from_payloads() {
    let t = TestLake::new();
    let opts = GenerateOptions {
        start: PartitionDate::parse(&today()).unwrap(),
        days: 1,
        events: 3000,
        ..GenerateOptions::default()
    };
    let truth = generate(&t.lake, &opts).await.unwrap();
    let target = target(&t);

    let plan = handle(json!({"action": "plan", "scope": "today"}), &target)
        .await
        .unwrap();
    assert_eq!(plan["count"], 3, "{plan}");
    let first = &plan["partitions"][0];
    assert_eq!(first["dt"], today());
    assert_eq!(first["runner"], "lambda");
    assert!(first["raw_bytes"].as_u64().unwrap() > 0);
    let yesterday = handle(json!({"action": "plan", "scope": "yesterday"}), &target)
        .await
        .unwrap();
    assert_eq!(yesterday["count"], 0);

    for p in plan["partitions"].as_array().unwrap() {
        let r = handle(
            json!({"action": "compact", "team": p["team"], "dt": p["dt"]}),
            &target,
        )
        .await
        .unwrap();
        assert_eq!(r["status"], "committed", "{r}");
        let key = format!("team={}/dt={}", p["team"].as_str().unwrap(), today());
        assert_eq!(r["rows"], truth.partitions[&key].events, "{r}");
    }
    // Done: nothing left to plan, and a repeated compaction changes nothing.
    let again = handle(json!({"action": "plan"}), &target).await.unwrap();
    assert_eq!(again["count"], 0);
    let r = handle(
        json!({"action": "compact", "team": "checkout", "dt": today()}),
        &target,
    )
    .await
    .unwrap();
    assert_eq!(r["status"], "unchanged");

    // Bad payloads are not retryable, and say what is wrong.
    for (payload, says) in [
        (
            json!({"action": "compact", "team": "../etc", "dt": today()}),
            "invalid payload",
        ),
        (
            json!({"action": "compact", "team": "checkout", "dt": "2026-02-30"}),
            "invalid payload",
        ),
        (json!({"action": "explode"}), "invalid payload"),
        (
            json!({"action": "compact", "team": "nobody", "dt": today()}),
            "no raw data",
        ),
        (json!({"action": "check_p95", "engine": "oracle"}), "engine"),
    ] {
        let e = handle(payload.clone(), &target).await.unwrap_err();
        assert_eq!(e.error_type, "NonRetryable", "{payload}: {e}");
        assert!(e.message.contains(says), "{payload}: {e}");
    }
}

#[test]
fn etl_task_prints_json_and_exits_by_retryability() {
    let t = TestLake::new();
    let lake = t.path.as_path();
    let day = today();
    assert!(
        etl(
            lake,
            &[
                "generate", "--events", "600", "--teams", "checkout", "--days", "1", "--start",
                &day
            ]
        )
        .status
        .success()
    );
    // Large partitions go to Fargate.
    let o = crate::common::etl_bin()
        .env("EVENTLAKE_LAMBDA_MAX_RAW_MB", "0")
        .arg("--lake")
        .arg(lake)
        .args(["task", "--payload", r#"{"action":"plan"}"#])
        .output()
        .unwrap();
    assert!(o.status.success());
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["partitions"][0]["runner"], "fargate", "{plan}");

    // A write that cannot land (the curated zone is blocked by a file) is worth retrying.
    std::fs::write(lake.join("curated"), b"not a folder").unwrap();
    let payload = format!(r#"{{"action":"compact","team":"checkout","dt":"{day}"}}"#);
    let o = etl(lake, &["task", "--payload", &payload]);
    assert_eq!(o.status.code(), Some(75), "{}", stdout(&o));
    let e: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(e["error_type"], "Retryable", "{e}");
    std::fs::remove_file(lake.join("curated")).unwrap();
    let o = etl(lake, &["task", "--payload", &payload]);
    assert!(o.status.success(), "{}", stdout(&o));

    let o = etl(
        lake,
        &[
            "task",
            "--payload",
            r#"{"action":"compact","team":"Bad Team","dt":"x"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(e["error_type"], "NonRetryable");

    // The P95 check on the local engine, over the saved queries.
    let sql = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql");
    let o = crate::common::etl_bin()
        .env("EVENTLAKE_SQL_DIR", &sql)
        .arg("--lake")
        .arg(lake)
        .args([
            "task",
            "--payload",
            r#"{"action":"check_p95","engine":"local","runs":1}"#,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["ok"], true);
    assert!(r["over_budget"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_plan_covers_its_days_and_teams_and_refuses_what_it_cannot_plan() {
    let t = TestLake::new();
    let opts = GenerateOptions {
        start: PartitionDate::parse("2026-11-01").unwrap(),
        days: 4,
        events: 4000,
        ..GenerateOptions::default()
    };
    generate(&t.lake, &opts).await.unwrap();
    let target = target(&t);

    let plan = handle(
        json!({"action": "plan", "scope": "range", "from": "2026-11-02", "to": "2026-11-03", "teams": ["checkout", "search"]}),
        &target,
    )
    .await
    .unwrap();
    let mut got: Vec<String> = plan["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["team"].as_str().unwrap(),
                p["dt"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "checkout/2026-11-02",
            "checkout/2026-11-03",
            "search/2026-11-02",
            "search/2026-11-03"
        ]
    );
    let all = handle(
        json!({"action": "plan", "scope": "range", "from": "2026-11-01", "to": "2026-11-30"}),
        &target,
    )
    .await
    .unwrap();
    assert_eq!(all["count"], 12, "{all}");

    for (bad, says) in [
        (
            json!({"action": "plan", "scope": "range", "from": "2026-11-01"}),
            "needs both from and to",
        ),
        (
            json!({"action": "plan", "scope": "range", "from": "2026-11-03", "to": "2026-11-01"}),
            "is after",
        ),
        (
            json!({"action": "plan", "scope": "range", "from": "2025-01-01", "to": "2026-12-31"}),
            "at most 366",
        ),
        (
            json!({"action": "plan", "scope": "today", "from": "2026-11-01", "to": "2026-11-02"}),
            "scope range only",
        ),
        (
            json!({"action": "plan", "scope": "range", "from": "2026-11-31", "to": "2026-12-01"}),
            "from",
        ),
    ] {
        let e = handle(bad.clone(), &target).await.unwrap_err();
        assert_eq!(e.error_type, "NonRetryable", "{bad}");
        assert!(e.message.contains(says), "{bad}: {}", e.message);
    }
}

/// A plan of more partitions than `EVENTLAKE_PLAN_INLINE_MAX` goes to the lake as one JSON array
/// (the Distributed Map's items) and the payload says where; a smaller one stays inline.
#[test]
fn a_large_plan_is_written_to_the_lake_for_the_distributed_map() {
    let t = TestLake::new();
    let lake = t.path.as_path();
    assert!(
        etl(
            lake,
            &[
                "generate",
                "--events",
                "2000",
                "--days",
                "3",
                "--start",
                "2026-11-01"
            ]
        )
        .status
        .success()
    );
    let payload = r#"{"action":"plan","scope":"range","from":"2026-11-01","to":"2026-11-03"}"#;
    let plan_with = |max: &str| {
        let o = crate::common::etl_bin()
            .env("EVENTLAKE_PLAN_INLINE_MAX", max)
            .arg("--lake")
            .arg(lake)
            .args(["task", "--payload", payload])
            .output()
            .unwrap();
        (
            o.status.code(),
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap(),
        )
    };
    let (code, inline) = plan_with("200");
    assert_eq!(code, Some(0), "{inline}");
    assert_eq!(inline["count"], 9, "{inline}");
    assert!(inline["items"].is_null(), "{inline}");
    let listed = inline["partitions"].as_array().unwrap().clone();

    let (code, large) = plan_with("8");
    assert_eq!(code, Some(0), "{large}");
    assert_eq!(large["count"], 9, "{large}");
    assert_eq!(large["partitions"], json!([]), "{large}");
    assert!(
        large["items"]["bucket"].is_null(),
        "a local lake has no bucket: {large}"
    );
    let key = large["items"]["key"].as_str().unwrap();
    assert!(
        key.contains("_workflow/plans/") && key.ends_with("-2026-11-01-2026-11-03.json"),
        "{key}"
    );
    let url = large["items"]["url"].as_str().unwrap();
    let file = url.strip_prefix("file://").unwrap();
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(
        written,
        json!(listed),
        "the file holds the records an inline plan returns"
    );

    let (code, bad) = plan_with("many");
    assert_eq!(code, Some(2), "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("EVENTLAKE_PLAN_INLINE_MAX"),
        "{bad}"
    );
}

/// The workflow's runs (plan, then one compact payload per partition, as Step Functions sends
/// them) commit the same rows and the same quarantine as a local `etl backfill` of the same raw
/// data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflows_payloads_commit_what_a_local_backfill_commits() {
    let (local, remote) = (TestLake::new(), TestLake::new());
    let opts = GenerateOptions {
        start: PartitionDate::parse("2026-11-01").unwrap(),
        days: 2,
        events: 4000,
        ..GenerateOptions::default()
    };
    generate(&local.lake, &opts).await.unwrap();
    generate(&remote.lake, &opts).await.unwrap();

    assert!(etl(&local.path, &["backfill"]).status.success());
    let target = target(&remote);
    let plan = handle(
        json!({"action": "plan", "scope": "range", "from": "2026-11-01", "to": "2026-11-02"}),
        &target,
    )
    .await
    .unwrap();
    assert_eq!(plan["count"], 6, "{plan}");
    for p in plan["partitions"].as_array().unwrap() {
        let r = handle(
            json!({"action": "compact", "team": p["team"], "dt": p["dt"]}),
            &target,
        )
        .await
        .unwrap();
        assert_eq!(r["status"], "committed", "{r}");
    }

    let rows = |lake: &std::path::Path| {
        let o = etl(
            lake,
            &[
                "query",
                "--format",
                "csv",
                "--sql",
                "select * from events order by team, dt, event_id",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
    };
    let (a, b) = (rows(&local.path), rows(&remote.path));
    assert!(a.lines().count() > 3000, "{}", a.lines().count());
    assert!(
        a == b,
        "the workflow's rows differ from the local backfill's"
    );

    let quarantined = |lake: &std::path::Path| {
        let mut lines: Vec<String> = Vec::new();
        for e in walk(&lake.join("quarantine")) {
            let text = std::fs::read_to_string(&e).unwrap();
            lines.extend(text.lines().map(str::to_owned));
        }
        lines.sort();
        lines
    };
    let (qa, qb) = (quarantined(&local.path), quarantined(&remote.path));
    assert!(!qa.is_empty());
    assert_eq!(qa, qb);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

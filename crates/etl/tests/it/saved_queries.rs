//! Every saved query in `sql/` runs on the local engine against a generated lake and gives the
//! answer the generator knows; check-p95 reports, charts and fails on a breached budget.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use eventlake_compaction::generate::{GenerateOptions, Truth, generate};
use eventlake_query::saved::{SavedQuery, load_all};
use eventlake_query::{run_sql, session};

use crate::common::{TestLake, etl, stderr, stdout};

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sql")
}

/// Runs a saved query with its default parameters; every value rendered as text per column.
async fn run(t: &TestLake, q: &SavedQuery) -> Vec<BTreeMap<String, String>> {
    let ctx = session(&t.lake, t.catalog.as_ref()).await.unwrap();
    let sql = q.render(&BTreeMap::new()).unwrap();
    let (schema, batches) = run_sql(&ctx, &sql)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", q.path.display()));
    let mut rows = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            let mut row = BTreeMap::new();
            for (i, f) in schema.fields().iter().enumerate() {
                let c = b.column(i);
                let v = if let Some(a) = c.as_primitive_opt::<Int64Type>() {
                    a.value(r).to_string()
                } else if let Some(a) = c.as_primitive_opt::<UInt64Type>() {
                    a.value(r).to_string()
                } else if let Some(a) = c.as_primitive_opt::<Float64Type>() {
                    a.value(r).to_string()
                } else {
                    arrow::util::display::array_value_to_string(c, r).unwrap()
                };
                row.insert(f.name().clone(), v);
            }
            rows.push(row);
        }
    }
    rows
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} in {row:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_saved_query_gives_the_generators_answer() {
    let t = TestLake::new();
    let truth: Truth = generate(&t.lake, &GenerateOptions::default())
        .await
        .unwrap();
    assert!(t.backfill(false).await.ok());
    let queries = load_all(&[sql_dir()]).unwrap();
    assert!(queries.len() >= 5, "at least five saved queries");
    let part = |team: &str, dt: &str| &truth.partitions[&format!("team={team}/dt={dt}")];
    let mut checked = Vec::new();
    for q in &queries {
        let rows = run(&t, q).await;
        match q.name.as_str() {
            "events_per_team_day" => {
                assert_eq!(rows.len(), truth.partitions.len());
                for r in &rows {
                    assert_eq!(
                        num(r, "events") as u64,
                        part(&r["team"], &r["dt"]).events,
                        "{r:?}"
                    );
                }
            }
            "daily_active_users" => {
                assert_eq!(rows.len(), 3);
                for r in &rows {
                    let want = part("checkout", &r["dt"]).users as f64;
                    let got = num(r, "active_users");
                    assert!((got - want).abs() / want < 0.03, "{r:?} vs {want}");
                }
            }
            "top_event_types" => {
                let want = &truth.totals.by_event_type;
                assert_eq!(rows.len(), want.len().min(10));
                for r in &rows {
                    assert_eq!(num(r, "events") as u64, want[&r["event_type"]], "{r:?}");
                }
                let counts: Vec<f64> = rows.iter().map(|r| num(r, "events")).collect();
                assert!(counts.windows(2).all(|w| w[0] >= w[1]), "descending");
            }
            "duration_p95_by_event_type" => {
                // duration_ms is uniform on [10, 60000): its P95 is 57000.5.
                for r in &rows {
                    let got = num(r, "p95_duration_ms");
                    let events = num(r, "events");
                    let tolerance = if events > 1000.0 { 0.02 } else { 0.05 };
                    assert!((got - 57_000.5).abs() / 57_000.5 < tolerance, "{r:?}");
                    let mut n = 0;
                    for dt in ["2026-11-20", "2026-11-21", "2026-11-22"] {
                        n += part("checkout", dt).by_event_type[&r["event_type"]];
                    }
                    assert_eq!(events as u64, n, "{r:?}");
                }
            }
            "revenue_per_day" => {
                assert_eq!(rows.len(), truth.partitions.len());
                for r in &rows {
                    let p = part(&r["team"], &r["dt"]);
                    assert_eq!(
                        num(r, "amount_cents") as u64,
                        p.purchase_amount_cents,
                        "{r:?}"
                    );
                    assert_eq!(
                        num(r, "purchases") as u64,
                        p.by_event_type["purchase"],
                        "{r:?}"
                    );
                }
            }
            "hourly_events" => {
                let total: f64 = rows.iter().map(|r| num(r, "events")).sum();
                assert_eq!(total as u64, part("checkout", "2026-11-20").events);
                assert!(
                    rows.iter().all(|r| r["hour"].starts_with("2026-11-20T")),
                    "{rows:?}"
                );
            }
            "late_events" => {
                for r in &rows {
                    let want: u64 = ["2026-11-20", "2026-11-21", "2026-11-22"]
                        .iter()
                        .map(|dt| part(&r["team"], dt).late)
                        .sum();
                    assert_eq!(num(r, "late_events") as u64, want, "{r:?}");
                }
            }
            other => panic!("{other}: a saved query without a test; add its expected answer here"),
        }
        checked.push(q.name.clone());
    }
    assert_eq!(checked.len(), queries.len());

    // Counts by partition come from the catalog; they must agree with a scan in every shape.
    assert_eq!(
        t.query("SELECT count(*) AS n FROM events WHERE team = 'nobody'")
            .await,
        "n\n0\n"
    );
    assert_eq!(
        t.query("SELECT team, count(*) AS n FROM events WHERE team = 'nobody' GROUP BY team")
            .await,
        "team,n\n"
    );
    let by_catalog = t
        .query("SELECT team, count(*) AS n, count(1) AS m FROM events WHERE dt > '2026-11-20' GROUP BY team ORDER BY team")
        .await;
    let by_scan = t
        .query("SELECT team, count(event_id) AS n, count(user_id IS NULL) AS m FROM events WHERE dt > '2026-11-20' GROUP BY team ORDER BY team")
        .await;
    assert_eq!(by_catalog, by_scan);

    // By event type too (from each file's per-type counts), with a filter on the type that the
    // scan would keep above itself, and without reading any Parquet.
    let by_type = "SELECT dt, event_type, count(*) AS n FROM events WHERE team = 'checkout' AND event_type IN ('purchase', 'click') GROUP BY dt, event_type ORDER BY dt, event_type";
    let by_type_scan = "SELECT dt, event_type, count(event_id) AS n FROM events WHERE team = 'checkout' AND event_type IN ('purchase', 'click') GROUP BY dt, event_type ORDER BY dt, event_type";
    let answer = t.query(by_type).await;
    assert!(answer.lines().count() > 2, "{answer}");
    assert_eq!(answer, t.query(by_type_scan).await);
    let plan = t.query(&format!("EXPLAIN {by_type}")).await;
    assert!(!plan.contains("DataSourceExec: file_groups"), "{plan}");
    assert!(
        t.query(&format!("EXPLAIN {by_type_scan}"))
            .await
            .contains("DataSourceExec: file_groups"),
        "the scan form reads Parquet"
    );

    // Grouping sets of partition columns and the type: from the catalog too, with the empty
    // set's count 0 over no rows and `grouping()` as a scan gives them.
    for sets in [
        "ROLLUP (dt, team, event_type)",
        "CUBE (team, event_type, dt)",
        "GROUPING SETS ((dt), (team, event_type), ())",
    ] {
        let sql = format!(
            "SELECT dt, team, event_type, count(*) AS n, grouping(team, dt) AS g FROM events \
             WHERE team <> 'search' GROUP BY {sets} ORDER BY dt, team, event_type, g"
        );
        let scan = sql.replace("WHERE team", "WHERE event_id IS NOT NULL AND team");
        let answer = t.query(&sql).await;
        assert!(answer.lines().count() > 4, "{answer}");
        assert_eq!(answer, t.query(&scan).await, "{sql}");
        let plan = t.query(&format!("EXPLAIN {sql}")).await;
        assert!(!plan.contains("DataSourceExec: file_groups"), "{plan}");
    }
    assert_eq!(
        t.query(
            "SELECT team, count(*) AS n FROM events WHERE team = 'nobody' GROUP BY ROLLUP (team)"
        )
        .await,
        "team,n\n,0\n"
    );

    // Keys computed from partition columns alone: from the catalog too; a key that may differ
    // from one row to the next (`random()`) is computed row by row.
    let sql = "SELECT substr(dt, 1, 7) AS m, team || '/' || dt AS k, count(*) AS n FROM events \
               WHERE team <> 'search' GROUP BY 1, 2 ORDER BY 2";
    let scan = sql.replace("WHERE team", "WHERE event_id IS NOT NULL AND team");
    let answer = t.query(sql).await;
    assert!(answer.lines().count() > 2, "{answer}");
    assert_eq!(answer, t.query(&scan).await, "{sql}");
    assert!(
        !t.query(&format!("EXPLAIN {sql}"))
            .await
            .contains("DataSourceExec: file_groups")
    );
    assert!(
        t.query("EXPLAIN SELECT dt, random() < 2.0 AS r, count(*) AS n FROM events GROUP BY 1, 2")
            .await
            .contains("DataSourceExec: file_groups")
    );

    // Aggregates that do not count rows (the distinct values, their extremes, a distinct count)
    // from the catalog's one row per partition and type, as a scan gives them; ungrouped over
    // no partition, as over no row.
    for sql in [
        "SELECT DISTINCT team, dt FROM events WHERE dt >= '2026-11-21' ORDER BY dt DESC, team",
        "SELECT team, min(dt) AS a, max(dt) AS b, count(DISTINCT dt) AS c, \
         count(DISTINCT event_type) AS d, count(*) AS n FROM events GROUP BY team ORDER BY team",
        "SELECT event_type, approx_distinct(team) AS t, max(team || dt) AS m FROM events \
         WHERE team <> 'search' GROUP BY ROLLUP (event_type) ORDER BY event_type",
        "SELECT min(dt) AS a, count(DISTINCT team) AS b FROM events WHERE team = 'nobody'",
    ] {
        let scan = sql.replacen("FROM events", "FROM events WHERE event_id IS NOT NULL", 1);
        let scan = scan.replace("NULL WHERE", "NULL AND");
        let answer = t.query(sql).await;
        assert!(answer.lines().count() > 1, "{answer}");
        assert_eq!(answer, t.query(&scan).await, "{sql}");
        let plan = t.query(&format!("EXPLAIN {sql}")).await;
        assert!(
            !plan.contains("DataSourceExec: file_groups"),
            "{sql}\n{plan}"
        );
    }

    // A window's rows are sorted in more hash partitions than the session's, and each window
    // partition still sees every row of its key once: numbered 1 to its count.
    let numbered = "SELECT user_id, row_number() OVER (PARTITION BY user_id ORDER BY event_time, \
                    event_id) AS rn FROM events";
    let plan = t.query(&format!("EXPLAIN {numbered}")).await;
    let window_partitions: usize = plan
        .split("partitioning=Hash([user_id@")
        .nth(1)
        .and_then(|rest| rest.split("], ").nth(1))
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no hash repartition by user_id: {plan}"));
    assert_eq!(window_partitions % 8, 0, "{plan}");
    assert_eq!(
        t.query(&format!(
            "SELECT count_if(max_rn <> n OR distinct_rn <> n) AS bad, sum(n) = (SELECT count(*) \
             FROM events) AS all_rows FROM (SELECT user_id, max(rn) AS max_rn, \
             count(DISTINCT rn) AS distinct_rn, count(*) AS n FROM ({numbered}) GROUP BY 1)"
        ))
        .await,
        "bad,all_rows\n0,true\n"
    );

    // A CASE with a NULL branch over a string comparison or a function of a string column:
    // DataFusion asks such a CASE whether it can be NULL by evaluating its conditions over a
    // batch without columns, which the comparisons by views and per value did not answer
    // (a panic).
    for sql in [
        "SELECT source, if(source = 'web', NULL, 'x') AS c FROM events",
        "SELECT source, CASE WHEN lower(source) = 'web' THEN NULL ELSE 'x' END AS c FROM events",
    ] {
        let sql = format!("{sql} WHERE source IN ('ios', 'web') ORDER BY source DESC LIMIT 1");
        assert_eq!(t.query(&sql).await, "source,c\nweb,\n", "{sql}");
    }

    // Grouped by partition columns only: one aggregation per group, same answer as grouping row
    // by row; with a filter on the rows, grouped as usual, with the same answer.
    let split = "SELECT team, dt, count(*) AS n, approx_distinct(user_id) AS u, min(event_time) AS first FROM events WHERE dt >= '2026-11-20' AND NOT (team = 'search' AND dt = '2026-11-21') GROUP BY team, dt ORDER BY team, dt";
    let filtered = split.replace(
        "WHERE dt >= '2026-11-20'",
        "WHERE dt >= '2026-11-20' AND (event_type = 'purchase' OR team <> 'checkout')",
    );
    for (sql, per_group) in [(split, true), (filtered.as_str(), false)] {
        let grouped = sql
            .replace("GROUP BY team, dt", "GROUP BY team, concat(dt, '')")
            .replace("SELECT team, dt,", "SELECT team, concat(dt, '') AS dt,");
        let answer = t.query(sql).await;
        assert!(answer.lines().count() > 3, "{answer}");
        assert_eq!(answer, t.query(&grouped).await, "{sql}");
        assert!(!answer.contains("search,2026-11-21"), "{answer}");
        assert_eq!(
            t.query(&format!("EXPLAIN {sql}")).await.contains("Union"),
            per_group,
            "{sql}"
        );
    }
    // A value computed per row and used by two aggregates (a common expression, projected
    // between the scan and the aggregation) still splits; a projection that computes a column
    // under a partition column's name does not.
    let common = "SELECT team, dt, count_if(source = 'web') AS w, sum(if(source = 'web', 0, 1)) AS a FROM events GROUP BY team, dt ORDER BY team, dt";
    let plan = t.query(&format!("EXPLAIN {common}")).await;
    assert!(plan.contains("Union"), "{plan}");
    assert!(plan.contains("__common_expr"), "{plan}");
    let answer = t.query(common).await;
    assert!(answer.lines().count() > 3, "{answer}");
    assert_eq!(
        answer,
        t.query(
            "SELECT team, dt, count_if(source = 'web') AS w, count_if(source <> 'web' OR source IS NULL) AS a FROM events GROUP BY team, concat(team, ''), dt ORDER BY team, dt"
        )
        .await
    );
    let shadowed = "SELECT team, count(*) AS n FROM (SELECT concat('x', team) AS team, event_id FROM events) GROUP BY team ORDER BY team";
    assert!(
        !t.query(&format!("EXPLAIN {shadowed}"))
            .await
            .contains("Union")
    );
    let answer = t.query(shadowed).await;
    assert!(answer.contains("xcheckout,"), "{answer}");
    // A number read out of JSON and cast is planned as one function, with the names and the
    // answers of the written pair (`upper` keeps the pair as written).
    let fused = "SELECT team, sum(CAST(json_extract_scalar(properties, '$.amount_cents') AS BIGINT)), max(CAST(json_extract_scalar(properties, '$.duration_ms') AS DOUBLE)) AS d, count(*) AS n FROM events WHERE CAST(json_extract_scalar(properties, '$.duration_ms') AS BIGINT) > 30000 GROUP BY team ORDER BY team";
    let written = fused
        .replace(
            "json_extract_scalar(properties, '$.",
            "upper(json_extract_scalar(properties, '$.",
        )
        .replace("')", "'))");
    let answer = t.query(fused).await;
    let mut lines = answer.lines();
    assert_eq!(
        lines.next(),
        Some("team,_col1,d,n"),
        "an unnamed item is named by its place, as on Athena"
    );
    assert!(lines.count() >= 3, "{answer}");
    let written_answer = t.query(&written).await;
    assert_eq!(
        answer.lines().skip(1).collect::<Vec<_>>(),
        written_answer.lines().skip(1).collect::<Vec<_>>()
    );
    let plan = t.query(&format!("EXPLAIN {fused}")).await;
    for f in [
        "json_extract_scalar_as_bigint",
        "json_extract_scalar_as_double",
    ] {
        assert!(plan.contains(f), "{plan}");
        assert!(!t.query(&format!("EXPLAIN {written}")).await.contains(f));
    }

    // Few groups (bounded by the catalog's teams, days and event types) are finished on one
    // thread; a grouping the catalog cannot bound keeps the repartitioned plan. Same answers.
    let few = "SELECT dt, team, event_type, count(*) AS n, approx_distinct(user_id) AS u FROM events WHERE event_time IS NOT NULL GROUP BY dt, team, event_type ORDER BY dt, team, event_type";
    let unbounded = few
        .replace("GROUP BY dt, team,", "GROUP BY dt, concat(team, ''),")
        .replace("SELECT dt, team,", "SELECT dt, concat(team, '') AS team,");
    let answer = t.query(few).await;
    assert!(answer.lines().count() > 10, "{answer}");
    assert_eq!(answer, t.query(&unbounded).await);
    let plan = t.query(&format!("EXPLAIN {few}")).await;
    assert!(plan.contains("mode=Final,"), "{plan}");
    assert!(!plan.contains("FinalPartitioned"), "{plan}");
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        for sql in [
            unbounded.as_str(),
            "SELECT user_id, count(*) AS n FROM events GROUP BY user_id",
        ] {
            let plan = t.query(&format!("EXPLAIN {sql}")).await;
            assert!(plan.contains("FinalPartitioned"), "{plan}");
        }
    }

    // A filter that leaves no rows in any group gives no rows.
    assert_eq!(
        t.query("SELECT dt, approx_distinct(user_id) AS u FROM events WHERE event_type = 'no_such_type' GROUP BY dt")
            .await,
        "dt,u\n"
    );
}

#[test]
fn check_p95_reports_charts_and_fails_over_budget() {
    let t = TestLake::new();
    let lake = t.path.as_path();
    assert!(
        etl(lake, &["generate", "--events", "3000"])
            .status
            .success()
    );
    assert!(etl(lake, &["backfill"]).status.success());
    let chart = t.path.join("p95.svg");
    let sql = sql_dir();
    let o = etl(
        lake,
        &[
            "check-p95",
            sql.to_str().unwrap(),
            "--runs",
            "3",
            "--json",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let n = std::fs::read_dir(&sql)
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count();
    assert_eq!(report["queries"].as_array().unwrap().len(), n);
    assert_eq!(report["ok"], true);
    for q in report["queries"].as_array().unwrap() {
        assert_eq!(q["samples_ms"].as_array().unwrap().len(), 3);
        assert!(q["p95_ms"].as_f64().unwrap() >= q["p50_ms"].as_f64().unwrap());
        assert_eq!(q["budget_ms"].as_f64().unwrap(), 30_000.0);
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("revenue_per_day"));
    assert_eq!(svg.matches("<circle").count(), 3 * n);

    // A budget nobody can meet: non-zero exit, and the table says which.
    let o = etl(
        lake,
        &[
            "check-p95",
            sql.to_str().unwrap(),
            "--runs",
            "1",
            "--budget",
            "0s",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("OVER BUDGET"), "{}", stdout(&o));

    // An invalid parameter never reaches the SQL; a broken file is named with its line, and
    // nothing runs.
    let o = etl(
        lake,
        &[
            "check-p95",
            sql.to_str().unwrap(),
            "--param",
            "team=../../etc",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("parameter team"), "{}", stderr(&o));
    let o = etl(
        lake,
        &[
            "query",
            "--file",
            sql.join("hourly_events.sql").to_str().unwrap(),
            "--param",
            "day=2026-13-01",
        ],
    );
    assert!(stderr(&o).contains("parameter day"), "{}", stderr(&o));
    let bad = t.path.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(sql.join("top_event_types.sql"), bad.join("a.sql")).unwrap();
    std::fs::write(bad.join("b.sql"), "-- name: b\n-- answers: x\n-- budget: 1s\nSELECT team\nFROM events\nWHERE dt = = '2026-11-20'\n").unwrap();
    let o = etl(
        lake,
        &[
            "check-p95",
            bad.to_str().unwrap(),
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("b.sql:6: syntax error"), "{e}");
    assert!(stdout(&o).is_empty(), "nothing ran: {}", stdout(&o));

    // A query that plans only as `etl query` reads it (an unnamed window output ordered by its
    // place, a subquery test in the select list) is checked as it runs.
    let good = t.path.join("good");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::write(
        good.join("share.sql"),
        "-- name: share\n-- answers: x\n-- budget: 60s\nSELECT source, \
         count(*) * 100.0 / sum(count(*)) OVER (), \
         source IN (SELECT source FROM events WHERE event_type = 'purchase') AS buys\n\
         FROM events GROUP BY 1 ORDER BY 2 DESC\n",
    )
    .unwrap();
    let o = etl(
        lake,
        &[
            "check-p95",
            good.to_str().unwrap(),
            "--runs",
            "1",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

//! One row per event in the whole table: a retry that crossed midnight is a duplicate of the
//! earlier day's row, whatever order the days are compacted in.

use std::sync::Arc;
use std::time::Duration;

use eventlake_catalog::{Catalog, Lake, ObjectCatalog};
use eventlake_compaction::backfill::{self, Quiet, Summary};
use eventlake_compaction::compact::CompactOptions;
use eventlake_compaction::generate::{GenerateOptions, generate};
use eventlake_compaction::plan::{DEFAULT_DEDUPE_WINDOW, Selection, plan};
use eventlake_contract::{PartitionDate, TeamName};
use eventlake_query::{Format, render, run_sql, session};

use crate::common::{TestLake, gzip};

/// A valid raw line of team `checkout`.
fn line(id: &str, received: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"purchase","event_time":"2026-11-30T20:00:00.000Z","user_id":"u-1","properties":{{"amount_cents":100}},"team":"checkout","received_at":"{received}","schema_version":1}}"#
    )
}

/// Writes one raw object of `lines` for `dt`.
async fn put(lake: &Lake, dt: &str, name: &str, lines: &[String]) {
    let body = lines.join("\n") + "\n";
    lake.put(
        &format!("raw/team=checkout/dt={dt}/hour=00/{name}.ndjson.gz"),
        gzip(body.as_bytes()),
    )
    .await
    .unwrap();
}

/// Compacts the partitions of the given days (all when empty), in one run.
async fn compact(
    lake: &Lake,
    catalog: &Arc<dyn Catalog>,
    days: &[&str],
    window: Duration,
) -> Summary {
    let day = |d: &&str| PartitionDate::parse(d).unwrap();
    let selection = Selection {
        teams: vec![],
        from: days.iter().map(day).min(),
        to: days.iter().map(day).max(),
    };
    let p = plan(lake, catalog.as_ref(), &selection, false, window)
        .await
        .unwrap();
    let s = backfill::run(
        lake,
        Arc::clone(catalog),
        p,
        2,
        &CompactOptions::default(),
        &Quiet,
    )
    .await;
    assert!(s.ok(), "{:?}", s.partitions);
    s
}

async fn rows(lake: &Lake, catalog: &Arc<dyn Catalog>, sql: &str) -> String {
    let ctx = session(lake, catalog.as_ref()).await.unwrap();
    let (schema, batches) = run_sql(&ctx, sql).await.unwrap();
    render(&schema, &batches, Format::Csv).unwrap()
}

/// The raw data of the month's last night: `a` arrives twice around midnight (retried 15 s
/// later, into December), `b` on both days but more than a day apart, `c` and `d` once.
async fn month_end(lake: &Lake) {
    put(
        lake,
        "2026-11-30",
        "first",
        &[
            line("a", "2026-11-30T23:59:50.000Z"),
            line("b", "2026-11-30T00:00:01.000Z"),
            line("c", "2026-11-30T12:00:00.000Z"),
        ],
    )
    .await;
    put(
        lake,
        "2026-12-01",
        "retry",
        &[
            line("a", "2026-12-01T00:00:05.000Z"),
            line("b", "2026-12-01T00:00:02.000Z"),
            line("d", "2026-12-01T00:00:03.000Z"),
        ],
    )
    .await;
}

const ROWS: &str = "select dt, event_id, received_at from events order by event_id, dt";
const WANT: &str = "dt,event_id,received_at\n\
    2026-11-30,a,2026-11-30 23:59:50.000\n\
    2026-11-30,b,2026-11-30 00:00:01.000\n\
    2026-12-01,b,2026-12-01 00:00:02.000\n\
    2026-11-30,c,2026-11-30 12:00:00.000\n\
    2026-12-01,d,2026-12-01 00:00:03.000\n";

/// A lake, its catalog, and what keeps them alive.
pub type Opened = (Lake, Arc<dyn Catalog>, Box<dyn std::any::Any>);

/// The month's last night compacted in every order: the later day alone first (it reads the
/// earlier day's raw objects), the earlier day first (the later day reads its id index), and
/// both in one run (the later day takes the ids the earlier one read). The rows are the same.
pub async fn every_order_gives_the_same_rows(open: impl Fn() -> Opened) -> Vec<Summary> {
    let mut summaries = Vec::new();
    let orders: [&[&[&str]]; 3] = [
        &[&["2026-12-01"], &["2026-11-30"]],
        &[&["2026-11-30"], &["2026-12-01"]],
        &[&["2026-11-30", "2026-12-01"]],
    ];
    for order in orders {
        let (lake, catalog, _keep) = open();
        month_end(&lake).await;
        for days in order {
            summaries.push(compact(&lake, &catalog, days, DEFAULT_DEDUPE_WINDOW).await);
        }
        assert_eq!(rows(&lake, &catalog, ROWS).await, WANT, "order {order:?}");
        let december = catalog
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.partition.dt.to_string() == "2026-12-01")
            .unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&lake.get(&december.manifest).await.unwrap()).unwrap();
        let counts = &manifest["counts"];
        assert_eq!(
            (
                counts["lines"].as_u64(),
                counts["rows"].as_u64(),
                counts["cross_partition_duplicates"].as_u64()
            ),
            (Some(3), Some(2), Some(1)),
            "order {order:?}: {counts}"
        );
        // Run again: nothing changed, nothing is done.
        let again = compact(
            &lake,
            &catalog,
            &["2026-11-30", "2026-12-01"],
            DEFAULT_DEDUPE_WINDOW,
        )
        .await;
        assert_eq!(again.committed, 0, "order {order:?}");
    }
    summaries
}

fn local() -> Opened {
    let t = TestLake::new();
    let lake = t.lake.clone();
    let catalog: Arc<dyn Catalog> = t.catalog.clone();
    (lake, catalog, Box::new(t))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_across_midnight_is_one_row_in_every_order_of_compaction() {
    let summaries = every_order_gives_the_same_rows(local).await;
    let printed = eventlake_etl::output::format_summary(&summaries[0]);
    assert!(
        printed.contains("1 duplicates of earlier days"),
        "{printed}"
    );
}

/// The object-store catalog (manifests committed beside the data) on a local folder.
fn object_store_catalog() -> Opened {
    let t = TestLake::new();
    let lake = t.lake.clone();
    let catalog: Arc<dyn Catalog> = Arc::new(ObjectCatalog::new(&lake));
    (lake, catalog, Box::new(t))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_across_midnight_is_one_row_with_the_object_store_catalog() {
    every_order_gives_the_same_rows(object_store_catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_is_inclusive_at_its_edge() {
    let (lake, catalog, _keep) = local();
    put(
        &lake,
        "2026-11-30",
        "first",
        &[
            line("edge", "2026-11-30T23:30:00.000Z"),
            line("past", "2026-11-30T23:30:00.000Z"),
        ],
    )
    .await;
    put(
        &lake,
        "2026-12-01",
        "retry",
        &[
            line("edge", "2026-12-01T00:30:00.000Z"),
            line("past", "2026-12-01T00:30:00.001Z"),
        ],
    )
    .await;
    let hour = Duration::from_secs(3600);
    compact(&lake, &catalog, &["2026-11-30", "2026-12-01"], hour).await;
    assert_eq!(
        rows(
            &lake,
            &catalog,
            "select dt, event_id from events order by event_id, dt"
        )
        .await,
        "dt,event_id\n2026-11-30,edge\n2026-11-30,past\n2026-12-01,past\n"
    );
    // Without a window, every day stands alone.
    let (lake, catalog, _keep) = local();
    put(
        &lake,
        "2026-11-30",
        "first",
        &[line("a", "2026-11-30T23:59:50.000Z")],
    )
    .await;
    put(
        &lake,
        "2026-12-01",
        "retry",
        &[line("a", "2026-12-01T00:00:05.000Z")],
    )
    .await;
    compact(&lake, &catalog, &[], Duration::ZERO).await;
    assert_eq!(
        rows(&lake, &catalog, "select count(*) as n from events").await,
        "n\n2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_object_in_the_earlier_day_recompacts_the_next() {
    let (lake, catalog, _keep) = local();
    month_end(&lake).await;
    compact(
        &lake,
        &catalog,
        &["2026-11-30", "2026-12-01"],
        DEFAULT_DEDUPE_WINDOW,
    )
    .await;
    // `d` turns out to have been received first just before midnight: a late object of the
    // earlier day. Both days are planned again; `d` now belongs to November.
    put(
        &lake,
        "2026-11-30",
        "late",
        &[line("d", "2026-11-30T23:59:59.000Z")],
    )
    .await;
    let s = compact(
        &lake,
        &catalog,
        &["2026-11-30", "2026-12-01"],
        DEFAULT_DEDUPE_WINDOW,
    )
    .await;
    assert_eq!(s.committed, 2, "{:?}", s.partitions);
    assert_eq!(
        rows(
            &lake,
            &catalog,
            "select dt, event_id from events where event_id = 'd'"
        )
        .await,
        "dt,event_id\n2026-11-30,d\n"
    );
    assert_eq!(
        rows(
            &lake,
            &catalog,
            "select count(*) as n, count(distinct event_id) as ids from events"
        )
        .await,
        "n,ids\n5,4\n"
    );
}

fn generated(days: u32) -> GenerateOptions {
    GenerateOptions {
        seed: 11,
        teams: vec![
            TeamName::new("checkout").unwrap(),
            TeamName::new("search").unwrap(),
        ],
        start: PartitionDate::parse("2026-11-29").unwrap(),
        days,
        events: 6_000,
        batch_size: 200,
        cross_day_rate: 0.01,
        ..GenerateOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_table_has_one_row_per_event_forwards_and_backwards() {
    let per_team = "select team, count(*) as n, count(distinct event_id) as ids from events group by team order by team";
    let all =
        "select team, dt, event_id, received_at, properties from events order by team, event_id";

    // Forwards, all at once.
    let (lake, catalog, _keep) = local();
    let truth = generate(&lake, &generated(4)).await.unwrap();
    assert!(truth.totals.cross_partition_duplicates > 0);
    let s = compact(&lake, &catalog, &[], DEFAULT_DEDUPE_WINDOW).await;
    assert_eq!(
        s.totals.cross_partition_duplicates,
        truth.totals.cross_partition_duplicates
    );
    let counts = rows(&lake, &catalog, per_team).await;
    for line in counts.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[1], f[2], "{counts}");
    }
    let forwards = rows(&lake, &catalog, all).await;

    // Backwards, one day at a time, last day first.
    let (lake, catalog, _keep) = local();
    generate(&lake, &generated(4)).await.unwrap();
    for dt in ["2026-12-02", "2026-12-01", "2026-11-30", "2026-11-29"] {
        compact(&lake, &catalog, &[dt], DEFAULT_DEDUPE_WINDOW).await;
    }
    assert_eq!(rows(&lake, &catalog, per_team).await, counts);
    assert_eq!(rows(&lake, &catalog, all).await, forwards);
}

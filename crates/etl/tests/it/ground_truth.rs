//! generate → backfill → query gives exactly the generator's ground truth.

use eventlake_catalog::Catalog;
use eventlake_compaction::backfill::Status;
use eventlake_compaction::generate::{GenerateOptions, MALFORMED_KINDS, generate};
use eventlake_contract::TeamName;

use crate::common::TestLake;

fn options() -> GenerateOptions {
    GenerateOptions {
        seed: 7,
        teams: vec![
            TeamName::new("checkout").unwrap(),
            TeamName::new("search").unwrap(),
        ],
        days: 2,
        events: 12_000,
        batch_size: 300,
        duplicate_rate: 0.03,
        malformed_rate: 0.01,
        ..GenerateOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_match_the_generator_exactly() {
    let t = TestLake::new();
    let truth = generate(&t.lake, &options()).await.unwrap();
    assert_eq!(truth.partitions.len(), 4);
    assert_eq!(truth.totals.lines, 12_000);
    // Every kind of malformed line was written.
    for kind in MALFORMED_KINDS {
        assert!(
            truth.totals.malformed_by_kind[kind] > 0,
            "{kind} not generated"
        );
    }

    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!(s.committed, 4);
    for r in &s.partitions {
        let want = &truth.partitions[&format!("team={}/dt={}", r.team, r.dt)];
        let c = r.counts.as_ref().unwrap();
        assert_eq!(c.lines, want.lines, "{r:?}");
        assert_eq!(c.rows, want.events, "{r:?}");
        assert_eq!(c.duplicates, want.duplicates, "{r:?}");
        assert_eq!(
            c.cross_partition_duplicates, want.cross_partition_duplicates,
            "{r:?}"
        );
        assert_eq!(c.conflicts, want.conflicts, "{r:?}");
        assert_eq!(c.quarantined, want.malformed, "{r:?}");
        assert_eq!(c.objects, want.objects, "{r:?}");
        assert!(c.balanced());
    }

    // The committed table holds one row per event, per partition.
    let got = t
        .query("select team, dt, count(*) as n, count(distinct event_id) as d from events group by team, dt order by team, dt")
        .await;
    let mut want = String::from("team,dt,n,d\n");
    for (k, p) in &truth.partitions {
        let (team, dt) = k.split_once('/').unwrap();
        want += &format!(
            "{},{},{},{}\n",
            team.trim_start_matches("team="),
            dt.trim_start_matches("dt="),
            p.events,
            p.events
        );
    }
    assert_eq!(got, want);

    // Per event type and revenue, over all partitions.
    let got = t
        .query(
            "select event_type, count(*) as n from events group by event_type order by event_type",
        )
        .await;
    let mut want = String::from("event_type,n\n");
    for (ty, n) in &truth.totals.by_event_type {
        want += &format!("{ty},{n}\n");
    }
    assert_eq!(got, want);
    let got = t
        .query(
            "select sum(cast(split_part(substr(properties, strpos(properties, '\"amount_cents\":') + 15), ',', 1) as bigint)) as cents \
             from events where event_type = 'purchase'",
        )
        .await;
    assert_eq!(
        got,
        format!("cents\n{}\n", truth.totals.purchase_amount_cents)
    );

    // Late events land in the partition of their arrival.
    let got = t
        .query(
            "select count(*) as late from events where cast(event_time as date) < cast(dt as date)",
        )
        .await;
    assert_eq!(got, format!("late\n{}\n", truth.totals.late));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_changes_nothing_and_force_rewrites_the_same_rows() {
    let t = TestLake::new();
    generate(&t.lake, &options()).await.unwrap();
    assert!(t.backfill(false).await.ok());
    let before = t.catalog.list().await.unwrap();
    let rows = t.query("select * from events order by event_id").await;

    let again = t.backfill(false).await;
    assert!(
        again
            .partitions
            .iter()
            .all(|r| r.status == Status::Unchanged)
    );
    assert_eq!(t.catalog.list().await.unwrap(), before);

    let forced = t.backfill(true).await;
    assert_eq!(forced.committed, 4);
    let after = t.catalog.list().await.unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert_ne!(a.version, b.version);
        assert_eq!(a.raw_fingerprint, b.raw_fingerprint);
    }
    assert_eq!(
        t.query("select * from events order by event_id").await,
        rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_is_deterministic_for_a_seed() {
    let a = TestLake::new();
    let b = TestLake::new();
    let ta = generate(&a.lake, &options()).await.unwrap();
    let tb = generate(
        &b.lake,
        &GenerateOptions {
            jobs: 1,
            ..options()
        },
    )
    .await
    .unwrap();
    assert_eq!(ta.partitions, tb.partitions);
    let la = a.lake.list("raw/").await.unwrap();
    let lb = b.lake.list("raw/").await.unwrap();
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert_eq!(x.location, y.location);
        assert_eq!(
            std::fs::read(a.path.join(x.location.as_ref())).unwrap(),
            std::fs::read(b.path.join(y.location.as_ref())).unwrap()
        );
    }
}

/// Data shaped unlike the default: one team with most of the lines, wider events, small objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_wide_data_set_matches_its_truth_too() {
    let t = TestLake::new();
    let opts = GenerateOptions {
        teams: ["checkout", "search", "growth"]
            .iter()
            .map(|n| TeamName::new(n).unwrap())
            .collect(),
        first_team_share: Some(0.6),
        extra_properties: 8,
        batch_size: 25,
        cross_day_rate: 0.01,
        ..options()
    };
    let truth = generate(&t.lake, &opts).await.unwrap();
    assert_eq!(truth.totals.lines, 12_000);
    let lines_of = |team: &str| -> u64 {
        truth
            .partitions
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("team={team}/")))
            .map(|(_, p)| p.lines)
            .sum()
    };
    // 60 % of the lines (plus the midnight retries of its own events) in the first team.
    assert!(
        (7_000..7_400).contains(&lines_of("checkout")),
        "{}",
        lines_of("checkout")
    );
    assert_eq!(lines_of("search"), lines_of("growth"));

    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    for r in &s.partitions {
        let want = &truth.partitions[&format!("team={}/dt={}", r.team, r.dt)];
        let c = r.counts.as_ref().unwrap();
        assert_eq!(
            (c.lines, c.rows, c.duplicates, c.cross_partition_duplicates),
            (
                want.lines,
                want.events,
                want.duplicates,
                want.cross_partition_duplicates
            ),
            "{r:?}"
        );
        assert!(c.balanced());
    }
    let got = t
        .query("select count(*) as n from events where json_extract_scalar(properties, '$.attr_07.id') is not null")
        .await;
    assert_eq!(got, format!("n\n{}\n", truth.totals.events));
}

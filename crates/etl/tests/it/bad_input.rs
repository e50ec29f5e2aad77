//! Every kind of bad raw input ends quarantined with its reason, source and line; nothing is lost.

use eventlake_contract::MAX_RAW_LINE_BYTES;
use serde_json::Value;

use crate::common::{RAW, TestLake, gzip, line};

fn reasons_by_line(q: &[Value], source: &str) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = q
        .iter()
        .filter(|r| r["source"] == source && r["line"].is_u64())
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_line_is_quarantined_with_its_reason_and_line() {
    let t = TestLake::new();
    let good = line("e-ok", "2026-11-20T10:00:01.000Z");
    let oversize = format!(
        r#"{{"event_id":"big","pad":"{}"}}"#,
        "x".repeat(MAX_RAW_LINE_BYTES + 10)
    );
    let lines: Vec<Vec<u8>> = vec![
        good.clone().into_bytes(),                               // 1 ok
        b"not json at all".to_vec(),                             // 2
        good.as_bytes()[..40].to_vec(),                          // 3 truncated
        b"[1,2,3]".to_vec(),                                     // 4
        line("", "2026-11-20T10:00:01.000Z").into_bytes(),       // 5 empty id
        good.replace("\"event_id\":\"e-ok\",", "").into_bytes(), // 6 missing id
        line("e-6", "2026-11-20T10:00:01.000Z")
            .replace("page_view", "Page View")
            .into_bytes(), // 7
        line("e-7", "2026-11-20T10:00:01.000Z")
            .replace("2026-11-20T10:00:00.000Z", "20/11/2026 10:00")
            .into_bytes(), // 8
        line("e-8", "2026-11-20T10:00:01.000Z")
            .replace(",\"received_at\":\"2026-11-20T10:00:01.000Z\"", "")
            .into_bytes(), // 9
        line("e-9", "2026-11-20T10:00:01.000Z")
            .replace("\"u-1\"", "42")
            .into_bytes(), // 10 wrong type
        oversize.into_bytes(),                                   // 11
        [b"{\"event_id\":\"e-11\xff\"}".as_slice()].concat(),    // 12 invalid utf-8
        b"{}".to_vec(),                                          // 13
        b"".to_vec(),                                            // 14 blank
        line("e-14", "2026-11-20T10:00:01.000Z")
            .replace("2026-11-20T10:00:00.000Z", "2026-11-20T11:00:00.000+01:00")
            .into_bytes(), // 15 ok, offset
        line("e-15", "2026-11-20T10:00:01.000Z")
            .replace("\"team\":\"checkout\"", "\"team\":\"search\"")
            .into_bytes(), // 16
        line("e-16", "2026-11-21T10:00:01.000Z").into_bytes(),   // 17 other day
    ];
    let mut body = b"\xEF\xBB\xBF".to_vec(); // a BOM in front is fine
    for l in &lines {
        body.extend_from_slice(l);
        body.extend_from_slice(b"\r\n"); // so are CRLF endings
    }
    let source = format!("{RAW}/bad.ndjson.gz");
    t.put_raw(&source, &body);

    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let c = s.partitions[0].counts.clone().unwrap();
    assert_eq!(
        (c.lines, c.rows, c.duplicates, c.quarantined),
        (17, 2, 0, 15)
    );

    let q = t.quarantine().await;
    let got = reasons_by_line(&q, &source);
    let want: Vec<(u64, String)> = [
        (2, "invalid_json"),
        (3, "truncated_json"),
        (4, "not_an_object"),
        (5, "empty_field"),
        (6, "missing_field"),
        (7, "invalid_event_type"),
        (8, "invalid_timestamp"),
        (9, "missing_field"),
        (10, "wrong_type"),
        (11, "line_too_large"),
        (12, "invalid_utf8"),
        (13, "empty_object"),
        (14, "blank_line"),
        (16, "team_mismatch"),
        (17, "partition_mismatch"),
    ]
    .iter()
    .map(|(l, r)| (*l, r.to_string()))
    .collect();
    assert_eq!(got, want);
    // Records carry a readable detail and the line itself (cut for oversize lines).
    let rec = q.iter().find(|r| r["line"] == 10).unwrap();
    assert_eq!(rec["detail"], "user_id is a JSON number, expected a string");
    assert!(rec["raw"].as_str().unwrap().contains("\"user_id\":42"));
    let big = q.iter().find(|r| r["line"] == 11).unwrap();
    assert!(big["raw"].as_str().unwrap().len() <= 4096);
    assert!(big["raw_bytes"].as_u64().unwrap() > MAX_RAW_LINE_BYTES as u64);

    // The offset timestamp was normalised to UTC.
    let got = t
        .query("select event_id, cast(event_time as varchar) as t from events order by event_id")
        .await;
    assert_eq!(
        got,
        "event_id,t\ne-14,2026-11-20 10:00:00.000\ne-ok,2026-11-20 10:00:00.000\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_objects_keep_what_can_be_read() {
    let t = TestLake::new();
    // A .gz that is not gzip.
    t.put_bytes(
        &format!("{RAW}/not-gzip.ndjson.gz"),
        line("x", "2026-11-20T10:00:01.000Z").as_bytes(),
    );
    // A gzip stream cut off in the middle: the lines before the break are kept.
    let mut body = String::new();
    for i in 0..2000 {
        body += &line(&format!("t-{i:04}"), "2026-11-20T10:00:01.000Z");
        body.push('\n');
    }
    let full = gzip(body.as_bytes());
    t.put_bytes(
        &format!("{RAW}/truncated.ndjson.gz"),
        &full[..full.len() * 2 / 3],
    );
    // Plain NDJSON without a final newline is fine.
    t.put_raw(
        &format!("{RAW}/plain.ndjson"),
        format!(
            "{}\n{}",
            line("p-1", "2026-11-20T10:00:02.000Z"),
            line("p-2", "2026-11-20T10:00:02.000Z")
        )
        .as_bytes(),
    );
    // Marker files are not data.
    t.put_bytes(&format!("{RAW}/_SUCCESS"), b"");

    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let c = s.partitions[0].counts.clone().unwrap();
    assert_eq!(c.objects, 3);
    assert_eq!(c.objects_failed, 2);
    assert!(c.balanced(), "{c:?}");

    let q = t.quarantine().await;
    let not_gzip = q.iter().find(|r| r["reason"] == "not_gzip").unwrap();
    assert!(
        not_gzip["source"]
            .as_str()
            .unwrap()
            .ends_with("not-gzip.ndjson.gz")
    );
    assert!(not_gzip.get("line").is_none());
    let broken = q
        .iter()
        .find(|r| r["reason"] == "corrupt_gzip" && r.get("line").is_none())
        .unwrap();
    assert!(
        broken["detail"]
            .as_str()
            .unwrap()
            .contains("lines before the break were kept")
    );

    let kept = t
        .query("select count(*) as n from events where event_id like 't-%'")
        .await;
    let kept: u64 = kept.lines().nth(1).unwrap().parse().unwrap();
    assert!(kept > 500 && kept < 2000, "kept {kept}");
    // Every line read from the broken stream is a row or a quarantined partial line.
    let partial = q
        .iter()
        .filter(|r| r["reason"] == "corrupt_gzip" && r.get("line").is_some())
        .count() as u64;
    assert_eq!(c.rows, kept + 2);
    assert_eq!(c.lines, kept + 2 + partial);
    assert_eq!(
        t.query("select count(*) as n from events where event_id like 'p-%'")
            .await,
        "n\n2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_keep_the_first_by_received_at_and_count_conflicts() {
    let t = TestLake::new();
    // The later object (by key) holds the earlier arrival: received_at decides, not order.
    t.put_raw(
        &format!("{RAW}/a.ndjson.gz"),
        format!(
            "{}\n{}\n",
            line("d-1", "2026-11-20T10:00:09.000Z").replace("/x", "/late-copy"),
            line("d-2", "2026-11-20T10:00:01.000Z")
        )
        .as_bytes(),
    );
    t.put_raw(
        &format!("{RAW}/b.ndjson.gz"),
        format!(
            "{}\n{}\n{}\n",
            line("d-1", "2026-11-20T10:00:02.000Z"),
            line("d-2", "2026-11-20T10:00:05.000Z"),
            line("d-2", "2026-11-20T10:00:01.000Z")
        )
        .as_bytes(),
    );
    let s = t.backfill(false).await;
    let c = s.partitions[0].counts.clone().unwrap();
    assert_eq!((c.lines, c.rows, c.duplicates, c.conflicts), (5, 2, 3, 1));
    assert_eq!(
        t.query("select event_id, cast(received_at as varchar) as r, properties from events order by event_id")
            .await,
        "event_id,r,properties\nd-1,2026-11-20 10:00:02.000,\"{\"\"path\"\":\"\"/x\"\"}\"\nd-2,2026-11-20 10:00:01.000,\"{\"\"path\"\":\"\"/x\"\"}\"\n"
    );
}

/// A raw object whose name has characters the store encodes (`%`, `#`, `{`, `[`, `~`) is read
/// like any other, and a bad line in it is quarantined under that name: a name like that once
/// made the whole partition fail, its object "not found" under a name encoded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_named_with_characters_the_store_encodes_are_read() {
    let t = TestLake::new();
    let odd = format!("{RAW}/a b%20c#1{{x}}[y]~.ndjson");
    t.put_raw(
        &odd,
        format!("{}\nnot json\n", line("w-1", "2026-11-20T10:00:01.000Z")).as_bytes(),
    );
    t.put_raw(
        &format!("{RAW}/plain.ndjson.gz"),
        line("w-2", "2026-11-20T10:00:02.000Z").as_bytes(),
    );
    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let c = s.partitions[0].counts.clone().unwrap();
    assert_eq!(
        (c.objects, c.objects_failed, c.rows, c.quarantined),
        (2, 0, 2, 1)
    );
    let q = t.quarantine().await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["source"], odd.as_str(), "{q:?}");
    assert_eq!(
        t.query("select event_id from events order by 1").await,
        "event_id\nw-1\nw-2\n"
    );
    // Unchanged raw data is recognised as such by the next run.
    let s = t.backfill(false).await;
    assert_eq!(s.unchanged, 1, "{:?}", s.partitions);
}

/// Raw data outside every `team=<team>/dt=<YYYY-MM-DD>/` folder is read by no partition: each
/// such folder or file is named in the summary with the reason, so data copied there by hand is
/// not left behind unnoticed, and the partitions beside it are compacted as usual. Hidden ones
/// (`.DS_Store`, `_tmp/`) are not named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_data_outside_every_partition_is_named_not_dropped_unseen() {
    let t = TestLake::new();
    let body = line("s-1", "2026-11-20T10:00:01.000Z");
    t.put_raw(&format!("{RAW}/good.ndjson.gz"), body.as_bytes());
    for key in [
        "raw/README.txt",
        "raw/.DS_Store",
        "raw/_tmp/x.ndjson.gz",
        "raw/events/team=checkout/dt=2026-11-20/hour=10/a.ndjson.gz",
        "raw/team=Checkout/dt=2026-11-20/hour=10/a.ndjson.gz",
        "raw/team=checkout/a.ndjson.gz",
        "raw/team=checkout/dt=2026-02-30/hour=10/a.ndjson.gz",
        "raw/team=checkout/date=2026-11-20/hour=10/a.ndjson.gz",
    ] {
        t.put_raw(key, body.as_bytes());
    }
    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    assert_eq!((s.committed, s.totals.rows), (1, 1));
    let unread: Vec<(&str, &str)> = s
        .unread
        .iter()
        .map(|u| (u.key.as_str(), u.reason.as_str()))
        .collect();
    assert_eq!(
        unread,
        [
            ("raw/README.txt", "a file beside the team= folders"),
            ("raw/events/", "not a team=<team> folder"),
            (
                "raw/team=Checkout/",
                "invalid team name \"Checkout\": use 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter"
            ),
            (
                "raw/team=checkout/a.ndjson.gz",
                "a file beside the dt= folders"
            ),
            (
                "raw/team=checkout/date=2026-11-20/",
                "not a dt=<YYYY-MM-DD> folder"
            ),
            (
                "raw/team=checkout/dt=2026-02-30/",
                "invalid date \"2026-02-30\": expected YYYY-MM-DD"
            ),
        ]
    );
    // A run for chosen teams (the scheduled job's compact step) does not repeat them.
    let chosen = eventlake_compaction::plan::Selection {
        teams: vec![eventlake_contract::TeamName::new("checkout").unwrap()],
        ..Default::default()
    };
    let p = eventlake_compaction::plan::plan(
        &t.lake,
        t.catalog.as_ref(),
        &chosen,
        false,
        eventlake_compaction::plan::DEFAULT_DEDUPE_WINDOW,
    )
    .await
    .unwrap();
    assert_eq!((p.partitions.len(), p.unread.len()), (1, 0));
}

/// An object compressed otherwise than with gzip (a zstd export copied in by hand) is refused
/// whole, with the format named, instead of read as text a "line" at a time; a large one too,
/// which is read in parts; the objects beside it are read as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_compressed_otherwise_is_refused_whole_and_named() {
    let t = TestLake::new();
    t.put_raw(
        &format!("{RAW}/ok.ndjson.gz"),
        line("z-1", "2026-11-20T10:00:01.000Z").as_bytes(),
    );
    let zstd = [&[0x28, 0xb5, 0x2f, 0xfd][..], &[7u8; 4096]].concat();
    t.put_bytes(&format!("{RAW}/export.ndjson.zst"), &zstd);
    let large = eventlake_compaction::read::PARTS_FROM_BYTES as usize + 1;
    let xz = [
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00][..],
        &vec![b'\n'; large],
    ]
    .concat();
    t.put_bytes(&format!("{RAW}/large.ndjson.xz"), &xz);
    let s = t.backfill(false).await;
    assert!(s.ok(), "{:?}", s.failed);
    let c = s.partitions[0].counts.clone().unwrap();
    assert_eq!(
        (c.objects, c.objects_failed, c.lines, c.rows, c.quarantined),
        (3, 2, 1, 1, 0)
    );
    let q = t.quarantine().await;
    let refused: Vec<(&str, &str, u64)> = q
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
                r["raw_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            (
                "raw/team=checkout/dt=2026-11-20/hour=10/export.ndjson.zst",
                "unsupported_compression",
                zstd.len() as u64
            ),
            (
                "raw/team=checkout/dt=2026-11-20/hour=10/large.ndjson.xz",
                "unsupported_compression",
                xz.len() as u64
            ),
        ]
    );
    assert!(
        q[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("object is zstd-compressed")
    );
    assert!(
        q[1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("object is xz-compressed")
    );
}

//! `etl generate`: synthetic raw data in the contract's raw layout, deterministic for a seed, and
//! the ground truth a correct compaction must reproduce.
//!
//! Each partition `(team, dt)` gets its own random stream (derived from the seed, the team and the
//! day), so the output does not depend on how many partitions are generated at once. A batch is one
//! raw object, as the ingestion function writes it: every line of a batch shares its
//! `received_at`. Re-sent events reuse an earlier `event_id` of the same partition (often in
//! another object) with a later `received_at`; a share of them carry different content
//! (conflicts). Between two generated days, a few events arrive in the last minute of the first
//! and are re-sent in the first seconds of the second: retries across midnight, duplicates of
//! the earlier day's rows. Malformed lines cycle through every kind of bad line the compaction
//! must survive.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use chrono::{Duration, NaiveTime, SecondsFormat, TimeZone, Utc};
use eventlake_contract::{MAX_RAW_LINE_BYTES, PartitionDate, PartitionKey, TeamName, layout};
use flate2::Compression;
use flate2::write::GzEncoder;
use futures::{StreamExt, TryStreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use eventlake_catalog::Lake;

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub seed: u64,
    pub teams: Vec<TeamName>,
    pub start: PartitionDate,
    pub days: u32,
    /// Lines in all (valid, duplicate and malformed).
    pub events: u64,
    /// Lines per raw object (the ingestion function writes one object per request).
    pub batch_size: usize,
    /// Share of lines that re-send an earlier event.
    pub duplicate_rate: f64,
    /// Share of re-sent events whose content differs from the first copy.
    pub conflict_share: f64,
    /// Share of lines that are malformed.
    pub malformed_rate: f64,
    /// Share of events whose `event_time` lies days before their arrival.
    pub late_rate: f64,
    /// Share of a partition's lines that are retries, just after midnight, of events the day
    /// before received in its last minute.
    pub cross_day_rate: f64,
    /// Partitions generated at once.
    pub jobs: usize,
    /// Share of all lines that go to the first team (the rest is spread evenly over the
    /// others); `None` spreads every team evenly.
    pub first_team_share: Option<f64>,
    /// Extra `properties` fields per event (strings, numbers, booleans, small objects), for
    /// wider events than the default's six.
    pub extra_properties: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            teams: ["checkout", "search", "growth"]
                .iter()
                .map(|t| TeamName::new(t).expect("valid"))
                .collect(),
            start: PartitionDate::parse("2026-11-20").expect("valid"),
            days: 3,
            events: 30_000,
            batch_size: 480,
            duplicate_rate: 0.01,
            conflict_share: 0.1,
            malformed_rate: 0.001,
            late_rate: 0.01,
            cross_day_rate: 0.0005,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            first_team_share: None,
            extra_properties: 0,
        }
    }
}

/// The kinds of malformed line the generator writes, each quarantined by a correct job.
pub const MALFORMED_KINDS: [&str; 12] = [
    "not_json",
    "truncated_json",
    "not_an_object",
    "missing_event_id",
    "empty_event_id",
    "bad_event_type",
    "bad_event_time",
    "missing_received_at",
    "wrong_type",
    "empty_object",
    "invalid_utf8",
    "line_too_large",
];

/// What a correct compaction of one partition must produce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionTruth {
    pub objects: u64,
    pub lines: u64,
    /// Distinct valid events: the rows a correct job writes.
    pub events: u64,
    /// Valid lines re-sending an event already seen in the partition.
    pub duplicates: u64,
    /// Valid lines re-sending an event the day before received in its last minute.
    pub cross_partition_duplicates: u64,
    /// Of the duplicates, those whose content differs from the first copy.
    pub conflicts: u64,
    pub malformed: u64,
    pub malformed_by_kind: BTreeMap<String, u64>,
    /// Distinct events whose `event_time` is on an earlier day than their arrival.
    pub late: u64,
    /// Distinct events per `event_type`.
    pub by_event_type: BTreeMap<String, u64>,
    /// Distinct `user_id`s.
    pub users: u64,
    /// Sum of `properties.amount_cents` over distinct `purchase` events.
    pub purchase_amount_cents: u64,
}

impl PartitionTruth {
    fn add(&mut self, o: &PartitionTruth) {
        self.objects += o.objects;
        self.lines += o.lines;
        self.events += o.events;
        self.duplicates += o.duplicates;
        self.cross_partition_duplicates += o.cross_partition_duplicates;
        self.conflicts += o.conflicts;
        self.malformed += o.malformed;
        for (k, v) in &o.malformed_by_kind {
            *self.malformed_by_kind.entry(k.clone()).or_default() += v;
        }
        self.late += o.late;
        for (k, v) in &o.by_event_type {
            *self.by_event_type.entry(k.clone()).or_default() += v;
        }
        self.users += o.users;
        self.purchase_amount_cents += o.purchase_amount_cents;
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Truth {
    pub partitions: BTreeMap<String, PartitionTruth>,
    /// Sums over partitions (`users` is the sum of per-partition distinct users).
    pub totals: PartitionTruth,
    /// Stored bytes written.
    pub bytes: u64,
    /// Uncompressed NDJSON bytes written.
    pub uncompressed_bytes: u64,
}

const EVENT_TYPES: [(&str, u32); 6] = [
    ("page_view", 50),
    ("click", 25),
    ("search", 10),
    ("add_to_cart", 8),
    ("purchase", 5),
    ("signup", 2),
];
const SOURCES: [&str; 4] = ["web", "ios", "android", "server"];
const LOCALES: [&str; 5] = ["fr-FR", "en-GB", "de-DE", "en-US", "es-ES"];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
];
const USERS_PER_TEAM: u64 = 5_000;

#[derive(Serialize)]
struct Context<'a> {
    ip: String,
    user_agent: &'a str,
    locale: &'a str,
    app_version: String,
}

#[derive(Serialize)]
struct Properties<'a> {
    path: String,
    duration_ms: u32,
    referrer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_cents: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<u32>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// `n` extra properties, derived from the event's content seed so that a re-send repeats them.
fn extra_properties(seed: u64, n: u32) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_ab1e);
    (0..n)
        .map(|i| {
            let v = match i % 4 {
                0 => json!(format!("value-{}", r.random_range(0..1_000u32))),
                1 => json!(r.random_range(0..1_000_000u64)),
                2 => json!(r.random_bool(0.5)),
                _ => json!({"id": r.random_range(0..100u32), "tags": ["a", "b"]}),
            };
            (format!("attr_{i:02}"), v)
        })
        .collect()
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    event_type: &'a str,
    event_time: &'a str,
    user_id: &'a str,
    session_id: String,
    source: &'a str,
    properties: Properties<'a>,
    context: Context<'a>,
    team: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    received_at: Option<&'a str>,
    schema_version: i32,
}

/// The content of one event, re-derived from its seed so a re-send can repeat it exactly.
struct Content {
    event_type: &'static str,
    user: u64,
    session: u64,
    source: &'static str,
    path: u32,
    duration_ms: u32,
    amount_cents: Option<u64>,
    ip: u8,
    agent: &'static str,
    locale: &'static str,
    app_minor: u8,
    /// Milliseconds before arrival.
    delay_ms: i64,
    late_days: i64,
    offset_form: bool,
    /// Seeds the extra properties.
    seed: u64,
    extra: u32,
}

fn content(seed: u64, opts: &GenerateOptions) -> Content {
    let late_rate = opts.late_rate;
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut pick = r.random_range(0..100u32);
    let mut event_type = EVENT_TYPES[0].0;
    for (t, w) in EVENT_TYPES {
        if pick < w {
            event_type = t;
            break;
        }
        pick -= w;
    }
    let user = r.random_range(0..USERS_PER_TEAM);
    Content {
        event_type,
        user,
        session: user * 10 + r.random_range(0..10),
        source: SOURCES[r.random_range(0..SOURCES.len())],
        path: r.random_range(0..500),
        duration_ms: r.random_range(10..60_000),
        amount_cents: (event_type == "purchase").then(|| r.random_range(100..50_000)),
        ip: r.random_range(1..255),
        agent: AGENTS[r.random_range(0..AGENTS.len())],
        locale: LOCALES[r.random_range(0..LOCALES.len())],
        app_minor: r.random_range(0..10),
        delay_ms: r.random_range(0..5_000),
        late_days: if r.random_bool(late_rate.clamp(0.0, 1.0)) {
            r.random_range(1..=3)
        } else {
            0
        },
        offset_form: r.random_bool(0.05),
        seed,
        extra: opts.extra_properties,
    }
}

fn event_id(r: &mut ChaCha8Rng) -> String {
    let v: u128 = r.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 64) as u16 & 0xfff,
        (v >> 48) as u16,
        v as u64 & 0xffff_ffff_ffff
    )
}

/// When the client says the event happened: before its first arrival (a re-send repeats it).
fn event_time(c: &Content, first_received_at: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    first_received_at - Duration::milliseconds(c.delay_ms) - Duration::days(c.late_days)
}

/// Writes one valid event line for `team`, or a malformed variant of it.
#[allow(clippy::too_many_arguments)]
fn write_event(
    out: &mut Vec<u8>,
    team: &str,
    id: &str,
    c: &Content,
    first_received_at: chrono::DateTime<Utc>,
    received_at: chrono::DateTime<Utc>,
    variant: Option<u32>,
    malformed: Option<&str>,
) {
    let event_time = event_time(c, first_received_at);
    let event_time = if c.offset_form {
        event_time
            .with_timezone(&chrono::FixedOffset::east_opt(3600).expect("offset"))
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    } else {
        event_time.to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let received = received_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let user = format!("u-{}", c.user);
    let mut line = Line {
        event_id: Some(id),
        event_type: c.event_type,
        event_time: &event_time,
        user_id: &user,
        session_id: format!("s-{}", c.session),
        source: c.source,
        properties: Properties {
            path: format!("/p/{}", c.path),
            duration_ms: c.duration_ms,
            referrer: "https://www.example.com/landing",
            amount_cents: c.amount_cents,
            currency: c.amount_cents.map(|_| "EUR"),
            variant,
            extra: extra_properties(c.seed, c.extra),
        },
        context: Context {
            ip: format!("203.0.113.{}", c.ip),
            user_agent: c.agent,
            locale: c.locale,
            app_version: format!("3.{}.1", c.app_minor),
        },
        team,
        received_at: Some(&received),
        schema_version: 1,
    };
    match malformed {
        None => serde_json::to_writer(&mut *out, &line).expect("serialises"),
        Some("not_json") => out.extend_from_slice(b"this is not json {"),
        Some("truncated_json") => {
            let full = serde_json::to_vec(&line).expect("serialises");
            out.extend_from_slice(&full[..full.len() / 2]);
        }
        Some("not_an_object") => out.extend_from_slice(br#"["page_view",1,true]"#),
        Some("missing_event_id") => {
            line.event_id = None;
            serde_json::to_writer(&mut *out, &line).expect("serialises");
        }
        Some("empty_event_id") => {
            line.event_id = Some("");
            serde_json::to_writer(&mut *out, &line).expect("serialises");
        }
        Some("bad_event_type") => {
            line.event_type = "Page View!";
            serde_json::to_writer(&mut *out, &line).expect("serialises");
        }
        Some("bad_event_time") => {
            line.event_time = "yesterday at noon";
            serde_json::to_writer(&mut *out, &line).expect("serialises");
        }
        Some("missing_received_at") => {
            line.received_at = None;
            serde_json::to_writer(&mut *out, &line).expect("serialises");
        }
        Some("wrong_type") => {
            let mut v = serde_json::to_value(&line).expect("serialises");
            v["user_id"] = serde_json::json!(12345);
            serde_json::to_writer(&mut *out, &v).expect("serialises");
        }
        Some("empty_object") => out.extend_from_slice(b"{}"),
        Some("invalid_utf8") => {
            let full = serde_json::to_vec(&line).expect("serialises");
            let at = full.iter().position(|b| *b == b'u').unwrap_or(0);
            out.extend_from_slice(&full[..at]);
            out.extend_from_slice(b"\xff\xfe");
            out.extend_from_slice(&full[at..]);
        }
        Some("line_too_large") => {
            let pad = "x".repeat(MAX_RAW_LINE_BYTES);
            let mut v = serde_json::to_value(&line).expect("serialises");
            v["properties"]["pad"] = serde_json::json!(pad);
            serde_json::to_writer(&mut *out, &v).expect("serialises");
        }
        Some(other) => unreachable!("unknown malformed kind {other}"),
    }
}

/// The events that cross into `dt`: first received in the last minute of the day before,
/// re-sent in the first seconds of `dt`. Derived from the seed, the team and `dt` alone, so the
/// two partitions that hold them are generated independently.
struct Night {
    /// (event id, content seed)
    events: Vec<(String, u64)>,
    first_received: chrono::DateTime<Utc>,
    retried: chrono::DateTime<Utc>,
}

fn night_before(opts: &GenerateOptions, team: &TeamName, dt: PartitionDate, n: u64) -> Night {
    let seed = xxhash_rust::xxh3::xxh3_64(format!("{}/night/{team}/{dt}", opts.seed).as_bytes());
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let midnight = Utc.from_utc_datetime(&dt.date().and_time(NaiveTime::MIN));
    let events = (0..n).map(|_| (event_id(&mut r), r.random())).collect();
    Night {
        events,
        first_received: midnight - Duration::milliseconds(r.random_range(1_000..60_000)),
        retried: midnight + Duration::milliseconds(r.random_range(0..30_000)),
    }
}

impl Night {
    /// The raw lines of these events, first sent at `first_received` and received at `at`.
    fn body(&self, team: &str, opts: &GenerateOptions, at: chrono::DateTime<Utc>) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, cseed) in &self.events {
            let c = content(*cseed, opts);
            write_event(&mut body, team, id, &c, self.first_received, at, None, None);
            body.push(b'\n');
        }
        body
    }
}

/// One gzip object of `body` at `received_at` in partition `key`.
fn object(
    r: &mut ChaCha8Rng,
    key: &PartitionKey,
    received_at: chrono::DateTime<Utc>,
    body: &[u8],
) -> (String, Vec<u8>) {
    let hour = received_at
        .format("%H")
        .to_string()
        .parse::<u32>()
        .expect("hour");
    let batch_id = format!("b-{:016x}", r.random::<u64>());
    let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 5), Compression::default());
    gz.write_all(body).expect("in-memory write");
    (
        layout::raw_object_key(key, hour, &batch_id),
        gz.finish().expect("in-memory write"),
    )
}

/// The raw objects of one partition, and its truth. `night` events cross each midnight next to
/// the partition whose neighbour is generated too (`has_before`, `has_after`).
fn generate_partition(
    opts: &GenerateOptions,
    key: &PartitionKey,
    lines: u64,
    night: u64,
    (has_before, has_after): (bool, bool),
) -> (Vec<(String, Vec<u8>)>, PartitionTruth, u64) {
    let seed =
        xxhash_rust::xxh3::xxh3_64(format!("{}/{}/{}", opts.seed, key.team, key.dt).as_bytes());
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut truth = PartitionTruth::default();
    let mut seen: Vec<(String, u64, chrono::DateTime<Utc>)> = Vec::new();
    let mut users = BTreeSet::new();
    let mut objects = Vec::new();
    let mut uncompressed = 0u64;
    let day_start = Utc.from_utc_datetime(&key.dt.date().and_time(NaiveTime::MIN));
    let batch_size = opts.batch_size.max(1) as u64;
    let crossing = night * u64::from(has_before) + night * u64::from(has_after);
    let lines = lines.saturating_sub(crossing);
    let batches = lines.div_ceil(batch_size).max(1);
    let step_ms = 86_400_000 / batches as i64;
    let mut emitted = 0u64;
    let mut malformed_counter = r.random_range(0..MALFORMED_KINDS.len());
    let team = key.team.as_str();
    for b in 0..batches {
        let n = batch_size.min(lines - emitted);
        if n == 0 {
            break;
        }
        let received_at = day_start
            + Duration::milliseconds(b as i64 * step_ms + r.random_range(0..step_ms.max(1)));
        let mut body: Vec<u8> = Vec::with_capacity(n as usize * 600);
        let crlf = b % 50 == 7;
        if b % 70 == 3 {
            body.extend_from_slice(b"\xEF\xBB\xBF");
        }
        for _ in 0..n {
            let roll: f64 = r.random();
            if roll < opts.malformed_rate {
                let kind = MALFORMED_KINDS[malformed_counter % MALFORMED_KINDS.len()];
                malformed_counter += 1;
                let c = content(r.random(), opts);
                write_event(
                    &mut body,
                    team,
                    &event_id(&mut r),
                    &c,
                    received_at,
                    received_at,
                    None,
                    Some(kind),
                );
                truth.malformed += 1;
                *truth.malformed_by_kind.entry(kind.to_owned()).or_default() += 1;
            } else if roll < opts.malformed_rate + opts.duplicate_rate && !seen.is_empty() {
                let (id, cseed, first) = &seen[r.random_range(0..seen.len())];
                let conflict = r.random_bool(opts.conflict_share.clamp(0.0, 1.0));
                let c = content(*cseed, opts);
                let variant = conflict.then(|| r.random_range(1..1000));
                write_event(&mut body, team, id, &c, *first, received_at, variant, None);
                truth.duplicates += 1;
                truth.conflicts += u64::from(conflict);
            } else {
                let id = event_id(&mut r);
                let cseed: u64 = r.random();
                let c = content(cseed, opts);
                write_event(
                    &mut body,
                    team,
                    &id,
                    &c,
                    received_at,
                    received_at,
                    None,
                    None,
                );
                truth.events += 1;
                truth.late += u64::from(event_time(&c, received_at).date_naive() < key.dt.date());
                *truth
                    .by_event_type
                    .entry(c.event_type.to_owned())
                    .or_default() += 1;
                truth.purchase_amount_cents += c.amount_cents.unwrap_or(0);
                users.insert(c.user);
                seen.push((id, cseed, received_at));
            }
            if crlf {
                body.push(b'\r');
            }
            body.push(b'\n');
        }
        emitted += n;
        truth.lines += n;
        truth.objects += 1;
        uncompressed += body.len() as u64;
        objects.push(object(&mut r, key, received_at, &body));
    }
    if has_before && night > 0 {
        // Retries of the events the day before received in its last minute.
        let n = night_before(opts, &key.team, key.dt, night);
        let body = n.body(team, opts, n.retried);
        truth.cross_partition_duplicates += night;
        truth.lines += night;
        truth.objects += 1;
        uncompressed += body.len() as u64;
        objects.push(object(&mut r, key, n.retried, &body));
    }
    if has_after && night > 0 {
        // First copies of the events that will be re-sent just after midnight.
        let n = night_before(opts, &key.team, key.dt.succ(), night);
        let body = n.body(team, opts, n.first_received);
        for (_, cseed) in &n.events {
            let c = content(*cseed, opts);
            truth.events += 1;
            truth.late += u64::from(event_time(&c, n.first_received).date_naive() < key.dt.date());
            *truth
                .by_event_type
                .entry(c.event_type.to_owned())
                .or_default() += 1;
            truth.purchase_amount_cents += c.amount_cents.unwrap_or(0);
            users.insert(c.user);
        }
        truth.lines += night;
        truth.objects += 1;
        uncompressed += body.len() as u64;
        objects.push(object(&mut r, key, n.first_received, &body));
    }
    truth.users = users.len() as u64;
    (objects, truth, uncompressed)
}

/// Writes the synthetic raw zone into `lake` and returns its ground truth.
pub async fn generate(lake: &Lake, opts: &GenerateOptions) -> Result<Truth> {
    if opts.teams.is_empty() || opts.days == 0 {
        return Err(Error::InvalidArgument(
            "generate needs at least one team and one day".into(),
        ));
    }
    for (name, rate) in [
        ("--duplicate-rate", opts.duplicate_rate),
        ("--malformed-rate", opts.malformed_rate),
        ("--late-rate", opts.late_rate),
        ("--conflict-share", opts.conflict_share),
        ("--cross-day-rate", opts.cross_day_rate),
        ("--first-team-share", opts.first_team_share.unwrap_or(0.0)),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::InvalidArgument(format!(
                "{name} {rate} is not between 0 and 1"
            )));
        }
    }
    let mut keys = Vec::new();
    let mut dt = opts.start;
    for _ in 0..opts.days {
        for team in &opts.teams {
            keys.push(PartitionKey {
                team: team.clone(),
                dt,
            });
        }
        dt = dt.succ();
    }
    // Lines and midnight retries per partition, in the order of `keys` (day by day, team by team).
    let teams = opts.teams.len() as u64;
    let days = u64::from(opts.days);
    let sizes: Vec<(u64, u64)> = match opts.first_team_share {
        None => {
            let per = opts.events / keys.len() as u64;
            let extra = opts.events % keys.len() as u64;
            let night = (per as f64 * opts.cross_day_rate).round() as u64;
            (0..keys.len() as u64)
                .map(|i| (per + u64::from(i < extra), night))
                .collect()
        }
        Some(share) => {
            let first = if teams == 1 {
                opts.events
            } else {
                (opts.events as f64 * share).round() as u64
            };
            let rest = opts.events - first;
            let team_total = |t: u64| match t {
                0 => first,
                t => rest / (teams - 1) + u64::from(t - 1 < rest % (teams - 1)),
            };
            (0..keys.len() as u64)
                .map(|i| {
                    let (day, team) = (i / teams, i % teams);
                    let total = team_total(team);
                    let per = total / days;
                    let night = (per as f64 * opts.cross_day_rate).round() as u64;
                    (per + u64::from(day < total % days), night)
                })
                .collect()
        }
    };
    let (first, last) = (opts.start, keys.last().expect("a partition").dt);
    let results: Vec<(PartitionKey, PartitionTruth, u64, u64)> =
        futures::stream::iter(keys.into_iter().enumerate())
            .map(|(i, key)| {
                let (lines, night) = sizes[i];
                let opts = opts.clone();
                let lake = lake.clone();
                async move {
                    let (objects, truth, uncompressed) = tokio::task::spawn_blocking({
                        let key = key.clone();
                        let sides = (key.dt > first, key.dt < last);
                        move || generate_partition(&opts, &key, lines, night, sides)
                    })
                    .await?;
                    let mut bytes = 0u64;
                    futures::stream::iter(objects)
                        .map(|(k, data)| {
                            bytes += data.len() as u64;
                            let lake = lake.clone();
                            async move { lake.put(&k, data).await }
                        })
                        .buffer_unordered(16)
                        .try_collect::<Vec<()>>()
                        .await?;
                    Ok::<_, Error>((key, truth, bytes, uncompressed))
                }
            })
            .buffer_unordered(opts.jobs.max(1))
            .try_collect()
            .await?;

    let mut out = Truth::default();
    for (key, truth, bytes, uncompressed) in results {
        out.totals.add(&truth);
        out.bytes += bytes;
        out.uncompressed_bytes += uncompressed;
        if truth.lines > 0 {
            out.partitions.insert(key.to_string(), truth);
        }
    }
    Ok(out)
}

//! Planning: which partitions have raw data in range, what they hold, and what to do with them.
//!
//! A plan is a value: `--dry-run` prints it, and it is computed without writing anything.
//!
//! A partition's rows depend on its own raw objects and, through cross-partition
//! de-duplication, on the raw objects of the same team's earlier partitions within the
//! de-duplication window. Both go into its inputs' fingerprint, which the catalog keeps: a late
//! raw object in the day before re-plans the day after too.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use eventlake_contract::layout::{self, is_hidden};
use eventlake_contract::{PartitionDate, PartitionKey, TeamName, hive};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::Result;
use eventlake_catalog::Lake;
use eventlake_catalog::{Catalog, PartitionEntry};

/// The default de-duplication window across partitions: a retry within a day of the first copy
/// is a duplicate even when midnight lies between them.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Which partitions a command covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these teams (all teams with raw data when empty).
    pub teams: Vec<TeamName>,
    /// First day, inclusive.
    pub from: Option<PartitionDate>,
    /// Last day, inclusive.
    pub to: Option<PartitionDate>,
}

impl Selection {
    pub fn contains(&self, dt: PartitionDate) -> bool {
        self.from.is_none_or(|f| dt >= f) && self.to.is_none_or(|t| dt <= t)
    }
}

/// One raw object of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RawObject {
    /// Key relative to the lake root.
    pub key: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    /// When the store last wrote it (the lag metric: newest raw object to its commit). Not part
    /// of any fingerprint.
    #[serde(skip)]
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the job will do with a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Never committed: compact.
    New,
    /// Raw data changed since the committed version: compact into a new version.
    Changed,
    /// Same raw data as the committed version: nothing to do.
    Unchanged,
    /// Same raw data, rewritten because of `--force`.
    Forced,
}

/// An earlier partition of the same team within the de-duplication window, with raw data.
#[derive(Debug, Clone, Serialize)]
pub struct Earlier {
    pub partition: PartitionKey,
    #[serde(skip)]
    pub objects: Arc<[RawObject]>,
    /// Fingerprint of its raw objects when planned.
    pub raw_fingerprint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionPlan {
    pub partition: PartitionKey,
    pub action: Action,
    pub objects: Arc<[RawObject]>,
    /// Stored (compressed) bytes of the raw objects.
    pub bytes: u64,
    /// Marker files (`_SUCCESS`, `.crc`, …) under the prefix, not read as data.
    pub hidden: usize,
    /// Fingerprint of the partition's own raw object set (keys, sizes, e-tags).
    pub raw_fingerprint: String,
    /// A row whose `event_id` was received in an earlier partition at most this long before is
    /// a duplicate of that row.
    #[serde(serialize_with = "as_secs")]
    pub dedupe_window: Duration,
    /// The earlier partitions within the window that have raw data.
    pub earlier: Vec<Earlier>,
    /// Fingerprint of everything the rows depend on: the raw object set, the window and the
    /// earlier partitions' raw object sets. The catalog entry keeps it.
    pub inputs_fingerprint: String,
    /// The committed version when planned.
    #[serde(skip)]
    pub current: Option<PartitionEntry>,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl PartitionPlan {
    pub fn needs_work(&self) -> bool {
        self.action != Action::Unchanged
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub partitions: Vec<PartitionPlan>,
    /// Folders and objects in the raw zone that no partition reads (a folder named
    /// `team=Growth`, a `dt=2026-02-30`, a file beside the team folders), when every team was
    /// planned: each is logged as a warning, so data put there by hand is not left behind
    /// unnoticed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<Unread>,
}

/// A folder or object of the raw zone outside every partition's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unread {
    /// Relative to the lake root; a folder ends with `/`.
    pub key: String,
    /// Why no partition reads it.
    pub reason: String,
}

impl Plan {
    pub fn to_compact(&self) -> usize {
        self.partitions.iter().filter(|p| p.needs_work()).count()
    }
}

/// Fingerprint of a raw object set; changes when an object is added, removed or rewritten.
pub fn fingerprint(objects: &[RawObject]) -> String {
    let mut h = Xxh3::new();
    for o in objects {
        h.update(o.key.as_bytes());
        h.update(&[0]);
        h.update(&o.size.to_le_bytes());
        h.update(o.e_tag.as_deref().unwrap_or("").as_bytes());
        h.update(&[0]);
    }
    format!("{:032x}", h.digest128())
}

/// The days before `dt` whose rows a row of `dt` can duplicate within `window`.
pub fn earlier_days(dt: PartitionDate, window: Duration) -> Vec<PartitionDate> {
    let days = window.as_secs().div_ceil(86_400);
    (1..=days)
        .map_while(|k| dt.date().checked_sub_days(chrono::Days::new(k)))
        .map(PartitionDate::new)
        .collect()
}

/// Fingerprint of a partition's inputs: its own raw objects alone when nothing earlier counts
/// (so partitions committed before cross-partition de-duplication stay unchanged where it
/// changes nothing), else those and the window and every earlier partition's raw objects.
pub fn inputs_fingerprint(own: &str, window: Duration, earlier: &[Earlier]) -> String {
    if earlier.is_empty() {
        return own.to_owned();
    }
    let mut h = Xxh3::new();
    h.update(own.as_bytes());
    h.update(&window.as_secs().to_le_bytes());
    for e in earlier {
        h.update(e.partition.to_string().as_bytes());
        h.update(&[0]);
        h.update(e.raw_fingerprint.as_bytes());
        h.update(&[0]);
    }
    format!("i{:032x}", h.digest128())
}

/// What to do with a partition whose inputs have `inputs_fingerprint`, given its committed
/// entry.
fn decide(current: Option<&PartitionEntry>, inputs_fingerprint: &str, force: bool) -> Action {
    match current {
        None => Action::New,
        Some(c) if c.raw_fingerprint != inputs_fingerprint => Action::Changed,
        Some(_) if force => Action::Forced,
        Some(_) => Action::Unchanged,
    }
}

/// Lists the raw zone for `selection` and compares each partition with the catalog; rows
/// received within `dedupe_window` of the same event in an earlier partition are duplicates.
pub async fn plan(
    lake: &Lake,
    catalog: &dyn Catalog,
    selection: &Selection,
    force: bool,
    dedupe_window: Duration,
) -> Result<Plan> {
    // Strays are looked for when the run looks at the whole raw zone (no teams chosen): a run
    // for one team's day (the scheduled job's compact step) does not repeat them.
    let mut unread = Vec::new();
    let whole_zone = selection.teams.is_empty();
    let teams: Vec<TeamName> = if whole_zone {
        let (folders, files) = lake.list_level(layout::RAW_ROOT).await?;
        unread_files(
            layout::RAW_ROOT,
            &files,
            "a file beside the team= folders",
            &mut unread,
        );
        named(
            layout::RAW_ROOT,
            &folders,
            hive::team_of,
            "team=<team>",
            Some(&mut unread),
        )
    } else {
        selection
            .teams
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };

    // The selected partitions, and every partition whose raw objects one of them depends on
    // (its earlier days within the window): each is listed once.
    let mut keys = Vec::new();
    let mut listed: BTreeSet<PartitionKey> = BTreeSet::new();
    for team in teams {
        let prefix = layout::raw_team_prefix(&team);
        let (folders, files) = lake.list_level(&prefix).await?;
        let base = prefix.trim_end_matches('/');
        if whole_zone {
            unread_files(base, &files, "a file beside the dt= folders", &mut unread);
        }
        let days: BTreeSet<PartitionDate> = named(
            base,
            &folders,
            hive::dt_of,
            "dt=<YYYY-MM-DD>",
            whole_zone.then_some(&mut unread),
        )
        .into_iter()
        .collect();
        for &dt in days.iter().filter(|&&dt| selection.contains(dt)) {
            let key = |dt| PartitionKey {
                team: team.clone(),
                dt,
            };
            keys.push(key(dt));
            listed.insert(key(dt));
            for before in earlier_days(dt, dedupe_window) {
                if days.contains(&before) {
                    listed.insert(key(before));
                }
            }
        }
    }
    // Each listing is shared by its partition's plan and the plans of the days after it, not
    // copied: a backfill's plans hold every raw object once (a quarter of a million objects
    // held twice took about 40 MB more).
    let listings: HashMap<PartitionKey, (Arc<[RawObject]>, usize)> = futures::stream::iter(listed)
        .map(|key| async move {
            let (objects, hidden) = list_raw(lake, &key).await?;
            Ok::<_, crate::error::Error>((key, (objects.into(), hidden)))
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;

    let listings = &listings;
    let mut partitions: Vec<PartitionPlan> = futures::stream::iter(keys)
        .map(
            |key| async move { plan_partition(catalog, key, listings, force, dedupe_window).await },
        )
        .buffer_unordered(16)
        .try_filter_map(|p| async move { Ok(p) })
        .try_collect()
        .await?;
    partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
    for u in &unread {
        tracing::warn!(key = %u.key, reason = %u.reason, "raw data outside every partition is not read");
    }
    Ok(Plan { partitions, unread })
}

/// What the `folders` under `base` (hidden ones apart) name, as `parse` reads them; each that
/// is no `expected` folder is recorded in `unread` when given, with why: its name says nothing
/// (`notateam`), or what is wrong with the name it gives (`team=Growth`).
fn named<T>(
    base: &str,
    folders: &[String],
    parse: impl Fn(&str) -> std::result::Result<T, hive::SegmentError>,
    expected: &str,
    mut unread: Option<&mut Vec<Unread>>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(folders.len());
    for f in folders.iter().filter(|f| !is_hidden(f)) {
        match parse(f) {
            Ok(v) => out.push(v),
            Err(e) => {
                if let Some(unread) = unread.as_deref_mut() {
                    let reason = match e {
                        hive::SegmentError::Missing(_) => format!("not a {expected} folder"),
                        hive::SegmentError::Name(e) => e.to_string(),
                    };
                    unread.push(Unread {
                        key: format!("{base}/{f}/"),
                        reason,
                    });
                }
            }
        }
    }
    out
}

/// Records the files (not hidden ones) directly under `base`: no partition's prefix holds them.
fn unread_files(base: &str, files: &[String], reason: &str, unread: &mut Vec<Unread>) {
    for f in files.iter().filter(|f| !is_hidden(f)) {
        unread.push(Unread {
            key: format!("{base}/{f}"),
            reason: reason.to_owned(),
        });
    }
}

/// The raw objects under a partition's prefix (hidden files apart), and how many were hidden.
async fn list_raw(lake: &Lake, partition: &PartitionKey) -> Result<(Vec<RawObject>, usize)> {
    let listing = lake.list(&layout::raw_partition_prefix(partition)).await?;
    let mut hidden = 0;
    let mut objects = Vec::with_capacity(listing.len());
    for meta in listing {
        if meta.location.filename().is_some_and(is_hidden) {
            hidden += 1;
            continue;
        }
        objects.push(RawObject {
            key: meta.location.to_string(),
            size: meta.size,
            e_tag: meta.e_tag,
            last_modified: Some(meta.last_modified),
        });
    }
    Ok((objects, hidden))
}

async fn plan_partition(
    catalog: &dyn Catalog,
    partition: PartitionKey,
    listings: &HashMap<PartitionKey, (Arc<[RawObject]>, usize)>,
    force: bool,
    dedupe_window: Duration,
) -> Result<Option<PartitionPlan>> {
    let Some((objects, hidden)) = listings.get(&partition).cloned() else {
        return Ok(None);
    };
    if objects.is_empty() {
        return Ok(None);
    }
    let earlier: Vec<Earlier> = earlier_days(partition.dt, dedupe_window)
        .into_iter()
        .filter_map(|dt| {
            let key = PartitionKey {
                team: partition.team.clone(),
                dt,
            };
            let (objects, _) = listings.get(&key)?;
            (!objects.is_empty()).then(|| Earlier {
                raw_fingerprint: fingerprint(objects),
                partition: key,
                objects: Arc::clone(objects),
            })
        })
        .collect();
    let raw_fingerprint = fingerprint(&objects);
    let inputs_fingerprint = inputs_fingerprint(&raw_fingerprint, dedupe_window, &earlier);
    let current = catalog.get(&partition).await?;
    let action = decide(current.as_ref(), &inputs_fingerprint, force);
    Ok(Some(PartitionPlan {
        partition,
        action,
        bytes: objects.iter().map(|o| o.size).sum(),
        objects,
        hidden,
        raw_fingerprint,
        dedupe_window,
        earlier,
        inputs_fingerprint,
        current,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, size: u64, e_tag: Option<&str>) -> RawObject {
        RawObject {
            key: key.into(),
            size,
            e_tag: e_tag.map(str::to_owned),
            last_modified: None,
        }
    }

    fn entry(raw_fingerprint: &str) -> PartitionEntry {
        PartitionEntry {
            partition: PartitionKey {
                team: TeamName::new("checkout").unwrap(),
                dt: PartitionDate::parse("2026-11-25").unwrap(),
            },
            version: "v1".into(),
            location: String::new(),
            manifest: String::new(),
            raw_fingerprint: raw_fingerprint.into(),
            rows: 1,
            files: Vec::new(),
            committed_at: String::new(),
        }
    }

    #[test]
    fn the_fingerprint_changes_with_any_object() {
        let base = vec![object("a", 10, Some("e1")), object("b", 20, None)];
        let fp = fingerprint(&base);
        assert_eq!(fp, fingerprint(&base.clone()));
        for changed in [
            vec![object("a", 10, Some("e1"))],
            vec![object("a", 10, Some("e2")), object("b", 20, None)],
            vec![object("a", 11, Some("e1")), object("b", 20, None)],
            vec![
                object("a", 10, Some("e1")),
                object("b", 20, None),
                object("c", 1, None),
            ],
        ] {
            assert_ne!(fingerprint(&changed), fp, "{changed:?}");
        }
        // Key and size never run into each other.
        assert_ne!(
            fingerprint(&[object("a1", 0, None)]),
            fingerprint(&[object("a", 1, None)])
        );
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(None, "f", false), Action::New);
        assert_eq!(decide(None, "f", true), Action::New);
        assert_eq!(decide(Some(&entry("g")), "f", false), Action::Changed);
        assert_eq!(decide(Some(&entry("f")), "f", false), Action::Unchanged);
        assert_eq!(decide(Some(&entry("f")), "f", true), Action::Forced);
    }

    #[test]
    fn the_window_reaches_back_whole_days() {
        let d = |s| PartitionDate::parse(s).unwrap();
        let day = d("2026-12-01");
        assert!(earlier_days(day, Duration::ZERO).is_empty());
        assert_eq!(
            earlier_days(day, Duration::from_secs(1)),
            vec![d("2026-11-30")]
        );
        assert_eq!(
            earlier_days(day, Duration::from_secs(86_400)),
            vec![d("2026-11-30")]
        );
        assert_eq!(
            earlier_days(day, Duration::from_secs(86_401)),
            vec![d("2026-11-30"), d("2026-11-29")]
        );
    }

    #[test]
    fn inputs_change_with_an_earlier_partition_and_not_without_one() {
        let own = fingerprint(&[object("a", 1, None)]);
        let w = Duration::from_secs(86_400);
        assert_eq!(inputs_fingerprint(&own, w, &[]), own);
        let before = |size| Earlier {
            partition: PartitionKey {
                team: TeamName::new("checkout").unwrap(),
                dt: PartitionDate::parse("2026-11-24").unwrap(),
            },
            objects: Arc::from([]),
            raw_fingerprint: fingerprint(&[object("b", size, None)]),
        };
        let with = inputs_fingerprint(&own, w, &[before(1)]);
        assert_ne!(with, own);
        assert_eq!(with, inputs_fingerprint(&own, w, &[before(1)]));
        assert_ne!(with, inputs_fingerprint(&own, w, &[before(2)]));
        assert_ne!(with, inputs_fingerprint(&own, w * 2, &[before(1)]));
    }

    #[test]
    fn selections_are_inclusive_and_open_ended() {
        let d = |s| PartitionDate::parse(s).unwrap();
        let s = Selection {
            teams: vec![],
            from: Some(d("2026-11-20")),
            to: Some(d("2026-11-22")),
        };
        assert!(s.contains(d("2026-11-20")) && s.contains(d("2026-11-22")));
        assert!(!s.contains(d("2026-11-19")) && !s.contains(d("2026-11-23")));
        assert!(Selection::default().contains(d("1999-01-01")));
    }
}

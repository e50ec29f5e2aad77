//! Planning: which partitions have raw data in range, what they hold, and what to do with them.
//!
//! A plan is a value: `--dry-run` prints it, and it is computed without writing anything.

use std::collections::BTreeSet;

use eventlake_contract::layout::{self, is_hidden};
use eventlake_contract::{PartitionDate, PartitionKey, TeamName, hive};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::Result;
use eventlake_catalog::Lake;
use eventlake_catalog::{Catalog, PartitionEntry};

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

#[derive(Debug, Clone, Serialize)]
pub struct PartitionPlan {
    pub partition: PartitionKey,
    pub action: Action,
    pub objects: Vec<RawObject>,
    /// Stored (compressed) bytes of the raw objects.
    pub bytes: u64,
    /// Marker files (`_SUCCESS`, `.crc`, …) under the prefix, not read as data.
    pub hidden: usize,
    /// Fingerprint of the raw object set (keys, sizes, e-tags).
    pub raw_fingerprint: String,
    /// The committed version when planned.
    #[serde(skip)]
    pub current: Option<PartitionEntry>,
}

impl PartitionPlan {
    pub fn needs_work(&self) -> bool {
        self.action != Action::Unchanged
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub partitions: Vec<PartitionPlan>,
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

/// What to do with a partition whose raw objects have `raw_fingerprint`, given its committed
/// entry.
fn decide(current: Option<&PartitionEntry>, raw_fingerprint: &str, force: bool) -> Action {
    match current {
        None => Action::New,
        Some(c) if c.raw_fingerprint != raw_fingerprint => Action::Changed,
        Some(_) if force => Action::Forced,
        Some(_) => Action::Unchanged,
    }
}

/// Lists the raw zone for `selection` and compares each partition with the catalog.
pub async fn plan(
    lake: &Lake,
    catalog: &dyn Catalog,
    selection: &Selection,
    force: bool,
) -> Result<Plan> {
    let teams: Vec<TeamName> = if selection.teams.is_empty() {
        lake.list_folders(layout::RAW_ROOT)
            .await?
            .iter()
            .filter_map(|f| hive::parse_team(f))
            .collect()
    } else {
        selection
            .teams
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };

    let mut keys = Vec::new();
    for team in teams {
        for folder in lake.list_folders(&layout::raw_team_prefix(&team)).await? {
            let Some(dt) = hive::parse_dt(&folder) else {
                continue;
            };
            if selection.contains(dt) {
                keys.push(PartitionKey {
                    team: team.clone(),
                    dt,
                });
            }
        }
    }

    let mut partitions: Vec<PartitionPlan> = futures::stream::iter(keys)
        .map(|key| async move { plan_partition(lake, catalog, key, force).await })
        .buffer_unordered(16)
        .try_filter_map(|p| async move { Ok(p) })
        .try_collect()
        .await?;
    partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
    Ok(Plan { partitions })
}

async fn plan_partition(
    lake: &Lake,
    catalog: &dyn Catalog,
    partition: PartitionKey,
    force: bool,
) -> Result<Option<PartitionPlan>> {
    let listing = lake.list(&layout::raw_partition_prefix(&partition)).await?;
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
        });
    }
    if objects.is_empty() {
        return Ok(None);
    }
    let raw_fingerprint = fingerprint(&objects);
    let current = catalog.get(&partition).await?;
    let action = decide(current.as_ref(), &raw_fingerprint, force);
    Ok(Some(PartitionPlan {
        partition,
        action,
        bytes: objects.iter().map(|o| o.size).sum(),
        objects,
        hidden,
        raw_fingerprint,
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

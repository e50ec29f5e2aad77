//! `etl gc`: removes versions no catalog entry points to, once they are older than a grace period
//! (a reader that planned a query just before a commit may still be reading the old version, and a
//! running compaction's new version is not committed yet).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use eventlake_contract::layout::{self, CURATED_ROOT, QUARANTINE_ROOT, TABLE};
use eventlake_contract::{PartitionKey, hive};
use serde::Serialize;

use crate::error::Result;
use eventlake_catalog::Catalog;
use eventlake_catalog::Lake;

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// `team=…/dt=…/v=…` of each version removed (or, with `--dry-run`, to remove).
    pub removed: Vec<String>,
    pub objects_removed: usize,
    /// Unreferenced versions kept because they are younger than the grace period.
    pub kept_in_grace: usize,
    /// Versions the catalog points to.
    pub live: usize,
    pub dry_run: bool,
}

/// When a version was started, from its id (`20261125T130512123Z-…`).
fn version_time(version: &str) -> Option<chrono::DateTime<Utc>> {
    let stamp = version.split('-').next()?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%3fZ")
        .ok()
        .map(|t| t.and_utc())
}

pub(crate) async fn versions_under(
    lake: &Lake,
    root: &str,
    into: &mut BTreeSet<(PartitionKey, String)>,
) -> Result<()> {
    let base = format!("{root}/{TABLE}");
    for team_segment in lake.list_folders(&base).await? {
        let Some(team) = hive::parse_team(&team_segment) else {
            continue;
        };
        for dt_segment in lake.list_folders(&format!("{base}/{team_segment}")).await? {
            let Some(dt) = hive::parse_dt(&dt_segment) else {
                continue;
            };
            let partition = PartitionKey {
                team: team.clone(),
                dt,
            };
            let versions = lake
                .list_folders(&format!("{base}/{team_segment}/{dt_segment}"))
                .await?;
            for v in versions.iter().filter_map(|v| hive::parse_version(v)) {
                into.insert((partition.clone(), v.to_owned()));
            }
        }
    }
    Ok(())
}

pub async fn gc(
    lake: &Lake,
    catalog: &dyn Catalog,
    grace: Duration,
    dry_run: bool,
) -> Result<GcReport> {
    let live: BTreeSet<(PartitionKey, String)> = catalog
        .list()
        .await?
        .into_iter()
        .map(|e| (e.partition, e.version))
        .collect();
    let mut found = BTreeSet::new();
    versions_under(lake, CURATED_ROOT, &mut found).await?;
    versions_under(lake, QUARANTINE_ROOT, &mut found).await?;

    let now = Utc::now();
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    for (partition, version) in found {
        if live.contains(&(partition.clone(), version.clone())) {
            report.live += 1;
            continue;
        }
        // A version id we cannot date is treated as new: never delete what we do not understand.
        let old_enough = version_time(&version).is_some_and(|t| now - t >= grace);
        if !old_enough {
            report.kept_in_grace += 1;
            continue;
        }
        if !dry_run {
            report.objects_removed += lake
                .delete_prefix(&layout::curated_version_prefix(&partition, &version))
                .await?;
            report.objects_removed += lake
                .delete_prefix(&layout::quarantine_version_prefix(&partition, &version))
                .await?;
        }
        report
            .removed
            .push(format!("{partition}/{}", hive::version(&version)));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_carry_their_time() {
        let v = crate::compact::new_version();
        let t = version_time(&v).unwrap();
        assert!((Utc::now() - t).num_seconds().abs() < 5);
        assert!(version_time("hand-made").is_none());
    }
}

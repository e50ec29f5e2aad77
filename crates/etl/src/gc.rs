//! `etl gc`: removes versions no catalog entry points to, once they are older than a grace period
//! (a reader that planned a query just before a commit may still be reading the old version, and a
//! running compaction's new version is not committed yet).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use eventlake_contract::layout::{self, CURATED_ROOT, QUARANTINE_ROOT, TABLE};
use eventlake_contract::{PartitionDate, PartitionKey, TeamName};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::lake::Lake;

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

/// Parses `90s`, `15m`, `24h`, `7d` (or a plain number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| {
        Error::InvalidArgument(format!("invalid duration {s:?}: use 90s, 15m, 24h or 7d"))
    })?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "invalid duration {s:?}: use 90s, 15m, 24h or 7d"
            )));
        }
    };
    Ok(Duration::from_secs(secs))
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
    for team in lake.list_folders(&base).await? {
        let Some(t) = team
            .strip_prefix("team=")
            .and_then(|t| TeamName::new(t).ok())
        else {
            continue;
        };
        for dt in lake.list_folders(&format!("{base}/{team}")).await? {
            let Some(d) = dt
                .strip_prefix("dt=")
                .and_then(|d| PartitionDate::parse(d).ok())
            else {
                continue;
            };
            for v in lake.list_folders(&format!("{base}/{team}/{dt}")).await? {
                if let Some(v) = v.strip_prefix("v=") {
                    into.insert((
                        PartitionKey {
                            team: t.clone(),
                            dt: d,
                        },
                        v.to_owned(),
                    ));
                }
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
        report.removed.push(format!("{partition}/v={version}"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("24h").unwrap().as_secs(), 86_400);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604_800);
        assert_eq!(parse_duration("0").unwrap().as_secs(), 0);
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn version_ids_carry_their_time() {
        let v = crate::compact::new_version();
        let t = version_time(&v).unwrap();
        assert!((Utc::now() - t).num_seconds().abs() < 5);
        assert!(version_time("hand-made").is_none());
    }
}

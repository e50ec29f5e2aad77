//! Hive-style path segments: `team=<team>`, `dt=<YYYY-MM-DD>` and `v=<version>`. Every key of a
//! lake that names a partition or a version is built and parsed here, so the layout, planning,
//! garbage collection, the catalogs and sync agree on one spelling.

use crate::names::{NameError, PartitionDate, PartitionKey, TeamName};

const TEAM: &str = "team=";
const DT: &str = "dt=";
const VERSION: &str = "v=";

/// `team=<team>`
pub fn team(team: &TeamName) -> String {
    format!("{TEAM}{team}")
}

/// `dt=<YYYY-MM-DD>`
pub fn dt(dt: &PartitionDate) -> String {
    format!("{DT}{dt}")
}

/// `v=<version>`
pub fn version(version: &str) -> String {
    format!("{VERSION}{version}")
}

/// `team=<team>/dt=<YYYY-MM-DD>`
pub fn partition(key: &PartitionKey) -> String {
    format!("{}/{}", team(&key.team), dt(&key.dt))
}

/// Why a path segment is not the one expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("no {0} folder")]
    Missing(&'static str),
    #[error(transparent)]
    Name(#[from] NameError),
}

/// The team of a `team=<team>` segment.
pub fn team_of(segment: &str) -> Result<TeamName, SegmentError> {
    let name = segment
        .strip_prefix(TEAM)
        .ok_or(SegmentError::Missing(TEAM))?;
    Ok(TeamName::new(name)?)
}

/// The day of a `dt=<YYYY-MM-DD>` segment.
pub fn dt_of(segment: &str) -> Result<PartitionDate, SegmentError> {
    let day = segment.strip_prefix(DT).ok_or(SegmentError::Missing(DT))?;
    Ok(PartitionDate::parse(day)?)
}

/// A partition shows as its path: `team=<team>/dt=<YYYY-MM-DD>`.
impl std::fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&partition(self))
    }
}

/// The team of a `team=<team>` segment, if it is one and the name is valid.
pub fn parse_team(segment: &str) -> Option<TeamName> {
    team_of(segment).ok()
}

/// The day of a `dt=<YYYY-MM-DD>` segment, if it is one and the date is valid.
pub fn parse_dt(segment: &str) -> Option<PartitionDate> {
    dt_of(segment).ok()
}

/// The version of a `v=<version>` segment.
pub fn parse_version(segment: &str) -> Option<&str> {
    segment.strip_prefix(VERSION).filter(|v| !v.is_empty())
}

/// The partition a key ends with: `…/team=<team>/dt=<YYYY-MM-DD><suffix>` (a catalog entry
/// `…/team=a/dt=2026-11-25.json` with `suffix` `.json`).
pub fn parse_partition(key: &str, suffix: &str) -> Option<PartitionKey> {
    let key = key.strip_suffix(suffix)?;
    let mut segments = key.rsplit('/');
    let dt = parse_dt(segments.next()?)?;
    let team = parse_team(segments.next()?)?;
    Some(PartitionKey { team, dt })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        let key = PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-25").unwrap(),
        };
        assert_eq!(partition(&key), "team=checkout/dt=2026-11-25");
        assert_eq!(parse_team(&team(&key.team)), Some(key.team.clone()));
        assert_eq!(parse_dt(&dt(&key.dt)), Some(key.dt));
        assert_eq!(
            parse_version(&version("20261125T1300Z-ab")),
            Some("20261125T1300Z-ab")
        );
        assert_eq!(
            parse_partition(
                &format!("_catalog/events/{}.json", partition(&key)),
                ".json"
            ),
            Some(key.clone())
        );
        assert_eq!(parse_partition(&partition(&key), ""), Some(key));
    }

    #[test]
    fn what_is_not_a_segment_is_none() {
        assert_eq!(parse_team("team=Bad Team"), None);
        assert_eq!(parse_team("teams=a"), None);
        assert_eq!(parse_dt("dt=2026-02-30"), None);
        assert_eq!(parse_dt("date=2026-11-25"), None);
        assert_eq!(parse_version("v="), None);
        assert_eq!(parse_version("x=1"), None);
        assert_eq!(
            parse_partition("team=a/dt=2026-11-25.json", ".parquet"),
            None
        );
        assert_eq!(parse_partition("dt=2026-11-25/team=a", ""), None);
    }
}

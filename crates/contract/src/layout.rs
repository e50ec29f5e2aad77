//! Where things live in a lake, relative to its root (contract sections 2 and 3).
//!
//! ```text
//! raw/team=<team>/dt=<YYYY-MM-DD>/hour=<HH>/<batch_id>.ndjson.gz     landed by ingest, never rewritten
//! curated/events/team=<team>/dt=<YYYY-MM-DD>/v=<run>/part-00000.parquet
//! curated/events/team=<team>/dt=<YYYY-MM-DD>/v=<run>/_manifest.json  counts, inputs, files
//! quarantine/events/team=<team>/dt=<YYYY-MM-DD>/v=<run>/quarantine.ndjson
//! ```
//!
//! Files whose name starts with `_` or `.` are hidden (the Hive convention Athena follows): the
//! manifest sits beside the Parquet files without becoming part of the table, and marker files in
//! the raw zone are not read as data.

use crate::hive;
use crate::names::{PartitionKey, TeamName};

pub const RAW_ROOT: &str = "raw";
pub const CURATED_ROOT: &str = "curated";
pub const QUARANTINE_ROOT: &str = "quarantine";
pub const TABLE: &str = "events";
pub const MANIFEST_FILE: &str = "_manifest.json";
pub const QUARANTINE_FILE: &str = "quarantine.ndjson";

/// `raw/team=<team>/dt=<dt>/`
pub fn raw_partition_prefix(key: &PartitionKey) -> String {
    format!("{RAW_ROOT}/{}/", hive::partition(key))
}

/// `raw/team=<team>/`
pub fn raw_team_prefix(team: &TeamName) -> String {
    format!("{RAW_ROOT}/{}/", hive::team(team))
}

/// `raw/team=<team>/dt=<dt>/hour=<HH>/<batch_id>.ndjson.gz`
pub fn raw_object_key(key: &PartitionKey, hour: u32, batch_id: &str) -> String {
    format!(
        "{}hour={hour:02}/{batch_id}.ndjson.gz",
        raw_partition_prefix(key)
    )
}

/// `curated/events/team=<team>/dt=<dt>/`
pub fn curated_partition_prefix(key: &PartitionKey) -> String {
    format!("{CURATED_ROOT}/{TABLE}/{}/", hive::partition(key))
}

/// `curated/events/team=<team>/dt=<dt>/v=<version>/`
pub fn curated_version_prefix(key: &PartitionKey, version: &str) -> String {
    format!(
        "{}{}/",
        curated_partition_prefix(key),
        hive::version(version)
    )
}

/// `curated/events/team=<team>/dt=<dt>/v=<version>/part-<n>.parquet`
pub fn curated_file_key(key: &PartitionKey, version: &str, n: usize) -> String {
    format!(
        "{}part-{n:05}.parquet",
        curated_version_prefix(key, version)
    )
}

/// `curated/events/team=<team>/dt=<dt>/v=<version>/_manifest.json`
pub fn manifest_key(key: &PartitionKey, version: &str) -> String {
    format!("{}{MANIFEST_FILE}", curated_version_prefix(key, version))
}

/// `quarantine/events/team=<team>/dt=<dt>/v=<version>/`
pub fn quarantine_version_prefix(key: &PartitionKey, version: &str) -> String {
    format!(
        "{QUARANTINE_ROOT}/{TABLE}/{}/{}/",
        hive::partition(key),
        hive::version(version)
    )
}

/// `quarantine/events/team=<team>/dt=<dt>/v=<version>/quarantine.ndjson`
pub fn quarantine_key(key: &PartitionKey, version: &str) -> String {
    format!(
        "{}{QUARANTINE_FILE}",
        quarantine_version_prefix(key, version)
    )
}

/// Is this file name hidden by the Hive convention (`_` or `.` first)?
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// A raw object's place in the layout, parsed from its key relative to the lake root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawObjectPath {
    pub partition: PartitionKey,
    /// `hour=<HH>` when present (hand-copied files may sit directly under `dt=`).
    pub hour: Option<u32>,
    pub file_name: String,
}

/// Why a key under `raw/` does not fit the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "raw object {key:?} does not fit raw/team=<team>/dt=<YYYY-MM-DD>/[hour=<HH>/]<file>: {why}"
)]
pub struct LayoutError {
    pub key: String,
    pub why: String,
}

/// Parses `raw/team=<team>/dt=<dt>/[hour=<HH>/]<file>`.
pub fn parse_raw_key(key: &str) -> Result<RawObjectPath, LayoutError> {
    let err = |why: &str| LayoutError {
        key: key.to_owned(),
        why: why.to_owned(),
    };
    let parts: Vec<&str> = key.split('/').collect();
    if parts.first() != Some(&RAW_ROOT) {
        return Err(err("not under raw/"));
    }
    let (team, dt, hour, file) = match parts.as_slice() {
        [_, team, dt, file] => (*team, *dt, None, *file),
        [_, team, dt, hour, file] => (*team, *dt, Some(*hour), *file),
        _ => return Err(err("unexpected depth")),
    };
    let team = hive::team_of(team).map_err(|e| err(&e.to_string()))?;
    let dt = hive::dt_of(dt).map_err(|e| err(&e.to_string()))?;
    let hour = match hour {
        None => None,
        Some(h) => {
            let h = h
                .strip_prefix("hour=")
                .ok_or_else(|| err("no hour= folder"))?;
            match h.parse::<u32>() {
                Ok(v) if v < 24 && h.len() == 2 => Some(v),
                _ => return Err(err("hour must be 00-23")),
            }
        }
    };
    if file.is_empty() {
        return Err(err("empty file name"));
    }
    Ok(RawObjectPath {
        partition: PartitionKey { team, dt },
        hour,
        file_name: file.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::PartitionDate;

    fn key() -> PartitionKey {
        PartitionKey {
            team: TeamName::new("checkout").unwrap(),
            dt: PartitionDate::parse("2026-11-20").unwrap(),
        }
    }

    #[test]
    fn raw_keys_round_trip() {
        let k = raw_object_key(&key(), 7, "b-1");
        assert_eq!(k, "raw/team=checkout/dt=2026-11-20/hour=07/b-1.ndjson.gz");
        let p = parse_raw_key(&k).unwrap();
        assert_eq!(p.partition, key());
        assert_eq!(p.hour, Some(7));
        assert_eq!(p.file_name, "b-1.ndjson.gz");
        assert_eq!(
            parse_raw_key("raw/team=checkout/dt=2026-11-20/x.ndjson")
                .unwrap()
                .hour,
            None
        );
    }

    #[test]
    fn raw_keys_refused() {
        for bad in [
            "curated/team=a/dt=2026-11-20/x",
            "raw/team=A/dt=2026-11-20/hour=01/x",
            "raw/team=a/dt=2026-13-20/hour=01/x",
            "raw/team=a/dt=2026-11-20/hour=24/x",
            "raw/team=a/dt=2026-11-20/hour=1/x",
            "raw/a/dt=2026-11-20/hour=01/x",
            "raw/team=a/dt=2026-11-20/hour=01/extra/x",
        ] {
            assert!(parse_raw_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn curated_keys() {
        assert_eq!(
            curated_file_key(&key(), "r1", 3),
            "curated/events/team=checkout/dt=2026-11-20/v=r1/part-00003.parquet"
        );
        assert!(is_hidden(MANIFEST_FILE));
        assert!(!is_hidden("part-00000.parquet"));
        assert_eq!(
            quarantine_key(&key(), "r1"),
            "quarantine/events/team=checkout/dt=2026-11-20/v=r1/quarantine.ndjson"
        );
    }
}

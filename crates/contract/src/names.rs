//! Names that become paths, SQL literals and IAM names: validated once, here.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

/// Why a team name or a partition date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid team name {0:?}: use 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter"
    )]
    Team(String),
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    Date(String),
}

/// A team's name: `[a-z][a-z0-9_-]{0,31}`.
///
/// Safe to embed in an object key, a SQL string literal and an IAM resource name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TeamName(String);

impl TeamName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        let bytes = name.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 32
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Team(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TeamName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for TeamName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A partition date, `YYYY-MM-DD` (UTC day of `received_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionDate(NaiveDate);

impl PartitionDate {
    pub fn new(date: NaiveDate) -> Self {
        Self(date)
    }

    /// Parses exactly `YYYY-MM-DD` (ten characters, zero-padded).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let shape = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape {
            return Err(NameError::Date(s.to_owned()));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Self)
            .map_err(|_| NameError::Date(s.to_owned()))
    }

    pub fn date(&self) -> NaiveDate {
        self.0
    }

    /// The next day.
    pub fn succ(&self) -> Self {
        Self(self.0.succ_opt().expect("date in range"))
    }
}

impl fmt::Display for PartitionDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl FromStr for PartitionDate {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for PartitionDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PartitionDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One partition of the curated table: `(team, dt)`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PartitionKey {
    pub team: TeamName,
    pub dt: PartitionDate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names() {
        for ok in ["a", "checkout", "team-1", "data_eng", &"a".repeat(32)] {
            assert!(TeamName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1team",
            "Team",
            "a/b",
            "a b",
            "../x",
            "x'; drop",
            &"a".repeat(33),
            "é",
        ] {
            assert_eq!(TeamName::new(bad), Err(NameError::Team(bad.to_owned())));
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            PartitionDate::parse("2026-11-20").unwrap().to_string(),
            "2026-11-20"
        );
        for bad in [
            "2026-2-01",
            "2026-02-30",
            "20261120",
            "2026-11-20x",
            "+2026-1-20",
            "",
        ] {
            assert!(PartitionDate::parse(bad).is_err(), "{bad}");
        }
        let d = PartitionDate::parse("2026-12-31").unwrap();
        assert_eq!(d.succ().to_string(), "2027-01-01");
    }
}

//! Durations as people write them in flags, environment variables and saved-query headers:
//! `500ms`, `90s`, `15m`, `24h`, `7d`, or a plain number of seconds.

use std::time::Duration;

/// A duration that is not written as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: use 500ms, 90s, 15m, 24h or 7d")]
pub struct DurationError(pub String);

/// Parses `500ms`, `90s`, `15m`, `24h`, `7d` (or a plain number of seconds).
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| DurationError(s.to_owned()))?;
    let scale = |per: u64| {
        n.checked_mul(per)
            .ok_or_else(|| DurationError(s.to_owned()))
    };
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(scale(60)?),
        "h" => Duration::from_secs(scale(3600)?),
        "d" => Duration::from_secs(scale(86_400)?),
        _ => return Err(DurationError(s.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("90s").unwrap().as_secs(), 90);
        assert_eq!(parse("15m").unwrap().as_secs(), 900);
        assert_eq!(parse("24h").unwrap().as_secs(), 86_400);
        assert_eq!(parse("7d").unwrap().as_secs(), 604_800);
        assert_eq!(parse("0").unwrap().as_secs(), 0);
        assert_eq!(parse("250ms").unwrap().as_millis(), 250);
        assert!(parse("1w").is_err());
        assert!(parse("h").is_err());
        assert!(parse(&format!("{}d", u64::MAX)).is_err());
    }
}

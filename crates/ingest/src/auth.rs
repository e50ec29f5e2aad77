//! Per-team bearer tokens. Only SHA-256 hashes are stored; a presented token is hashed and compared
//! in constant time with every stored hash, so neither timing nor early exit tells an attacker
//! anything. The team comes from the matching entry, never from the request body.

use eventlake_contract::TeamName;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One team's token, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub team: TeamName,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// RFC 3339, for operators (rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// The stored form: `{"tokens": [...]}` (a file for the local server, a parameter on AWS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFile {
    pub tokens: Vec<TokenEntry>,
}

/// Why a request was not authenticated. The token itself never appears in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    Unknown,
}

#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    entries: Vec<(TeamName, [u8; 32])>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TokenStore {
    pub fn from_file(file: &TokenFile) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(file.tokens.len());
        for e in &file.tokens {
            let h = unhex(&e.sha256)
                .ok_or_else(|| format!("token entry of team {} has no valid sha256", e.team))?;
            entries.push((e.team.clone(), h));
        }
        Ok(Self { entries })
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        let file: TokenFile =
            serde_json::from_str(json).map_err(|e| format!("unreadable token file: {e}"))?;
        Self::from_file(&file)
    }

    /// The team of an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<TeamName, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Malformed)?;
        let presented = hash(token);
        let mut found: Option<&TeamName> = None;
        for (team, stored) in &self.entries {
            if bool::from(stored.ct_eq(&presented)) {
                found = Some(team);
            }
        }
        found.cloned().ok_or(AuthError::Unknown)
    }
}

/// A new random token for `team` and the entry to store. The token is shown once.
pub fn create_token(team: &TeamName) -> (String, TokenEntry) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!("elt_{}", hex(&raw));
    let entry = TokenEntry {
        team: team.clone(),
        sha256: hex(&hash(&token)),
        created_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    };
    (token, entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_their_team_only() {
        let a = TeamName::new("checkout").unwrap();
        let b = TeamName::new("search").unwrap();
        let (ta, ea) = create_token(&a);
        let (tb, eb) = create_token(&b);
        assert_ne!(ta, tb);
        assert!(!ea.sha256.contains(&ta));
        let store = TokenStore::from_file(&TokenFile {
            tokens: vec![ea, eb],
        })
        .unwrap();
        assert_eq!(store.authenticate(Some(&format!("Bearer {ta}"))), Ok(a));
        assert_eq!(store.authenticate(Some(&format!("Bearer {tb}"))), Ok(b));
        assert_eq!(store.authenticate(None), Err(AuthError::Missing));
        assert_eq!(store.authenticate(Some(&ta)), Err(AuthError::Malformed));
        assert_eq!(
            store.authenticate(Some("Bearer ")),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            store.authenticate(Some("Bearer elt_nope")),
            Err(AuthError::Unknown)
        );
    }

    #[test]
    fn bad_hashes_are_refused_at_load() {
        let err = TokenStore::from_json(r#"{"tokens":[{"team":"a","sha256":"xyz"}]}"#).unwrap_err();
        assert!(err.contains("team a"), "{err}");
        assert!(TokenStore::from_json(r#"{"tokens":[{"team":"A B","sha256":"00"}]}"#).is_err());
    }
}

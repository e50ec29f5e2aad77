//! Per-team bearer tokens. Only SHA-256 hashes are stored; a presented token is hashed and compared
//! in constant time with every stored hash, so neither timing nor early exit tells an attacker
//! anything. The team comes from the matching entry, never from the request body.

use std::path::{Path, PathBuf};

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

/// Why the stored tokens could not be loaded or changed. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("unreadable token file: {0}")]
    Unreadable(#[source] serde_json::Error),
    #[error("token entry of team {team} has no valid sha256")]
    BadHash { team: TeamName },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Box<TokenError>,
    },
}

impl TokenStore {
    pub fn from_file(file: &TokenFile) -> Result<Self, TokenError> {
        let mut entries = Vec::with_capacity(file.tokens.len());
        for e in &file.tokens {
            let h = unhex(&e.sha256).ok_or_else(|| TokenError::BadHash {
                team: e.team.clone(),
            })?;
            entries.push((e.team.clone(), h));
        }
        Ok(Self { entries })
    }

    pub fn from_json(json: &str) -> Result<Self, TokenError> {
        let file: TokenFile = serde_json::from_str(json).map_err(TokenError::Unreadable)?;
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

/// Creates a token for `team` and adds its hash to the token file at `path` (created when
/// absent). Concurrent calls, from any number of processes, keep every token: the file is changed
/// under an exclusive lock on `<path>.lock` and replaced atomically (written beside, synced,
/// renamed), so a reader never sees half a file either.
pub fn add_token_to_file(path: &Path, team: &TeamName) -> Result<String, TokenError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TokenError::Io { path, source }
    };
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    let mut file: TokenFile = match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| TokenError::File {
            path: path.to_owned(),
            source: Box::new(TokenError::Unreadable(e)),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TokenFile::default(),
        Err(e) => return Err(io(path)(e)),
    };
    let (token, entry) = create_token(team);
    file.tokens.push(entry);
    let tmp = PathBuf::from(format!(
        "{}.tmp-{}-{:08x}",
        path.display(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(
            &mut f,
            &serde_json::to_vec_pretty(&file).expect("serialises"),
        )?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
    };
    let written = write();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io(path))?;
    drop(lock);
    Ok(token)
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
        let err = TokenStore::from_json(r#"{"tokens":[{"team":"a","sha256":"xyz"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("team a"), "{err}");
        assert!(TokenStore::from_json(r#"{"tokens":[{"team":"A B","sha256":"00"}]}"#).is_err());
    }
}

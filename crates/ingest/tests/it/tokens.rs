//! `ingest token create` run by many processes at once keeps every token.

use super::*;

#[test]
fn concurrent_token_creates_keep_every_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let bin = env!("CARGO_BIN_EXE_ingest");
    let children: Vec<_> = (0..10)
        .map(|i| {
            std::process::Command::new(bin)
                .args(["--tokens", path.to_str().unwrap()])
                .args(["token", "create", "--team", &format!("team{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<(String, String)> = children
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
            (format!("team{i}"), token)
        })
        .collect();
    let file: TokenFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file.tokens.len(), 10);
    let store = TokenStore::from_file(&file).unwrap();
    for (team, token) in &tokens {
        assert_eq!(
            store
                .authenticate(Some(&format!("Bearer {token}")))
                .unwrap()
                .as_str(),
            team
        );
    }
    // Nothing is left half-written beside it.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

//! Saved analyst queries: `sql/*.sql`, each opening with a header of `-- key: value` lines.
//!
//! ```sql
//! -- name: events_per_team_day
//! -- answers: How many events each team sent per day.
//! -- param: from date 2026-11-20
//! -- param: to date 2026-11-22
//! -- budget: 30s
//! SELECT team, dt, count(*) AS events FROM events WHERE dt BETWEEN {{from}} AND {{to}} ...
//! ```
//!
//! A parameter has a kind (`team` or `date`) and a default. Values are checked against their kind
//! before they go anywhere near the SQL, then substituted as quoted literals, so one text runs on
//! Athena and on the local engine and no argument can change the statement's shape. A file that
//! does not parse is reported with its file and line before any query runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::trino::dialect::AthenaDialect;
use datafusion::sql::sqlparser::parser::Parser;
use eventlake_contract::{PartitionDate, TeamName};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Team,
    Date,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub default: String,
}

#[derive(Debug, Clone)]
pub struct SavedQuery {
    pub name: String,
    pub path: PathBuf,
    pub answers: String,
    pub params: Vec<Param>,
    pub budget: Duration,
    /// The whole file, header included (comments are SQL too).
    pub text: String,
}

fn err(path: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::SavedQuery {
        path: path.display().to_string(),
        line,
        message: message.into(),
    }
}

fn check_value(kind: ParamKind, value: &str) -> std::result::Result<String, String> {
    match kind {
        ParamKind::Team => TeamName::new(value)
            .map(|t| t.to_string())
            .map_err(|e| e.to_string()),
        ParamKind::Date => PartitionDate::parse(value)
            .map(|d| d.to_string())
            .map_err(|e| e.to_string()),
    }
}

/// Reads and checks one saved query: header, parameters, and that it parses with its defaults.
pub fn load(path: &Path) -> Result<SavedQuery> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read saved query", path.display(), e))?;
    let mut name = None;
    let mut answers = None;
    let mut budget = None;
    let mut params: Vec<Param> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some(c) = line.trim().strip_prefix("--") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        let Some((key, value)) = c.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "name" => name = Some(value.to_owned()),
            "answers" => answers = Some(value.to_owned()),
            "budget" => {
                budget = Some(eventlake_contract::duration::parse(value).map_err(|_| {
                    err(
                        path,
                        n,
                        format!("budget {value:?}: use a duration such as 30s or 2m"),
                    )
                })?)
            }
            "param" => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                let [pname, kind, default] = parts.as_slice() else {
                    return Err(err(
                        path,
                        n,
                        "param: write `-- param: <name> <team|date> <default>`",
                    ));
                };
                let kind = match *kind {
                    "team" => ParamKind::Team,
                    "date" => ParamKind::Date,
                    k => {
                        return Err(err(
                            path,
                            n,
                            format!("param {pname}: unknown kind {k:?} (team or date)"),
                        ));
                    }
                };
                check_value(kind, default)
                    .map_err(|e| err(path, n, format!("param {pname}: default: {e}")))?;
                params.push(Param {
                    name: (*pname).to_owned(),
                    kind,
                    default: (*default).to_owned(),
                });
            }
            _ => {}
        }
    }
    let q = SavedQuery {
        name: name.ok_or_else(|| err(path, 1, "the header has no `-- name:` line"))?,
        answers: answers.ok_or_else(|| err(path, 1, "the header has no `-- answers:` line"))?,
        budget: budget.ok_or_else(|| err(path, 1, "the header has no `-- budget:` line"))?,
        params,
        path: path.to_owned(),
        text,
    };
    q.render(&BTreeMap::new())?;
    Ok(q)
}

/// Loads every `.sql` file of the folders and files given, in name order; all are checked before
/// any is returned.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<SavedQuery>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io("cannot list saved queries", p.display(), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "sql"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no saved queries (.sql files) in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    files.iter().map(|f| load(f)).collect()
}

impl SavedQuery {
    /// The SQL with each `{{param}}` replaced by its checked value (or default), quoted.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String> {
        // A value for a parameter this query does not declare is ignored: several queries
        // share one set of values.
        let mut sql = self.text.clone();
        for p in &self.params {
            let raw = values.get(&p.name).unwrap_or(&p.default);
            let v = check_value(p.kind, raw).map_err(|e| {
                Error::InvalidArgument(format!(
                    "{}: parameter {}: {e}",
                    self.path.display(),
                    p.name
                ))
            })?;
            sql = sql.replace(&format!("{{{{{}}}}}", p.name), &format!("'{v}'"));
        }
        if let Some(pos) = sql.find("{{") {
            let line = sql[..pos].lines().count().max(1);
            let end = sql[pos..].find("}}").map_or(pos + 2, |e| pos + e + 2);
            return Err(err(
                &self.path,
                line,
                format!("{} is not a declared parameter", &sql[pos..end]),
            ));
        }
        self.check_syntax(&sql)?;
        Ok(sql)
    }

    fn check_syntax(&self, sql: &str) -> Result<()> {
        match Parser::parse_sql(&AthenaDialect, sql) {
            Ok(statements) if statements.len() == 1 => Ok(()),
            Ok(statements) => Err(err(
                &self.path,
                1,
                format!("expected one statement, found {}", statements.len()),
            )),
            Err(e) => {
                let msg = e.to_string();
                let line = msg
                    .split("Line: ")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Err(err(&self.path, line, format!("syntax error: {msg}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    const HEADER: &str = "-- name: q\n-- answers: a test\n-- param: team team checkout\n-- param: day date 2026-11-20\n-- budget: 30s\n";

    #[test]
    fn parameters_are_checked_and_quoted() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "q.sql",
            &format!(
                "{HEADER}SELECT count(*) FROM events\nWHERE team = {{{{team}}}} AND dt = {{{{day}}}}\n"
            ),
        );
        let q = load(&p).unwrap();
        assert_eq!(q.budget, Duration::from_secs(30));
        let sql = q.render(&BTreeMap::new()).unwrap();
        assert!(
            sql.contains("team = 'checkout' AND dt = '2026-11-20'"),
            "{sql}"
        );
        let mut v = BTreeMap::new();
        v.insert("team".to_owned(), "x' OR '1'='1".to_owned());
        let e = q.render(&v).unwrap_err().to_string();
        assert!(e.contains("parameter team"), "{e}");
        v.insert("team".to_owned(), "search".to_owned());
        v.insert("day".to_owned(), "2026-02-30".to_owned());
        let e = q.render(&v).unwrap_err().to_string();
        assert!(e.contains("parameter day"), "{e}");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "bad.sql",
            &format!("{HEADER}SELECT team,\n  count(*\nFROM events\nGROUP BY team\n"),
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:", p.display())), "{e}");
        assert!(e.contains("syntax error"), "{e}");
        let line: usize = e.split(':').nth(1).unwrap().parse().unwrap();
        assert!((7..=8).contains(&line), "{e}");
        let p = write(
            d.path(),
            "undeclared.sql",
            &format!("{HEADER}SELECT {{{{nope}}}}\n"),
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("undeclared.sql:6: {{nope}}"), "{e}");
        let p = write(d.path(), "nohead.sql", "SELECT 1\n");
        assert!(load(&p).unwrap_err().to_string().contains("no `-- name:`"));
    }
}

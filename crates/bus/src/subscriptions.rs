//! Subscriptions: which team receives which events.
//!
//! A versioned JSON document, deployed by Terraform on AWS and read from a file on a laptop:
//!
//! ```json
//! {
//!   "version": 1,
//!   "teams": ["checkout", "growth", "search"],
//!   "subscriptions": [
//!     {"team": "growth", "from": "checkout", "event_types": ["purchase", "checkout.*"]},
//!     {"team": "search", "from": "checkout", "event_types": ["*"], "sources": ["web"]}
//!   ],
//!   "notify": ["growth"]
//! }
//! ```
//!
//! `teams` names every team of the platform; a rule that names another team, an event-type
//! pattern that no event type could match, or an unknown field is an error when the document
//! loads, not a silent non-delivery later. A pattern is an event type in which `*` stands for any
//! run of characters; `sources`, when present, keeps only events whose `source` matches one of
//! its patterns (an event without a `source` matches none). A team receives a producing team's
//! events only through a rule that names that team in `from`. `notify` lists the teams that also
//! want one SNS notification per batch they receive events of (a summary, not the events).

use std::collections::BTreeSet;
use std::path::Path;

use eventlake_contract::TeamName;
use eventlake_contract::event::valid_event_type;
use serde::Deserialize;

/// The configuration format this build reads.
pub const VERSION: u32 = 1;

/// Why a subscription document was refused; `at` names the place in it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{at}: not a subscription document: {source}")]
    Syntax {
        at: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{at}: version {found} is not supported (this build reads version {VERSION})")]
    Version { at: String, found: u32 },
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    teams: Vec<String>,
    #[serde(default)]
    subscriptions: Vec<RuleDoc>,
    /// Teams that also want one SNS notification per batch they receive events of.
    #[serde(default)]
    notify: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    team: String,
    from: String,
    event_types: Vec<String>,
    #[serde(default)]
    sources: Option<Vec<String>>,
}

/// A pattern over event types or sources: `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Whether `s` matches the whole pattern.
    pub fn matches(&self, s: &str) -> bool {
        glob(self.0.as_bytes(), s.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `*`-only glob, iterative with one backtrack point (linear in practice, never exponential).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// One rule: `team` receives `from`'s events of these types (and sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub team: TeamName,
    pub from: TeamName,
    pub event_types: Vec<Pattern>,
    pub sources: Option<Vec<Pattern>>,
}

impl Rule {
    fn matches(&self, from: &TeamName, event_type: &str, source: Option<&str>) -> bool {
        &self.from == from
            && self.event_types.iter().any(|p| p.matches(event_type))
            && match &self.sources {
                None => true,
                Some(patterns) => source.is_some_and(|s| patterns.iter().any(|p| p.matches(s))),
            }
    }
}

/// A loaded, checked subscription document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriptions {
    teams: BTreeSet<TeamName>,
    rules: Vec<Rule>,
    notify: BTreeSet<TeamName>,
}

impl Subscriptions {
    /// Reads and checks the document at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a document; `origin` (a path or a parameter name) prefixes every error.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Error> {
        let doc: Document = serde_json::from_str(text).map_err(|source| Error::Syntax {
            at: origin.to_owned(),
            source,
        })?;
        if doc.version != VERSION {
            return Err(Error::Version {
                at: format!("{origin}: version"),
                found: doc.version,
            });
        }
        let invalid = |at: String, message: String| Error::Invalid {
            at: format!("{origin}: {at}"),
            message,
        };
        let mut teams = BTreeSet::new();
        for (i, t) in doc.teams.iter().enumerate() {
            let team =
                TeamName::new(t).map_err(|e| invalid(format!("teams[{i}]"), e.to_string()))?;
            if !teams.insert(team) {
                return Err(invalid(
                    format!("teams[{i}]"),
                    format!("team {t:?} is listed twice"),
                ));
            }
        }
        let known = |at: String, name: &str| -> Result<TeamName, Error> {
            let team = TeamName::new(name).map_err(|e| invalid(at.clone(), e.to_string()))?;
            if teams.contains(&team) {
                Ok(team)
            } else {
                let list: Vec<&str> = teams.iter().map(|t| t.as_str()).collect();
                Err(invalid(
                    at,
                    format!("unknown team {name:?} (teams: {})", list.join(", ")),
                ))
            }
        };
        let mut rules = Vec::with_capacity(doc.subscriptions.len());
        for (i, r) in doc.subscriptions.iter().enumerate() {
            let at = |field: &str| format!("subscriptions[{i}].{field}");
            let team = known(at("team"), &r.team)?;
            let from = known(at("from"), &r.from)?;
            if r.event_types.is_empty() {
                return Err(invalid(
                    at("event_types"),
                    "names no event type (use [\"*\"] for all of them)".into(),
                ));
            }
            let event_types = r
                .event_types
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    event_type_pattern(p).map_err(|m| invalid(at(&format!("event_types[{j}]")), m))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sources = match &r.sources {
                None => None,
                Some(list) if list.is_empty() => {
                    return Err(invalid(
                        at("sources"),
                        "is empty: leave it out to receive every source".into(),
                    ));
                }
                Some(list) => Some(
                    list.iter()
                        .enumerate()
                        .map(|(j, p)| {
                            source_pattern(p).map_err(|m| invalid(at(&format!("sources[{j}]")), m))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            rules.push(Rule {
                team,
                from,
                event_types,
                sources,
            });
        }
        let mut notify = BTreeSet::new();
        for (i, t) in doc.notify.iter().enumerate() {
            notify.insert(known(format!("notify[{i}]"), t)?);
        }
        Ok(Self {
            teams,
            rules,
            notify,
        })
    }

    /// Whether `team` wants one SNS notification per batch it receives events of.
    pub fn notifies(&self, team: &TeamName) -> bool {
        self.notify.contains(team)
    }

    /// Every team of the platform.
    pub fn teams(&self) -> &BTreeSet<TeamName> {
        &self.teams
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The teams that receive an event of `event_type` (and `source`) produced by `from`, each
    /// once however many of its rules match.
    pub fn recipients(
        &self,
        from: &TeamName,
        event_type: &str,
        source: Option<&str>,
    ) -> BTreeSet<&TeamName> {
        self.rules
            .iter()
            .filter(|r| r.matches(from, event_type, source))
            .map(|r| &r.team)
            .collect()
    }
}

fn event_type_pattern(p: &str) -> Result<Pattern, String> {
    let literal: String = p.chars().filter(|&c| c != '*').collect();
    if p.is_empty() || p.len() > 64 || !(literal.is_empty() || valid_event_type(&literal)) {
        return Err(format!(
            "{p:?} is not an event-type pattern: [a-z0-9_.:-]{{1,64}}, with * for any run of characters"
        ));
    }
    Ok(Pattern(p.to_owned()))
}

fn source_pattern(p: &str) -> Result<Pattern, String> {
    if p.is_empty() || p.len() > 128 || p.chars().any(char::is_control) {
        return Err(format!(
            "{p:?} is not a source pattern: 1 to 128 printable characters, with * for any run of characters"
        ));
    }
    Ok(Pattern(p.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
        "version": 1,
        "teams": ["checkout", "growth", "search"],
        "subscriptions": [
            {"team": "growth", "from": "checkout", "event_types": ["purchase", "checkout.*"]},
            {"team": "growth", "from": "checkout", "event_types": ["*"], "sources": ["web"]},
            {"team": "search", "from": "checkout", "event_types": ["page_*"], "sources": ["web", "ios-*"]}
        ]
    }"#;

    fn team(s: &str) -> TeamName {
        TeamName::new(s).unwrap()
    }

    fn to(s: &Subscriptions, from: &str, ty: &str, source: Option<&str>) -> Vec<String> {
        s.recipients(&team(from), ty, source)
            .into_iter()
            .map(|t| t.to_string())
            .collect()
    }

    fn refused(doc: &str) -> String {
        Subscriptions::parse(doc, "subs.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_event_goes_to_every_matching_team_once_and_to_no_one_else() {
        let s = Subscriptions::parse(DOC, "subs.json").unwrap();
        assert_eq!(to(&s, "checkout", "purchase", Some("web")), ["growth"]);
        assert_eq!(to(&s, "checkout", "checkout.step", None), ["growth"]);
        assert_eq!(
            to(&s, "checkout", "page_view", Some("web")),
            ["growth", "search"]
        );
        assert_eq!(to(&s, "checkout", "page_view", Some("ios-17")), ["search"]);
        assert!(to(&s, "checkout", "page_view", Some("android")).is_empty());
        assert!(to(&s, "checkout", "page_view", None).is_empty());
        // No rule names search as a producer: its events go nowhere.
        assert!(to(&s, "search", "purchase", Some("web")).is_empty());
        assert!(to(&s, "growth", "purchase", Some("web")).is_empty());
    }

    #[test]
    fn unknown_teams_are_refused_with_their_place() {
        let e = refused(
            r#"{"version":1,"teams":["checkout","growth"],"subscriptions":[{"team":"growth","from":"billing","event_types":["*"]}]}"#,
        );
        assert_eq!(
            e,
            "subs.json: subscriptions[0].from: unknown team \"billing\" (teams: checkout, growth)"
        );
        let e = refused(
            r#"{"version":1,"teams":["checkout"],"subscriptions":[{"team":"Growth!","from":"checkout","event_types":["*"]}]}"#,
        );
        assert!(e.starts_with("subs.json: subscriptions[0].team: "), "{e}");
        let e = refused(r#"{"version":1,"teams":["checkout","checkout"]}"#);
        assert!(e.contains("teams[1]") && e.contains("listed twice"), "{e}");
        let e = refused(r#"{"version":1,"teams":["checkout"],"notify":["growth"]}"#);
        assert!(e.starts_with("subs.json: notify[0]: unknown team"), "{e}");
        let s = Subscriptions::parse(
            r#"{"version":1,"teams":["checkout","growth"],"notify":["growth"]}"#,
            "subs.json",
        )
        .unwrap();
        assert!(s.notifies(&TeamName::new("growth").unwrap()));
        assert!(!s.notifies(&TeamName::new("checkout").unwrap()));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for (pattern, place) in [
            ("Page View", "event_types[0]"),
            ("", "event_types[0]"),
            ("page/view", "event_types[0]"),
        ] {
            let e = refused(&format!(
                r#"{{"version":1,"teams":["a","b"],"subscriptions":[{{"team":"b","from":"a","event_types":["{pattern}"]}}]}}"#
            ));
            assert!(
                e.contains(place) && e.contains("not an event-type pattern"),
                "{e}"
            );
        }
        let e = refused(
            r#"{"version":1,"teams":["a","b"],"subscriptions":[{"team":"b","from":"a","event_types":[]}]}"#,
        );
        assert!(e.contains("event_types: names no event type"), "{e}");
        let e = refused(
            r#"{"version":1,"teams":["a","b"],"subscriptions":[{"team":"b","from":"a","event_types":["*"],"sources":[]}]}"#,
        );
        assert!(e.contains("sources: is empty"), "{e}");
    }

    #[test]
    fn unknown_fields_and_versions_are_refused() {
        let e = refused(
            r#"{"version":1,"teams":["a","b"],"subscriptions":[{"team":"b","from":"a","event_type":["*"]}]}"#,
        );
        assert!(e.contains("unknown field `event_type`"), "{e}");
        assert_eq!(
            refused(r#"{"version":2,"teams":["a"]}"#),
            "subs.json: version: version 2 is not supported (this build reads version 1)"
        );
        assert!(refused("not json").starts_with("subs.json: not a subscription document"));
    }

    #[test]
    fn stars_match_any_run_of_characters() {
        let p = |s: &str| Pattern(s.to_owned());
        assert!(p("*").matches(""));
        assert!(p("page_*").matches("page_"));
        assert!(p("*.*").matches("checkout.step"));
        assert!(!p("*.*").matches("checkout"));
        assert!(p("a*b*c").matches("aXbYbZc"));
        assert!(!p("a*b*c").matches("aXbYbZ"));
        assert!(!p("page").matches("page_view"));
        // Many stars against a long miss stays quick.
        assert!(!p(&"*a".repeat(30)).matches(&"a".repeat(29)));
    }
}

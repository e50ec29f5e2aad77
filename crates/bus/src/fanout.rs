//! Fan-out: a committed batch's events, addressed to every subscribing team.
//!
//! Each event goes to each team whose subscription matches it ([`Subscriptions::recipients`]),
//! as one [`Message`] whose deduplication id is derived from the event id and the receiving team:
//! delivering a batch twice (a retried stream record, a re-run poller) sends the same ids, which
//! the FIFO queue drops within its window and the consumer drops after it. The message group is
//! the producing team and the event's `user_id`, so one user's events stay in order.

use std::io::Read;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::outbox::Committed;
use crate::{Error, Subscriptions};
use eventlake_contract::TeamName;

/// One event for one receiving team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The receiving team.
    pub to: TeamName,
    /// `hex(sha256(event_id, receiving team))`: the same event to the same team is the same id.
    pub dedup_id: String,
    /// The producing team and the user: one user's events keep their order.
    pub group_id: String,
    /// The event as stored in the raw zone (one JSON object, stamped with its team).
    pub body: String,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    event_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    source: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<std::borrow::Cow<'a, str>>,
}

/// The `event_id` of a message body (an event as stored in the raw zone), if it has one.
pub fn event_id(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("event_id")?
        .as_str()
        .map(str::to_owned)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The deduplication id of `event_id` delivered to `to`.
pub fn dedup_id(event_id: &str, to: &TeamName) -> String {
    hex(&Sha256::digest(format!("{event_id}\0{to}").as_bytes()))
}

fn group_id(from: &TeamName, user_id: Option<&str>) -> String {
    let user = user_id.unwrap_or("");
    let group = format!("{from}:{user}");
    // SQS takes group ids of up to 128 characters.
    if group.len() <= 128 && group.is_ascii() {
        group
    } else {
        format!("{from}:{}", &hex(&Sha256::digest(user.as_bytes()))[..40])
    }
}

/// The raw object's lines (gzip NDJSON, as ingest writes it).
pub fn lines(object: &[u8], key: &str) -> Result<String, Error> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(object)
        .read_to_string(&mut text)
        .map_err(|e| Error::Poison {
            record: key.to_owned(),
            reason: format!("the raw object is not gzip UTF-8 NDJSON: {e}"),
        })?;
    Ok(text)
}

/// The messages of a committed batch whose raw object holds `ndjson`.
pub fn messages(
    batch: &Committed,
    ndjson: &str,
    subs: &Subscriptions,
) -> Result<Vec<Message>, Error> {
    let mut out = Vec::new();
    for (i, line) in ndjson.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let event: Line = serde_json::from_str(line).map_err(|e| Error::Poison {
            record: format!("{}:{}", batch.stored_at, i + 1),
            reason: format!("not an event: {e}"),
        })?;
        for to in subs.recipients(&batch.team, &event.event_type, event.source.as_deref()) {
            out.push(Message {
                to: to.clone(),
                dedup_id: dedup_id(&event.event_id, to),
                group_id: group_id(&batch.team, event.user_id.as_deref()),
                body: line.to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBS: &str = r#"{"version":1,"teams":["checkout","growth","search"],"subscriptions":[
        {"team":"growth","from":"checkout","event_types":["purchase"]},
        {"team":"search","from":"checkout","event_types":["*"],"sources":["web"]}]}"#;

    fn batch() -> Committed {
        Committed {
            team: TeamName::new("checkout").unwrap(),
            batch_id: "k1".into(),
            stored_at: "raw/team=checkout/dt=2026-12-01/hour=10/k1.ndjson.gz".into(),
        }
    }

    #[test]
    fn each_event_goes_to_each_matching_team_with_a_stable_id() {
        let subs = Subscriptions::parse(SUBS, "subs").unwrap();
        let ndjson = concat!(
            r#"{"event_id":"e1","event_type":"purchase","source":"web","user_id":"u1","team":"checkout"}"#,
            "\n",
            r#"{"event_id":"e2","event_type":"page_view","source":"ios","user_id":"u1","team":"checkout"}"#,
            "\n",
            r#"{"event_id":"e3","event_type":"page_view","source":"web","team":"checkout"}"#,
            "\n"
        );
        let m = messages(&batch(), ndjson, &subs).unwrap();
        let to: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.to.as_str(), m.group_id.as_str()))
            .collect();
        assert_eq!(
            to,
            [
                ("growth", "checkout:u1"),
                ("search", "checkout:u1"),
                ("search", "checkout:")
            ]
        );
        // The same event to two teams: two ids; again to the same team: the same id.
        assert_ne!(m[0].dedup_id, m[1].dedup_id);
        assert_eq!(
            m[0].dedup_id,
            messages(&batch(), ndjson, &subs).unwrap()[0].dedup_id
        );
        assert!(m[0].body.contains("\"e1\""));
    }

    #[test]
    fn a_line_that_is_not_an_event_is_poison_with_its_place() {
        let subs = Subscriptions::parse(SUBS, "subs").unwrap();
        let e = messages(&batch(), "{\"event_id\":\"e1\"}\nnot json\n", &subs).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("k1.ndjson.gz:1"), "{text}");
        assert!(lines(b"not gzip", "raw/x").is_err());
    }

    #[test]
    fn long_or_unusual_users_get_a_hashed_group() {
        let from = TeamName::new("checkout").unwrap();
        assert_eq!(group_id(&from, Some("u-1")), "checkout:u-1");
        let long = "u".repeat(200);
        let g = group_id(&from, Some(&long));
        assert!(g.len() <= 128 && g.starts_with("checkout:"), "{g}");
        assert_eq!(g, group_id(&from, Some(&long)));
    }
}

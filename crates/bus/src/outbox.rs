//! The outbox: the ledger's stream of new item images, read as committed batches.
//!
//! Ingest records every accepted batch in the ledger (one item per batch, see the ingest crate's
//! `ledger` module) before it acknowledges it. An item becomes a committed batch when its state
//! is `accepted` and it names the raw object that holds the batch (`stored_at`). A claim
//! (`state = "claimed"`), a batch still in the dead-letter queue (no `stored_at` yet) and an
//! expiry (a removal, no new image) are not batches to deliver.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record};
use eventlake_contract::TeamName;

use crate::Error;

/// A batch the ledger says is committed: its events are to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The producing team.
    pub team: TeamName,
    pub batch_id: String,
    /// The raw object that holds the batch, relative to the lake root.
    pub stored_at: String,
}

/// The committed batch an item's new image describes, if any.
pub fn committed(image: &HashMap<String, AttributeValue>) -> Result<Option<Committed>, Error> {
    committed_by(|name| image.get(name).and_then(|v| v.as_s().ok()).cloned())
}

/// The committed batch of an image whose string attributes `s` reads.
fn committed_by(s: impl Fn(&str) -> Option<String>) -> Result<Option<Committed>, Error> {
    if s("state").as_deref() != Some("accepted") {
        return Ok(None);
    }
    let Some(stored_at) = s("stored_at") else {
        return Ok(None);
    };
    let pk = s("pk").unwrap_or_default();
    let (Some(team), Some(batch_id)) = (s("team"), s("batch_id")) else {
        return Err(Error::Poison {
            record: pk,
            reason: "an accepted ledger item without team or batch_id".into(),
        });
    };
    let team = TeamName::new(&team).map_err(|e| Error::Poison {
        record: pk.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(Committed {
        team,
        batch_id,
        stored_at,
    }))
}

/// The committed batch of a stream record, if any (inserts and modifications only).
pub fn from_record(record: &Record) -> Result<Option<Committed>, Error> {
    if !matches!(
        record.event_name(),
        Some(OperationType::Insert | OperationType::Modify)
    ) {
        return Ok(None);
    }
    match record.dynamodb().and_then(|d| d.new_image()) {
        Some(image) => committed(image),
        None => Ok(None),
    }
}

/// The committed batch of a stream record as a Lambda receives it (inserts and modifications
/// only): the same decision as [`from_record`].
pub fn from_lambda_record(
    record: &aws_lambda_events::event::dynamodb::EventRecord,
) -> Result<Option<Committed>, Error> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    // The image in DynamoDB's JSON form: {"name": {"S": "value"}, ...}.
    let image = serde_json::to_value(&record.change.new_image).unwrap_or_default();
    committed_by(|name| image.get(name)?.get("S")?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pairs: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())))
            .collect()
    }

    #[test]
    fn only_accepted_items_with_a_raw_object_are_batches() {
        let accepted = image(&[
            ("pk", "checkout#k1"),
            ("state", "accepted"),
            ("team", "checkout"),
            ("batch_id", "k1"),
            (
                "stored_at",
                "raw/team=checkout/dt=2026-12-01/hour=10/k1.ndjson.gz",
            ),
        ]);
        assert_eq!(
            committed(&accepted).unwrap(),
            Some(Committed {
                team: TeamName::new("checkout").unwrap(),
                batch_id: "k1".into(),
                stored_at: "raw/team=checkout/dt=2026-12-01/hour=10/k1.ndjson.gz".into(),
            })
        );
        let claimed = image(&[("pk", "checkout#k1"), ("state", "claimed")]);
        assert_eq!(committed(&claimed).unwrap(), None);
        let dead_lettered = image(&[
            ("pk", "checkout#k1"),
            ("state", "accepted"),
            ("team", "checkout"),
            ("batch_id", "k1"),
        ]);
        assert_eq!(committed(&dead_lettered).unwrap(), None);
        let broken = image(&[("pk", "x"), ("state", "accepted"), ("stored_at", "raw/x")]);
        assert!(matches!(committed(&broken), Err(Error::Poison { .. })));
    }
}

#[cfg(test)]
mod lambda_tests {
    use super::*;

    #[test]
    fn a_lambda_record_reads_as_the_stream_record_does() {
        let record: aws_lambda_events::event::dynamodb::EventRecord =
            serde_json::from_value(serde_json::json!({
                "awsRegion": "eu-west-1",
                "eventID": "1",
                "eventName": "MODIFY",
                "eventSource": "aws:dynamodb",
                "eventVersion": "1.1",
                "dynamodb": {
                    "SequenceNumber": "100",
                    "StreamViewType": "NEW_IMAGE",
                    "SizeBytes": 10,
                    "Keys": {"pk": {"S": "checkout#k1"}},
                    "NewImage": {
                        "pk": {"S": "checkout#k1"}, "state": {"S": "accepted"},
                        "team": {"S": "checkout"}, "batch_id": {"S": "k1"},
                        "stored_at": {"S": "raw/team=checkout/dt=2026-12-01/hour=10/k1.ndjson.gz"},
                        "accepted": {"N": "3"}
                    }
                }
            }))
            .unwrap();
        let c = from_lambda_record(&record).unwrap().unwrap();
        assert_eq!((c.team.as_str(), c.batch_id.as_str()), ("checkout", "k1"));
        let mut removed = record.clone();
        removed.event_name = "REMOVE".into();
        assert_eq!(from_lambda_record(&removed).unwrap(), None);
    }
}

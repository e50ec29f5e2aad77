//! The ledger: idempotency claims and answers as items of a DynamoDB table.
//!
//! One item per batch, keyed `pk = "<team>#<batch_id>"`: the claim when a request claims its key
//! (`state = "claimed"`), then the answer when the batch is durable (`state = "accepted"`, with
//! `stored_at`, the raw object the bus fans out). Requests without a key are recorded too: the
//! record is the batch's commit point, and the table's stream of new images is the bus's outbox. Both
//! writes are conditional (`attribute_not_exists`), so exactly one request claims a key and the
//! first answer recorded is the answer, as with [`crate::idempotency::ObjectClaims`]; the same
//! conformance tests run against both. Items expire (`expires_at`, the table's TTL attribute)
//! after the retention the ledger is opened with: a key may be reused after that.
//!
//! Why per batch and not per event: a batch is what a request claims and answers, one write per
//! request keeps ingest within its latency budget, and the event ids are in the raw object the
//! answer names.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use eventlake_contract::TeamName;
use serde::de::DeserializeOwned;

use crate::idempotency::{Answer, Claim, Claimed, IdempotencyError, IdempotencyStore};

/// How long a ledger item is kept by default: a retry a week late is still a retry.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Claims and answers in a DynamoDB table (partition key `pk`, a string).
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    retention: Duration,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoLedger {
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, retention: Duration) -> Self {
        Self {
            client: Client::new(sdk),
            table: table.to_owned(),
            retention,
        }
    }

    fn pk(team: &TeamName, batch_id: &str) -> String {
        format!("{team}#{batch_id}")
    }

    fn expires_at(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (now + self.retention).as_secs().to_string()
    }

    fn failed<E>(&self, pk: &str, e: E) -> IdempotencyError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        IdempotencyError::Ledger {
            key: format!("{}/{pk}", self.table),
            detail: DisplayErrorContext(&e).to_string(),
            source: Box::new(e),
        }
    }

    async fn item(&self, pk: &str) -> Result<Option<Item>, IdempotencyError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.failed(pk, e))?;
        Ok(out.item)
    }

    fn attribute<T: DeserializeOwned>(
        pk: &str,
        item: &Item,
        name: &str,
    ) -> Result<Option<T>, IdempotencyError> {
        match item.get(name) {
            Some(AttributeValue::S(s)) => {
                serde_json::from_str(s)
                    .map(Some)
                    .map_err(|source| IdempotencyError::Corrupt {
                        key: format!("{pk}.{name}"),
                        source,
                    })
            }
            _ => Ok(None),
        }
    }

    /// Reads `name` of an item a refused conditional write says is there.
    async fn existing<T: DeserializeOwned>(
        &self,
        pk: &str,
        name: &str,
    ) -> Result<T, IdempotencyError> {
        let item = self.item(pk).await?.unwrap_or_default();
        Self::attribute(pk, &item, name)?.ok_or_else(|| IdempotencyError::Ledger {
            key: format!("{}/{pk}", self.table),
            detail: format!("the conditional write was refused but the item has no {name}"),
            source: format!("missing {name}").into(),
        })
    }
}

#[async_trait]
impl IdempotencyStore for DynamoLedger {
    fn commits(&self) -> bool {
        true
    }

    async fn claim(
        &self,
        team: &TeamName,
        batch_id: &str,
        claim: &Claim,
    ) -> Result<Claimed, IdempotencyError> {
        let pk = Self::pk(team, batch_id);
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.clone()))
            .item("team", AttributeValue::S(team.to_string()))
            .item("batch_id", AttributeValue::S(batch_id.to_owned()))
            .item("state", AttributeValue::S("claimed".into()))
            .item(
                "claim",
                AttributeValue::S(serde_json::to_string(claim).expect("serialises")),
            )
            .item("expires_at", AttributeValue::N(self.expires_at()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(Claimed::Won),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(Claimed::Held(self.existing(&pk, "claim").await?))
            }
            Err(e) => Err(self.failed(&pk, e)),
        }
    }

    async fn claim_of(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<Option<Claim>, IdempotencyError> {
        let pk = Self::pk(team, batch_id);
        match self.item(&pk).await? {
            Some(item) => Self::attribute(&pk, &item, "claim"),
            None => Ok(None),
        }
    }

    async fn answer(
        &self,
        team: &TeamName,
        batch_id: &str,
    ) -> Result<Option<Answer>, IdempotencyError> {
        let pk = Self::pk(team, batch_id);
        match self.item(&pk).await? {
            Some(item) => Self::attribute(&pk, &item, "answer"),
            None => Ok(None),
        }
    }

    async fn record(
        &self,
        team: &TeamName,
        batch_id: &str,
        answer: &Answer,
    ) -> Result<Answer, IdempotencyError> {
        let pk = Self::pk(team, batch_id);
        let written = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.clone()))
            .update_expression(
                "SET answer = :answer, #state = :accepted, team = :team, batch_id = :batch, \
                 durable_in = :durable_in, accepted = :accepted_n, stored_at = :stored_at, \
                 expires_at = if_not_exists(expires_at, :expires_at)",
            )
            .condition_expression("attribute_not_exists(answer)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":answer",
                AttributeValue::S(serde_json::to_string(answer).expect("serialises")),
            )
            .expression_attribute_values(":accepted", AttributeValue::S("accepted".into()))
            .expression_attribute_values(":team", AttributeValue::S(team.to_string()))
            .expression_attribute_values(":batch", AttributeValue::S(batch_id.to_owned()))
            .expression_attribute_values(
                ":durable_in",
                AttributeValue::S(answer.answer.durable_in.clone()),
            )
            .expression_attribute_values(
                ":accepted_n",
                AttributeValue::N(answer.answer.accepted.to_string()),
            )
            .expression_attribute_values(
                ":stored_at",
                answer
                    .stored_at
                    .clone()
                    .map_or(AttributeValue::Null(true), AttributeValue::S),
            )
            .expression_attribute_values(":expires_at", AttributeValue::N(self.expires_at()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(answer.clone()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.existing(&pk, "answer").await
            }
            Err(e) => Err(self.failed(&pk, e)),
        }
    }

    async fn redriven(
        &self,
        team: &TeamName,
        batch_id: &str,
        stored_at: &str,
    ) -> Result<bool, IdempotencyError> {
        let pk = Self::pk(team, batch_id);
        // Only a batch without its raw object yet: a second redrive changes nothing, so the
        // stream announces the batch once. An item that expired before the redrive is made
        // again: the letter is the proof that the batch was accepted.
        let written = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.clone()))
            .update_expression(
                "SET stored_at = :stored_at, redriven_at = :now, #state = :accepted, \
                 team = if_not_exists(team, :team), batch_id = if_not_exists(batch_id, :batch), \
                 expires_at = if_not_exists(expires_at, :expires_at)",
            )
            .condition_expression(
                "attribute_not_exists(stored_at) OR attribute_type(stored_at, :null)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":stored_at", AttributeValue::S(stored_at.to_owned()))
            .expression_attribute_values(
                ":now",
                AttributeValue::S(
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ),
            )
            .expression_attribute_values(":null", AttributeValue::S("NULL".into()))
            .expression_attribute_values(":accepted", AttributeValue::S("accepted".into()))
            .expression_attribute_values(":team", AttributeValue::S(team.to_string()))
            .expression_attribute_values(":batch", AttributeValue::S(batch_id.to_owned()))
            .expression_attribute_values(":expires_at", AttributeValue::N(self.expires_at()))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.failed(&pk, e)),
        }
    }
}

/// Creates the ledger table unless it exists (`true` when it was created): partition key `pk`,
/// on demand, a stream of new images (the bus's outbox), as Terraform builds it on AWS. For a
/// laptop's stand-ins, a sandbox account and the tests.
pub async fn create_table(
    sdk: &aws_config::SdkConfig,
    table: &str,
) -> Result<bool, IdempotencyError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        StreamSpecification, StreamViewType,
    };
    let client = Client::new(sdk);
    if client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok()
    {
        return Ok(false);
    }
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| IdempotencyError::Ledger {
        key: table.to_owned(),
        detail: format!("CreateTable: {e}"),
        source: e,
    };
    let request = client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| failed(Box::new(e)))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| failed(Box::new(e)))?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(|e| failed(Box::new(e)))?,
        );
    request.send().await.map_err(|e| IdempotencyError::Ledger {
        key: table.to_owned(),
        detail: format!("CreateTable: {}", DisplayErrorContext(&e)),
        source: Box::new(e),
    })?;
    Ok(true)
}

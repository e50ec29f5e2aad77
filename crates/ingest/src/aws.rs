//! The AWS side of ingestion: the SQS dead-letter queue and the token hashes in an SSM parameter.
//!
//! Clients come from one shared SDK configuration (the standard chain: environment, profile,
//! Lambda role; `AWS_ENDPOINT_URL` for a stand-in).

use async_trait::async_trait;
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_ssm::Client as SsmClient;

use crate::auth::TokenStore;
use crate::sink::{DeadLetter, Dlq};

/// SQS takes messages of at most 256 KiB; a larger batch cannot be dead-lettered (the client gets
/// a 503 and retries).
pub const SQS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The shared SDK configuration.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

/// The dead-letter queue as an SQS queue: one message per batch, the letter as JSON.
#[derive(Debug, Clone)]
pub struct SqsDlq {
    client: SqsClient,
    queue_url: String,
}

impl SqsDlq {
    pub fn new(config: &aws_config::SdkConfig, queue_url: &str) -> Self {
        Self {
            client: SqsClient::new(config),
            queue_url: queue_url.to_owned(),
        }
    }
}

fn sdk_error<E: std::error::Error>(what: &str, e: E) -> String {
    // The SDK's Display is terse; the source chain says what went wrong. Credentials never appear
    // in either.
    let mut msg = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

#[async_trait]
impl Dlq for SqsDlq {
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        let body = serde_json::to_string(letter).expect("letter serialises");
        if body.len() > SQS_MAX_MESSAGE_BYTES {
            return Err(format!(
                "the batch is {} bytes as a dead letter, over the queue's {} byte limit",
                body.len(),
                SQS_MAX_MESSAGE_BYTES
            ));
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("sqs SendMessage", e))
    }

    async fn receive(&self, max: usize) -> Result<Vec<(String, DeadLetter)>, String> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| sdk_error("sqs ReceiveMessage", e))?;
        out.messages()
            .iter()
            .map(|m| {
                let receipt = m.receipt_handle().unwrap_or_default().to_owned();
                let letter: DeadLetter = serde_json::from_str(m.body().unwrap_or_default())
                    .map_err(|e| {
                        format!(
                            "unreadable dead letter {}: {e}",
                            m.message_id().unwrap_or("?")
                        )
                    })?;
                Ok((receipt, letter))
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<(), String> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("sqs DeleteMessage", e))
    }
}

/// Loads the token hashes from an SSM parameter (a SecureString holding `{"tokens": [...]}`).
pub async fn tokens_from_parameter(
    config: &aws_config::SdkConfig,
    name: &str,
) -> Result<TokenStore, String> {
    let out = SsmClient::new(config)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("ssm GetParameter {name}"), e))?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| format!("ssm parameter {name} has no value"))?;
    TokenStore::from_json(value).map_err(|e| format!("ssm parameter {name}: {e}"))
}

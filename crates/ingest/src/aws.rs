//! The AWS side of ingestion: the SQS dead-letter queue and the token hashes in an SSM parameter.
//!
//! Clients come from the process's one SDK configuration ([`eventlake_store::sdk_config`], the
//! standard chain: environment, profile, Lambda role; `AWS_ENDPOINT_URL` for a stand-in), which
//! also signs the lake's S3 requests.

use async_trait::async_trait;
use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_ssm::Client as SsmClient;

use crate::auth::{TokenError, TokenStore};
use crate::sink::{DeadLetter, Dlq, DlqError};

/// SQS takes messages of at most 256 KiB; a larger batch cannot be dead-lettered (the client gets
/// a 503 and retries).
pub const SQS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

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

/// The SDK's Display is terse; the source chain says what went wrong. Credentials never appear
/// in either.
fn sdk_message<E: std::error::Error>(e: E) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

fn sqs_error<E: std::error::Error>(operation: &'static str, e: E) -> DlqError {
    DlqError::Sqs {
        operation,
        message: sdk_message(e),
    }
}

/// Why the token hashes could not be loaded from SSM.
#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("ssm GetParameter {name}: {message}")]
    Get { name: String, message: String },
    #[error("ssm parameter {name} has no value")]
    Empty { name: String },
    #[error("ssm parameter {name}: {source}")]
    Tokens {
        name: String,
        #[source]
        source: TokenError,
    },
}

#[async_trait]
impl Dlq for SqsDlq {
    async fn send(&self, letter: &DeadLetter) -> Result<(), DlqError> {
        let body = serde_json::to_string(letter).expect("letter serialises");
        if body.len() > SQS_MAX_MESSAGE_BYTES {
            return Err(DlqError::TooLarge {
                bytes: body.len(),
                limit: SQS_MAX_MESSAGE_BYTES,
            });
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sqs_error("SendMessage", e))
    }

    async fn receive(&self, max: usize) -> Result<Vec<(String, DeadLetter)>, DlqError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        out.messages()
            .iter()
            .map(|m| {
                let receipt = m.receipt_handle().unwrap_or_default().to_owned();
                let letter: DeadLetter = serde_json::from_str(m.body().unwrap_or_default())
                    .map_err(|source| DlqError::Unreadable {
                        id: m.message_id().unwrap_or("?").to_owned(),
                        source,
                    })?;
                Ok((receipt, letter))
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<(), DlqError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sqs_error("DeleteMessage", e))
    }
}

/// Loads the token hashes from an SSM parameter (a SecureString holding `{"tokens": [...]}`).
pub async fn tokens_from_parameter(
    config: &aws_config::SdkConfig,
    name: &str,
) -> Result<TokenStore, ParameterError> {
    let out = SsmClient::new(config)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| ParameterError::Get {
            name: name.to_owned(),
            message: sdk_message(e),
        })?;
    let value = out
        .parameter()
        .and_then(|p| p.value())
        .ok_or_else(|| ParameterError::Empty {
            name: name.to_owned(),
        })?;
    TokenStore::from_json(value).map_err(|source| ParameterError::Tokens {
        name: name.to_owned(),
        source,
    })
}

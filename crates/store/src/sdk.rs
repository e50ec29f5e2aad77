//! S3 credentials and region from an AWS SDK configuration.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

use crate::{Location, OpenError, open_inner};

/// Refresh credentials this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Signs object storage requests with the SDK's credentials, cached until shortly before they
/// expire.
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
    key_id: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkCredentials")
    }
}

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|e| {
                e.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > REFRESH_MARGIN)
            });
            if fresh {
                return Ok(Arc::clone(c));
            }
        }
        let c = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Unauthenticated {
                path: String::new(),
                source: format!("no AWS credentials: {e}").into(),
            }
        })?;
        if let Ok(mut k) = self.key_id.lock() {
            *k = Some(c.access_key_id().to_owned());
        }
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_owned(),
            secret_key: c.secret_access_key().to_owned(),
            token: c.session_token().map(str::to_owned),
        });
        *cached = Some((Arc::clone(&credential), c.expiry()));
        Ok(credential)
    }
}

/// Like [`crate::open`], with S3 credentials and region taken from `sdk` (when it has them), so
/// that object storage and the SDK clients built from the same configuration act as one identity.
pub fn open_with_sdk(location: &str, create: bool, sdk: &SdkConfig) -> Result<Location, OpenError> {
    let key_id: Arc<Mutex<Option<String>>> = Arc::default();
    let shared = Arc::clone(&key_id);
    let mut loc = open_inner(location, create, |mut b| {
        if let Some(region) = sdk.region() {
            b = b.with_region(region.as_ref());
        }
        if let Some(provider) = sdk.credentials_provider() {
            b = b.with_credentials(Arc::new(SdkCredentials {
                provider,
                cached: tokio::sync::Mutex::new(None),
                key_id: shared,
            }));
        }
        b
    })?;
    if loc.bucket.is_some() && sdk.credentials_provider().is_some() {
        loc.access_key_id = key_id;
    }
    Ok(loc)
}

/// One AWS SDK configuration per process, shared by S3 (object storage, through
/// [`open_with_sdk`]) and every SDK client (Glue, Athena, SQS, SSM, DynamoDB), so all act as the
/// same identity: credentials and region from the standard chain (environment, profiles and SSO,
/// web identity, container and instance roles), endpoints for stand-ins from `AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_<SERVICE>` only.
///
/// SDK calls retry throttling and 5xx answers with exponential backoff and jitter, up to
/// `EVENTLAKE_AWS_MAX_ATTEMPTS` attempts (default 8).
pub async fn sdk_config() -> aws_config::SdkConfig {
    let attempts = std::env::var("EVENTLAKE_AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(attempts))
        .load()
        .await
}

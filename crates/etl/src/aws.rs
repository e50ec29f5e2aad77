//! One AWS SDK configuration per run, shared by S3 (object storage), Glue and Athena, so all
//! three act as the same identity: credentials and region from the standard chain (environment,
//! profiles and SSO, web identity, container and instance roles), endpoints for stand-ins from
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` only.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// Loads the shared configuration. SDK calls retry throttling and 5xx answers with exponential
/// backoff and jitter, up to `EVENTLAKE_AWS_MAX_ATTEMPTS` attempts (default 8).
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

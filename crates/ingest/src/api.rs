//! The API's answers: what a `202` holds, and every way a request is refused as a whole.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One rejected event: its 0-based index in the request and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
    pub detail: String,
}

/// The `202` answer. A retried request with the same `Idempotency-Key` gets the same answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Accepted {
    pub batch_id: String,
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
    /// `raw` (in the raw zone) or `dead_letter_queue` (storage was down; redriven later).
    pub durable_in: String,
}

/// A request refused as a whole. `code` is the stable, documented error name.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub rejected: Vec<Rejected>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            rejected: Vec::new(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// The body did not arrive within the body timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message)
    }
    /// Not durable: the client retries with the same `Idempotency-Key`.
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(retry_after.max(1));
        e
    }
    /// The key was used before with another body: retrying cannot help, a new key can.
    pub fn key_reused(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            message,
        )
    }
    /// The first request with this key is still being processed: retry after a moment.
    pub fn in_progress(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::CONFLICT, "request_in_progress", message);
        e.retry_after = Some(retry_after.max(1));
        e
    }
    pub fn throttled(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message);
        e.retry_after = Some(retry_after.max(1));
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if !self.rejected.is_empty() {
            body["rejected"] = serde_json::to_value(&self.rejected).expect("serialises");
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

//! Errors that cross the wire: [`ApiError`] knows its HTTP status and JSON body, so every
//! adapter renders it the same way; [`StoreError`] is what a shared-state backend can fail with.

use http::StatusCode;
use serde_json::{Value, json};

/// An error answer of the HTTP API: a status and the JSON body docs/protocol.md#overview prescribes.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status (always 4xx or 503 for client-caused errors).
    pub status: StatusCode,
    /// JSON body, usually `{"detail": "..."}`.
    pub body: Value,
    /// Seconds after which a retry may succeed (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// `status` with this JSON body.
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after: None,
        }
    }

    /// `{"detail": message}` with the given status.
    pub fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, json!({ "detail": message.into() }))
    }

    /// The same answer, telling the client to retry after `seconds` (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// 400 with a detail message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::BAD_REQUEST, message)
    }

    /// 401 with a detail message.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::UNAUTHORIZED, message)
    }

    /// 403 with a detail message.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::FORBIDDEN, message)
    }

    /// 404 with a detail message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::NOT_FOUND, message)
    }

    /// 409 with a detail message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::CONFLICT, message)
    }

    /// 422 with a detail message (docs/protocol.md#admin-api's parameter validation).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 429 with a detail message.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// 503 with a detail message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::detail(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 413: the request body is larger than the endpoint accepts.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::detail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body too large (limit {limit} bytes)"),
        )
    }

    /// The UA filter's refusal (docs/protocol.md#user-agent-filter): 404 `{"error": "Not found"}`.
    pub fn ua_refused() -> Self {
        Self::new(StatusCode::NOT_FOUND, json!({ "error": "Not found" }))
    }

    /// The detail text, when the body has one as a string.
    pub fn message(&self) -> Option<&str> {
        self.body.get("detail").and_then(Value::as_str)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body)
    }
}

impl std::error::Error for ApiError {}

/// A shared-state backend failed (e.g. Redis unreachable). Maps to 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or answered with an error.
    #[error("state store unavailable: {0}")]
    Unavailable(String),
    /// The backend holds data this version cannot read.
    #[error("state store holds unreadable data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A file-backed store's I/O on `path` failed.
    pub fn io(path: &std::path::Path, error: &std::io::Error) -> Self {
        Self::Unavailable(format!("{}: {error}", path.display()))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "state store error");
        ApiError::unavailable("Service temporarily unavailable, retry")
    }
}

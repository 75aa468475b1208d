//! The error answered to callers: `application/problem+json` with a stable `code`.

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// Zoom's own error, kept and passed on (`{ status, code, message }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoomErrorInfo {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

/// An error answer. Build with the constructors; `code` is the stable snake_case contract.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Boxed, like `extra`: rare, and it keeps `Result<_, ApiError>` small.
    pub zoom: Option<Box<ZoomErrorInfo>>,
    pub retry_after_secs: Option<u64>,
    /// Extra members of the problem document (e.g. `errors` for validation).
    pub extra: Option<Box<serde_json::Value>>,
}

/// `application/problem+json` members of an [`ApiError`].
#[derive(Serialize)]
pub struct Problem<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    zoom: Option<&'a ZoomErrorInfo>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            zoom: None,
            retry_after_secs: None,
            extra: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid API key is required: send `Authorization: Bearer <api key>`.",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail)
    }

    /// Names the id only when it is one (an ill-formed id is not echoed back).
    pub fn connection_not_found(id: &str) -> Self {
        let detail = if crate::domain::is_connection_id(id) {
            format!("No connection with id {id}.")
        } else {
            "No connection with that id (connection ids are `conn_` followed by letters and digits).".to_owned()
        };
        Self::new(StatusCode::NOT_FOUND, "connection_not_found", detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    pub fn with_zoom(mut self, zoom: ZoomErrorInfo) -> Self {
        self.zoom = Some(Box::new(zoom));
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The problem document as JSON (also used for event details and logs).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.problem()).unwrap_or_default()
    }

    /// The problem+json document (RFC 9457) of this error.
    pub fn problem(&self) -> Problem<'_> {
        Problem {
            r#type: format!("https://zoom-connector.dev/problems/{}", self.code),
            title: self.title(),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            zoom: self.zoom.as_deref(),
            extra: self.extra.as_deref(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.detail
        )
    }
}

impl std::error::Error for ApiError {}

/// Failure of a store or bus adapter (AWS or local).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled or temporarily unavailable: worth retrying.
    #[error("store temporarily unavailable: {0}")]
    Transient(String),
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Transient(_) => {
                tracing::warn!(error = %err, "store unavailable");
                ApiError::unavailable(
                    "store_unavailable",
                    "Storage is temporarily unavailable; retry shortly.",
                )
                .with_retry_after(2)
            }
            StoreError::Other(_) => {
                tracing::error!(error = %err, "store error");
                ApiError::internal("An internal storage error occurred.")
            }
        }
    }
}

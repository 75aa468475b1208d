//! The error answered to callers: `application/problem+json` with a stable `code`.

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// Every `code` the connector answers with (the stable contract of API.md "Errors" and
/// docs/api.md "Error codes"; a test keeps the three in step).
macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    Unauthorized => "unauthorized",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    UnsupportedMediaType => "unsupported_media_type",
    ValidationFailed => "validation_failed",
    PayloadTooLarge => "payload_too_large",
    UriTooLong => "uri_too_long",
    HeadersTooLarge => "headers_too_large",
    ConnectionNotFound => "connection_not_found",
    ConnectionNeedsReauth => "connection_needs_reauth",
    ConnectionRevoked => "connection_revoked",
    SessionNotFound => "session_not_found",
    RequestInProgress => "request_in_progress",
    IdempotencyKeyReused => "idempotency_key_reused",
    ReconnectUserMismatch => "reconnect_user_mismatch",
    ZoomNotFound => "zoom_not_found",
    ZoomScopeMissing => "zoom_scope_missing",
    ZoomRateLimited => "zoom_rate_limited",
    ZoomError => "zoom_error",
    ZoomUnauthorized => "zoom_unauthorized",
    ZoomUnavailable => "zoom_unavailable",
    InvalidSignature => "invalid_signature",
    NotConfigured => "not_configured",
    PlatformAppNotConfigured => "platform_app_not_configured",
    StoreUnavailable => "store_unavailable",
    StoreConflict => "store_conflict",
    RefreshInProgress => "refresh_in_progress",
    RefreshDeferred => "refresh_deferred",
    WebhookPublishFailed => "webhook_publish_failed",
    CursorExpired => "cursor_expired",
    InternalError => "internal_error",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

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
    pub code: ErrorCode,
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
    code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    zoom: Option<&'a ZoomErrorInfo>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extra: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
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
            ErrorCode::Unauthorized,
            "A valid API key is required: send `Authorization: Bearer <api key>`.",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, detail)
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed, detail)
    }

    /// Names the id only when it is one (an ill-formed id is not echoed back).
    pub fn connection_not_found(id: &str) -> Self {
        let detail = if crate::domain::is_connection_id(id) {
            format!("No connection with id {id}.")
        } else {
            "No connection with that id (connection ids are `conn_` followed by letters and digits).".to_owned()
        };
        Self::new(StatusCode::NOT_FOUND, ErrorCode::ConnectionNotFound, detail)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            detail,
        )
    }

    pub fn unavailable(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// The same error under another code (e.g. a `validation_failed` that is more precisely
    /// `cursor_expired`).
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
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
                    ErrorCode::StoreUnavailable,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md's "Error codes" table is the reader's list: every code the connector emits
    /// is in it, and it names no code the connector cannot emit.
    #[test]
    fn every_error_code_is_documented_and_every_documented_code_exists() {
        let doc = include_str!("../../../docs/api.md");
        let table = doc
            .split("### Error codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/api.md has an \"Error codes\" table");
        let documented: std::collections::BTreeSet<&str> = table
            .lines()
            .filter(|l| l.starts_with('|'))
            .filter_map(|l| l.split('|').nth(2))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2))
            .collect();
        let emitted: std::collections::BTreeSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let undocumented: Vec<_> = emitted.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&emitted).collect();
        assert!(
            undocumented.is_empty(),
            "codes missing from docs/api.md: {undocumented:?}"
        );
        assert!(
            unknown.is_empty(),
            "docs/api.md names codes nobody emits: {unknown:?}"
        );
    }
}

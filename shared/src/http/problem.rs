//! The `application/problem+json` answer of an [`ApiError`], and the framework's own
//! rejections turned into the same shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::limits::BODY_LIMIT;
use crate::domain::error::{ApiError, ErrorCode};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED && self.code == ErrorCode::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(code = self.code.as_str(), status = self.status.as_u16(), detail = %self.detail, "request failed");
        }
        response
    }
}

pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("No such route.")
}

/// axum answers some errors itself in plain text (405, 413, ...): give them our shape.
pub(super) async fn problem_for_framework_errors(response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem || response.status().is_success() || response.status().is_redirection() {
        return response;
    }
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    match response.status() {
        // The extractors' own rejections (a query string or path that does not parse).
        StatusCode::BAD_REQUEST if plain_text => {
            let text = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            ApiError::validation(format!("The request could not be read: {text}")).into_response()
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(BODY_LIMIT).into_response(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "This route does not take that method.",
        )
        .into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Send `Content-Type: application/json`.",
        )
        .into_response(),
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ZoomErrorInfo;
    use http_body_util_free::body_json;

    mod http_body_util_free {
        pub async fn body_json(resp: axum::response::Response) -> serde_json::Value {
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        }
    }

    #[tokio::test]
    async fn problem_json_shape() {
        let err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ZoomRateLimited,
            "slow down",
        )
        .with_retry_after(7)
        .with_zoom(ZoomErrorInfo {
            status: 429,
            code: Some(429),
            message: "limit".into(),
        });
        let resp = err.into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        assert_eq!(resp.headers()["retry-after"], "7");
        let body = body_json(resp).await;
        assert_eq!(body["code"], "zoom_rate_limited");
        assert_eq!(body["status"], 429);
        assert_eq!(body["title"], "Too Many Requests");
        assert_eq!(body["zoom"]["code"], 429);
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .ends_with("zoom_rate_limited")
        );
    }

    #[tokio::test]
    async fn unauthorized_has_www_authenticate() {
        let resp = ApiError::unauthorized().into_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    }
}

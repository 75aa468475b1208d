//! Request limits every router applies before any handler (or the API-key lookup) runs.

//! What every router shares: API-key authentication, request limits, request logging, the
//! JSON body extractor and cookies.

use crate::domain::error::{ApiError, ErrorCode};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Request bodies above this are refused with 413 `payload_too_large`.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Header fields (names and values) above this in total are refused with 431
/// `headers_too_large`. On AWS, API Gateway refuses request heads above 10,240 bytes before
/// they get here; locally hyper alone would accept about 400 KB.
pub const HEADERS_LIMIT: usize = 32 * 1024;

/// Request targets (path and query) longer than this are refused with 414 `uri_too_long`.
pub const URI_LIMIT: usize = 16 * 1024;

/// Refuses oversized request heads before any handler (or the API-key lookup) runs.
pub(super) async fn limit_request_head(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > URI_LIMIT {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("The request path and query are longer than {URI_LIMIT} bytes."),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > HEADERS_LIMIT {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!("The request headers are larger than {HEADERS_LIMIT} bytes in total."),
        )
        .into_response();
    }
    next.run(request).await
}

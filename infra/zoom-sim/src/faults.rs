//! Turning an injected transport fault into what the client sees.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::types::{Fault, FaultTarget};
use crate::util::{json_response, oauth_error, zoom_error, zoom_time};

/// How long a `Hang` fault keeps the request open: longer than any sane client timeout.
const HANG: Duration = Duration::from_secs(3600);

/// Marks a response whose body fails at once, so the recorder passes it through untouched and
/// hyper drops the connection without writing an answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionReset;

/// Waits out the configured latency of a surface, if any.
pub(crate) async fn apply_latency(delay: Option<Duration>) {
    if let Some(delay) = delay.filter(|d| !d.is_zero()) {
        tokio::time::sleep(delay).await;
    }
}

/// The answer to a transport fault (status, hang, reset, rate limit).
pub(crate) async fn respond(fault: &Fault, method: &Method) -> Response {
    match fault {
        Fault::Status { target, status, .. } => status_answer(*target, *status),
        Fault::Hang { .. } => {
            tokio::time::sleep(HANG).await;
            zoom_error(StatusCode::GATEWAY_TIMEOUT, 504, "Gateway timeout.")
        }
        Fault::ResetConnection { .. } => reset_answer(),
        Fault::RateLimit { daily, .. } => rate_limit_answer(*daily, method),
        // Not transport faults; callers never pass them here.
        Fault::RotateThenFail { .. } | Fault::ScopeMissing { .. } => {
            status_answer(FaultTarget::Api, 500)
        }
    }
}

fn status_answer(target: FaultTarget, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    match target {
        FaultTarget::Api => match status {
            StatusCode::UNAUTHORIZED => zoom_error(status, 124, "Invalid access token."),
            _ => zoom_error(status, i64::from(status.as_u16()), reason),
        },
        FaultTarget::Token | FaultTarget::Revoke => {
            let error = match status.as_u16() {
                401 => "invalid_client",
                400..=499 => "invalid_request",
                _ => "server_error",
            };
            oauth_error(status, error, reason)
        }
    }
}

/// A response whose body errors before its first byte: hyper then closes the connection
/// without sending the head, and the client sees a connection error.
pub(crate) fn reset_answer() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "zoom-sim: simulated connection reset",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.extensions_mut().insert(ConnectionReset);
    response
}

/// Zoom's 429: category by method, `QPS` with `Retry-After` seconds or `Daily-limit` with the
/// next UTC midnight as an absolute date-time.
pub(crate) fn rate_limit_answer(daily: bool, method: &Method) -> Response {
    let category = if method == Method::GET {
        "Light"
    } else {
        "Medium"
    };
    let (kind, limit, retry_after, message) = if daily {
        let tomorrow = OffsetDateTime::now_utc()
            .date()
            .next_day()
            .unwrap_or(OffsetDateTime::now_utc().date())
            .midnight()
            .assume_utc();
        (
            "Daily-limit",
            "100",
            zoom_time(tomorrow),
            "You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request.",
        )
    } else {
        (
            "QPS",
            "30",
            "1".to_owned(),
            "You have reached the maximum per-second rate limit for this API. Try again later.",
        )
    };
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        serde_json::json!({ "code": 429, "message": message }),
    );
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-category", HeaderValue::from_static(category));
    headers.insert("x-ratelimit-type", HeaderValue::from_static(kind));
    headers.insert("x-ratelimit-limit", HeaderValue::from_static(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    if let Ok(value) = HeaderValue::from_str(&retry_after) {
        headers.insert("retry-after", value);
    }
    response
}

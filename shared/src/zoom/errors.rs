//! Zoom's errors read the way callers need them: its `{code, message}` kept, its 429
//! `Retry-After` in every form Zoom sends, and its status mapped to our codes.

use http::StatusCode;
use serde::Deserialize;
use time::OffsetDateTime;

use super::exchange::{ZoomResponse, ZoomTransportError};
use super::profile;
use crate::domain::error::{ApiError, ErrorCode, ZoomErrorInfo};

#[derive(Deserialize)]
struct ZoomErrorBody {
    code: Option<i64>,
    message: Option<String>,
    /// `[{field, message}]` on Zoom's validation errors.
    errors: Option<serde_json::Value>,
}

/// Seconds from Zoom's `Retry-After`: seconds, or an absolute date-time for daily limits
/// (RFC 3339, an HTTP date, or Zoom's `yyyy-MM-ddTHH:mm:ss` read as UTC).
pub fn retry_after_secs(value: Option<&str>, now: OffsetDateTime) -> Option<u64> {
    use time::format_description::well_known::{Rfc2822, Rfc3339};
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let http_date = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let plain = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Rfc2822))
        .or_else(|_| time::PrimitiveDateTime::parse(value, http_date).map(|t| t.assume_utc()))
        .or_else(|_| time::PrimitiveDateTime::parse(value, plain).map(|t| t.assume_utc()))
        .ok()?;
    Some((at - now).whole_seconds().max(0) as u64)
}

/// Seconds until the next midnight UTC, when Zoom's daily limits reset (at least 1).
fn secs_to_next_utc_midnight(now: OffsetDateTime) -> u64 {
    let now = now.to_offset(time::UtcOffset::UTC);
    let midnight = now
        .date()
        .next_day()
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now + time::Duration::days(1));
    (midnight - now).whole_seconds().max(1) as u64
}

/// How long a caller should wait after Zoom's 429: its `Retry-After`, else (the daily meeting
/// limit may come without one) the next midnight UTC for daily limits, else one second.
pub fn rate_limit_retry_after(response: &ZoomResponse, now: OffsetDateTime) -> u64 {
    retry_after_secs(response.header("retry-after"), now).unwrap_or_else(|| {
        let daily = response
            .header(profile::RATE_LIMIT_TYPE_HEADER)
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(profile::DAILY_LIMIT));
        if daily {
            secs_to_next_utc_midnight(now)
        } else {
            1
        }
    })
}

/// Maps a Zoom error answer to ours, keeping Zoom's `{status, code, message}` (and its
/// field `errors`, when it names any).
pub fn map_zoom_error(response: &ZoomResponse, now: OffsetDateTime) -> ApiError {
    let parsed: Option<ZoomErrorBody> = serde_json::from_slice(&response.body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let field_errors = parsed
        .as_ref()
        .and_then(|b| b.errors.clone())
        .filter(|e| e.as_array().is_some_and(|a| !a.is_empty()));
    let message = parsed.and_then(|b| b.message).unwrap_or_else(|| {
        String::from_utf8_lossy(&response.body)
            .chars()
            .take(300)
            .collect()
    });
    let zoom = ZoomErrorInfo {
        status: response.status,
        code,
        message: message.clone(),
    };
    let error = match (response.status, code) {
        (429, _) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ZoomRateLimited,
            format!("Zoom's rate limit was reached: {message}"),
        )
        .with_retry_after(rate_limit_retry_after(response, now)),
        (_, Some(profile::SCOPE_MISSING_CODE)) => ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ZoomScopeMissing,
            format!(
                "The connection lacks a Zoom scope this call needs ({message}); add the scope to the Zoom app and reconnect."
            ),
        ),
        (404, _) => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ZoomNotFound,
            format!("Zoom: {message}"),
        ),
        (401, _) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::ZoomUnauthorized,
            format!("Zoom refused the token after a refresh: {message}"),
        ),
        (s, _) if s >= 500 => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::ZoomUnavailable,
            format!("Zoom answered {s}: {message}"),
        )
        .with_retry_after(5),
        (s, _) => ApiError::new(
            StatusCode::from_u16(s)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::BAD_GATEWAY),
            ErrorCode::ZoomError,
            format!("Zoom: {message}"),
        ),
    };
    let error = error.with_zoom(zoom);
    match field_errors {
        Some(errors) => error.with_extra(serde_json::json!({ "errors": errors })),
        None => error,
    }
}

/// Zoom answered something that is not the JSON its description promises.
pub fn unreadable_answer() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::ZoomError,
        "Zoom's answer could not be read.",
    )
}

pub fn transport_error(e: &ZoomTransportError) -> ApiError {
    match e {
        ZoomTransportError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::ZoomUnavailable,
            "Zoom did not answer in time; retry shortly.",
        )
        .with_retry_after(5),
        ZoomTransportError::Connect(_) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::ZoomUnavailable,
            "Zoom could not be reached; retry shortly.",
        )
        .with_retry_after(5),
    }
}

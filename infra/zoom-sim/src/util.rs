//! Small helpers: randomness, time formatting, JSON answers, HTML escaping.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::Rng;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// An opaque URL-safe secret (codes, tokens): 32 random bytes, 43 characters.
pub(crate) fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An 11-digit meeting id like Zoom's.
pub fn random_meeting_id() -> i64 {
    rand::rng().random_range(80_000_000_000_i64..=99_999_999_999_i64)
}

/// A 24-character base64 UUID like Zoom's (`"aDYlohsHRtCd4ii1uC2+hA=="`), never one that needs
/// double encoding (those are only produced on request, see `ZoomSim::set_next_meeting_uuid`).
pub fn random_meeting_uuid() -> String {
    loop {
        let bytes: [u8; 16] = rand::rng().random();
        let uuid = STANDARD.encode(bytes);
        if !needs_double_encoding(&uuid) {
            return uuid;
        }
    }
}

pub(crate) fn random_file_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Short alphanumeric string (meeting passwords and the like).
pub(crate) fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Zoom's rule: UUIDs starting with `/` or containing `//` must be URL-encoded twice.
pub fn needs_double_encoding(uuid: &str) -> bool {
    uuid.starts_with('/') || uuid.contains("//")
}

/// RFC 3339 with fractional seconds (for observation output).
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Zoom's date-time form: UTC, whole seconds, `Z` (`2026-03-01T10:00:00Z`).
pub(crate) fn zoom_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

pub(crate) fn zoom_date(date: time::Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// A JSON answer with Zoom's content type.
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

/// Zoom REST error: `{"code": <int>, "message": "..."}`.
pub(crate) fn zoom_error(status: StatusCode, code: i64, message: &str) -> Response {
    json_response(
        status,
        serde_json::json!({ "code": code, "message": message }),
    )
}

/// Zoom OAuth error: `{"reason": "...", "error": "..."}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, reason: &str) -> Response {
    json_response(
        status,
        serde_json::json!({ "reason": reason, "error": error }),
    )
}

pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-decode once (no `+` handling: this is for path segments).
pub(crate) fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_have_zoom_shapes() {
        let uuid = random_meeting_uuid();
        assert_eq!(uuid.len(), 24);
        assert!(!needs_double_encoding(&uuid));
        let id = random_meeting_id();
        assert_eq!(id.to_string().len(), 11);
        assert!(random_secret().len() >= 40);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%252Fab").as_deref(), Some("%2Fab"));
        assert_eq!(percent_decode("%2Fab%3D").as_deref(), Some("/ab="));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}

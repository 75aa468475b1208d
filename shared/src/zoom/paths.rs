//! Paths toward Zoom: meeting ids and UUIDs (double-encoded where Zoom decodes once before
//! routing), proxy paths that must stay below the API base, and Zoom's API hosts.

use super::profile;
use super::schema::field_error;
use crate::domain::error::ApiError;

/// Path segment for a meeting id or UUID. UUIDs that start with `/` or contain `//` must be
/// encoded twice (Zoom decodes once before routing). Zoom's UUIDs are base64 and never hold a
/// `%`, so an id that still does after our router decoded it was already encoded by the
/// caller (as Zoom's docs tell people to): it is decoded first, never encoded a third time.
pub fn meeting_path_segment(id: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::validation("Invalid meeting id: a numeric id or a meeting UUID.").with_extra(
            serde_json::json!({ "errors": [field_error("meetingId", "a numeric id or a meeting UUID")] }),
        )
    };
    let mut id = id.to_owned();
    for _ in 0..2 {
        if !id.contains('%') {
            break;
        }
        id = percent_decode(&id).ok_or_else(invalid)?;
    }
    // Dot segments are in no id (UUIDs are base64), and toward Zoom they would reach another
    // endpoint: URLs resolve `/meetings/..` to `/`, and Zoom decodes `%2F` once before
    // routing, so `../users/me` must not pass either.
    if id.is_empty()
        || id.split('/').any(|s| s == "." || s == "..")
        || id.len() > 200
        || id.contains('%')
        || id.chars().any(char::is_control)
    {
        return Err(invalid());
    }
    let once = urlencoding_component(&id);
    if profile::uuid_needs_double_encoding(&id) {
        Ok(urlencoding_component(&once))
    } else {
        Ok(once)
    }
}

fn urlencoding_component(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        // form encoding writes spaces as '+'; paths need %20.
        .replace('+', "%20")
}

/// Checks a proxy path (below the API base) and returns it percent-encoded as received.
/// Refuses anything that could climb out of the base: `.`/`..` segments (also encoded),
/// backslashes, control characters, empty paths.
pub fn checked_proxy_path(raw: &str) -> Result<String, ApiError> {
    let refuse = || {
        ApiError::validation(
            "The proxy path must stay below Zoom's API base (no `..`, `.`, `\\` or empty path).",
        )
    };
    let trimmed = raw.trim_start_matches('/');
    if trimmed.is_empty() || raw.len() > 2048 {
        return Err(refuse());
    }
    for segment in trimmed.split('/') {
        let decoded = percent_decode(segment).ok_or_else(refuse)?;
        let twice = percent_decode(&decoded).unwrap_or_else(|| decoded.clone());
        for d in [&decoded, &twice] {
            if d == "."
                || d == ".."
                || d.contains('\\')
                || d.chars().any(char::is_control)
                || d.split('/').any(|p| p == "..")
            {
                return Err(refuse());
            }
        }
    }
    Ok(format!("/{trimmed}"))
}

pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `api.zoom.us` or a regional `api-<region>.zoom.us`.
pub fn is_zoom_api_host(host: &str) -> bool {
    host == profile::API_HOST
        || host
            .strip_prefix(profile::REGIONAL_API_HOST_PREFIX)
            .and_then(|rest| rest.strip_suffix(profile::REGIONAL_API_HOST_SUFFIX))
            .is_some_and(|region| {
                !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase())
            })
}

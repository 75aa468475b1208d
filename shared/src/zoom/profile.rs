//! Zoom's quirks, as data, in one place: what its REST API, its OAuth server and its webhooks
//! do that a reader of their docs would not guess (ZOOM.md has the sources). The rest of
//! `zoom/` and `app/` read these; a quirk that changes is changed here. Pure: no ports, no I/O.

use serde_json::Value;

// ---- REST API ----

/// Zoom's error `code` for "the token lacks a scope this call needs" (with any status).
pub const SCOPE_MISSING_CODE: i64 = 4711;

/// A 429 names its limit here; `daily-limit` ones (e.g. meetings created per user per day)
/// reset at midnight UTC and may come without a `Retry-After`.
pub const RATE_LIMIT_TYPE_HEADER: &str = "x-ratelimit-type";
pub const DAILY_LIMIT: &str = "daily-limit";

/// `GET /users/{id}/recordings` silently cuts a `from`–`to` range longer than a month; 28
/// days is within a month in any month.
pub const RECORDINGS_WINDOW_DAYS: i64 = 28;

/// Meeting passcodes: at most this many characters, of ASCII letters, digits and
/// [`PASSCODE_SYMBOLS`] (Zoom's schema says only "string").
pub const PASSCODE_MAX_CHARS: usize = 10;
pub const PASSCODE_SYMBOLS: &[char] = &['@', '-', '_', '*'];

/// Zoom decodes a path once before routing, so a meeting UUID that starts with `/` or
/// contains `//` must be percent-encoded twice; other UUIDs once.
pub fn uuid_needs_double_encoding(uuid: &str) -> bool {
    uuid.starts_with('/') || uuid.contains("//")
}

/// The REST API's hosts: `api.zoom.us`, or a regional `api-<region>.zoom.us` that the token
/// answer's `api_url` names for accounts in another data region.
pub const API_HOST: &str = "api.zoom.us";
pub const REGIONAL_API_HOST_PREFIX: &str = "api-";
pub const REGIONAL_API_HOST_SUFFIX: &str = ".zoom.us";

// ---- OAuth ----

/// Token-endpoint errors that mean the connection's grant is gone for good (reconnect):
/// `invalid_grant` always (refresh token used, expired or revoked); `invalid_client` only for
/// a bring-your-own app (its secret was rotated or the app deleted). For the platform app,
/// `invalid_client` is the operator's configuration, not the connection's fault.
pub fn grant_is_dead(oauth_error: &str, byo_app: bool) -> bool {
    oauth_error == "invalid_grant" || (oauth_error == "invalid_client" && byo_app)
}

// ---- Webhooks ----

/// `x-zm-request-timestamp`: unix seconds (milliseconds accepted too) of the signature.
pub const TIMESTAMP_HEADER: &str = "x-zm-request-timestamp";

/// `x-zm-signature`: `v0=` + hex HMAC-SHA256(secret token, `v0:{timestamp}:{raw body}`).
pub const SIGNATURE_HEADER: &str = "x-zm-signature";

/// `x-zm-trackingid`: Zoom's id of one delivery (kept on its retries). Not signed.
pub const TRACKING_HEADER: &str = "x-zm-trackingid";

/// Events the connector answers itself; every other signed event is a trigger.
pub const URL_VALIDATION: &str = "endpoint.url_validation";

pub const APP_DEAUTHORIZED: &str = "app_deauthorized";

/// Where the Zoom user an event is about sits in `payload`, by event family (the event name
/// up to its first `.`), as JSON pointers tried in order. The host for meetings, webinars and
/// recordings (participant events carry the host too, in `object.host_id`; the participant
/// is `object.participant`); the user itself for user events (`object.id`).
pub const EVENT_USER_FIELDS: &[(&str, &[&str])] = &[
    ("meeting", &["/object/host_id"]),
    ("webinar", &["/object/host_id"]),
    ("recording", &["/object/host_id"]),
    ("user", &["/object/id"]),
];

/// Families not in the table: the host, else an explicit user id.
pub const DEFAULT_USER_FIELDS: &[&str] = &["/object/host_id", "/object/user_id"];

/// The account is `payload.account_id` for every family.
pub const ACCOUNT_FIELD: &str = "/account_id";

/// Keys whose values are credentials: removed wherever they appear in a payload. A meeting's
/// `start_url` carries the host's ZAK (it starts the meeting as the host); passcodes
/// (`password`, `encrypted_password`) and join URLs stay, as API.md says.
pub const CREDENTIAL_KEYS: &[&str] = &[
    "download_token",
    "download_access_token",
    "access_token",
    "refresh_token",
    "zak",
    "start_url",
    "host_key",
    "plainToken",
    "encryptedToken",
];

/// Query parameters that carry a credential inside an otherwise harmless URL (e.g. a
/// recording file's `download_url?access_token=..`): removed from every URL string.
pub const CREDENTIAL_QUERY_PARAMS: &[&str] = &["zak", "access_token", "download_access_token"];

/// Whether the event is a trigger (published on the bus).
pub fn is_trigger(event: &str) -> bool {
    !event.is_empty() && event != URL_VALIDATION && event != APP_DEAUTHORIZED
}

/// The Zoom user an event is about, per [`EVENT_USER_FIELDS`].
pub fn event_user_id<'a>(event: &str, payload: &'a Value) -> Option<&'a str> {
    let family = event.split('.').next().unwrap_or_default();
    let fields = EVENT_USER_FIELDS
        .iter()
        .find(|(f, _)| *f == family)
        .map_or(DEFAULT_USER_FIELDS, |(_, fields)| *fields);
    fields
        .iter()
        .filter_map(|p| payload.pointer(p).and_then(Value::as_str))
        .find(|v| !v.is_empty())
}

/// The Zoom account of an event.
pub fn event_account_id(payload: &Value) -> Option<&str> {
    payload
        .pointer(ACCOUNT_FIELD)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// Zoom's `payload` without credentials (see [`CREDENTIAL_KEYS`] and
/// [`CREDENTIAL_QUERY_PARAMS`]).
pub fn sanitize_payload(payload: &Value) -> Value {
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !CREDENTIAL_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), sanitize_payload(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(sanitize_payload).collect()),
        Value::String(s) => Value::String(strip_query_params(s, CREDENTIAL_QUERY_PARAMS)),
        other => other.clone(),
    }
}

/// `s` without the query parameters `params` when it is an http(s) URL; otherwise as is.
pub fn strip_query_params(s: &str, params: &[&str]) -> String {
    if !(s.starts_with("https://") || s.starts_with("http://")) || !s.contains('?') {
        return s.to_owned();
    }
    let Ok(mut url) = url::Url::parse(s) else {
        return s.to_owned();
    };
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !pairs.iter().any(|(k, _)| params.contains(&k.as_str())) {
        return s.to_owned();
    }
    let kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !params.contains(&k.as_str()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_user_an_event_is_about() {
        let meeting = json!({ "account_id": "a", "object": { "id": "123", "host_id": "h" } });
        assert_eq!(event_user_id("meeting.started", &meeting), Some("h"));
        assert_eq!(event_user_id("recording.completed", &meeting), Some("h"));
        assert_eq!(event_user_id("webinar.created", &meeting), Some("h"));
        let participant =
            json!({ "object": { "id": "1", "host_id": "h", "participant": { "user_id": "p" } } });
        assert_eq!(
            event_user_id("meeting.participant_joined", &participant),
            Some("h")
        );
        let user = json!({ "object": { "id": "u", "first_name": "A" } });
        assert_eq!(event_user_id("user.updated", &user), Some("u"));
        assert_eq!(event_user_id("user.updated", &json!({})), None);
        assert_eq!(event_account_id(&meeting), Some("a"));
        assert!(!is_trigger("app_deauthorized"));
        assert!(!is_trigger("endpoint.url_validation"));
        assert!(is_trigger("meeting.created"));
    }

    #[test]
    fn credentials_are_removed_passcodes_and_join_urls_stay() {
        let payload = json!({
            "account_id": "a",
            "object": {
                "start_url": "https://zoom.us/s/1?zak=secret",
                "join_url": "https://zoom.us/j/1?pwd=abc",
                "password": "123456",
                "recording_files": [
                    { "download_url": "https://zoom.us/rec/download/x?access_token=tok&x=1", "play_url": "https://zoom.us/rec/play/x" }
                ],
                "nested": { "download_access_token": "t", "zak": "z" }
            }
        });
        let clean = sanitize_payload(&payload);
        let text = clean.to_string();
        for secret in ["secret", "tok", "\"t\"", "\"z\"", "start_url", "zak"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(clean["object"]["join_url"], "https://zoom.us/j/1?pwd=abc");
        assert_eq!(clean["object"]["password"], "123456");
        assert_eq!(
            clean["object"]["recording_files"][0]["download_url"],
            "https://zoom.us/rec/download/x?x=1"
        );
    }
}

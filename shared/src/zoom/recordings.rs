//! The recordings walk's pure parts: Zoom answers at most one month per call, so a range is
//! walked in windows, and where the walk stands travels in one opaque cursor.

use serde::{Deserialize, Serialize};

use crate::domain::error::ApiError;

/// Query of `GET /connections/{id}/zoom/recordings`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct RecordingsQuery {
    /// First day, `yyyy-mm-dd` (default: 30 days before `to`).
    pub from: Option<String>,
    /// Last day, `yyyy-mm-dd` (default: today, UTC).
    pub to: Option<String>,
    /// Meetings per Zoom page, 1–300 (default 30).
    pub page_size: Option<u32>,
    /// Resume where the previous answer's `next_cursor` left off.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingsPage {
    pub from: String,
    pub to: String,
    pub meetings: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

/// Where a recordings walk stands: the window start and Zoom's page token inside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordingsCursor {
    pub from: String,
    pub to: String,
    pub window: String,
    pub token: Option<String>,
    /// The page size the walk started with (Zoom's page tokens keep theirs anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

/// One call's range (see the profile).
const WINDOW_DAYS: i64 = super::profile::RECORDINGS_WINDOW_DAYS;

/// Empty windows walked in one request before answering with a cursor.
pub const MAX_WINDOWS_PER_CALL: usize = 13;

pub fn day_format() -> &'static [time::format_description::BorrowedFormatItem<'static>] {
    time::macros::format_description!("[year]-[month]-[day]")
}

pub fn parse_day(field: &str, value: &str) -> Result<time::Date, ApiError> {
    time::Date::parse(value, day_format()).map_err(|_| {
        ApiError::validation(format!("`{field}` must be a date yyyy-mm-dd.")).with_extra(
            serde_json::json!({ "errors": [{ "field": field, "message": "expected yyyy-mm-dd" }] }),
        )
    })
}

/// `from` when only `to` is given: 30 days before (saturating at the calendar's start, so an
/// extreme `to` from a caller cannot overflow).
pub fn default_recordings_from(to: time::Date) -> time::Date {
    to.checked_sub(time::Duration::days(30))
        .unwrap_or(time::Date::MIN)
}

/// The last day of the one-month window starting at `start`, within `to` (saturating at the
/// calendar's end: a caller's `from`/`to` near year 9999 must not overflow).
pub fn recordings_window_end(start: time::Date, to: time::Date) -> time::Date {
    start
        .checked_add(time::Duration::days(WINDOW_DAYS - 1))
        .unwrap_or(time::Date::MAX)
        .min(to)
}

pub fn format_day(d: time::Date) -> String {
    d.format(day_format()).unwrap_or_default()
}

pub fn encode_recordings_cursor(c: &RecordingsCursor) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

pub fn decode_recordings_cursor(value: &str) -> Result<RecordingsCursor, ApiError> {
    use base64::Engine;
    let invalid = || {
        ApiError::validation("`cursor` is not a cursor this API returned.").with_extra(
            serde_json::json!({ "errors": [{ "field": "cursor", "message": "not a cursor this API returned" }] }),
        )
    };
    let cursor: RecordingsCursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    // A cursor is caller input: its window must lie inside its range.
    let day = |v: &str| time::Date::parse(v, day_format()).ok();
    match (day(&cursor.from), day(&cursor.window), day(&cursor.to)) {
        (Some(from), Some(window), Some(to)) if from <= window && window <= to => Ok(cursor),
        _ => Err(invalid()),
    }
}

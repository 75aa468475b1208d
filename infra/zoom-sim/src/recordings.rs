//! Cloud recordings: date windows, rendering, and UUID path decoding.

use std::collections::HashSet;

use serde_json::{Value, json};
use time::{Date, Duration, Month};

use crate::types::{SimRecording, SimUser};
use crate::util::{needs_double_encoding, percent_decode, zoom_time};

pub(crate) const DEFAULT_PAGE_SIZE: usize = 30;
pub(crate) const MAX_PAGE_SIZE: usize = 300;

pub(crate) fn parse_date(raw: &str) -> Option<Date> {
    Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// The same day one month later, clamped to the month's end (Jan 31 -> Feb 28/29).
pub(crate) fn add_one_month(date: Date) -> Date {
    let (year, month) = match date.month() {
        Month::December => (date.year() + 1, Month::January),
        other => (date.year(), other.next()),
    };
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(date)
}

/// Zoom's silent cut: one call covers at most one month from `from`.
pub(crate) fn cut_to_one_month(from: Date, to: Date) -> Date {
    to.min(add_one_month(from))
}

pub(crate) fn page_size(raw: Option<&str>) -> usize {
    match raw.and_then(|r| r.trim().parse::<usize>().ok()) {
        Some(0) | None => DEFAULT_PAGE_SIZE,
        Some(n) => n.min(MAX_PAGE_SIZE),
    }
}

/// Where recording files are downloaded from: `https://zoom.us` at Zoom, the simulator's own
/// address here (from the request's `Host`), so `download_url`s work against the simulator.
pub(crate) fn web_base(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(
            || "https://zoom.us".to_owned(),
            |host| format!("http://{host}"),
        )
}

fn files_json(recording: &SimRecording, base: &str, hidden: &HashSet<String>) -> Vec<Value> {
    let start = zoom_time(recording.start_time);
    let end = zoom_time(recording.start_time + Duration::minutes(i64::from(recording.duration)));
    recording
        .recording_files
        .iter()
        .filter(|file| !hidden.contains(&file.id))
        .map(|file| {
            json!({
                "id": file.id,
                "meeting_id": recording.uuid,
                "recording_start": start,
                "recording_end": end,
                "file_type": file.file_type,
                "file_extension": file.file_extension,
                "file_size": file.file_size,
                "play_url": format!("https://zoom.us/rec/play/{}", file.id),
                "download_url": format!("{base}/rec/download/{}", file.id),
                "status": "completed",
                "recording_type": file.recording_type,
            })
        })
        .collect()
}

/// A recorded meeting as listed by `GET /users/{userId}/recordings`.
///
/// `type` is left out on purpose: Zoom's published schema declares it `type: string` with an
/// integer enum, which no value satisfies, and the simulator's answers must validate.
pub(crate) fn recording_json(
    recording: &SimRecording,
    host: &SimUser,
    base: &str,
    hidden: &HashSet<String>,
) -> Value {
    let files = files_json(recording, base, hidden);
    let total_size: u64 = recording
        .recording_files
        .iter()
        .filter(|f| !hidden.contains(&f.id))
        .map(|f| f.file_size)
        .sum();
    json!({
        "uuid": recording.uuid,
        "id": recording.meeting_id,
        "account_id": host.account_id,
        "host_id": host.id,
        "topic": recording.topic,
        "start_time": zoom_time(recording.start_time),
        "duration": recording.duration,
        "total_size": total_size,
        "recording_count": files.len(),
        "share_url": format!("https://zoom.us/rec/share/{}", recording.meeting_id),
        "recording_files": files,
    })
}

/// A recorded meeting as answered by `GET /meetings/{meetingId}/recordings`.
pub(crate) fn meeting_recording_json(
    recording: &SimRecording,
    host: &SimUser,
    base: &str,
    hidden: &HashSet<String>,
) -> Value {
    let mut value = recording_json(recording, host, base, hidden);
    if let Some(map) = value.as_object_mut() {
        map.insert("password".into(), json!("sim-pass"));
        map.insert("recording_play_passcode".into(), json!("sim-play-passcode"));
    }
    value
}

/// What `GET /meetings/{meetingId}/recordings` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecordingKey {
    MeetingId(i64),
    Uuid(String),
    /// A UUID that needed double encoding but arrived encoded once (Zoom cannot find it).
    WronglyEncoded,
}

/// Decodes the raw (still percent-encoded) path segment the way Zoom's gateway does: once by
/// the router, once more by the recordings service. A UUID that starts with `/` or contains
/// `//` only survives when the client encoded it twice.
#[cfg(test)]
pub(crate) fn recording_key(raw_segment: &str) -> Option<RecordingKey> {
    meeting_key(&percent_decode(raw_segment)?)
}

/// The same for a segment the router already decoded once (axum's `Path`).
pub(crate) fn meeting_key(once: &str) -> Option<RecordingKey> {
    let once = once.to_owned();
    if let Ok(id) = once.parse::<i64>() {
        return Some(RecordingKey::MeetingId(id));
    }
    let twice = if once.contains('%') {
        percent_decode(&once)?
    } else {
        once.clone()
    };
    if needs_double_encoding(&twice) && once.contains('/') {
        return Some(RecordingKey::WronglyEncoded);
    }
    Some(RecordingKey::Uuid(twice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn month_cut() {
        assert_eq!(
            cut_to_one_month(date!(2026 - 01 - 15), date!(2026 - 06 - 01)),
            date!(2026 - 02 - 15)
        );
        assert_eq!(
            cut_to_one_month(date!(2026 - 01 - 31), date!(2026 - 12 - 01)),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            cut_to_one_month(date!(2026 - 12 - 10), date!(2027 - 03 - 01)),
            date!(2027 - 01 - 10)
        );
        assert_eq!(
            cut_to_one_month(date!(2026 - 01 - 01), date!(2026 - 01 - 20)),
            date!(2026 - 01 - 20)
        );
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None), 30);
        assert_eq!(page_size(Some("0")), 30);
        assert_eq!(page_size(Some("x")), 30);
        assert_eq!(page_size(Some("500")), 300);
        assert_eq!(page_size(Some("5")), 5);
    }

    #[test]
    fn uuid_decoding() {
        assert_eq!(
            recording_key("85746065432"),
            Some(RecordingKey::MeetingId(85746065432))
        );
        assert_eq!(
            recording_key("%252Fab%252F%252Fcd%253D%253D"),
            Some(RecordingKey::Uuid("/ab//cd==".into()))
        );
        assert_eq!(
            recording_key("%2Fab%2F%2Fcd%3D%3D"),
            Some(RecordingKey::WronglyEncoded)
        );
        assert_eq!(
            recording_key("ab%2Bcd%3D%3D"),
            Some(RecordingKey::Uuid("ab+cd==".into()))
        );
        assert_eq!(
            recording_key("ab%2Fcd=="),
            Some(RecordingKey::Uuid("ab/cd==".into()))
        );
    }
}

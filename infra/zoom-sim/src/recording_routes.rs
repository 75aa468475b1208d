//! Cloud recordings: the user's list, one meeting's recordings (with Zoom's
//! `download_access_token`), deleting them (`action=trash|delete`) and downloading files.
//!
//! Downloads: every file's `download_url` points at the simulator (`/rec/download/{fileId}`),
//! which serves a small body to a request carrying `?access_token=` with either a live
//! `download_access_token` (from `include_fields=download_access_token`, valid `ttl` seconds,
//! default 86400, on the simulator's clock, for that meeting's files only) or a live OAuth access
//! token of the host (also accepted as `Authorization: Bearer`). Anything else answers 401 code 124.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ZoomSim;
use crate::paging;
use crate::recordings::{self, RecordingKey, meeting_key};
use crate::rest::{
    bearer, check_self, gate, invalid_field, invalid_token, query_pairs, query_value, try_answer,
};
use crate::state::{DownloadToken, Inner, PageCursor, StoredRecording};
use crate::types::SimUser;
use crate::util::{json_response, random_secret, zoom_date, zoom_error};

/// `ttl` when `include_fields=download_access_token` comes without one.
const DEFAULT_DOWNLOAD_TTL: u64 = 86_400;
/// Zoom's maximum `ttl`.
const MAX_DOWNLOAD_TTL: u64 = 604_800;

fn bad_date(field: &str) -> Response {
    invalid_field(field, "Use the yyyy-mm-dd format.")
}

pub(crate) async fn list_recordings(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/users/{userId}/recordings");
    try_answer!(check_self(&user_id, &user));
    let base = recordings::web_base(&headers);
    let pairs = query_pairs(query);
    let mut inner = sim.lock();
    let now = inner.now();
    inner.page_cursors.retain(|_, c| c.expires_at > now);

    let cursor = match query_value(&pairs, "next_page_token") {
        Some(token) => match inner.page_cursors.get(token) {
            Some(cursor) if cursor.user_id == user.id => cursor.clone(),
            _ => return paging::bad_page_token(),
        },
        None => {
            let today = now.date();
            let from = match query_value(&pairs, "from") {
                Some(raw) => match recordings::parse_date(raw) {
                    Some(date) => date,
                    None => return bad_date("from"),
                },
                None => today,
            };
            let to = match query_value(&pairs, "to") {
                Some(raw) => match recordings::parse_date(raw) {
                    Some(date) => date,
                    None => return bad_date("to"),
                },
                None => today.max(from),
            };
            if to < from {
                return bad_date("to");
            }
            PageCursor {
                user_id: user.id.clone(),
                from,
                to: recordings::cut_to_one_month(from, to),
                page_size: recordings::page_size(query_value(&pairs, "page_size")),
                offset: 0,
                expires_at: now + paging::PAGE_TOKEN_TTL,
            }
        }
    };

    // Newest first, like Zoom.
    let mut matching: Vec<&StoredRecording> = inner
        .recordings
        .iter()
        .filter(|r| r.user_id == user.id && !r.trashed)
        .filter(|r| {
            let r = &r.recording;
            let day = r.start_time.to_offset(time::UtcOffset::UTC).date();
            day >= cursor.from && day <= cursor.to
        })
        .collect();
    matching.sort_by_key(|r| std::cmp::Reverse(r.recording.start_time));
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(cursor.offset)
        .take(cursor.page_size)
        .map(|r| recordings::recording_json(&r.recording, &user, &base, &r.trashed_files))
        .collect();
    let next_offset = cursor.offset + cursor.page_size;
    let next_page_token = if next_offset < total {
        let token = random_secret();
        inner.page_cursors.insert(
            token.clone(),
            PageCursor {
                offset: next_offset,
                expires_at: now + paging::PAGE_TOKEN_TTL,
                ..cursor.clone()
            },
        );
        token
    } else {
        String::new()
    };
    drop(inner);
    json_response(
        StatusCode::OK,
        json!({
            "from": zoom_date(cursor.from),
            "to": zoom_date(cursor.to),
            "page_size": cursor.page_size,
            "page_count": total.div_ceil(cursor.page_size),
            "total_records": total,
            "next_page_token": next_page_token,
            "meetings": page,
        }),
    )
}

fn recording_not_found() -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        3301,
        "This recording does not exist.",
    )
}

/// The index in `inner.recordings` of the user's (untrashed) recording a segment names: a
/// meeting id means its latest recorded instance.
fn find_recording(inner: &Inner, user: &SimUser, segment: &str) -> Option<usize> {
    let mine = inner
        .recordings
        .iter()
        .enumerate()
        .filter(|(_, r)| r.user_id == user.id && !r.trashed);
    match meeting_key(segment)? {
        RecordingKey::MeetingId(id) => mine
            .filter(|(_, r)| r.recording.meeting_id == id)
            .max_by_key(|(_, r)| r.recording.start_time)
            .map(|(i, _)| i),
        RecordingKey::Uuid(uuid) => mine
            .into_iter()
            .find(|(_, r)| r.recording.uuid == uuid)
            .map(|(i, _)| i),
        RecordingKey::WronglyEncoded => None,
    }
}

pub(crate) async fn meeting_recordings(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/recordings");
    let pairs = query_pairs(query);
    let wants_token = query_value(&pairs, "include_fields")
        .is_some_and(|f| f.split(',').any(|f| f.trim() == "download_access_token"));
    let ttl = match query_value(&pairs, "ttl").map(str::parse::<u64>) {
        None => DEFAULT_DOWNLOAD_TTL,
        Some(Ok(ttl)) if ttl <= MAX_DOWNLOAD_TTL => ttl,
        Some(_) => return invalid_field("ttl", "Invalid field."),
    };
    let base = recordings::web_base(&headers);
    let mut inner = sim.lock();
    let Some(index) = find_recording(&inner, &user, &meeting_id) else {
        return recording_not_found();
    };
    let stored = &inner.recordings[index];
    let mut answer =
        recordings::meeting_recording_json(&stored.recording, &user, &base, &stored.trashed_files);
    if wants_token {
        let token = random_secret();
        let entry = DownloadToken {
            user_id: user.id.clone(),
            recording_uuid: stored.recording.uuid.clone(),
            expires_at: inner.now() + Duration::from_secs(ttl),
        };
        inner.download_tokens.insert(token.clone(), entry);
        answer["download_access_token"] = json!(token);
    }
    json_response(StatusCode::OK, answer)
}

fn action(pairs: &[(String, String)]) -> Result<bool, Response> {
    match query_value(pairs, "action") {
        None | Some("trash") => Ok(true),
        Some("delete") => Ok(false),
        Some(_) => Err(invalid_field("action", "Invalid field.")),
    }
}

/// `DELETE /meetings/{id}/recordings`: every file of the instance, to the trash or for good.
pub(crate) async fn delete_all(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/recordings");
    let trash = try_answer!(action(&query_pairs(query)));
    let mut inner = sim.lock();
    let Some(index) = find_recording(&inner, &user, &meeting_id) else {
        return recording_not_found();
    };
    if trash {
        inner.recordings[index].trashed = true;
    } else {
        inner.recordings.remove(index);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /meetings/{id}/recordings/{recordingId}`: one file.
pub(crate) async fn delete_one(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path((meeting_id, file_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(
        sim,
        headers,
        method,
        "/meetings/{meetingId}/recordings/{recordingId}"
    );
    let trash = try_answer!(action(&query_pairs(query)));
    let mut inner = sim.lock();
    let Some(index) = find_recording(&inner, &user, &meeting_id) else {
        return recording_not_found();
    };
    let stored = &mut inner.recordings[index];
    let exists = stored
        .recording
        .recording_files
        .iter()
        .any(|f| f.id == file_id)
        && !stored.trashed_files.contains(&file_id);
    if !exists {
        return recording_not_found();
    }
    if trash {
        stored.trashed_files.insert(file_id);
    } else {
        stored.recording.recording_files.retain(|f| f.id != file_id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /rec/download/{fileId}?access_token=..`: the file, for a download or OAuth token.
pub(crate) async fn download(
    State(sim): State<ZoomSim>,
    headers: HeaderMap,
    Path(file_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query);
    let token = query_value(&pairs, "access_token")
        .map(str::to_owned)
        .or_else(|| bearer(&headers).map(str::to_owned));
    let Some(token) = token else {
        return invalid_token();
    };
    let inner = sim.lock();
    let now = inner.now();
    let found = inner.recordings.iter().find_map(|r| {
        let file = r
            .recording
            .recording_files
            .iter()
            .find(|f| f.id == file_id)?;
        Some((r, file))
    });
    let allowed = |r: &StoredRecording| match inner.download_tokens.get(&token) {
        Some(t) => {
            t.expires_at > now && t.recording_uuid == r.recording.uuid && t.user_id == r.user_id
        }
        None => inner
            .authenticate_bearer(&token)
            .is_some_and(|(user, _)| user.id == r.user_id),
    };
    let Some((stored, file)) = found else {
        return if inner.download_tokens.contains_key(&token)
            || inner.authenticate_bearer(&token).is_some()
        {
            recording_not_found()
        } else {
            invalid_token()
        };
    };
    if !allowed(stored) {
        return invalid_token();
    }
    if stored.trashed || stored.trashed_files.contains(&file.id) {
        return recording_not_found();
    }
    let content_type = match file.file_extension.as_str() {
        "MP4" => "video/mp4",
        "M4A" => "audio/mp4",
        "VTT" => "text/vtt",
        "JSON" => "application/json",
        _ => "text/plain",
    };
    let body = format!(
        "zoom-sim recording file {} of {} ({} {})\n",
        file.id, stored.recording.uuid, file.file_type, file.recording_type
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.{}\"",
        file.id,
        file.file_extension.to_ascii_lowercase()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

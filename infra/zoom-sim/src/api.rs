//! Zoom's REST subset under `/v2`.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::ZoomSim;
use crate::faults;
use crate::meetings;
use crate::recordings::{self, RecordingKey};
use crate::state::PageCursor;
use crate::types::{Fault, FaultTarget, SimUser};
use crate::util::{
    json_response, random_meeting_id, random_meeting_uuid, random_secret, zoom_date, zoom_error,
};

/// `next_page_token`s of recording listings expire after 15 minutes, like Zoom's.
const PAGE_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

pub(crate) fn routes() -> Router<ZoomSim> {
    Router::new()
        .route("/v2/users/{user_id}", get(get_user))
        .route(
            "/v2/users/{user_id}/meetings",
            get(list_meetings).post(create_meeting),
        )
        .route(
            "/v2/meetings/{meeting_id}",
            get(get_meeting)
                .patch(update_meeting)
                .delete(delete_meeting),
        )
        .route(
            "/v2/meetings/{meeting_id}/livestream",
            get(get_livestream).patch(update_livestream),
        )
        .route("/v2/users/{user_id}/recordings", get(list_recordings))
        .route(
            "/v2/meetings/{meeting_id}/recordings",
            get(meeting_recordings),
        )
        .route("/v2", any(not_found))
        .route("/v2/", any(not_found))
        .route("/v2/{*rest}", any(not_found))
}

/// Which scopes let a route through; the first one is named in the 4711 answer.
#[derive(Clone, Copy)]
enum Need {
    UserRead,
    MeetingRead,
    MeetingWrite,
    RecordingRead,
}

impl Need {
    fn accepted(self) -> &'static [&'static str] {
        match self {
            Need::UserRead => &["user_info:read", "user:read", "user:read:admin"],
            Need::MeetingRead => &[
                "meeting:write",
                "meeting:read",
                "meeting:write:admin",
                "meeting:read:admin",
            ],
            Need::MeetingWrite => &["meeting:write", "meeting:write:admin"],
            Need::RecordingRead => &["recording:read", "recording:write", "recording:read:admin"],
        }
    }
}

fn scope_missing(scope: &str) -> Response {
    zoom_error(
        StatusCode::BAD_REQUEST,
        4711,
        &format!("Invalid access token, does not contain scopes:[{scope}]."),
    )
}

fn invalid_token() -> Response {
    zoom_error(StatusCode::UNAUTHORIZED, 124, "Invalid access token.")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Everything in front of a REST handler: latency, injected faults, the bearer token, scopes.
async fn gate(
    sim: &ZoomSim,
    headers: &HeaderMap,
    method: &Method,
    need: Need,
) -> Result<SimUser, Response> {
    let latency = sim.lock().latency.get(&FaultTarget::Api).copied();
    faults::apply_latency(latency).await;
    let fault = sim.lock().take_transport_fault(FaultTarget::Api);
    if let Some(fault) = fault {
        return Err(faults::respond(&fault, method).await);
    }
    let mut inner = sim.lock();
    let Some((user, scopes)) = bearer(headers).and_then(|t| inner.authenticate_bearer(t)) else {
        return Err(invalid_token());
    };
    if let Some(Fault::ScopeMissing { scope, .. }) =
        inner.take_fault(|f| matches!(f, Fault::ScopeMissing { .. }))
    {
        return Err(scope_missing(&scope));
    }
    let accepted = need.accepted();
    if !scopes.iter().any(|s| accepted.contains(&s.as_str())) {
        return Err(scope_missing(accepted.first().copied().unwrap_or_default()));
    }
    Ok(user)
}

macro_rules! gate {
    ($sim:expr, $headers:expr, $method:expr, $need:expr) => {
        match gate(&$sim, &$headers, &$method, $need).await {
            Ok(user) => user,
            Err(response) => return response,
        }
    };
}

/// `me`, the user's id or email address.
fn is_self(param: &str, user: &SimUser) -> bool {
    param == "me" || param == user.id || param.eq_ignore_ascii_case(&user.email)
}

fn user_not_found(param: &str) -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        1001,
        &format!("User does not exist: {param}."),
    )
}

fn meeting_not_found(param: &str) -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        3001,
        &format!("Meeting does not exist: {param}."),
    )
}

fn validation_failed(errors: Vec<meetings::FieldError>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|e| json!({ "field": e.field, "message": e.message }))
        .collect();
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "code": 300, "message": "Validation Failed.", "errors": errors }),
    )
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(zoom_error(
            StatusCode::BAD_REQUEST,
            300,
            "Request Body should be a valid JSON object.",
        )),
    }
}

fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(&query.unwrap_or_default()).unwrap_or_default()
}

fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn not_found() -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        404,
        "The requested resource does not exist.",
    )
}

// ---- users ------------------------------------------------------------------------------

fn user_json(user: &SimUser) -> Value {
    // A stable personal meeting id derived from the user id, so answers do not flicker.
    let pmi = 5_000_000_000_i64
        + user
            .id
            .bytes()
            .fold(0_i64, |acc, b| (acc * 31 + i64::from(b)) % 4_000_000_000);
    json!({
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "display_name": format!("{} {}", user.first_name, user.last_name),
        "email": user.email,
        "type": 2,
        "role_name": "Owner",
        "pmi": pmi,
        "use_pmi": false,
        "personal_meeting_url": format!("https://zoom.us/j/{pmi}"),
        "timezone": meetings::DEFAULT_TIMEZONE,
        "verified": 1,
        "dept": "",
        "created_at": "2024-01-01T00:00:00Z",
        "last_login_time": "2026-01-01T00:00:00Z",
        "last_client_version": "6.0.0.00000(mac)",
        "pic_url": "",
        "language": "en-US",
        "phone_number": "",
        "status": "active",
        "role_id": "0",
        "account_id": user.account_id,
        "account_number": 1_000_001,
        "cluster": "us05",
        "jid": format!("{}@xmpp.zoom.us", user.id),
        "group_ids": [],
        "im_group_ids": [],
        "login_types": [100],
        "user_created_at": "2024-01-01T00:00:00Z",
    })
}

async fn get_user(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, Need::UserRead);
    if !is_self(&user_id, &user) {
        return user_not_found(&user_id);
    }
    json_response(StatusCode::OK, user_json(&user))
}

// ---- meetings ---------------------------------------------------------------------------

async fn create_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingWrite);
    if !is_self(&user_id, &user) {
        return user_not_found(&user_id);
    }
    let body = match json_object(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let input = match meetings::validate(&body) {
        Ok(input) => input,
        Err(errors) => return validation_failed(errors),
    };
    let mut inner = sim.lock();
    let id = loop {
        let id = random_meeting_id();
        if !inner.meetings.contains_key(&id) {
            break id;
        }
    };
    let uuid = inner
        .next_meeting_uuids
        .pop_front()
        .unwrap_or_else(random_meeting_uuid);
    let now = inner.now();
    let meeting = meetings::create(&user, id, uuid, input, now);
    let answer = Value::Object(meeting.fields.clone());
    inner.meetings.insert(id, meeting);
    inner.counters.meetings_created += 1;
    drop(inner);
    json_response(StatusCode::CREATED, answer)
}

async fn list_meetings(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingRead);
    if !is_self(&user_id, &user) {
        return user_not_found(&user_id);
    }
    let pairs = query_pairs(query);
    let page_size = recordings::page_size(query_value(&pairs, "page_size"));
    // The token is just the offset: listing meetings is a convenience, not a contract here.
    let offset = query_value(&pairs, "next_page_token")
        .and_then(|t| t.strip_prefix("mt-"))
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let inner = sim.lock();
    let mut mine: Vec<&crate::state::Meeting> = inner
        .meetings
        .values()
        .filter(|m| m.host_id == user.id)
        .collect();
    mine.sort_by_key(|m| m.id);
    let total = mine.len();
    let page: Vec<Value> = mine
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|m| {
            let mut item = Map::new();
            for key in [
                "uuid",
                "id",
                "host_id",
                "topic",
                "type",
                "start_time",
                "duration",
                "timezone",
                "agenda",
                "created_at",
                "join_url",
            ] {
                if let Some(value) = m.fields.get(key) {
                    item.insert(key.to_owned(), value.clone());
                }
            }
            Value::Object(item)
        })
        .collect();
    let next = if offset + page_size < total {
        format!("mt-{}", offset + page_size)
    } else {
        String::new()
    };
    json_response(
        StatusCode::OK,
        json!({
            "page_size": page_size,
            "total_records": total,
            "next_page_token": next,
            "meetings": page,
        }),
    )
}

/// Finds a meeting the user hosts; other users' meetings do not exist for them (3001).
fn with_own_meeting<T>(
    sim: &ZoomSim,
    user: &SimUser,
    raw_id: &str,
    f: impl FnOnce(&mut crate::state::Meeting) -> T,
) -> Result<T, Response> {
    let Ok(id) = raw_id.parse::<i64>() else {
        return Err(meeting_not_found(raw_id));
    };
    let mut inner = sim.lock();
    match inner.meetings.get_mut(&id) {
        Some(meeting) if meeting.host_id == user.id => Ok(f(meeting)),
        _ => Err(meeting_not_found(raw_id)),
    }
}

async fn get_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingRead);
    match with_own_meeting(&sim, &user, &meeting_id, |m| {
        Value::Object(m.fields.clone())
    }) {
        Ok(answer) => json_response(StatusCode::OK, answer),
        Err(response) => response,
    }
}

async fn update_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingWrite);
    // Existence first: Zoom answers 3001 for a missing meeting whatever the body.
    if let Err(response) = with_own_meeting(&sim, &user, &meeting_id, |_| ()) {
        return response;
    }
    let body = match json_object(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let input = match meetings::validate(&body) {
        Ok(input) => input,
        Err(errors) => return validation_failed(errors),
    };
    match with_own_meeting(&sim, &user, &meeting_id, |m| meetings::apply(m, input)) {
        Ok(()) => no_content(),
        Err(response) => response,
    }
}

async fn delete_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingWrite);
    match with_own_meeting(&sim, &user, &meeting_id, |m| m.id) {
        Ok(id) => {
            sim.lock().meetings.remove(&id);
            no_content()
        }
        Err(response) => response,
    }
}

async fn get_livestream(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingRead);
    match with_own_meeting(&sim, &user, &meeting_id, |m| m.livestream.clone()) {
        Ok(live) => json_response(
            StatusCode::OK,
            json!({
                "stream_url": live.stream_url,
                "stream_key": live.stream_key,
                "page_url": live.page_url,
                "resolution": live.resolution,
            }),
        ),
        Err(response) => response,
    }
}

async fn update_livestream(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, Need::MeetingWrite);
    if let Err(response) = with_own_meeting(&sim, &user, &meeting_id, |_| ()) {
        return response;
    }
    let body = match json_object(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut errors = Vec::new();
    let mut text = |name: &str, required: bool| -> Option<String> {
        match body.get(name) {
            Some(Value::String(s)) if s.chars().count() <= 1024 => Some(s.clone()),
            None | Some(Value::Null) if !required => None,
            _ => {
                errors.push(meetings::FieldError {
                    field: name.to_owned(),
                    message: "Invalid field.".to_owned(),
                });
                None
            }
        }
    };
    let stream_url = text("stream_url", true);
    let stream_key = text("stream_key", true);
    let page_url = text("page_url", true);
    let resolution = text("resolution", false);
    if !errors.is_empty() {
        return validation_failed(errors);
    }
    let result = with_own_meeting(&sim, &user, &meeting_id, |m| {
        m.livestream.stream_url = stream_url.unwrap_or_default();
        m.livestream.stream_key = stream_key.unwrap_or_default();
        m.livestream.page_url = page_url.unwrap_or_default();
        if let Some(resolution) = resolution {
            m.livestream.resolution = resolution;
        }
    });
    match result {
        Ok(()) => no_content(),
        Err(response) => response,
    }
}

// ---- recordings -------------------------------------------------------------------------

fn bad_page_token() -> Response {
    zoom_error(
        StatusCode::BAD_REQUEST,
        300,
        "The next page token is invalid or expired.",
    )
}

fn bad_date(field: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({
            "code": 300,
            "message": "Invalid field.",
            "errors": [{ "field": field, "message": "Use the yyyy-mm-dd format." }],
        }),
    )
}

async fn list_recordings(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, Need::RecordingRead);
    if !is_self(&user_id, &user) {
        return user_not_found(&user_id);
    }
    let pairs = query_pairs(query);
    let mut inner = sim.lock();
    let now = inner.now();
    inner.page_cursors.retain(|_, c| c.expires_at > now);

    let cursor = match query_value(&pairs, "next_page_token") {
        Some(token) => match inner.page_cursors.get(token) {
            Some(cursor) if cursor.user_id == user.id => cursor.clone(),
            _ => return bad_page_token(),
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
                expires_at: now + PAGE_TOKEN_TTL,
            }
        }
    };

    // Newest first, like Zoom.
    let mut matching: Vec<&crate::types::SimRecording> = inner
        .recordings
        .iter()
        .filter(|r| r.user_id == user.id)
        .map(|r| &r.recording)
        .filter(|r| {
            let day = r.start_time.to_offset(time::UtcOffset::UTC).date();
            day >= cursor.from && day <= cursor.to
        })
        .collect();
    matching.sort_by_key(|r| std::cmp::Reverse(r.start_time));
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(cursor.offset)
        .take(cursor.page_size)
        .map(|r| recordings::recording_json(r, &user))
        .collect();
    let next_offset = cursor.offset + cursor.page_size;
    let next_page_token = if next_offset < total {
        let token = random_secret();
        inner.page_cursors.insert(
            token.clone(),
            PageCursor {
                offset: next_offset,
                expires_at: now + PAGE_TOKEN_TTL,
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

async fn meeting_recordings(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let user = gate!(sim, headers, method, Need::RecordingRead);
    // The raw segment, not the router's decoded one: double encoding matters here.
    let raw = uri
        .path()
        .strip_prefix("/v2/meetings/")
        .and_then(|rest| rest.strip_suffix("/recordings"))
        .unwrap_or_default();
    let key = match recordings::recording_key(raw) {
        Some(RecordingKey::WronglyEncoded) | None => return recording_not_found(),
        Some(key) => key,
    };
    let inner = sim.lock();
    let mine = inner
        .recordings
        .iter()
        .filter(|r| r.user_id == user.id)
        .map(|r| &r.recording);
    let found = match key {
        // A meeting id means its latest recorded instance.
        RecordingKey::MeetingId(id) => mine
            .filter(|r| r.meeting_id == id)
            .max_by_key(|r| r.start_time),
        RecordingKey::Uuid(uuid) => mine.into_iter().find(|r| r.uuid == uuid),
        RecordingKey::WronglyEncoded => None,
    };
    match found {
        Some(recording) => json_response(
            StatusCode::OK,
            recordings::meeting_recording_json(recording, &user),
        ),
        None => recording_not_found(),
    }
}

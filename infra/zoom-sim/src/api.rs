//! Zoom's REST subset under `/v2`: the route table, users, meetings (with occurrences), live
//! stream, status and invitation. Other operations live in their own modules.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, patch, put};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::rest::{
    check_self, gate, invalid_field, json_object, meeting_not_found, no_content, not_found,
    own_meeting_id, query_bool, query_pairs, query_value, try_answer, validation_failed,
    with_own_meeting,
};
use crate::types::SimUser;
use crate::util::{json_response, zoom_error};
use crate::{
    ZoomSim, listing, meeting_extras, meetings, occurrences, past_meetings, recording_routes,
    registrants, webinars,
};

/// Deleted meetings can be recovered for 7 days, as at Zoom.
const RECOVER_WINDOW: time::Duration = time::Duration::days(7);

/// Every REST route; each answers one operation of Zoom's description.
pub(crate) fn routes() -> Router<ZoomSim> {
    Router::new()
        .route("/v2/users/{user_id}", get(get_user))
        .route(
            "/v2/users/{user_id}/meetings",
            get(listing::list_meetings).post(create_meeting),
        )
        .route(
            "/v2/users/{user_id}/webinars",
            get(webinars::list).post(webinars::create),
        )
        .route(
            "/v2/users/{user_id}/recordings",
            get(recording_routes::list_recordings),
        )
        .route(
            "/v2/meetings/{meeting_id}",
            get(get_meeting)
                .patch(update_meeting)
                .delete(delete_meeting),
        )
        .route("/v2/meetings/{meeting_id}/status", put(meeting_status))
        .route(
            "/v2/meetings/{meeting_id}/invitation",
            get(meeting_extras::invitation),
        )
        .route(
            "/v2/meetings/{meeting_id}/livestream",
            get(meeting_extras::get_livestream).patch(meeting_extras::update_livestream),
        )
        .route(
            "/v2/meetings/{meeting_id}/livestream/status",
            patch(meeting_extras::livestream_status),
        )
        .route(
            "/v2/meetings/{meeting_id}/registrants",
            get(registrants::list_for_meeting).post(registrants::create_for_meeting),
        )
        .route(
            "/v2/meetings/{meeting_id}/registrants/status",
            put(registrants::update_status),
        )
        .route(
            "/v2/meetings/{meeting_id}/registrants/{registrant_id}",
            axum::routing::delete(registrants::delete_one),
        )
        .route(
            "/v2/meetings/{meeting_id}/recordings",
            get(recording_routes::meeting_recordings).delete(recording_routes::delete_all),
        )
        .route(
            "/v2/meetings/{meeting_id}/recordings/{recording_id}",
            axum::routing::delete(recording_routes::delete_one),
        )
        .route(
            "/v2/meetings/{meeting_id}/meeting_summary",
            get(past_meetings::summary),
        )
        .route(
            "/v2/past_meetings/{meeting_id}",
            get(past_meetings::details),
        )
        .route(
            "/v2/past_meetings/{meeting_id}/instances",
            get(past_meetings::instances),
        )
        .route(
            "/v2/past_meetings/{meeting_id}/participants",
            get(past_meetings::participants),
        )
        .route(
            "/v2/webinars/{webinar_id}",
            get(webinars::get_one)
                .patch(webinars::update)
                .delete(webinars::delete),
        )
        .route(
            "/v2/webinars/{webinar_id}/registrants",
            get(registrants::list_for_webinar).post(registrants::create_for_webinar),
        )
        .route("/rec/download/{file_id}", get(recording_routes::download))
        .route("/v2", any(not_found))
        .route("/v2/", any(not_found))
        .route("/v2/{*rest}", any(not_found))
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
    let user = gate!(sim, headers, method, "/users/{userId}");
    try_answer!(check_self(&user_id, &user));
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
    let user = gate!(sim, headers, method, "/users/{userId}/meetings");
    try_answer!(check_self(&user_id, &user));
    let body = try_answer!(json_object(&body));
    let input = match meetings::validate(&body) {
        Ok(input) => input,
        Err(errors) => return validation_failed(errors),
    };
    let mut inner = sim.lock();
    let id = inner.fresh_meeting_id();
    let uuid = inner.next_uuid();
    let now = inner.now();
    let meeting = meetings::create(&user, id, uuid, input, now);
    let answer = Value::Object(meeting.fields.clone());
    inner.meetings.insert(id, meeting);
    inner.counters.meetings_created += 1;
    drop(inner);
    json_response(StatusCode::CREATED, answer)
}

fn invalid_occurrence() -> Response {
    zoom_error(StatusCode::BAD_REQUEST, 300, "Invalid occurrence_id.")
}

async fn get_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}");
    let pairs = query_pairs(query);
    try_answer!(query_bool(&pairs, "show_previous_occurrences"));
    let occurrence = query_value(&pairs, "occurrence_id").map(str::to_owned);
    let answer = try_answer!(with_own_meeting(&sim, &user, &meeting_id, |m| {
        match &occurrence {
            Some(id) => occurrences::view(m, id),
            None => Some(Value::Object(m.fields.clone())),
        }
    }));
    match answer {
        Some(answer) => json_response(StatusCode::OK, answer),
        None => invalid_occurrence(),
    }
}

/// A change of one occurrence: only its start and duration move (the rest is the series').
fn update_occurrence(
    meeting: &mut crate::state::Meeting,
    occurrence_id: &str,
    body: &serde_json::Map<String, Value>,
) -> Result<(), Response> {
    if occurrences::find(meeting, occurrence_id).is_none() {
        return Err(invalid_occurrence());
    }
    let timezone = meeting
        .fields
        .get("timezone")
        .and_then(Value::as_str)
        .unwrap_or(meetings::DEFAULT_TIMEZONE)
        .to_owned();
    let change = meetings::occurrence_change(body, &timezone).map_err(validation_failed)?;
    let entry = meeting
        .occurrence_overrides
        .entry(occurrence_id.to_owned())
        .or_default();
    if let Some(start) = change.0 {
        entry.start_time = Some(start);
    }
    if let Some(duration) = change.1 {
        entry.duration = Some(duration);
    }
    occurrences::refresh(meeting);
    Ok(())
}

async fn update_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}");
    // Existence first: Zoom answers 3001 for a missing meeting whatever the body.
    try_answer!(with_own_meeting(&sim, &user, &meeting_id, |_| ()));
    let body = try_answer!(json_object(&body));
    let pairs = query_pairs(query);
    if let Some(occurrence) = query_value(&pairs, "occurrence_id") {
        let result = with_own_meeting(&sim, &user, &meeting_id, |m| {
            update_occurrence(m, occurrence, &body)
        });
        return match result {
            Ok(Ok(())) => no_content(),
            Ok(Err(response)) | Err(response) => response,
        };
    }
    let input = match meetings::validate(&body) {
        Ok(input) => input,
        Err(errors) => return validation_failed(errors),
    };
    try_answer!(with_own_meeting(&sim, &user, &meeting_id, |m| {
        meetings::apply(m, input)
    }));
    no_content()
}

async fn delete_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}");
    let pairs = query_pairs(query);
    try_answer!(query_bool(&pairs, "schedule_for_reminder"));
    try_answer!(query_bool(&pairs, "cancel_meeting_reminder"));
    let mut inner = sim.lock();
    let id = try_answer!(own_meeting_id(&inner, &user, &meeting_id));
    if let Some(occurrence) = query_value(&pairs, "occurrence_id") {
        let Some(meeting) = inner.meetings.get_mut(&id) else {
            return meeting_not_found(&meeting_id);
        };
        if occurrences::find(meeting, occurrence).is_none() {
            return invalid_occurrence();
        }
        meeting
            .occurrence_overrides
            .entry(occurrence.to_owned())
            .or_default()
            .deleted = true;
        occurrences::refresh(meeting);
        return no_content();
    }
    let now = inner.now();
    if let Some(meeting) = inner.meetings.remove(&id) {
        inner.deleted_meetings.insert(id, (meeting, now));
    }
    no_content()
}

/// `PUT /meetings/{id}/status`: `end` ends a meeting in progress (recording a past instance
/// with its participants; a meeting not in progress is left as it is), `recover` brings back a
/// meeting deleted in the last 7 days.
async fn meeting_status(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/status");
    let body = try_answer!(json_object(&body));
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match action {
        "end" => {
            let mut inner = sim.lock();
            let id = try_answer!(own_meeting_id(&inner, &user, &meeting_id));
            past_meetings::end_live_instance(&mut inner, id);
            no_content()
        }
        "recover" => {
            let mut inner = sim.lock();
            if own_meeting_id(&inner, &user, &meeting_id).is_ok() {
                return no_content();
            }
            let now = inner.now();
            let id = meeting_id.parse::<i64>().unwrap_or_default();
            match inner.deleted_meetings.remove(&id) {
                Some((meeting, at)) if meeting.host_id == user.id && now - at <= RECOVER_WINDOW => {
                    inner.meetings.insert(id, meeting);
                    no_content()
                }
                Some(entry) => {
                    inner.deleted_meetings.insert(id, entry);
                    meeting_not_found(&meeting_id)
                }
                None => meeting_not_found(&meeting_id),
            }
        }
        _ => invalid_field("action", "Invalid field."),
    }
}

//! Registrants of meetings and webinars: list (by `status`, `occurrence_id`, paged), add (201,
//! only when registration is on: `settings.approval_type` 0 (automatic approval) or 1 (manual),
//! on a scheduled or fixed-time recurring meeting or webinar), change status, remove.
//!
//! Without registration Zoom answers 404 code 404 "Registration has not been enabled for this
//! meeting: {id}." (webinars: "... for this webinar: {id}."). Adding an email that is already
//! registered answers that registration again.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::meetings::FieldError;
use crate::paging;
use crate::rest::{
    gate, invalid_field, json_object, no_content, own_meeting_id, query_pairs, query_value,
    try_answer, validation_failed,
};
use crate::state::{Inner, Meeting, Registrant};
use crate::types::SimUser;
use crate::util::{json_response, random_alnum, zoom_error, zoom_time};
use crate::{ZoomSim, occurrences, webinars};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Meeting,
    Webinar,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Meeting => "meeting",
            Kind::Webinar => "webinar",
        }
    }
}

/// The meeting or webinar a segment names, if the user hosts it.
fn entity<'a>(
    inner: &'a mut Inner,
    kind: Kind,
    user: &SimUser,
    segment: &str,
) -> Result<&'a mut Meeting, Response> {
    match kind {
        Kind::Meeting => {
            let id = own_meeting_id(inner, user, segment)?;
            inner
                .meetings
                .get_mut(&id)
                .ok_or_else(|| crate::rest::meeting_not_found(segment))
        }
        Kind::Webinar => webinars::own_webinar(inner, user, segment),
    }
}

fn registration_open(kind: Kind, meeting: &Meeting) -> bool {
    let meeting_type = meeting.fields.get("type").and_then(Value::as_i64);
    let approval = meeting.fields["settings"]["approval_type"].as_i64();
    let type_ok = match kind {
        Kind::Meeting => matches!(meeting_type, Some(2 | 8)),
        Kind::Webinar => matches!(meeting_type, Some(5 | 9)),
    };
    type_ok && matches!(approval, Some(0 | 1))
}

fn registrant_json(r: &Registrant) -> Value {
    let mut item = r.form.clone();
    item.remove("auto_approve");
    item.insert("id".into(), json!(r.id));
    item.insert("status".into(), json!(r.status));
    item.insert("create_time".into(), json!(zoom_time(r.create_time)));
    item.insert("join_url".into(), json!(r.join_url));
    item.insert("participant_pin_code".into(), json!(r.participant_pin_code));
    Value::Object(item)
}

const STATUSES: [&str; 3] = ["pending", "approved", "denied"];

async fn list(
    sim: ZoomSim,
    kind: Kind,
    user: SimUser,
    segment: String,
    query: Option<String>,
) -> Response {
    let pairs = query_pairs(query);
    let status = query_value(&pairs, "status")
        .unwrap_or("approved")
        .to_owned();
    if !STATUSES.contains(&status.as_str()) {
        return invalid_field("status", "Invalid field.");
    }
    let occurrence = query_value(&pairs, "occurrence_id").map(str::to_owned);
    let mut inner = sim.lock();
    let meeting = try_answer!(entity(&mut inner, kind, &user, &segment));
    let id = meeting.id;
    let registrants = meeting.registrants.clone();
    // A token continues its own list whatever filters come with it (they shaped its snapshot).
    let list = format!("registrants:{id}");
    let page = try_answer!(paging::page(&mut inner, &user.id, &list, &pairs, |_| {
        registrants
            .iter()
            .filter(|r| r.status == status)
            .filter(|r| {
                occurrence
                    .as_ref()
                    .is_none_or(|o| r.occurrence_ids.is_empty() || r.occurrence_ids.contains(o))
            })
            .map(|r| r.id.clone())
            .collect()
    }));
    drop(inner);
    let items: Vec<Value> = page
        .keys
        .iter()
        .filter_map(|k| registrants.iter().find(|r| &r.id == k))
        .map(registrant_json)
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "page_size": page.page_size,
            "page_count": page.page_count(),
            "total_records": page.total_records,
            "next_page_token": page.next_page_token,
            "registrants": items,
        }),
    )
}

fn validate_form(body: &Map<String, Value>) -> Result<(), Response> {
    let mut errors = Vec::new();
    let mut check = |field: &str, required: bool, max: usize, email: bool| match body.get(field) {
        None | Some(Value::Null) if !required => {}
        Some(Value::String(s))
            if !s.is_empty() && s.chars().count() <= max && (!email || valid_email(s)) => {}
        _ => errors.push(FieldError {
            field: field.to_owned(),
            message: "Invalid field.".to_owned(),
        }),
    };
    check("email", true, 128, true);
    check("first_name", true, 64, false);
    check("last_name", false, 64, false);
    if body.get("auto_approve").is_some_and(|v| !v.is_boolean()) {
        errors.push(FieldError {
            field: "auto_approve".to_owned(),
            message: "Invalid field.".to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(validation_failed(errors))
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !s.contains(' ')
}

async fn create(
    sim: ZoomSim,
    kind: Kind,
    user: SimUser,
    segment: String,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let pairs = query_pairs(query);
    let mut inner = sim.lock();
    let now = inner.now();
    let meeting = try_answer!(entity(&mut inner, kind, &user, &segment));
    if !registration_open(kind, meeting) {
        return zoom_error(
            StatusCode::NOT_FOUND,
            404,
            &format!(
                "Registration has not been enabled for this {}: {}.",
                kind.word(),
                meeting.id
            ),
        );
    }
    let body = try_answer!(json_object(&body));
    try_answer!(validate_form(&body));
    let occurrence_ids: Vec<String> = query_value(&pairs, "occurrence_ids")
        .map(|ids| ids.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    if !occurrences::all_exist(meeting, &occurrence_ids) {
        return invalid_field("occurrence_ids", "Invalid field.");
    }
    let email = body["email"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let existing = meeting
        .registrants
        .iter()
        .position(|r| r.form["email"].as_str().map(str::to_ascii_lowercase) == Some(email.clone()));
    let index = match existing {
        Some(index) => index,
        None => {
            let auto = body.get("auto_approve").and_then(Value::as_bool) == Some(true);
            let approval = meeting.fields["settings"]["approval_type"].as_i64();
            let status = if approval == Some(0) || auto {
                "approved"
            } else {
                "pending"
            };
            let id = random_alnum(22);
            let join_base = match kind {
                Kind::Meeting => "j",
                Kind::Webinar => "w",
            };
            meeting.registrants.push(Registrant {
                join_url: format!(
                    "https://zoom.us/{join_base}/{}?tk={}",
                    meeting.id,
                    random_alnum(43)
                ),
                id,
                form: body,
                status,
                create_time: now,
                occurrence_ids,
                participant_pin_code: rand::rng().random_range(100_000..=999_999),
            });
            meeting.registrants.len() - 1
        }
    };
    let r = &meeting.registrants[index];
    let registered: Vec<Value> = meeting
        .fields
        .get("occurrences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| {
            r.occurrence_ids.is_empty()
                || o["occurrence_id"]
                    .as_str()
                    .is_some_and(|id| r.occurrence_ids.iter().any(|x| x == id))
        })
        .cloned()
        .collect();
    let mut answer = json!({
        "id": meeting.id,
        "registrant_id": r.id,
        "join_url": r.join_url,
        "topic": meeting.fields.get("topic").cloned().unwrap_or(Value::Null),
        "occurrences": registered,
    });
    if let Some(start) = meeting.fields.get("start_time") {
        answer["start_time"] = start.clone();
    }
    if kind == Kind::Meeting {
        answer["participant_pin_code"] = json!(r.participant_pin_code);
    }
    json_response(StatusCode::CREATED, answer)
}

// ---- handlers ---------------------------------------------------------------------------

pub(crate) async fn list_for_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/registrants");
    list(sim, Kind::Meeting, user, meeting_id, query).await
}

pub(crate) async fn list_for_webinar(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/webinars/{webinarId}/registrants");
    list(sim, Kind::Webinar, user, webinar_id, query).await
}

pub(crate) async fn create_for_meeting(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/registrants");
    create(sim, Kind::Meeting, user, meeting_id, query, body).await
}

pub(crate) async fn create_for_webinar(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/webinars/{webinarId}/registrants");
    create(sim, Kind::Webinar, user, webinar_id, query, body).await
}

/// `PUT /meetings/{id}/registrants/status`: `approve`, `deny` or `cancel` (an approved
/// registration is cancelled: it becomes `denied`) the listed registrants (by `id` or
/// `email`, at most 30); unknown ones are ignored.
pub(crate) async fn update_status(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(
        sim,
        headers,
        method,
        "/meetings/{meetingId}/registrants/status"
    );
    let mut inner = sim.lock();
    let meeting = try_answer!(entity(&mut inner, Kind::Meeting, &user, &meeting_id));
    let body = try_answer!(json_object(&body));
    let status = match body.get("action").and_then(Value::as_str) {
        Some("approve") => "approved",
        Some("deny" | "cancel") => "denied",
        _ => return invalid_field("action", "Invalid field."),
    };
    let listed = match body.get("registrants") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.len() <= 30 => list.clone(),
        Some(_) => return invalid_field("registrants", "Invalid field."),
    };
    for entry in listed {
        let id = entry.get("id").and_then(Value::as_str);
        let email = entry.get("email").and_then(Value::as_str);
        for r in &mut meeting.registrants {
            let by_id = id.is_some_and(|id| id == r.id);
            let by_email = email.is_some_and(|e| {
                r.form["email"]
                    .as_str()
                    .is_some_and(|own| own.eq_ignore_ascii_case(e))
            });
            if by_id || by_email {
                r.status = status;
            }
        }
    }
    no_content()
}

/// `DELETE /meetings/{id}/registrants/{registrantId}`; an unknown registrant answers 404
/// code 404 "Registrant not found.".
pub(crate) async fn delete_one(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path((meeting_id, registrant_id)): Path<(String, String)>,
) -> Response {
    let user = gate!(
        sim,
        headers,
        method,
        "/meetings/{meetingId}/registrants/{registrantId}"
    );
    let mut inner = sim.lock();
    let meeting = try_answer!(entity(&mut inner, Kind::Meeting, &user, &meeting_id));
    let before = meeting.registrants.len();
    meeting.registrants.retain(|r| r.id != registrant_id);
    if meeting.registrants.len() == before {
        return zoom_error(StatusCode::NOT_FOUND, 404, "Registrant not found.");
    }
    no_content()
}

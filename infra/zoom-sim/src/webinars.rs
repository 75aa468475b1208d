//! Webinars: list a user's (paged), create (201), get, update (204), delete (204). Every
//! simulated user has the webinar add-on. Bodies are validated like meetings, with webinar
//! types 5 (webinar), 6 (recurring, no fixed time) and 9 (recurring, fixed time); registration
//! is off (`approval_type` 2) unless the body turns it on. A webinar another user hosts, or none,
//! answers 404 code 3001 "Webinar does not exist: {id}.".

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::paging;
use crate::rest::{
    check_self, gate, invalid_field, json_object, no_content, query_bool, query_pairs, query_value,
    try_answer, validation_failed,
};
use crate::state::{Inner, Meeting};
use crate::types::SimUser;
use crate::util::{json_response, random_alnum, zoom_error};
use crate::{ZoomSim, meetings, occurrences};

const WEBINAR_TYPES: [i64; 3] = [5, 6, 9];

const LISTED: [&str; 12] = [
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
    "is_simulive",
];

fn webinar_not_found(segment: &str) -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        3001,
        &format!("Webinar does not exist: {segment}."),
    )
}

/// The user's webinar a `{webinarId}` segment names.
pub(crate) fn own_webinar<'a>(
    inner: &'a mut Inner,
    user: &SimUser,
    segment: &str,
) -> Result<&'a mut Meeting, Response> {
    let id = segment.parse::<i64>().ok();
    match id.and_then(|id| inner.webinars.get_mut(&id)) {
        Some(webinar) if webinar.host_id == user.id => Ok(webinar),
        _ => Err(webinar_not_found(segment)),
    }
}

/// Meeting fields renamed the way webinars name them.
fn as_webinar(fields: &mut Map<String, Value>) {
    if let Some(password) = fields.remove("h323_password") {
        fields.insert("h323_passcode".into(), password);
    }
    if let Some(encrypted) = fields.remove("encrypted_password") {
        fields.insert("encrypted_passcode".into(), encrypted);
    }
    fields.remove("pstn_password");
    fields.remove("status");
    fields.remove("pre_schedule");
    if let Some(Value::Object(settings)) = fields.get_mut("settings") {
        for key in [
            "cn_meeting",
            "in_meeting",
            "join_before_host",
            "jbh_time",
            "mute_upon_entry",
            "use_pmi",
            "waiting_room",
            "encryption_type",
            "focus_mode",
            "private_meeting",
            "host_save_video_order",
            "alternative_hosts_email_notification",
            "email_notification",
            "watermark",
        ] {
            settings.remove(key);
        }
    }
}

pub(crate) async fn create(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/users/{userId}/webinars");
    try_answer!(check_self(&user_id, &user));
    let mut body = try_answer!(json_object(&body));
    body.entry("type").or_insert(json!(5));
    body.entry("topic").or_insert(json!("Zoom Webinar"));
    let input = match meetings::validate_types(&body, &WEBINAR_TYPES) {
        Ok(input) => input,
        Err(errors) => return validation_failed(errors),
    };
    let mut inner = sim.lock();
    let id = inner.fresh_meeting_id();
    let uuid = inner.next_uuid();
    let now = inner.now();
    let mut webinar = meetings::create(&user, id, uuid, input, now);
    let fields = &mut webinar.fields;
    fields.insert(
        "join_url".into(),
        json!(format!("https://zoom.us/w/{id}?tk={}", random_alnum(43))),
    );
    fields.insert(
        "registration_url".into(),
        json!(format!(
            "https://zoom.us/webinar/register/WN_{}",
            random_alnum(22)
        )),
    );
    fields.insert("is_simulive".into(), json!(false));
    fields.insert("creation_source".into(), json!("open_api"));
    as_webinar(fields);
    occurrences::refresh(&mut webinar);
    let answer = Value::Object(webinar.fields.clone());
    inner.webinars.insert(id, webinar);
    drop(inner);
    json_response(StatusCode::CREATED, answer)
}

pub(crate) async fn list(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/users/{userId}/webinars");
    try_answer!(check_self(&user_id, &user));
    let pairs = query_pairs(query);
    let kind = query_value(&pairs, "type")
        .unwrap_or("scheduled")
        .to_owned();
    if kind != "scheduled" && kind != "upcoming" {
        return invalid_field("type", "Invalid field.");
    }
    let mut inner = sim.lock();
    let page = try_answer!(paging::page(
        &mut inner,
        &user.id,
        "webinars",
        &pairs,
        |inner| {
            let now = crate::util::zoom_time(inner.now());
            let mut mine: Vec<&Meeting> = inner
                .webinars
                .values()
                .filter(|w| w.host_id == user.id)
                .filter(|w| {
                    kind == "scheduled"
                        || w.fields
                            .get("start_time")
                            .and_then(Value::as_str)
                            .is_none_or(|s| s >= now.as_str())
                })
                .collect();
            mine.sort_by_key(|w| {
                let start = w.fields.get("start_time").and_then(Value::as_str);
                (start.map(str::to_owned), w.id)
            });
            mine.iter().map(|w| w.id.to_string()).collect()
        }
    ));
    let webinars: Vec<Value> = page
        .keys
        .iter()
        .filter_map(|k| k.parse::<i64>().ok())
        .filter_map(|id| inner.webinars.get(&id))
        .map(|w| {
            let mut item = Map::new();
            for key in LISTED {
                if let Some(value) = w.fields.get(key) {
                    item.insert(key.to_owned(), value.clone());
                }
            }
            Value::Object(item)
        })
        .collect();
    drop(inner);
    json_response(
        StatusCode::OK,
        json!({
            "page_size": page.page_size,
            "page_count": page.page_count(),
            "total_records": page.total_records,
            "next_page_token": page.next_page_token,
            "webinars": webinars,
        }),
    )
}

pub(crate) async fn get_one(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/webinars/{webinarId}");
    let pairs = query_pairs(query);
    try_answer!(query_bool(&pairs, "show_previous_occurrences"));
    let mut inner = sim.lock();
    let webinar = try_answer!(own_webinar(&mut inner, &user, &webinar_id));
    let answer = match query_value(&pairs, "occurrence_id") {
        Some(occurrence) => match occurrences::view(webinar, occurrence) {
            Some(view) => view,
            None => return invalid_field("occurrence_id", "Invalid field."),
        },
        None => Value::Object(webinar.fields.clone()),
    };
    json_response(StatusCode::OK, answer)
}

pub(crate) async fn update(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/webinars/{webinarId}");
    let pairs = query_pairs(query);
    let mut inner = sim.lock();
    let webinar = try_answer!(own_webinar(&mut inner, &user, &webinar_id));
    let body = try_answer!(json_object(&body));
    let input = match meetings::validate_types(&body, &WEBINAR_TYPES) {
        Ok(input) => input,
        Err(errors) => return validation_failed(errors),
    };
    if let Some(occurrence) = query_value(&pairs, "occurrence_id") {
        if occurrences::find(webinar, occurrence).is_none() {
            return invalid_field("occurrence_id", "Invalid field.");
        }
        let timezone = webinar.fields["timezone"]
            .as_str()
            .unwrap_or("UTC")
            .to_owned();
        let (start, duration) = match meetings::occurrence_change(&body, &timezone) {
            Ok(change) => change,
            Err(errors) => return validation_failed(errors),
        };
        let entry = webinar
            .occurrence_overrides
            .entry(occurrence.to_owned())
            .or_default();
        entry.start_time = start.or(entry.start_time);
        entry.duration = duration.or(entry.duration);
        occurrences::refresh(webinar);
        return no_content();
    }
    meetings::apply(webinar, input);
    as_webinar(&mut webinar.fields);
    no_content()
}

pub(crate) async fn delete(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(webinar_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/webinars/{webinarId}");
    let pairs = query_pairs(query);
    try_answer!(query_bool(&pairs, "cancel_webinar_reminder"));
    let mut inner = sim.lock();
    let webinar = try_answer!(own_webinar(&mut inner, &user, &webinar_id));
    let id = webinar.id;
    if let Some(occurrence) = query_value(&pairs, "occurrence_id") {
        if occurrences::find(webinar, occurrence).is_none() {
            return invalid_field("occurrence_id", "Invalid field.");
        }
        webinar
            .occurrence_overrides
            .entry(occurrence.to_owned())
            .or_default()
            .deleted = true;
        occurrences::refresh(webinar);
        return no_content();
    }
    inner.webinars.remove(&id);
    no_content()
}

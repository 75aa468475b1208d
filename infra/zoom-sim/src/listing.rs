//! `GET /users/{userId}/meetings`: a user's meetings by `type`, `from`/`to`, paged.
//!
//! Types, on the simulator's clock:
//! - `scheduled` (default): every meeting that exists (Zoom: unexpired previous, live and
//!   upcoming scheduled meetings);
//! - `live`: meetings in progress;
//! - `upcoming` / `upcoming_meetings`: in progress, recurring without a fixed time, or with a
//!   start (or an available occurrence) from now on;
//! - `previous_meetings`: held at least once, or whose start plus duration has passed.
//!
//! `from`/`to` (`yyyy-mm-dd`) keep meetings whose start falls on those days (UTC); meetings
//! without a start (type 3) are left out when either is given. Order: by start, then id.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::ZoomSim;
use crate::paging;
use crate::recordings::parse_date;
use crate::rest::{check_self, gate, invalid_field, query_pairs, query_value, try_answer};
use crate::state::{Inner, Meeting};
use crate::util::json_response;

const TYPES: [&str; 5] = [
    "scheduled",
    "live",
    "upcoming",
    "upcoming_meetings",
    "previous_meetings",
];

/// The fields a listed meeting carries.
const LISTED: [&str; 11] = [
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
];

fn start(meeting: &Meeting) -> Option<OffsetDateTime> {
    meeting
        .fields
        .get("start_time")
        .and_then(Value::as_str)
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn occurrence_starts(meeting: &Meeting) -> Vec<OffsetDateTime> {
    meeting
        .fields
        .get("occurrences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| o["status"] == "available")
        .filter_map(|o| o["start_time"].as_str())
        .filter_map(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .collect()
}

fn matches_type(inner: &Inner, meeting: &Meeting, kind: &str, now: OffsetDateTime) -> bool {
    let live = meeting.live.is_some();
    match kind {
        "live" => live,
        "upcoming" | "upcoming_meetings" => {
            live || meeting.fields.get("type").and_then(Value::as_i64) == Some(3)
                || start(meeting).is_some_and(|s| s >= now)
                || occurrence_starts(meeting).iter().any(|s| *s >= now)
        }
        "previous_meetings" => {
            let duration = meeting
                .fields
                .get("duration")
                .and_then(Value::as_i64)
                .unwrap_or(60);
            inner
                .past_meetings
                .iter()
                .any(|p| p.meeting_id == meeting.id)
                || start(meeting).is_some_and(|s| s + time::Duration::minutes(duration) < now)
        }
        _ => true,
    }
}

fn date_param(pairs: &[(String, String)], name: &str) -> Result<Option<Date>, Response> {
    match query_value(pairs, name) {
        None => Ok(None),
        Some(raw) => parse_date(raw)
            .map(Some)
            .ok_or_else(|| invalid_field(name, "Use the yyyy-mm-dd format.")),
    }
}

fn listed(meeting: &Meeting) -> Value {
    let mut item = Map::new();
    for key in LISTED {
        if let Some(value) = meeting.fields.get(key) {
            item.insert(key.to_owned(), value.clone());
        }
    }
    Value::Object(item)
}

pub(crate) async fn list_meetings(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(sim, headers, method, "/users/{userId}/meetings");
    try_answer!(check_self(&user_id, &user));
    let pairs = query_pairs(query);
    let kind = query_value(&pairs, "type")
        .unwrap_or("scheduled")
        .to_owned();
    if !TYPES.contains(&kind.as_str()) {
        return invalid_field("type", "Invalid field.");
    }
    let from = try_answer!(date_param(&pairs, "from"));
    let to = try_answer!(date_param(&pairs, "to"));
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return invalid_field("to", "Invalid field.");
    }
    let mut inner = sim.lock();
    let page = try_answer!(paging::page(
        &mut inner,
        &user.id,
        "meetings",
        &pairs,
        |inner| {
            let now = inner.now();
            let mut mine: Vec<&Meeting> = inner
                .meetings
                .values()
                .filter(|m| m.host_id == user.id && matches_type(inner, m, &kind, now))
                .filter(|m| {
                    if from.is_none() && to.is_none() {
                        return true;
                    }
                    let Some(day) = start(m).map(|s| s.date()) else {
                        return false;
                    };
                    from.is_none_or(|f| day >= f) && to.is_none_or(|t| day <= t)
                })
                .collect();
            mine.sort_by_key(|m| (start(m), m.id));
            mine.iter().map(|m| m.id.to_string()).collect()
        }
    ));
    let meetings: Vec<Value> = page
        .keys
        .iter()
        .filter_map(|k| k.parse::<i64>().ok())
        .filter_map(|id| inner.meetings.get(&id))
        .map(listed)
        .collect();
    drop(inner);
    json_response(
        StatusCode::OK,
        json!({
            "page_size": page.page_size,
            "page_count": page.page_count(),
            "total_records": page.total_records,
            "next_page_token": page.next_page_token,
            "meetings": meetings,
        }),
    )
}

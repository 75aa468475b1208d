//! Meeting side routes: invitation, live stream settings and live stream status.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::ZoomSim;
use crate::meetings::FieldError;
use crate::rest::{gate, json_object, no_content, try_answer, validation_failed, with_own_meeting};
use crate::util::json_response;

/// Groups digits like Zoom's invitations: `123 4567 8901`.
fn spaced_id(id: i64) -> String {
    let digits = id.to_string();
    let split = digits.len().saturating_sub(8);
    let (head, tail) = digits.split_at(split);
    let (middle, last) = tail.split_at(tail.len().min(4));
    [head, middle, last]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /meetings/{id}/invitation`: the text Zoom's "Copy invitation" gives.
pub(crate) async fn invitation(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/invitation");
    let fields = try_answer!(with_own_meeting(&sim, &user, &meeting_id, |m| m
        .fields
        .clone()));
    let text = |key: &str| fields.get(key).and_then(Value::as_str).unwrap_or_default();
    let id = fields.get("id").and_then(Value::as_i64).unwrap_or_default();
    let mut invitation = format!(
        "{} {} is inviting you to a scheduled Zoom meeting.\r\n\r\nTopic: {}\r\n",
        user.first_name,
        user.last_name,
        text("topic")
    );
    if !text("start_time").is_empty() {
        invitation.push_str(&format!(
            "Time: {} {}\r\n",
            text("start_time"),
            text("timezone")
        ));
    }
    invitation.push_str(&format!(
        "\r\nJoin Zoom Meeting\r\n{}\r\n\r\nMeeting ID: {}\r\nPasscode: {}\r\n\r\n",
        text("join_url"),
        spaced_id(id),
        text("password")
    ));
    json_response(
        StatusCode::OK,
        json!({ "invitation": invitation, "sip_links": [] }),
    )
}

pub(crate) async fn get_livestream(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/livestream");
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

pub(crate) async fn update_livestream(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = gate!(sim, headers, method, "/meetings/{meetingId}/livestream");
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
                errors.push(FieldError {
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

const CLOSE_CAPTION: [&str; 3] = ["burnt-in", "embedded", "off"];
const LAYOUT: [&str; 3] = ["follow_host", "gallery_view", "speaker_view"];

/// `PATCH /meetings/{id}/livestream/status`: `action` start, stop or mode, with optional
/// `settings`. The simulator remembers the last action (nothing is streamed).
pub(crate) async fn livestream_status(
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
        "/meetings/{meetingId}/livestream/status"
    );
    try_answer!(with_own_meeting(&sim, &user, &meeting_id, |_| ()));
    let body = try_answer!(json_object(&body));
    let mut errors = Vec::new();
    let mut invalid = |field: &str| {
        errors.push(FieldError {
            field: field.to_owned(),
            message: "Invalid field.".to_owned(),
        })
    };
    let action = match body.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if matches!(a.as_str(), "start" | "stop" | "mode") => {
            Some(a.clone())
        }
        Some(_) => {
            invalid("action");
            None
        }
    };
    match body.get("settings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(settings)) => {
            let string_in = |key: &str, allowed: &[&str]| {
                settings
                    .get(key)
                    .is_none_or(|v| v.as_str().is_some_and(|s| allowed.contains(&s)))
            };
            if !string_in("close_caption", &CLOSE_CAPTION) {
                invalid("settings.close_caption");
            }
            if !string_in("layout", &LAYOUT) {
                invalid("settings.layout");
            }
            if settings
                .get("display_name")
                .is_some_and(|v| v.as_str().is_none_or(|s| s.chars().count() > 50))
            {
                invalid("settings.display_name");
            }
            if settings
                .get("active_speaker_name")
                .is_some_and(|v| !v.is_boolean())
            {
                invalid("settings.active_speaker_name");
            }
        }
        Some(_) => invalid("settings"),
    }
    if !errors.is_empty() {
        return validation_failed(errors);
    }
    try_answer!(with_own_meeting(&sim, &user, &meeting_id, |m| {
        if action.is_some() {
            m.livestream.status = action;
        }
    }));
    no_content()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_spaced_like_zoom() {
        assert_eq!(super::spaced_id(85746065432), "857 4606 5432");
        assert_eq!(super::spaced_id(1234567890), "12 3456 7890");
    }
}

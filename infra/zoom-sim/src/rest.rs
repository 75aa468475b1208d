//! What every REST handler shares: the gate (latency, faults, bearer token, scopes), Zoom's
//! error answers, query and body helpers, and how a `{meetingId}` path segment is read.

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::ZoomSim;
use crate::faults;
use crate::meetings::FieldError;
use crate::recordings::{RecordingKey, meeting_key};
use crate::state::{Inner, Meeting};
use crate::types::{Fault, FaultTarget, SimUser};
use crate::util::{json_response, zoom_error};

pub(crate) fn scope_missing(scope: &str) -> Response {
    zoom_error(
        StatusCode::BAD_REQUEST,
        4711,
        &format!("Invalid access token, does not contain scopes:[{scope}]."),
    )
}

pub(crate) fn invalid_token() -> Response {
    zoom_error(StatusCode::UNAUTHORIZED, 124, "Invalid access token.")
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Everything in front of a REST handler: latency, injected faults, the bearer token, and the
/// scopes Zoom's description lists for `METHOD template` (see [`crate::scopes`]).
pub(crate) async fn check_gate(
    sim: &ZoomSim,
    headers: &HeaderMap,
    method: &Method,
    template: &str,
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
    let Some(needed) = crate::scopes::for_operation(method.as_str(), template) else {
        // A route the description lacks is a simulator bug; the route-coverage test finds it.
        tracing::error!(%method, template, "route without a described operation");
        return Err(scope_missing("unknown"));
    };
    if !needed.accepts(&scopes) {
        return Err(scope_missing(&needed.named_in_error(&scopes)));
    }
    Ok(user)
}

/// `gate!(sim, headers, method, "/meetings/{meetingId}")` returns the user or the answer.
macro_rules! gate {
    ($sim:expr, $headers:expr, $method:expr, $template:expr) => {
        match crate::rest::check_gate(&$sim, &$headers, &$method, $template).await {
            Ok(user) => user,
            Err(response) => return response,
        }
    };
}
pub(crate) use gate;

/// Unwraps `Result<T, Response>` or returns the answer.
macro_rules! try_answer {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}
pub(crate) use try_answer;

/// `me`, the user's id or email address.
pub(crate) fn is_self(param: &str, user: &SimUser) -> bool {
    param == "me" || param == user.id || param.eq_ignore_ascii_case(&user.email)
}

pub(crate) fn user_not_found(param: &str) -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        1001,
        &format!("User does not exist: {param}."),
    )
}

pub(crate) fn check_self(param: &str, user: &SimUser) -> Result<(), Response> {
    if is_self(param, user) {
        Ok(())
    } else {
        Err(user_not_found(param))
    }
}

pub(crate) fn meeting_not_found(param: &str) -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        3001,
        &format!("Meeting does not exist: {param}."),
    )
}

pub(crate) fn invalid_field(field: &str, message: &str) -> Response {
    validation_failed(vec![FieldError {
        field: field.to_owned(),
        message: message.to_owned(),
    }])
}

pub(crate) fn validation_failed(errors: Vec<FieldError>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|e| json!({ "field": e.field, "message": e.message }))
        .collect();
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "code": 300, "message": "Validation Failed.", "errors": errors }),
    )
}

pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(zoom_error(
            StatusCode::BAD_REQUEST,
            300,
            "Request Body should be a valid JSON object.",
        )),
    }
}

pub(crate) fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(&query.unwrap_or_default()).unwrap_or_default()
}

pub(crate) fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A boolean query parameter (`true`/`false`); anything else is Zoom's 300.
pub(crate) fn query_bool(pairs: &[(String, String)], name: &str) -> Result<bool, Response> {
    match query_value(pairs, name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(invalid_field(name, "Invalid field.")),
    }
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn not_found() -> Response {
    zoom_error(
        StatusCode::NOT_FOUND,
        404,
        "The requested resource does not exist.",
    )
}

/// The id of the user's meeting a `{meetingId}` segment (router-decoded once) names: its
/// numeric id or its UUID (double-encoded when it starts with `/` or contains `//`). Other
/// users' meetings do not exist for them (3001).
pub(crate) fn own_meeting_id(
    inner: &Inner,
    user: &SimUser,
    segment: &str,
) -> Result<i64, Response> {
    let found = match meeting_key(segment) {
        Some(RecordingKey::MeetingId(id)) => inner.meetings.get(&id),
        Some(RecordingKey::Uuid(uuid)) => inner
            .meetings
            .values()
            .find(|m| m.fields.get("uuid").and_then(Value::as_str) == Some(uuid.as_str())),
        Some(RecordingKey::WronglyEncoded) | None => None,
    };
    match found {
        Some(meeting) if meeting.host_id == user.id => Ok(meeting.id),
        _ => Err(meeting_not_found(segment)),
    }
}

/// Runs `f` on the user's meeting named by `segment`.
pub(crate) fn with_own_meeting<T>(
    sim: &ZoomSim,
    user: &SimUser,
    segment: &str,
    f: impl FnOnce(&mut Meeting) -> T,
) -> Result<T, Response> {
    let mut inner = sim.lock();
    let id = own_meeting_id(&inner, user, segment)?;
    match inner.meetings.get_mut(&id) {
        Some(meeting) => Ok(f(meeting)),
        None => Err(meeting_not_found(segment)),
    }
}

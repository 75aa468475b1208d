//! The control API under `/_sim/`: the Rust API over HTTP, for other processes and `make dev`.

use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ZoomSim;
use crate::types::{Fault, FaultTarget, SimRecording, SimUser};
use crate::util::json_response;

pub(crate) fn routes() -> Router<ZoomSim> {
    Router::new()
        .route("/_sim", get(index))
        .route("/_sim/", get(index))
        .route("/_sim/users", post(add_user))
        .route("/_sim/current-user", post(current_user))
        .route("/_sim/auto-approve", post(auto_approve))
        .route("/_sim/preapproval", post(preapproval))
        .route("/_sim/apps", post(register_app))
        .route("/_sim/faults", post(inject).delete(clear_faults))
        .route("/_sim/latency", post(latency))
        .route("/_sim/counters", get(counters))
        .route("/_sim/requests", get(requests))
        .route("/_sim/expire-access-tokens", post(expire_access_tokens))
        .route("/_sim/revoke-user-tokens", post(revoke_user_tokens))
        .route("/_sim/deauthorize", post(deauthorize))
        .route("/_sim/webhooks/events", post(send_event))
        .route("/_sim/recordings", post(add_recording))
        .route("/_sim/next-meeting-uuid", post(next_meeting_uuid))
        .route("/_sim/advance-clock", post(advance_clock))
}

fn bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({ "error": message }))
}

/// Unwraps a JSON body or answers 400 with the reason.
macro_rules! body {
    ($payload:expr) => {
        match $payload {
            Ok(Json(value)) => value,
            Err(rejection) => return bad_request(&rejection.body_text()),
        }
    };
}

fn done() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn index(State(sim): State<ZoomSim>) -> Response {
    let inner = sim.lock();
    json_response(
        StatusCode::OK,
        json!({
            "simulator": "zoom-sim",
            "users": inner.users,
            "current_user": inner.current_user,
            "auto_approve": inner.auto_approve,
            "apps": inner.apps.keys().collect::<Vec<_>>(),
            "counters": inner.counters,
            "routes": [
                "POST /_sim/users", "POST /_sim/current-user", "POST /_sim/auto-approve",
                "POST /_sim/preapproval", "POST /_sim/apps", "POST|DELETE /_sim/faults",
                "POST /_sim/latency", "GET /_sim/counters", "GET /_sim/requests",
                "POST /_sim/expire-access-tokens", "POST /_sim/revoke-user-tokens",
                "POST /_sim/deauthorize", "POST /_sim/recordings", "POST /_sim/next-meeting-uuid",
                "POST /_sim/advance-clock", "POST /_sim/meetings/{id}/start",
                "POST /_sim/meetings/{id}/participants", "POST /_sim/meetings/{id}/end",
                "POST /_sim/past-meetings", "POST /_sim/meeting-summaries"
            ],
        }),
    )
}

async fn add_user(
    State(sim): State<ZoomSim>,
    payload: Result<Json<SimUser>, JsonRejection>,
) -> Response {
    let user = body!(payload);
    sim.add_user(user.clone());
    json_response(StatusCode::CREATED, json!(user))
}

#[derive(Deserialize)]
struct UserRef {
    user_id: String,
}

async fn current_user(
    State(sim): State<ZoomSim>,
    payload: Result<Json<UserRef>, JsonRejection>,
) -> Response {
    let body = body!(payload);
    if sim.lock().user(&body.user_id).is_none() {
        return json_response(StatusCode::NOT_FOUND, json!({ "error": "unknown user" }));
    }
    sim.set_current_user(&body.user_id);
    done()
}

#[derive(Deserialize)]
struct Switch {
    #[serde(alias = "enabled")]
    on: bool,
}

async fn auto_approve(
    State(sim): State<ZoomSim>,
    payload: Result<Json<Switch>, JsonRejection>,
) -> Response {
    sim.set_auto_approve(body!(payload).on);
    done()
}

#[derive(Deserialize)]
struct Preapproval {
    account_id: String,
    #[serde(alias = "enabled")]
    on: bool,
}

async fn preapproval(
    State(sim): State<ZoomSim>,
    payload: Result<Json<Preapproval>, JsonRejection>,
) -> Response {
    let body = body!(payload);
    sim.set_require_preapproval(&body.account_id, body.on);
    done()
}

#[derive(Deserialize)]
struct AppRegistration {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    allow_loopback_redirects: bool,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

async fn register_app(
    State(sim): State<ZoomSim>,
    payload: Result<Json<AppRegistration>, JsonRejection>,
) -> Response {
    let app = body!(payload);
    sim.register_app(&app.client_id, &app.client_secret);
    for uri in &app.redirect_uris {
        sim.allow_redirect_uri(&app.client_id, uri);
    }
    if app.allow_loopback_redirects {
        sim.allow_loopback_redirects(&app.client_id);
    }
    if let Some(scopes) = &app.scopes {
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        sim.set_app_scopes(&app.client_id, &scopes);
    }
    done()
}

async fn inject(
    State(sim): State<ZoomSim>,
    payload: Result<Json<Fault>, JsonRejection>,
) -> Response {
    sim.inject(body!(payload));
    done()
}

async fn clear_faults(State(sim): State<ZoomSim>) -> Response {
    sim.clear_faults();
    done()
}

#[derive(Deserialize)]
struct Latency {
    target: FaultTarget,
    #[serde(alias = "delay_ms")]
    millis: u64,
}

async fn latency(
    State(sim): State<ZoomSim>,
    payload: Result<Json<Latency>, JsonRejection>,
) -> Response {
    let body = body!(payload);
    sim.set_latency(body.target, Duration::from_millis(body.millis));
    done()
}

async fn counters(State(sim): State<ZoomSim>) -> Response {
    json_response(StatusCode::OK, json!(sim.counters()))
}

async fn requests(State(sim): State<ZoomSim>) -> Response {
    let list: Vec<Value> = sim.requests().iter().map(|r| r.to_json()).collect();
    json_response(StatusCode::OK, json!({ "requests": list }))
}

async fn expire_access_tokens(State(sim): State<ZoomSim>) -> Response {
    sim.expire_access_tokens();
    done()
}

async fn revoke_user_tokens(
    State(sim): State<ZoomSim>,
    payload: Result<Json<UserRef>, JsonRejection>,
) -> Response {
    sim.revoke_user_tokens(&body!(payload).user_id);
    done()
}

#[derive(Deserialize)]
struct Deauthorize {
    user_id: String,
    #[serde(default)]
    client_id: Option<String>,
}

async fn deauthorize(
    State(sim): State<ZoomSim>,
    payload: Result<Json<Deauthorize>, JsonRejection>,
) -> Response {
    let body = body!(payload);
    let outcome = sim
        .deauthorize(&body.user_id, body.client_id.as_deref())
        .await;
    json_response(StatusCode::OK, json!(outcome))
}

#[derive(Deserialize)]
struct SendEvent {
    /// e.g. `meeting.started`, `recording.completed`.
    event: String,
    user_id: String,
}

/// Sends a signed event about a user to the configured webhook target.
async fn send_event(
    State(sim): State<ZoomSim>,
    payload: Result<Json<SendEvent>, JsonRejection>,
) -> Response {
    let body = body!(payload);
    let delivery = sim.send_event(&body.event, &body.user_id).await;
    json_response(StatusCode::OK, json!(delivery))
}

#[derive(Deserialize)]
struct RecordingRegistration {
    user_id: String,
    recording: SimRecording,
}

async fn add_recording(
    State(sim): State<ZoomSim>,
    payload: Result<Json<RecordingRegistration>, JsonRejection>,
) -> Response {
    let body = body!(payload);
    let answer = json!({ "meeting_id": body.recording.meeting_id, "uuid": body.recording.uuid });
    sim.add_recording(&body.user_id, body.recording);
    json_response(StatusCode::CREATED, answer)
}

#[derive(Deserialize)]
struct NextUuid {
    uuid: String,
}

async fn next_meeting_uuid(
    State(sim): State<ZoomSim>,
    payload: Result<Json<NextUuid>, JsonRejection>,
) -> Response {
    sim.set_next_meeting_uuid(&body!(payload).uuid);
    done()
}

#[derive(Deserialize)]
struct Advance {
    secs: u64,
}

async fn advance_clock(
    State(sim): State<ZoomSim>,
    payload: Result<Json<Advance>, JsonRejection>,
) -> Response {
    sim.advance_clock(Duration::from_secs(body!(payload).secs));
    done()
}

//! Control of meetings in progress, past meetings and summaries: the Rust methods on
//! [`ZoomSim`] and their `/_sim/` routes.
//!
//! | Rust | HTTP | body | answer |
//! |---|---|---|---|
//! | [`ZoomSim::start_meeting`] | `POST /_sim/meetings/{id}/start` | | 204, 404 |
//! | [`ZoomSim::join_participants`] | `POST /_sim/meetings/{id}/participants` | `{"participants":[{"name","user_email"?,"user_id"?,"registrant_id"?,"duration"?}]}` | 204, 404 |
//! | [`ZoomSim::end_meeting`] | `POST /_sim/meetings/{id}/end` | | 200 `{"uuid"}`, 404 (not in progress) |
//! | [`ZoomSim::add_past_meeting`] | `POST /_sim/past-meetings` | `{"meeting_id", "uuid"?, "start_time"?, "duration"?, "participants"?}` | 201 `{"uuid"}`, 404 |
//! | [`ZoomSim::set_meeting_summary`] | `POST /_sim/meeting-summaries` | `{"meeting": "<id or uuid>", "summary"?: {"summary_title"?, "summary_overview"?, "summary_details"?, "next_steps"?}}` | 201 `{"meeting_uuid"}`, 404 |
//!
//! Page tokens and download tokens expire on the simulator's clock: move it with
//! [`ZoomSim::advance_clock`] / `POST /_sim/advance-clock` `{"secs"}`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use crate::types::{SimMeetingSummary, SimParticipant, SimPastMeeting};
use crate::util::json_response;
use crate::{ZoomSim, past_meetings};

impl ZoomSim {
    /// Starts a meeting (status `started`, listed as `live`); its host joins. `false` when the
    /// meeting does not exist.
    pub fn start_meeting(&self, meeting_id: i64) -> bool {
        past_meetings::start_instance(&mut self.lock(), meeting_id)
    }

    /// Participants join a meeting, which starts if it was not in progress. `false` when the
    /// meeting does not exist.
    pub fn join_participants(&self, meeting_id: i64, participants: Vec<SimParticipant>) -> bool {
        let mut inner = self.lock();
        if !past_meetings::start_instance(&mut inner, meeting_id) {
            return false;
        }
        if let Some(live) = inner
            .meetings
            .get_mut(&meeting_id)
            .and_then(|m| m.live.as_mut())
        {
            live.participants.extend(participants);
        }
        true
    }

    /// Ends a meeting in progress (as `PUT /meetings/{id}/status` `{"action":"end"}` does): the
    /// instance becomes a past meeting with its participants and the meeting gets a new UUID.
    /// Returns the instance UUID, `None` when the meeting was not in progress.
    pub fn end_meeting(&self, meeting_id: i64) -> Option<String> {
        past_meetings::end_live_instance(&mut self.lock(), meeting_id)
    }

    /// Records a held instance of an existing meeting (default: the meeting's current UUID,
    /// which then changes; ended now; 30 minutes; the host as the only participant). Returns
    /// the instance UUID, `None` when the meeting does not exist.
    pub fn add_past_meeting(&self, meeting_id: i64, past: SimPastMeeting) -> Option<String> {
        past_meetings::add_past(&mut self.lock(), meeting_id, past)
    }

    /// Attaches an AI Companion summary to a meeting instance, named by UUID (of a past
    /// instance or a meeting) or by meeting id (its latest past instance, else its current
    /// UUID). Replaces an earlier summary of that instance. Returns the instance UUID.
    pub fn set_meeting_summary(&self, meeting: &str, summary: SimMeetingSummary) -> Option<String> {
        past_meetings::attach_summary(&mut self.lock(), meeting, summary)
    }

    /// Webinars that currently exist.
    pub fn webinars_count(&self) -> usize {
        self.lock().webinars.len()
    }
}

pub(crate) fn routes() -> Router<ZoomSim> {
    Router::new()
        .route("/_sim/meetings/{id}/start", post(start))
        .route("/_sim/meetings/{id}/participants", post(participants))
        .route("/_sim/meetings/{id}/end", post(end))
        .route("/_sim/past-meetings", post(past))
        .route("/_sim/meeting-summaries", post(summary))
}

fn unknown_meeting() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({ "error": "unknown meeting" }))
}

fn bad_request(rejection: &JsonRejection) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "error": rejection.body_text() }),
    )
}

async fn start(State(sim): State<ZoomSim>, Path(id): Path<i64>) -> Response {
    if sim.start_meeting(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_meeting()
    }
}

#[derive(Deserialize)]
struct Joining {
    participants: Vec<SimParticipant>,
}

async fn participants(
    State(sim): State<ZoomSim>,
    Path(id): Path<i64>,
    payload: Result<Json<Joining>, JsonRejection>,
) -> Response {
    let body = match payload {
        Ok(Json(body)) => body,
        Err(rejection) => return bad_request(&rejection),
    };
    if sim.join_participants(id, body.participants) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_meeting()
    }
}

async fn end(State(sim): State<ZoomSim>, Path(id): Path<i64>) -> Response {
    match sim.end_meeting(id) {
        Some(uuid) => json_response(StatusCode::OK, json!({ "uuid": uuid })),
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({ "error": "unknown meeting, or not in progress" }),
        ),
    }
}

#[derive(Deserialize)]
struct PastRegistration {
    meeting_id: i64,
    #[serde(flatten)]
    past: SimPastMeeting,
}

async fn past(
    State(sim): State<ZoomSim>,
    payload: Result<Json<PastRegistration>, JsonRejection>,
) -> Response {
    let body = match payload {
        Ok(Json(body)) => body,
        Err(rejection) => return bad_request(&rejection),
    };
    match sim.add_past_meeting(body.meeting_id, body.past) {
        Some(uuid) => json_response(StatusCode::CREATED, json!({ "uuid": uuid })),
        None => unknown_meeting(),
    }
}

#[derive(Deserialize)]
struct SummaryRegistration {
    /// A meeting id (number or string) or an instance UUID.
    meeting: serde_json::Value,
    #[serde(default)]
    summary: SimMeetingSummary,
}

async fn summary(
    State(sim): State<ZoomSim>,
    payload: Result<Json<SummaryRegistration>, JsonRejection>,
) -> Response {
    let body = match payload {
        Ok(Json(body)) => body,
        Err(rejection) => return bad_request(&rejection),
    };
    let meeting = match &body.meeting {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match sim.set_meeting_summary(&meeting, body.summary) {
        Some(uuid) => json_response(StatusCode::CREATED, json!({ "meeting_uuid": uuid })),
        None => unknown_meeting(),
    }
}

//! Held meetings: `/past_meetings/{meetingId}` (details, instances, participants), the AI
//! Companion summary of `/meetings/{meetingId}/meeting_summary`, and how instances come to be
//! (a meeting in progress that ends, or one recorded through the control API).
//!
//! A numeric `{meetingId}` means the latest instance; a UUID (double-encoded when it starts
//! with `/` or contains `//`) means that instance. Every instance has its own UUID: when one
//! ends, the meeting gets a new UUID for the next (the queue of `set_next_meeting_uuid` first).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::ZoomSim;
use crate::paging;
use crate::recordings::{RecordingKey, meeting_key};
use crate::rest::{gate, meeting_not_found, query_pairs, try_answer};
use crate::state::{Inner, PastInstance, StoredSummary};
use crate::types::{SimMeetingSummary, SimParticipant, SimPastMeeting, SimUser};
use crate::util::{json_response, zoom_time};

/// The per-session participant numbers Zoom reports as `user_id` start here.
const FIRST_SESSION_ID: u64 = 16_778_240;

/// The instance a `{meetingId}` segment names among the user's instances.
fn find_instance<'a>(inner: &'a Inner, user: &SimUser, segment: &str) -> Option<&'a PastInstance> {
    let mine = inner.past_meetings.iter().filter(|p| p.host_id == user.id);
    match meeting_key(segment)? {
        RecordingKey::MeetingId(id) => mine
            .filter(|p| p.meeting_id == id)
            .max_by_key(|p| p.start_time),
        RecordingKey::Uuid(uuid) => mine.into_iter().find(|p| p.uuid == uuid),
        RecordingKey::WronglyEncoded => None,
    }
}

fn participant_json(instance: &PastInstance, index: usize, p: &SimParticipant) -> Value {
    let length = (instance.end_time - instance.start_time)
        .whole_seconds()
        .max(0);
    let seconds = p.duration.map_or(length, i64::from).min(length);
    let join = instance.start_time;
    json!({
        "id": p.user_id,
        "user_id": (FIRST_SESSION_ID + 1024 * index as u64).to_string(),
        "name": p.name,
        "user_email": p.user_email,
        "join_time": zoom_time(join),
        "leave_time": zoom_time(join + Duration::seconds(seconds)),
        "duration": seconds,
        "registrant_id": p.registrant_id,
        "failover": false,
        "status": "in_meeting",
        "internal_user": !p.user_id.is_empty(),
    })
}

pub(crate) async fn details(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, "/past_meetings/{meetingId}");
    let inner = sim.lock();
    let Some(p) = find_instance(&inner, &user, &meeting_id) else {
        return meeting_not_found(&meeting_id);
    };
    let minutes = (p.end_time - p.start_time).whole_minutes();
    let has_summary = inner.summaries.iter().any(|s| s.meeting_uuid == p.uuid);
    json_response(
        StatusCode::OK,
        json!({
            "uuid": p.uuid,
            "id": p.meeting_id,
            "host_id": p.host_id,
            "type": p.meeting_type,
            "topic": p.topic,
            "user_name": p.host_name,
            "user_email": p.host_email,
            "start_time": zoom_time(p.start_time),
            "end_time": zoom_time(p.end_time),
            "duration": minutes,
            "total_minutes": minutes * i64::try_from(p.participants.len().max(1)).unwrap_or(1),
            "participants_count": p.participants.len(),
            "dept": "",
            "source": "Zoom",
            "has_meeting_summary": has_summary,
        }),
    )
}

pub(crate) async fn instances(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(sim, headers, method, "/past_meetings/{meetingId}/instances");
    let inner = sim.lock();
    let Ok(id) = meeting_id.parse::<i64>() else {
        return meeting_not_found(&meeting_id);
    };
    let mut held: Vec<&PastInstance> = inner
        .past_meetings
        .iter()
        .filter(|p| p.meeting_id == id && p.host_id == user.id)
        .collect();
    let exists = inner
        .meetings
        .get(&id)
        .is_some_and(|m| m.host_id == user.id)
        || inner
            .deleted_meetings
            .get(&id)
            .is_some_and(|(m, _)| m.host_id == user.id);
    if held.is_empty() && !exists {
        return meeting_not_found(&meeting_id);
    }
    held.sort_by_key(|p| p.start_time);
    let list: Vec<Value> = held
        .iter()
        .map(|p| json!({ "uuid": p.uuid, "start_time": zoom_time(p.start_time) }))
        .collect();
    json_response(StatusCode::OK, json!({ "meetings": list }))
}

pub(crate) async fn participants(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let user = gate!(
        sim,
        headers,
        method,
        "/past_meetings/{meetingId}/participants"
    );
    let pairs = query_pairs(query);
    let mut inner = sim.lock();
    let Some(instance) = find_instance(&inner, &user, &meeting_id).cloned() else {
        return meeting_not_found(&meeting_id);
    };
    let list = format!("participants:{}", instance.uuid);
    let count = instance.participants.len();
    let page = try_answer!(paging::page(&mut inner, &user.id, &list, &pairs, |_| {
        (0..count).map(|i| i.to_string()).collect()
    }));
    drop(inner);
    let items: Vec<Value> = page
        .keys
        .iter()
        .filter_map(|k| k.parse::<usize>().ok())
        .filter_map(|i| instance.participants.get(i).map(|p| (i, p)))
        .map(|(i, p)| participant_json(&instance, i, p))
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "page_size": page.page_size,
            "page_count": page.page_count(),
            "total_records": page.total_records,
            "next_page_token": page.next_page_token,
            "participants": items,
        }),
    )
}

/// `GET /meetings/{id}/meeting_summary`; no summary answers 404 code 3001.
pub(crate) async fn summary(
    State(sim): State<ZoomSim>,
    method: Method,
    headers: HeaderMap,
    Path(meeting_id): Path<String>,
) -> Response {
    let user = gate!(
        sim,
        headers,
        method,
        "/meetings/{meetingId}/meeting_summary"
    );
    let inner = sim.lock();
    let mine = inner.summaries.iter().filter(|s| s.host_id == user.id);
    let found = match meeting_key(&meeting_id) {
        Some(RecordingKey::MeetingId(id)) => mine
            .filter(|s| s.meeting_id == id)
            .max_by_key(|s| s.start_time),
        Some(RecordingKey::Uuid(uuid)) => mine.into_iter().find(|s| s.meeting_uuid == uuid),
        _ => None,
    };
    let Some(s) = found else {
        return crate::util::zoom_error(
            StatusCode::NOT_FOUND,
            3001,
            "Meeting summary does not exist.",
        );
    };
    let content = format!(
        "## {}\n\n{}\n\n{}\n\n### Next steps\n{}",
        s.summary.summary_title,
        s.summary.summary_overview,
        s.summary
            .summary_details
            .iter()
            .map(|d| format!("### {}\n{}", d.label, d.summary))
            .collect::<Vec<_>>()
            .join("\n\n"),
        s.summary
            .next_steps
            .iter()
            .map(|n| format!("- {n}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    json_response(
        StatusCode::OK,
        json!({
            "meeting_host_id": s.host_id,
            "meeting_host_email": s.host_email,
            "meeting_uuid": s.meeting_uuid,
            "meeting_id": s.meeting_id,
            "meeting_topic": s.topic,
            "meeting_start_time": zoom_time(s.start_time),
            "meeting_end_time": zoom_time(s.end_time),
            "summary_start_time": zoom_time(s.start_time),
            "summary_end_time": zoom_time(s.end_time),
            "summary_created_time": zoom_time(s.created),
            "summary_last_modified_time": zoom_time(s.created),
            "summary_title": s.summary.summary_title,
            "summary_overview": s.summary.summary_overview,
            "summary_details": s.summary.summary_details,
            "next_steps": s.summary.next_steps,
            "summary_content": content,
        }),
    )
}

// ---- how instances come to be ----------------------------------------------------------

/// Records a held instance of meeting `id` (which must exist); returns its UUID.
fn record(
    inner: &mut Inner,
    id: i64,
    uuid: Option<String>,
    start_time: OffsetDateTime,
    end_time: OffsetDateTime,
    participants: Vec<SimParticipant>,
) -> Option<String> {
    let next = inner.next_uuid();
    let meeting = inner.meetings.get_mut(&id)?;
    let current = meeting
        .fields
        .get("uuid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let uuid = match uuid {
        Some(uuid) => uuid,
        None => {
            meeting.fields.insert("uuid".into(), json!(next));
            current
        }
    };
    let text = |key: &str| {
        meeting
            .fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (topic, host_email) = (text("topic"), text("host_email"));
    let meeting_type = meeting
        .fields
        .get("type")
        .and_then(Value::as_i64)
        .unwrap_or(2);
    let host_id = meeting.host_id.clone();
    let host_name = inner
        .user(&host_id)
        .map(|u| format!("{} {}", u.first_name, u.last_name))
        .unwrap_or_default();
    inner.past_meetings.push(PastInstance {
        meeting_id: id,
        uuid: uuid.clone(),
        host_id,
        host_email,
        host_name,
        topic,
        meeting_type,
        start_time,
        end_time,
        participants,
    });
    Some(uuid)
}

/// Ends meeting `id` if it is in progress: its instance becomes a past meeting. Returns the
/// instance UUID, `None` when nothing was in progress.
pub(crate) fn end_live_instance(inner: &mut Inner, id: i64) -> Option<String> {
    let now = inner.now();
    let meeting = inner.meetings.get_mut(&id)?;
    let live = meeting.live.take()?;
    meeting.fields.insert("status".into(), json!("waiting"));
    record(inner, id, None, live.start_time, now, live.participants)
}

/// Starts meeting `id` (status `started`); the host joins. `false` when it does not exist.
pub(crate) fn start_instance(inner: &mut Inner, id: i64) -> bool {
    let now = inner.now();
    let Some(meeting) = inner.meetings.get(&id) else {
        return false;
    };
    let host = inner.user(&meeting.host_id).cloned();
    let Some(meeting) = inner.meetings.get_mut(&id) else {
        return false;
    };
    if meeting.live.is_none() {
        let mut host_participant = SimParticipant::new("Host", "");
        if let Some(host) = host {
            host_participant = SimParticipant {
                user_id: host.id.clone(),
                ..SimParticipant::new(
                    &format!("{} {}", host.first_name, host.last_name),
                    &host.email,
                )
            };
        }
        meeting.live = Some(crate::state::LiveInstance {
            start_time: now,
            participants: vec![host_participant],
        });
        meeting.fields.insert("status".into(), json!("started"));
    }
    true
}

/// Records a held instance from the control API; `None` when the meeting does not exist.
pub(crate) fn add_past(inner: &mut Inner, id: i64, past: SimPastMeeting) -> Option<String> {
    let minutes = i64::from(past.duration.unwrap_or(30));
    let start = past
        .start_time
        .unwrap_or_else(|| inner.now() - Duration::minutes(minutes));
    let mut participants = past.participants;
    if participants.is_empty() {
        let meeting = inner.meetings.get(&id)?;
        if let Some(host) = inner.user(&meeting.host_id) {
            participants.push(SimParticipant {
                user_id: host.id.clone(),
                ..SimParticipant::new(
                    &format!("{} {}", host.first_name, host.last_name),
                    &host.email,
                )
            });
        }
    }
    record(
        inner,
        id,
        past.uuid,
        start,
        start + Duration::minutes(minutes),
        participants,
    )
}

/// Attaches a summary to an instance: a UUID of a past instance or of a meeting, or a meeting
/// id (its latest past instance, else its current UUID). Returns the instance UUID.
pub(crate) fn attach_summary(
    inner: &mut Inner,
    meeting: &str,
    summary: SimMeetingSummary,
) -> Option<String> {
    let created = inner.now();
    let by_id = meeting.parse::<i64>().ok();
    let past = inner
        .past_meetings
        .iter()
        .filter(|p| by_id.map_or(p.uuid == meeting, |id| p.meeting_id == id))
        .max_by_key(|p| p.start_time)
        .cloned();
    let stored = match past {
        Some(p) => StoredSummary {
            meeting_id: p.meeting_id,
            meeting_uuid: p.uuid,
            host_id: p.host_id,
            host_email: p.host_email,
            topic: p.topic,
            start_time: p.start_time,
            end_time: p.end_time,
            created,
            summary,
        },
        None => {
            let m = inner.meetings.values().find(|m| {
                by_id.map_or(
                    m.fields.get("uuid").and_then(Value::as_str) == Some(meeting),
                    |id| m.id == id,
                )
            })?;
            let text = |key: &str| {
                m.fields
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            StoredSummary {
                meeting_id: m.id,
                meeting_uuid: text("uuid"),
                host_id: m.host_id.clone(),
                host_email: text("host_email"),
                topic: text("topic"),
                start_time: created - Duration::minutes(30),
                end_time: created,
                created,
                summary,
            }
        }
    };
    let uuid = stored.meeting_uuid.clone();
    inner.summaries.retain(|s| s.meeting_uuid != uuid);
    inner.summaries.push(stored);
    Some(uuid)
}

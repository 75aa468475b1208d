//! Event-driven meeting creation: each `idempotency_key` creates at most one meeting, however
//! often or concurrently its event is delivered.

use serde::Deserialize;
use std::time::Duration;

use super::actions::{IdempotencyStart, IdempotentAnswer, ZoomCall, validate_meeting};
use super::{Connector, events};
use crate::error::ApiError;
use crate::secret::sha256_hex;

/// `{ idempotency_key, connection_id, meeting, correlation_id? }`.
#[derive(Debug, Clone, Deserialize)]
pub struct MeetingEvent {
    pub idempotency_key: String,
    pub connection_id: String,
    pub meeting: serde_json::Value,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// What the queue should do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Done (created now or before, or failed for good and reported): delete the message.
    Settled,
    /// Transient failure: leave it for the queue to deliver again.
    Retry(String),
}

/// The message body, plain or as the `detail` of an EventBridge envelope.
pub fn parse_meeting_event(
    body: &str,
) -> Result<MeetingEvent, (Option<serde_json::Value>, String)> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| (None, format!("the body is not JSON: {e}")))?;
    let value = if value.get("detail-type").is_some() && value.get("detail").is_some() {
        value["detail"].clone()
    } else {
        value
    };
    let event: MeetingEvent = serde_json::from_value(value.clone())
        .map_err(|e| (Some(value.clone()), format!("invalid meeting event: {e}")))?;
    if event.idempotency_key.is_empty() || event.idempotency_key.len() > 255 {
        return Err((
            Some(value),
            "`idempotency_key` must be 1 to 255 characters".into(),
        ));
    }
    Ok(event)
}

fn is_transient(e: &ApiError) -> bool {
    e.status.as_u16() == 429 || e.status.is_server_error() || e.code == "request_in_progress"
}

impl Connector {
    /// Processes one message body.
    pub async fn process_meeting_event(&self, body: &str) -> EventOutcome {
        let event = match parse_meeting_event(body) {
            Ok(e) => e,
            Err((value, message)) => {
                let field = |name: &str| {
                    value
                        .as_ref()
                        .and_then(|v| v.get(name))
                        .cloned()
                        .unwrap_or(serde_json::Value::Null)
                };
                self.publish(
                    events::MEETING_CREATION_FAILED,
                    serde_json::json!({
                        "idempotency_key": field("idempotency_key"),
                        "correlation_id": field("correlation_id"),
                        "connection_id": field("connection_id"),
                        "error": { "code": "validation_failed", "message": message },
                    }),
                )
                .await;
                return EventOutcome::Settled;
            }
        };
        match self.create_meeting_for_event(&event).await {
            Ok(meeting) => {
                self.publish(
                    events::MEETING_CREATED,
                    serde_json::json!({
                        "idempotency_key": event.idempotency_key,
                        "correlation_id": event.correlation_id,
                        "connection_id": event.connection_id,
                        "meeting": {
                            "id": meeting["id"], "uuid": meeting["uuid"], "join_url": meeting["join_url"],
                            "start_time": meeting["start_time"], "topic": meeting["topic"],
                        },
                    }),
                )
                .await;
                EventOutcome::Settled
            }
            Err(e) if is_transient(&e) => {
                tracing::warn!(error = %e, "meeting event will be retried");
                EventOutcome::Retry(e.code.to_owned())
            }
            Err(e) => {
                self.publish(
                    events::MEETING_CREATION_FAILED,
                    serde_json::json!({
                        "idempotency_key": event.idempotency_key,
                        "correlation_id": event.correlation_id,
                        "connection_id": event.connection_id,
                        "error": { "code": e.code, "message": e.detail, "zoom": e.zoom },
                    }),
                )
                .await;
                EventOutcome::Settled
            }
        }
    }

    /// The meeting of this event: the recorded one, or a new one.
    async fn create_meeting_for_event(
        &self,
        event: &MeetingEvent,
    ) -> Result<serde_json::Value, ApiError> {
        validate_meeting(&event.meeting, true)?;
        let key = format!("event|{}", sha256_hex(&event.idempotency_key));
        let fingerprint = sha256_hex(&format!("{}|{}", event.connection_id, event.meeting));
        // Concurrent deliveries wait briefly for the first; longer, SQS delivers again later.
        let (version, resumed_from) = match self
            .begin_idempotent(&key, &fingerprint, Duration::from_secs(5))
            .await?
        {
            IdempotencyStart::Done(answer) => return Ok(answer.body),
            IdempotencyStart::Started {
                version,
                resumed_from,
            } => (version, resumed_from),
        };
        // A previous worker died mid-way: it may have created the meeting before it could
        // record it. Look for that meeting at Zoom before creating another.
        let found = match resumed_from {
            Some(since) => {
                self.find_created_meeting(&event.connection_id, &event.meeting, since)
                    .await
            }
            None => None,
        };
        let result = match found {
            Some(found) => Ok(found),
            None => {
                let call = ZoomCall::json(http::Method::POST, "/users/me/meetings", &event.meeting);
                match self.zoom_pass(&event.connection_id, &call).await {
                    Ok(answer) => serde_json::from_slice(&answer.body).map_err(|_| {
                        ApiError::new(
                            http::StatusCode::BAD_GATEWAY,
                            "zoom_error",
                            "Zoom's answer could not be read.",
                        )
                    }),
                    Err(e) => Err(e),
                }
            }
        };
        match &result {
            Ok(meeting) => {
                let answer = IdempotentAnswer {
                    status: 201,
                    body: meeting.clone(),
                    fingerprint,
                };
                self.finish_idempotent(&key, version, &answer).await?;
            }
            Err(_) => {
                // Let a retry (or the next delivery) claim it again.
                self.store
                    .delete_item(crate::ports::ItemKind::Idempotency, &key, Some(version))
                    .await?;
            }
        }
        result
    }

    /// A meeting with the same topic and start time created at Zoom recently by this
    /// connection: the trace of a worker that crashed after Zoom created it.
    async fn find_created_meeting(
        &self,
        connection_id: &str,
        meeting: &serde_json::Value,
        since: i64,
    ) -> Option<serde_json::Value> {
        let mut call = ZoomCall::get("/users/me/meetings");
        call.query = Some("type=scheduled&page_size=300".into());
        let response = self.zoom_pass(connection_id, &call).await.ok()?;
        let list: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        // Clocks differ a little between us and Zoom.
        let window = time::OffsetDateTime::from_unix_timestamp(since - 30).ok()?;
        list["meetings"]
            .as_array()?
            .iter()
            .find(|m| {
                let created = m["created_at"].as_str().and_then(|c| {
                    time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339)
                        .ok()
                });
                m["topic"] == meeting["topic"]
                    && (meeting.get("start_time").is_none()
                        || m["start_time"].as_str().map(|s| s.trim_end_matches('Z'))
                            == meeting["start_time"]
                                .as_str()
                                .map(|s| s.trim_end_matches('Z')))
                    && created.is_some_and(|c| c >= window)
            })
            .cloned()
    }
}

/// Messages of one batch processed at once.
pub const BATCH_CONCURRENCY: usize = 10;

impl Connector {
    /// Processes a batch of `(message id, body)`; returns the ids to deliver again
    /// (`batchItemFailures`).
    pub async fn process_meeting_batch(&self, messages: Vec<(String, String)>) -> Vec<String> {
        use futures::StreamExt;
        futures::stream::iter(messages)
            .map(|(id, body)| async move { (id, self.process_meeting_event(&body).await) })
            .buffer_unordered(BATCH_CONCURRENCY)
            .filter_map(|(id, outcome)| async move {
                matches!(outcome, EventOutcome::Retry(_)).then_some(id)
            })
            .collect()
            .await
    }
}

//! Event-driven meeting creation: each `idempotency_key` creates at most one meeting, however
//! often or concurrently its event is delivered.
//!
//! One delivery:
//! 1. Parse (plain body or the `detail` of an EventBridge envelope). A body without a key is
//!    reported as `validation_failed` and settled.
//! 2. Claim the key's idempotency record (`begin_idempotent`). A finished record settles the
//!    delivery without a second outcome event; a record another worker holds makes this
//!    delivery wait briefly, then come back later through the queue.
//! 3. Validate, then create the meeting at Zoom. When the record was taken over from a worker
//!    that died mid-way, or a previous attempt ended without knowing whether Zoom created the
//!    meeting (timeout, 5xx), first look for that meeting at Zoom (`find_created_meeting`).
//! 4. Claim the meeting id (so one meeting never answers for two keys), publish
//!    `Zoom Meeting Created`, then mark the record done. Publishing before finishing means a
//!    crash in between publishes again on the next delivery (at least once), never zero times.
//!
//! Failures (API.md): permanent ones (validation, Zoom 4xx other than 429, a connection that
//! is not usable) publish `Zoom Meeting Creation Failed` once and settle; transient ones
//! (429, 5xx, timeouts, storage hiccups) leave the message for the queue to deliver again.

use std::time::Duration;

use super::actions::meetings::MeetingEvent;
use super::idempotency::IdempotencyStart;
use super::{Connector, events};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::idempotency::{IDEMPOTENCY_TTL_SECS, IdempotencyRecord, IdempotentAnswer};
use crate::ports::ItemKind;
use crate::secret::sha256_hex;

/// What the queue should do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Done (created now or before, or failed for good and reported): delete the message.
    Settled,
    /// Transient failure: leave it for the queue to deliver again.
    Retry(String),
}

/// How long concurrent deliveries of one key wait for the first before coming back later.
const CONCURRENT_WAIT: Duration = Duration::from_secs(5);

/// A permanent failure is remembered this long, so concurrent or quick duplicate deliveries
/// do not report it again; a re-send after that (e.g. after reconnecting) tries again.
pub const FAILURE_MEMORY_SECS: i64 = 60;

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
    if !crate::domain::is_connection_id(&event.connection_id) {
        return Err((
            Some(value),
            "`connection_id` is not a connection id (`conn_` followed by letters and digits)"
                .into(),
        ));
    }
    Ok(event)
}

/// Key of an event's idempotency record (`ItemKind::Idempotency`). HTTP `Idempotency-Key`
/// records live beside them under `http|...`.
pub fn event_record_key(idempotency_key: &str) -> String {
    format!("event|{}", sha256_hex(idempotency_key))
}

/// What identifies "the same request" for a key: the connection and the meeting body
/// (`serde_json` maps are ordered, so key order in the message does not matter).
pub fn event_fingerprint(event: &MeetingEvent) -> String {
    sha256_hex(&format!("{}|{}", event.connection_id, event.meeting))
}

/// Worth another delivery (API.md: 429, 5xx, timeouts)? Zoom's own status decides when
/// Zoom answered; e.g. a 401 that survived a refresh is permanent.
pub fn is_transient(e: &ApiError) -> bool {
    if let Some(zoom) = &e.zoom {
        return zoom.status == 429 || zoom.status >= 500;
    }
    e.status.as_u16() == 429 || e.status.is_server_error() || e.code == ErrorCode::RequestInProgress
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
                        .filter(|v| v.is_string())
                        .cloned()
                        .unwrap_or(serde_json::Value::Null)
                };
                tracing::warn!(error = %message, "meeting event refused");
                self.publish(
                    events::MEETING_CREATION_FAILED,
                    serde_json::json!({
                        "idempotency_key": field("idempotency_key"),
                        "correlation_id": field("correlation_id"),
                        // Echoed only when it is one (not 5 KB of whatever was sent).
                        "connection_id": Some(field("connection_id"))
                            .filter(|v| v.as_str().is_some_and(crate::domain::is_connection_id))
                            .unwrap_or(serde_json::Value::Null),
                        "error": { "code": "validation_failed", "message": message },
                    }),
                )
                .await;
                return EventOutcome::Settled;
            }
        };
        self.settle_meeting_event(&event).await
    }

    async fn settle_meeting_event(&self, event: &MeetingEvent) -> EventOutcome {
        let key = event_record_key(&event.idempotency_key);
        let fingerprint = event_fingerprint(event);
        let (version, resumed_from) = match self
            .begin_idempotent(&key, &fingerprint, CONCURRENT_WAIT)
            .await
        {
            Ok(IdempotencyStart::Done(answer)) => return self.replayed(event, &answer).await,
            Ok(IdempotencyStart::Started {
                version,
                resumed_from,
            }) => (version, resumed_from),
            // Another delivery is at it, or the store hiccupped: come back later.
            Err(e) if is_transient(&e) => return EventOutcome::Retry(e.code.to_string()),
            Err(e) => {
                self.report_failure(event, &e).await;
                return EventOutcome::Settled;
            }
        };
        // If this attempt ends without knowing whether Zoom created the meeting, the record is
        // left for takeover with the earliest time Zoom may have created it: this attempt's
        // start, or that of the attempt it resumed, so the next lookup covers both.
        let since = resumed_from.unwrap_or_else(|| self.now_unix());
        let meeting = match self.obtain_meeting(event, &key, resumed_from).await {
            Ok(meeting) => meeting,
            Err(failure) if is_transient(&failure.error) => {
                tracing::warn!(error = %failure.error, connection_id = %event.connection_id, "meeting event will be retried");
                if failure.maybe_created {
                    self.leave_for_takeover(&key, version, &fingerprint, since)
                        .await;
                } else {
                    self.release_record(&key, version).await;
                }
                return EventOutcome::Retry(failure.error.code.to_string());
            }
            Err(failure) => {
                // After an unknown outcome (e.g. the lookup itself was refused) the record
                // keeps "Zoom may have created it": a re-send after the memory runs out looks
                // at Zoom before creating.
                let unknown_since = failure.maybe_created.then_some(since);
                self.remember_failure(&key, version, &fingerprint, &failure.error, unknown_since)
                    .await;
                self.report_failure(event, &failure.error).await;
                return EventOutcome::Settled;
            }
        };
        let detail = serde_json::json!({
            "idempotency_key": event.idempotency_key,
            "correlation_id": event.correlation_id,
            "connection_id": event.connection_id,
            "meeting": {
                "id": meeting["id"], "uuid": meeting["uuid"], "join_url": meeting["join_url"],
                "start_time": meeting["start_time"], "topic": meeting["topic"],
            },
        });
        if let Err(e) = self.publish_counted(events::MEETING_CREATED, &detail).await {
            // The meeting exists; the next delivery finds it (it is claimed by this key) and
            // publishes again.
            tracing::error!(error = %e, "could not publish the meeting outcome; will retry");
            self.leave_for_takeover(&key, version, &fingerprint, since)
                .await;
            return EventOutcome::Retry("publish_failed".into());
        }
        // Kept without the host key (`start_url`) and passcodes, like HTTP answers; a
        // replayed delivery publishes nothing, so nothing needs them back.
        let answer = IdempotentAnswer {
            status: 201,
            body: crate::zoom::stored::without_secrets(&meeting),
            fingerprint,
        };
        if let Err(e) = self.finish_idempotent(&key, version, &answer).await {
            // Created and reported; a duplicate delivery takes the record over later and finds
            // the meeting again.
            tracing::error!(error = %e, "could not mark the meeting event done");
        }
        EventOutcome::Settled
    }

    /// A delivery of a key whose record is finished: nothing to create, nothing to report,
    /// unless the key now comes with a different request.
    async fn replayed(&self, event: &MeetingEvent, answer: &IdempotentAnswer) -> EventOutcome {
        if answer.fingerprint != event_fingerprint(event) {
            let error = ApiError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                "This idempotency_key was already used with a different connection or meeting.",
            );
            self.report_failure(event, &error).await;
        } else {
            tracing::debug!(
                connection_id = %event.connection_id,
                "meeting event already settled; duplicate delivery acknowledged"
            );
        }
        EventOutcome::Settled
    }

    /// Keeps a permanent failure briefly so duplicates settle without a second report. When
    /// Zoom may have created the meeting (`unknown_since`), the record outlives the memory
    /// (kept like any answer) so that the delivery after it looks at Zoom first.
    async fn remember_failure(
        &self,
        key: &str,
        version: u64,
        fingerprint: &str,
        e: &ApiError,
        unknown_since: Option<i64>,
    ) {
        let now = self.now_unix();
        let answer = IdempotentAnswer {
            status: e.status.as_u16(),
            body: serde_json::json!({ "error": { "code": e.code, "message": e.detail } }),
            fingerprint: fingerprint.to_owned(),
        };
        let (record, expires_at) = match unknown_since {
            Some(since) => (
                IdempotencyRecord::failed_maybe_created(answer, since, now + FAILURE_MEMORY_SECS),
                now + IDEMPOTENCY_TTL_SECS,
            ),
            None => (IdempotencyRecord::done(answer), now + FAILURE_MEMORY_SECS),
        };
        let kept = self
            .store
            .replace_item(
                ItemKind::Idempotency,
                key,
                &record.to_value(),
                Some(expires_at),
                version,
            )
            .await;
        if !matches!(kept, Ok(true)) {
            match unknown_since {
                // Releasing would forget that Zoom may have created it: leave it for takeover.
                Some(since) => {
                    self.leave_for_takeover(key, version, fingerprint, since)
                        .await;
                }
                None => self.release_record(key, version).await,
            }
        }
    }

    async fn report_failure(&self, event: &MeetingEvent, e: &ApiError) {
        tracing::info!(code = e.code.as_str(), connection_id = %event.connection_id, "meeting event failed for good");
        let mut error = serde_json::json!({ "code": e.code, "message": e.detail });
        if let Some(zoom) = &e.zoom {
            error["zoom"] = serde_json::to_value(zoom).unwrap_or_default();
        }
        self.publish(
            events::MEETING_CREATION_FAILED,
            serde_json::json!({
                "idempotency_key": event.idempotency_key,
                "correlation_id": event.correlation_id,
                "connection_id": event.connection_id,
                "error": error,
            }),
        )
        .await;
    }
}

/// The meeting queue's `maxReceiveCount` in template.yaml (tests/template asserts 5 there).
pub const SQS_MAX_RECEIVE_COUNT: u32 = 5;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::actions::meetings::same_meeting;

    #[test]
    fn envelope_and_plain_bodies_parse() {
        let plain = r#"{"idempotency_key":"k","connection_id":"c","meeting":{"topic":"t"}}"#;
        assert_eq!(parse_meeting_event(plain).unwrap().idempotency_key, "k");
        let envelope = format!(
            r#"{{"version":"0","detail-type":"Create Zoom Meeting","source":"crm","detail":{plain}}}"#
        );
        assert_eq!(parse_meeting_event(&envelope).unwrap().connection_id, "c");
        assert!(parse_meeting_event("nope").unwrap_err().0.is_none());
        let (value, _) =
            parse_meeting_event(r#"{"idempotency_key":"","connection_id":"c","meeting":{}}"#)
                .unwrap_err();
        assert_eq!(value.unwrap()["connection_id"], "c");
    }

    #[test]
    fn transient_split_follows_zoom_status() {
        use crate::domain::error::ZoomErrorInfo;
        let zoom = |status| ZoomErrorInfo {
            status,
            code: None,
            message: String::new(),
        };
        let mapped = |status: u16, code| {
            ApiError::new(http::StatusCode::from_u16(status).unwrap(), code, "")
        };
        assert!(is_transient(
            &mapped(429, ErrorCode::ZoomRateLimited).with_zoom(zoom(429))
        ));
        assert!(is_transient(
            &mapped(502, ErrorCode::ZoomUnavailable).with_zoom(zoom(503))
        ));
        assert!(is_transient(&mapped(504, ErrorCode::ZoomUnavailable)));
        assert!(is_transient(&mapped(409, ErrorCode::RequestInProgress)));
        assert!(is_transient(&mapped(503, ErrorCode::StoreUnavailable)));
        // Zoom's 401 after a refresh is mapped to 502 but is not worth a retry.
        assert!(!is_transient(
            &mapped(502, ErrorCode::ZoomUnauthorized).with_zoom(zoom(401))
        ));
        assert!(!is_transient(
            &mapped(404, ErrorCode::ZoomNotFound).with_zoom(zoom(404))
        ));
        assert!(!is_transient(&mapped(409, ErrorCode::ConnectionRevoked)));
        assert!(!is_transient(&mapped(404, ErrorCode::ConnectionNotFound)));
        assert!(!is_transient(&mapped(400, ErrorCode::ValidationFailed)));
    }

    #[test]
    fn listed_meetings_match_only_the_same_body() {
        let listed = serde_json::json!({
            "id": 1, "topic": "Standup", "type": 2, "duration": 30, "timezone": "Europe/Berlin",
            "start_time": "2026-12-01T09:00:00Z", "created_at": "2026-11-30T12:00:00Z",
        });
        let body = |extra: serde_json::Value| {
            let mut b = serde_json::json!({ "topic": "Standup", "type": 2 });
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        assert!(same_meeting(&body(serde_json::json!({})), &listed));
        assert!(same_meeting(
            &body(serde_json::json!({ "start_time": "2026-12-01T09:00:00Z" })),
            &listed
        ));
        // 10:00 local in Berlin is 09:00 UTC.
        assert!(same_meeting(
            &body(
                serde_json::json!({ "start_time": "2026-12-01T10:00:00", "timezone": "Europe/Berlin" })
            ),
            &listed
        ));
        assert!(!same_meeting(
            &body(serde_json::json!({ "start_time": "2026-12-01T10:07:00" })),
            &listed
        ));
        assert!(!same_meeting(
            &body(serde_json::json!({ "start_time": "2026-12-01T09:30:00Z" })),
            &listed
        ));
        assert!(!same_meeting(
            &body(serde_json::json!({ "topic": "Retro" })),
            &listed
        ));
        assert!(!same_meeting(
            &body(serde_json::json!({ "duration": 45 })),
            &listed
        ));
        assert!(!same_meeting(
            &body(serde_json::json!({ "type": 8 })),
            &listed
        ));
        // An instant meeting starts when Zoom creates it, whatever `start_time` said.
        let instant = serde_json::json!({
            "id": 2, "topic": "Call", "type": 1, "start_time": "2026-11-30T12:00:00Z",
            "created_at": "2026-11-30T12:00:00Z",
        });
        assert!(same_meeting(
            &serde_json::json!({ "topic": "Call", "type": 1, "start_time": "2030-01-01T10:00:00Z" }),
            &instant
        ));
        assert!(!same_meeting(
            &serde_json::json!({ "topic": "Other", "type": 1 }),
            &instant
        ));
    }
}

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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::metrics::Metric;
pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use super::actions::{
    IDEMPOTENCY_STALE_SECS, IDEMPOTENCY_TTL_SECS, IdempotencyStart, IdempotentAnswer, ZoomCall,
    validate_meeting,
};
use super::{Connector, events};
use crate::error::ApiError;
use crate::ports::ItemKind;
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

/// How long concurrent deliveries of one key wait for the first before coming back later.
const CONCURRENT_WAIT: Duration = Duration::from_secs(5);
/// A permanent failure is remembered this long, so concurrent or quick duplicate deliveries
/// do not report it again; a re-send after that (e.g. after reconnecting) tries again.
pub const FAILURE_MEMORY_SECS: i64 = 60;
/// Pages of `GET /users/me/meetings` read when looking for a meeting a dead worker created.
const LOOKUP_PAGES: usize = 5;
/// Clocks differ a little between us and Zoom.
const CLOCK_SLACK_SECS: i64 = 30;

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

/// Marks a Zoom meeting as the answer of one event key.
fn meeting_claim_key(meeting_id: &serde_json::Value) -> String {
    format!("event-meeting|{meeting_id}")
}

/// Worth another delivery (API.md: 429, 5xx, timeouts)? Zoom's own status decides when
/// Zoom answered; e.g. a 401 that survived a refresh is permanent.
pub fn is_transient(e: &ApiError) -> bool {
    if let Some(zoom) = &e.zoom {
        return zoom.status == 429 || zoom.status >= 500;
    }
    e.status.as_u16() == 429 || e.status.is_server_error() || e.code == "request_in_progress"
}

/// A failed attempt, and whether Zoom may have created the meeting anyway (timeout, 5xx,
/// unreadable answer, or a previous attempt whose outcome is still unknown).
pub(crate) struct Failure {
    pub(crate) error: ApiError,
    /// Zoom may have created the meeting although we got no answer saying so.
    pub(crate) maybe_created: bool,
}

impl Failure {
    fn before_zoom(error: ApiError) -> Self {
        Self {
            error,
            maybe_created: false,
        }
    }
}

fn unreadable_answer() -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_GATEWAY,
        "zoom_error",
        "Zoom's answer could not be read.",
    )
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
            Err(e) if is_transient(&e) => return EventOutcome::Retry(e.code.to_owned()),
            Err(e) => {
                self.report_failure(event, &e).await;
                return EventOutcome::Settled;
            }
        };
        // If this attempt ends without knowing whether Zoom created the meeting, the record is
        // left with this start: stale at once (the next delivery takes over and looks), and
        // early enough that the lookup also covers a dead worker's meeting this attempt
        // was resuming.
        let takeover_from = resumed_from
            .unwrap_or(i64::MAX)
            .min(self.now_unix() - IDEMPOTENCY_STALE_SECS - 1);
        let meeting = match self.obtain_meeting(event, &key, resumed_from).await {
            Ok(meeting) => meeting,
            Err(failure) if is_transient(&failure.error) => {
                tracing::warn!(error = %failure.error, connection_id = %event.connection_id, "meeting event will be retried");
                if failure.maybe_created {
                    self.leave_for_takeover(&key, version, &fingerprint, takeover_from)
                        .await;
                } else {
                    self.release_record(&key, version).await;
                }
                return EventOutcome::Retry(failure.error.code.to_owned());
            }
            Err(failure) => {
                self.remember_failure(&key, version, &fingerprint, &failure.error)
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
            self.leave_for_takeover(&key, version, &fingerprint, takeover_from)
                .await;
            return EventOutcome::Retry("publish_failed".into());
        }
        let answer = IdempotentAnswer {
            status: 201,
            body: meeting,
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
                "idempotency_key_reused",
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

    /// The meeting of this event: found at Zoom (after a dead worker) or created now.
    pub(crate) async fn obtain_meeting(
        &self,
        event: &MeetingEvent,
        key: &str,
        resumed_from: Option<i64>,
    ) -> Result<serde_json::Value, Failure> {
        validate_meeting(&event.meeting, true).map_err(Failure::before_zoom)?;
        if let Some(since) = resumed_from {
            // The previous attempt may have created it; until we know, keep assuming so.
            match self.find_created_meeting(event, key, since).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(error) => {
                    return Err(Failure {
                        error,
                        maybe_created: true,
                    });
                }
            }
        }
        let call = ZoomCall::json(http::Method::POST, "/users/me/meetings", &event.meeting);
        let response = self
            .call_zoom(&event.connection_id, &call)
            .await
            .map_err(|error| Failure {
                // Connection problems fail before the POST; a timeout or a dropped
                // connection (also "the token endpoint is down", which cannot be told apart
                // here and only costs a lookup) may have happened after Zoom created it.
                maybe_created: error.code == "zoom_unavailable",
                error,
            })?;
        if response.status >= 400 {
            let error = super::actions::map_zoom_error(&response, self.now());
            return Err(Failure {
                maybe_created: response.status >= 500,
                error,
            });
        }
        let meeting: serde_json::Value =
            serde_json::from_slice(&response.body).map_err(|_| Failure {
                error: unreadable_answer(),
                maybe_created: true,
            })?;
        if meeting.get("id").is_none_or(|id| id.is_null()) {
            return Err(Failure {
                error: unreadable_answer(),
                maybe_created: true,
            });
        }
        match self.claim_meeting(key, &meeting["id"]).await {
            Ok(true) => {}
            // Another key's takeover found it in the instant between Zoom's answer and this
            // claim; both keys then name the same meeting. Left as is, but worth a look.
            Ok(false) => tracing::warn!(
                connection_id = %event.connection_id,
                "a meeting just created was claimed by another event key"
            ),
            Err(error) => {
                return Err(Failure {
                    error,
                    maybe_created: true,
                });
            }
        }
        Ok(meeting)
    }

    /// Records that `meeting_id` answers the event key `key`. `Ok(false)` when another key
    /// holds it.
    async fn claim_meeting(
        &self,
        key: &str,
        meeting_id: &serde_json::Value,
    ) -> Result<bool, ApiError> {
        let now = self.now_unix();
        let claim = meeting_claim_key(meeting_id);
        let value = serde_json::json!({ "event_key": key });
        if self
            .store
            .create_item(
                ItemKind::Idempotency,
                &claim,
                &value,
                Some(now + IDEMPOTENCY_TTL_SECS),
                now,
            )
            .await?
        {
            return Ok(true);
        }
        let holder = self
            .store
            .get_item(ItemKind::Idempotency, &claim, now)
            .await?;
        Ok(holder.is_some_and(|h| h.value["event_key"].as_str() == Some(key)))
    }

    /// A meeting this connection created at Zoom since a dead worker started (`since`) that
    /// matches the event's body and answers no other key: the trace of a worker that crashed
    /// after Zoom created the meeting. Only asked on takeover, never on the normal path.
    async fn find_created_meeting(
        &self,
        event: &MeetingEvent,
        key: &str,
        since: i64,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let earliest = OffsetDateTime::from_unix_timestamp(since - CLOCK_SLACK_SECS)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut candidates: Vec<(OffsetDateTime, serde_json::Value)> = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..LOOKUP_PAGES {
            let mut call = ZoomCall::get("/users/me/meetings");
            call.query = Some({
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                query
                    .append_pair("type", "scheduled")
                    .append_pair("page_size", "300");
                if let Some(t) = &page_token {
                    query.append_pair("next_page_token", t);
                }
                query.finish()
            });
            let response = self.zoom_pass(&event.connection_id, &call).await?;
            let list: serde_json::Value =
                serde_json::from_slice(&response.body).map_err(|_| unreadable_answer())?;
            for listed in list["meetings"].as_array().into_iter().flatten() {
                let created = listed["created_at"]
                    .as_str()
                    .and_then(|c| OffsetDateTime::parse(c, &Rfc3339).ok());
                if let Some(created) = created.filter(|c| *c >= earliest)
                    && same_meeting(&event.meeting, listed)
                {
                    candidates.push((created, listed.clone()));
                }
            }
            page_token = list["next_page_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if page_token.is_none() {
                break;
            }
        }
        // The earliest match is the dead worker's; later ones may be other keys' meetings.
        candidates.sort_by_key(|(created, _)| *created);
        for (_, candidate) in candidates {
            if self.claim_meeting(key, &candidate["id"]).await? {
                tracing::info!(
                    connection_id = %event.connection_id,
                    "found the meeting a previous attempt created; not creating another"
                );
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// Makes the record immediately takeable by the next delivery, which then looks for the
    /// meeting at Zoom before creating one (Zoom may have created it).
    pub(crate) async fn leave_for_takeover(
        &self,
        key: &str,
        version: u64,
        fingerprint: &str,
        started_at: i64,
    ) {
        let now = self.now_unix();
        let mut value = super::actions::in_progress_record(started_at, fingerprint);
        value["outcome_unknown"] = true.into();
        if let Err(e) = self
            .store
            .replace_item(
                ItemKind::Idempotency,
                key,
                &value,
                Some(now + IDEMPOTENCY_TTL_SECS),
                version,
            )
            .await
        {
            // It stays in progress and is taken over once stale.
            tracing::warn!(error = %e, "could not mark the meeting event for takeover");
        }
    }

    /// Nothing was created: let the next delivery start afresh.
    pub(crate) async fn release_record(&self, key: &str, version: u64) {
        if let Err(e) = self
            .store
            .delete_item(ItemKind::Idempotency, key, Some(version))
            .await
        {
            tracing::warn!(error = %e, "could not release the meeting event record");
        }
    }

    /// Keeps a permanent failure briefly so duplicates settle without a second report.
    async fn remember_failure(&self, key: &str, version: u64, fingerprint: &str, e: &ApiError) {
        let now = self.now_unix();
        let answer = IdempotentAnswer {
            status: e.status.as_u16(),
            body: serde_json::json!({ "error": { "code": e.code, "message": e.detail } }),
            fingerprint: fingerprint.to_owned(),
        };
        let value =
            serde_json::json!({ "state": "done", "answer": answer, "fingerprint": fingerprint });
        let kept = self
            .store
            .replace_item(
                ItemKind::Idempotency,
                key,
                &value,
                Some(now + FAILURE_MEMORY_SECS),
                version,
            )
            .await;
        if !matches!(kept, Ok(true)) {
            self.release_record(key, version).await;
        }
    }

    async fn report_failure(&self, event: &MeetingEvent, e: &ApiError) {
        tracing::info!(code = e.code, connection_id = %event.connection_id, "meeting event failed for good");
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

/// Does a meeting from Zoom's list match the body we would have sent? Every field the body
/// sets must agree; a local `start_time` (no `Z`) must be a whole quarter-hour offset away
/// from Zoom's UTC time, within the ±14 h of real time zones.
fn same_meeting(requested: &serde_json::Value, listed: &serde_json::Value) -> bool {
    let agrees = |field: &str| match requested.get(field).filter(|v| !v.is_null()) {
        None => true,
        Some(wanted) => listed.get(field) == Some(wanted),
    };
    let wanted_type = requested.get("type").and_then(|t| t.as_i64()).unwrap_or(2);
    if listed["type"].as_i64().is_some_and(|t| t != wanted_type) {
        return false;
    }
    if !(agrees("topic") && agrees("duration") && agrees("timezone") && agrees("agenda")) {
        return false;
    }
    let Some(wanted) = requested.get("start_time").and_then(|s| s.as_str()) else {
        return true;
    };
    let Some(actual) = listed["start_time"]
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    else {
        return false;
    };
    match wanted.strip_suffix('Z') {
        Some(_) => OffsetDateTime::parse(wanted, &Rfc3339).is_ok_and(|w| w == actual),
        None => {
            let format =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
            time::PrimitiveDateTime::parse(wanted, &format).is_ok_and(|local| {
                let offset = (local.assume_utc() - actual).whole_seconds();
                offset.abs() <= 14 * 3600 && offset % (15 * 60) == 0
            })
        }
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

/// The `meeting-events` Lambda handler: one SQS batch in, the messages to deliver again out
/// (`ReportBatchItemFailures`).
pub async fn handle_sqs_event(connector: &Connector, event: SqsEvent) -> SqsBatchResponse {
    // A message failing on its last receive goes to the DLQ (the queue's maxReceiveCount).
    let last_receive: std::collections::HashSet<String> = event
        .records
        .iter()
        .filter(|m| {
            m.attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse::<u32>().ok())
                .is_some_and(|c| c >= SQS_MAX_RECEIVE_COUNT)
        })
        .filter_map(|m| m.message_id.clone())
        .collect();
    let messages: Vec<(String, String)> = event
        .records
        .into_iter()
        .filter_map(|m| match m.message_id {
            Some(id) if !id.is_empty() => Some((id, m.body.unwrap_or_default())),
            // SQS always sets it; without one the message could not be reported for retry.
            _ => {
                tracing::error!("SQS message without a message id skipped");
                None
            }
        })
        .collect();
    let total = messages.len();
    let failed = connector.process_meeting_batch(messages).await;
    let dead = failed
        .iter()
        .filter(|id| last_receive.contains(*id))
        .count();
    for (outcome, n) in [
        ("settled", total - failed.len()),
        ("retried", failed.len() - dead),
        ("dead_lettered", dead),
    ] {
        if n > 0 {
            connector
                .metrics
                .record(Metric::MeetingEvents, Some(outcome), n as f64);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Delivery rules of [`LocalMeetingQueue`] (SQS's redrive policy and visibility back-off).
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    /// Deliveries of one message before it is dead-lettered (SQS `maxReceiveCount`).
    pub max_deliveries: u32,
    /// Wait before the second delivery; doubles each time.
    pub first_retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            max_deliveries: 5,
            first_retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

impl QueuePolicy {
    /// Wait after the `delivered`-th delivery failed transiently.
    pub fn retry_delay(&self, delivered: u32) -> Duration {
        let factor = 1u32 << delivered.saturating_sub(1).min(16);
        self.first_retry_delay
            .saturating_mul(factor)
            .min(self.max_retry_delay)
    }
}

/// What a [`LocalMeetingQueue`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub enqueued: u64,
    pub deliveries: u64,
    pub settled: u64,
    pub redelivered: u64,
    pub dead_lettered: u64,
    /// Enqueued and neither settled nor dead-lettered yet (processing or waiting to retry).
    pub outstanding: u64,
    /// Being processed right now.
    pub in_flight: u64,
}

#[derive(Default)]
struct Counters {
    enqueued: AtomicU64,
    deliveries: AtomicU64,
    settled: AtomicU64,
    redelivered: AtomicU64,
    dead_lettered: AtomicU64,
    in_flight: AtomicU64,
    changed: tokio::sync::Notify,
}

/// The local stack's stand-in for SQS feeding the `meeting-events` function: each message is
/// processed as it arrives; a transient failure comes back after a growing delay, up to
/// `max_deliveries`, then it is dead-lettered (logged). In memory: a restart loses messages
/// that were still waiting.
#[derive(Clone)]
pub struct LocalMeetingQueue {
    connector: Connector,
    policy: QueuePolicy,
    counters: Arc<Counters>,
}

impl LocalMeetingQueue {
    pub fn new(connector: Connector, policy: QueuePolicy) -> Self {
        Self {
            connector,
            policy,
            counters: Arc::default(),
        }
    }

    /// Accepts a message (the body of an SQS message) and starts its first delivery.
    pub fn enqueue(&self, body: String) {
        self.counters.enqueued.fetch_add(1, Ordering::SeqCst);
        let queue = self.clone();
        tokio::spawn(async move { queue.deliver(body).await });
    }

    async fn deliver(self, body: String) {
        let c = &self.counters;
        for delivery in 1..=self.policy.max_deliveries.max(1) {
            c.deliveries.fetch_add(1, Ordering::SeqCst);
            c.in_flight.fetch_add(1, Ordering::SeqCst);
            let outcome = self.connector.process_meeting_event(&body).await;
            c.in_flight.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                EventOutcome::Settled => {
                    self.connector.count(Metric::MeetingEvents, Some("settled"));
                    c.settled.fetch_add(1, Ordering::SeqCst);
                    c.changed.notify_waiters();
                    return;
                }
                EventOutcome::Retry(reason) if delivery < self.policy.max_deliveries => {
                    self.connector.count(Metric::MeetingEvents, Some("retried"));
                    c.redelivered.fetch_add(1, Ordering::SeqCst);
                    c.changed.notify_waiters();
                    let delay = self.policy.retry_delay(delivery);
                    tracing::info!(
                        reason,
                        delivery,
                        ?delay,
                        "meeting event will be delivered again"
                    );
                    tokio::time::sleep(delay).await;
                }
                EventOutcome::Retry(reason) => {
                    tracing::error!(
                        reason,
                        deliveries = delivery,
                        "meeting event dead-lettered: every delivery failed"
                    );
                }
            }
        }
        self.connector
            .count(Metric::MeetingEvents, Some("dead_lettered"));
        c.dead_lettered.fetch_add(1, Ordering::SeqCst);
        c.changed.notify_waiters();
    }

    pub fn stats(&self) -> QueueStats {
        let c = &self.counters;
        let enqueued = c.enqueued.load(Ordering::SeqCst);
        let settled = c.settled.load(Ordering::SeqCst);
        let dead = c.dead_lettered.load(Ordering::SeqCst);
        QueueStats {
            enqueued,
            deliveries: c.deliveries.load(Ordering::SeqCst),
            settled,
            redelivered: c.redelivered.load(Ordering::SeqCst),
            dead_lettered: dead,
            outstanding: enqueued.saturating_sub(settled + dead),
            in_flight: c.in_flight.load(Ordering::SeqCst),
        }
    }

    /// Waits until `done(stats)` holds or `timeout` passes; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&QueueStats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.counters.changed.notified();
            if done(&self.stats()) {
                return true;
            }
            // Re-check now and then too: in_flight drops without a notification.
            let wake = (tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
            if tokio::time::timeout_at(wake, changed).await.is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return done(&self.stats());
            }
        }
    }

    /// Shutdown: lets the deliveries being processed finish (up to `grace`). Messages waiting
    /// for a retry are dropped, as the queue lives in memory.
    pub async fn finish_in_flight(&self, grace: Duration) -> bool {
        self.wait_until(grace, |s| s.in_flight == 0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        use crate::error::ZoomErrorInfo;
        let zoom = |status| ZoomErrorInfo {
            status,
            code: None,
            message: String::new(),
        };
        let mapped = |status: u16, code| {
            ApiError::new(http::StatusCode::from_u16(status).unwrap(), code, "")
        };
        assert!(is_transient(
            &mapped(429, "zoom_rate_limited").with_zoom(zoom(429))
        ));
        assert!(is_transient(
            &mapped(502, "zoom_unavailable").with_zoom(zoom(503))
        ));
        assert!(is_transient(&mapped(504, "zoom_unavailable")));
        assert!(is_transient(&mapped(409, "request_in_progress")));
        assert!(is_transient(&mapped(503, "store_unavailable")));
        // Zoom's 401 after a refresh is mapped to 502 but is not worth a retry.
        assert!(!is_transient(
            &mapped(502, "zoom_unauthorized").with_zoom(zoom(401))
        ));
        assert!(!is_transient(
            &mapped(404, "zoom_not_found").with_zoom(zoom(404))
        ));
        assert!(!is_transient(&mapped(409, "connection_revoked")));
        assert!(!is_transient(&mapped(404, "connection_not_found")));
        assert!(!is_transient(&mapped(400, "validation_failed")));
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
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        let p = QueuePolicy::default();
        let secs: Vec<u64> = (1..=7).map(|d| p.retry_delay(d).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30]);
    }
}

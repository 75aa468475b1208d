//! Event-driven meeting creation (meeting-events function) on both backends: duplicate and
//! concurrent deliveries, a crash between "Zoom created it" and "record marked done", mixed
//! batches with the transient/permanent split, EventBridge envelopes, the Lambda handler's
//! batch-response shape, and the local stack's in-process queue.

use std::sync::Arc;
use std::time::Duration;

use e2e_tests::deployed::sqs_record;
use e2e_tests::fakes::AheadClock;
use e2e_tests::stack::{Backend, StackOptions, TestStack, unique};
use futures::future::join_all;
use serde_json::{Value, json};
use time::OffsetDateTime;
use zoom_connector::adapters::local::queue::{LocalMeetingQueue, QueuePolicy};
use zoom_connector::app::Connector;
use zoom_connector::app::meeting_events::{
    EventOutcome, FAILURE_MEMORY_SECS, event_fingerprint, event_record_key, parse_meeting_event,
};
use zoom_connector::domain::ConnectionStatus;
use zoom_connector::domain::idempotency::{IDEMPOTENCY_STALE_SECS, IDEMPOTENCY_TTL_SECS};
use zoom_connector::ports::{ItemKind, ZoomApi, ZoomRequest, ZoomResponse, ZoomTransportError};
use zoom_connector::wiring::lambda::{SqsEvent, handle_sqs_event};
use zoom_sim::{Fault, FaultTarget, SimUser};

const CREATED: &str = "Zoom Meeting Created";
const FAILED: &str = "Zoom Meeting Creation Failed";

async fn stack(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend)).await
}

fn meeting(topic: &str) -> Value {
    json!({ "topic": topic, "type": 2, "start_time": "2030-01-15T10:00:00Z", "duration": 30, "timezone": "UTC" })
}

fn event(key: &str, connection_id: &str, meeting: Value) -> Value {
    json!({ "idempotency_key": key, "connection_id": connection_id, "meeting": meeting, "correlation_id": format!("corr-{key}") })
}

/// Published events seen so far. On Aws reading consumes the capture queue, so keep them.
struct Published<'a> {
    stack: &'a TestStack,
    seen: Vec<(String, Value)>,
}

impl<'a> Published<'a> {
    fn new(stack: &'a TestStack) -> Self {
        Self {
            stack,
            seen: Vec::new(),
        }
    }

    async fn read(&mut self) -> &[(String, Value)] {
        let new = self.stack.events().await;
        match self.stack.backend {
            Backend::Local => self.seen = new,
            Backend::Aws => self.seen.extend(new),
        }
        &self.seen
    }

    /// Details of `detail_type` events for an idempotency key.
    async fn of(&mut self, detail_type: &str, key: &str) -> Vec<Value> {
        self.read()
            .await
            .iter()
            .filter(|(t, d)| t == detail_type && d["idempotency_key"] == key)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

fn api_requests(stack: &TestStack, method: &str, path: &str) -> usize {
    stack
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

async fn duplicate_deliveries_create_one_meeting(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    let other = stack.another_container();
    let key = unique("dup");
    let body = event(&key, &conn, meeting("Weekly sync")).to_string();

    // Five deliveries at once, across two containers.
    let outcomes = join_all((0..5).map(|i| {
        let c = if i % 2 == 0 {
            stack.connector.clone()
        } else {
            other.clone()
        };
        let body = body.clone();
        async move { c.process_meeting_event(&body).await }
    }))
    .await;
    assert!(
        outcomes.iter().all(|o| *o == EventOutcome::Settled),
        "{outcomes:?}"
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    assert_eq!(
        api_requests(&stack, "POST", "/v2/users/me/meetings"),
        1,
        "one create call at Zoom"
    );

    let mut published = Published::new(&stack);
    let created = published.of(CREATED, &key).await;
    assert_eq!(created.len(), 1, "one outcome event: {created:?}");
    let detail = &created[0];
    assert_eq!(detail["connection_id"], conn.as_str());
    assert_eq!(detail["correlation_id"], format!("corr-{key}"));
    let m = &detail["meeting"];
    assert_eq!(m["topic"], "Weekly sync");
    assert_eq!(m["start_time"], "2030-01-15T10:00:00Z");
    for field in ["id", "uuid", "join_url"] {
        assert!(!m[field].is_null(), "meeting.{field} in {detail}");
    }
    // The meeting the event names is the one at Zoom.
    let r = stack
        .backend(
            reqwest::Method::GET,
            &format!("/connections/{conn}/zoom/meetings/{}", m["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let at_zoom: Value = r.json().await.unwrap();
    assert_eq!(
        (&at_zoom["uuid"], &at_zoom["join_url"]),
        (&m["uuid"], &m["join_url"])
    );
    assert!(published.of(FAILED, &key).await.is_empty());

    // A late duplicate settles silently.
    assert_eq!(
        stack.connector.process_meeting_event(&body).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    assert_eq!(published.of(CREATED, &key).await.len(), 1);

    // The same key with another request is refused, not answered with the first meeting.
    let reused = event(&key, &conn, meeting("Something else")).to_string();
    assert_eq!(
        stack.connector.process_meeting_event(&reused).await,
        EventOutcome::Settled
    );
    let failed = published.of(FAILED, &key).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["error"]["code"], "idempotency_key_reused");
    assert_eq!(stack.sim.meetings_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_duplicate_deliveries_create_one_meeting() {
    duplicate_deliveries_create_one_meeting(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_duplicate_deliveries_create_one_meeting() {
    duplicate_deliveries_create_one_meeting(Backend::Aws).await;
}

/// Leaves the idempotency record a worker had when it died working on `delivery`: in
/// progress, started long ago.
async fn leave_stale_record(stack: &TestStack, key: &str, delivery: &str) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let started_at = now - IDEMPOTENCY_STALE_SECS - 5;
    let fingerprint = event_fingerprint(&parse_meeting_event(delivery).unwrap());
    let created = stack
        .connector
        .store
        .create_item(
            ItemKind::Idempotency,
            &event_record_key(key),
            &json!({ "state": "in_progress", "started_at": started_at, "fingerprint": fingerprint }),
            Some(now + IDEMPOTENCY_TTL_SECS),
            now,
        )
        .await
        .unwrap();
    assert!(created);
}

async fn create_at_zoom(stack: &TestStack, conn: &str, body: &Value) -> Value {
    let r = stack
        .backend(
            reqwest::Method::POST,
            &format!("/connections/{conn}/zoom/meetings"),
        )
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn crash_after_zoom_created_is_recovered(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    let body = meeting("Board review");
    // Meetings that look alike but are not the one: another topic, another start time.
    create_at_zoom(&stack, &conn, &meeting("Board review (prep)")).await;
    let mut other_time = meeting("Board review");
    other_time["start_time"] = json!("2030-01-15T11:00:00Z");
    create_at_zoom(&stack, &conn, &other_time).await;

    // The dead worker got as far as Zoom creating the meeting, not as far as recording it.
    let key = unique("crash");
    let created = create_at_zoom(&stack, &conn, &body).await;
    let delivery = event(&key, &conn, body.clone()).to_string();
    leave_stale_record(&stack, &key, &delivery).await;
    assert_eq!(stack.sim.meetings_count(), 3);

    assert_eq!(
        stack.connector.process_meeting_event(&delivery).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 3, "no second meeting");
    let mut published = Published::new(&stack);
    let events = published.of(CREATED, &key).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["meeting"]["id"], created["id"]);
    assert_eq!(events[0]["meeting"]["uuid"], created["uuid"]);

    // Another dead key with the same body must not take that meeting: it is this key's.
    let second = unique("crash");
    let delivery = event(&second, &conn, body).to_string();
    leave_stale_record(&stack, &second, &delivery).await;
    assert_eq!(
        stack.connector.process_meeting_event(&delivery).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 4);
    let events = published.of(CREATED, &second).await;
    assert_eq!(events.len(), 1);
    assert_ne!(events[0]["meeting"]["id"], created["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_crash_after_zoom_created_is_recovered() {
    crash_after_zoom_created_is_recovered(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_crash_after_zoom_created_is_recovered() {
    crash_after_zoom_created_is_recovered(Backend::Aws).await;
}

/// Another container on the stack's backend whose clock is `ahead` (records expire sooner).
fn container_ahead(stack: &TestStack, ahead: time::Duration) -> Connector {
    stack.container_with(|ports| ports.clock = Arc::new(AheadClock(ahead)))
}

/// Issue 14: the same key with another meeting, while the first request's outcome is unknown
/// (left for takeover, or its worker died), is refused for good; it does not take the record
/// over and create its own meeting under the key.
async fn reused_key_does_not_take_over_an_unknown_outcome(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    let key = unique("reused");
    let first = event(&key, &conn, meeting("First request")).to_string();
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    assert!(matches!(
        stack.connector.process_meeting_event(&first).await,
        EventOutcome::Retry(_)
    ));
    let other = event(&key, &conn, meeting("Another request")).to_string();
    assert_eq!(
        stack.connector.process_meeting_event(&other).await,
        EventOutcome::Settled
    );
    assert_eq!(
        stack.sim.meetings_count(),
        0,
        "nothing created for the other request"
    );
    let mut published = Published::new(&stack);
    let failed = published.of(FAILED, &key).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"]["code"], "idempotency_key_reused");
    assert!(published.of(CREATED, &key).await.is_empty());

    // The same for a worker that died (its record is stale, not marked unknown).
    let dead = unique("reused-dead");
    let dead_delivery = event(&dead, &conn, meeting("The dead worker's")).to_string();
    leave_stale_record(&stack, &dead, &dead_delivery).await;
    let not_dead = event(&dead, &conn, meeting("Not the dead worker's")).to_string();
    assert_eq!(
        stack.connector.process_meeting_event(&not_dead).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 0);
    let failed = published.of(FAILED, &dead).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"]["code"], "idempotency_key_reused");

    // The first request's redelivery takes over, looks, and creates its meeting once.
    assert_eq!(
        stack.connector.process_meeting_event(&first).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    let created = published.of(CREATED, &key).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["meeting"]["topic"], "First request");
}

/// Issue 14: a permanent failure remembered after an attempt whose outcome is unknown keeps
/// "Zoom may have created it". Sequence: a worker dies after Zoom created the meeting; the
/// takeover must look at Zoom first, but the lookup is refused for good (the grant lacks the
/// list scope, 4711), so the failure is reported and remembered for 60 s. A re-send after
/// that (e.g. once the scope is granted) must look again, not create a second meeting.
async fn remembered_failure_still_looks_before_creating(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    let body = meeting("Quarterly review");
    let created = create_at_zoom(&stack, &conn, &body).await;
    let key = unique("remembered");
    let delivery = event(&key, &conn, body).to_string();
    leave_stale_record(&stack, &key, &delivery).await;

    stack.sim.inject(Fault::ScopeMissing {
        scope: "meeting:read:list_meetings".into(),
        times: Some(1),
    });
    assert_eq!(
        stack.connector.process_meeting_event(&delivery).await,
        EventOutcome::Settled
    );
    let mut published = Published::new(&stack);
    let failed = published.of(FAILED, &key).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"]["code"], "zoom_scope_missing");
    // A duplicate within the memory settles silently.
    assert_eq!(
        stack.connector.process_meeting_event(&delivery).await,
        EventOutcome::Settled
    );
    assert_eq!(published.of(FAILED, &key).await.len(), 1);
    assert_eq!(stack.sim.meetings_count(), 1);

    // After the memory: the re-send looks at Zoom and finds the dead worker's meeting.
    let later = container_ahead(&stack, time::Duration::seconds(FAILURE_MEMORY_SECS + 5));
    assert_eq!(
        later.process_meeting_event(&delivery).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 1, "no second meeting");
    let events = published.of(CREATED, &key).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["meeting"]["id"], created["id"]);
}

/// Issue 14: the crash lookup finds an instant meeting (type 1) a dead worker created, as
/// well as a scheduled one. The simulator lists every meeting under `type=scheduled` (the
/// lookup's query), instant ones included (`live` and `upcoming` would miss an instant
/// meeting nobody started: its start is its creation). An instant meeting starts when Zoom
/// creates it, whatever the body's `start_time` said: the match must not compare it.
async fn crash_lookup_finds_instant_and_scheduled_meetings(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    for body in [
        json!({ "topic": "Call now", "type": 1 }),
        json!({ "topic": "Call now, said at 10", "type": 1, "start_time": "2030-01-15T10:00:00Z", "duration": 15 }),
        meeting("Call later"),
    ] {
        let before = stack.sim.meetings_count();
        let created = create_at_zoom(&stack, &conn, &body).await;
        let key = unique("crash-type");
        let delivery = event(&key, &conn, body.clone()).to_string();
        leave_stale_record(&stack, &key, &delivery).await;
        assert_eq!(
            stack.connector.process_meeting_event(&delivery).await,
            EventOutcome::Settled
        );
        assert_eq!(
            stack.sim.meetings_count(),
            before + 1,
            "no second meeting for {body}"
        );
        let events = Published::new(&stack).of(CREATED, &key).await;
        assert_eq!(events.len(), 1, "{body}: {events:?}");
        assert_eq!(events[0]["meeting"]["id"], created["id"], "{body}");
    }
}

e2e_tests::on_both_backends!(
    local_idempotency_edges,
    aws_idempotency_edges;
    reused_key_does_not_take_over_an_unknown_outcome,
    remembered_failure_still_looks_before_creating,
    crash_lookup_finds_instant_and_scheduled_meetings,
);

/// A 5xx leaves Zoom's outcome unknown: the next delivery looks before creating. A 429 is a
/// clear "not created": the next delivery creates without looking.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_outcomes_are_looked_up_and_rate_limits_are_not() {
    let stack = stack(Backend::Local).await;
    let conn = stack.connect_platform().await;
    let list = |s: &TestStack| api_requests(s, "GET", "/v2/users/me/meetings");

    let key = unique("five-hundred");
    let body = event(&key, &conn, meeting("After a 503")).to_string();
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    assert!(matches!(
        stack.connector.process_meeting_event(&body).await,
        EventOutcome::Retry(_)
    ));
    assert_eq!(list(&stack), 0);
    assert_eq!(
        stack.connector.process_meeting_event(&body).await,
        EventOutcome::Settled
    );
    assert_eq!(
        list(&stack),
        1,
        "the redelivery looked for the meeting first"
    );
    assert_eq!(stack.sim.meetings_count(), 1);

    let key = unique("four-two-nine");
    let body = event(&key, &conn, meeting("After a 429")).to_string();
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    assert_eq!(
        stack.connector.process_meeting_event(&body).await,
        EventOutcome::Retry("zoom_rate_limited".into())
    );
    assert_eq!(
        stack.connector.process_meeting_event(&body).await,
        EventOutcome::Settled
    );
    assert_eq!(list(&stack), 1, "no lookup after a 429");
    assert_eq!(stack.sim.meetings_count(), 2);

    let mut published = Published::new(&stack);
    let events = published.read().await;
    assert_eq!(events.iter().filter(|(t, _)| t == CREATED).count(), 2);
    assert!(events.iter().all(|(t, _)| t != FAILED), "{events:?}");
}

/// Zoom as seen by one container, with the order of meeting creations fixed: a request whose
/// body contains `held` waits until another create call has been answered. This lets the
/// simulator's one-shot 429 hit exactly the intended message of a concurrent batch.
struct OrderedZoom {
    inner: Arc<dyn ZoomApi>,
    held: String,
    released: tokio::sync::watch::Sender<bool>,
}

#[async_trait::async_trait]
impl ZoomApi for OrderedZoom {
    async fn send(&self, request: ZoomRequest) -> Result<ZoomResponse, ZoomTransportError> {
        let body = request.body.clone().unwrap_or_default();
        let held = String::from_utf8_lossy(&body).contains(&self.held);
        let create = request.method == reqwest::Method::POST;
        if held {
            let mut released = self.released.subscribe();
            // Bounded, so a broken ordering fails the assertions instead of hanging.
            let _ = tokio::time::timeout(Duration::from_secs(10), released.wait_for(|r| *r)).await;
        }
        let answer = self.inner.send(request).await;
        if create && !held {
            self.released.send_replace(true);
        }
        answer
    }
}

fn container_with_ordered_zoom(stack: &TestStack, held: &str) -> Connector {
    stack.container_with(|ports| {
        ports.zoom = Arc::new(OrderedZoom {
            inner: ports.zoom.clone(),
            held: held.to_owned(),
            released: tokio::sync::watch::channel(false).0,
        })
    })
}

async fn mixed_batch_reports_each_message_once(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    // A second Zoom user whose connection can no longer be used.
    stack.sim.add_user(SimUser::new(
        "sim-user-2",
        "sim-account-1",
        "grace@example.com",
        "Grace",
        "Hopper",
    ));
    stack.sim.set_current_user("sim-user-2");
    let stuck = stack.connect_platform().await;
    assert_ne!(stuck, conn);
    stack
        .connector
        .update_record(&stuck, |r| r.status = ConnectionStatus::NeedsReauth)
        .await
        .unwrap();

    let run = unique("batch");
    let key = |name: &str| format!("{run}-{name}");
    let messages: Vec<(String, String)> = vec![
        (
            "m-valid".into(),
            event(&key("valid"), &conn, meeting("Valid one")).to_string(),
        ),
        ("m-garbage".into(), "{ this is not json".into()),
        (
            "m-invalid".into(),
            event(&key("invalid"), &conn, json!({ "topic": "Bad", "type": 5 })).to_string(),
        ),
        (
            "m-unknown".into(),
            event(&key("unknown"), "conn_does_not_exist", meeting("Nobody")).to_string(),
        ),
        (
            "m-stuck".into(),
            event(&key("stuck"), &stuck, meeting("Needs reauth")).to_string(),
        ),
        (
            "m-429".into(),
            event(&key("limited"), &conn, meeting("Rate limited")).to_string(),
        ),
    ];
    // The valid message's create waits for the limited one's, which takes the one 429.
    let container = container_with_ordered_zoom(&stack, "Valid one");
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    let failures = container.process_meeting_batch(messages.clone()).await;
    assert_eq!(failures, vec!["m-429".to_owned()]);
    assert_eq!(stack.sim.meetings_count(), 1);

    let mut published = Published::new(&stack);
    assert_eq!(published.of(CREATED, &key("valid")).await.len(), 1);
    for (name, code) in [
        ("invalid", "validation_failed"),
        ("unknown", "connection_not_found"),
        ("stuck", "connection_needs_reauth"),
    ] {
        let failed = published.of(FAILED, &key(name)).await;
        assert_eq!(failed.len(), 1, "{name}: {failed:?}");
        assert_eq!(failed[0]["error"]["code"], code, "{name}");
        assert!(
            failed[0]["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(failed[0]["correlation_id"], format!("corr-{}", key(name)));
    }
    let garbage: Vec<Value> = published
        .read()
        .await
        .iter()
        .filter(|(t, d)| t == FAILED && d["idempotency_key"].is_null())
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(garbage.len(), 1);
    assert_eq!(garbage[0]["error"]["code"], "validation_failed");
    assert!(published.of(CREATED, &key("limited")).await.is_empty());
    assert!(published.of(FAILED, &key("limited")).await.is_empty());

    // SQS delivers the failed message again (and, being at-least-once, maybe the others):
    // the 429 one is created now; settled ones are neither created nor reported again.
    let again: Vec<(String, String)> = messages
        .into_iter()
        .filter(|(id, _)| id != "m-garbage")
        .collect();
    assert!(container.process_meeting_batch(again).await.is_empty());
    assert_eq!(stack.sim.meetings_count(), 2);
    assert_eq!(published.of(CREATED, &key("limited")).await.len(), 1);
    assert_eq!(published.of(CREATED, &key("valid")).await.len(), 1);
    for name in ["invalid", "unknown", "stuck"] {
        assert_eq!(published.of(FAILED, &key(name)).await.len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_mixed_batch_reports_each_message_once() {
    mixed_batch_reports_each_message_once(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_mixed_batch_reports_each_message_once() {
    mixed_batch_reports_each_message_once(Backend::Aws).await;
}

async fn eventbridge_envelope_is_accepted(backend: Backend) {
    let stack = stack(backend).await;
    let conn = stack.connect_platform().await;
    let key = unique("envelope");
    let envelope = json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Create Zoom Meeting",
        "source": "crm.automations",
        "account": "123456789012",
        "time": "2026-11-30T12:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": event(&key, &conn, meeting("From a rule")),
    });
    assert_eq!(
        stack
            .connector
            .process_meeting_event(&envelope.to_string())
            .await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    let created = Published::new(&stack).of(CREATED, &key).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["correlation_id"], format!("corr-{key}"));
    assert_eq!(created[0]["meeting"]["topic"], "From a rule");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_eventbridge_envelope_is_accepted() {
    eventbridge_envelope_is_accepted(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_eventbridge_envelope_is_accepted() {
    eventbridge_envelope_is_accepted(Backend::Aws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lambda_handler_answers_batch_item_failures() {
    let stack = stack(Backend::Local).await;
    let conn = stack.connect_platform().await;
    let limited = event(&unique("lambda"), &conn, meeting("Lambda")).to_string();
    // Only one message reaches Zoom, so the one-shot 429 is its.
    let sqs: SqsEvent = serde_json::from_value(json!({
        "Records": [sqs_record("msg-429", &limited), sqs_record("msg-bad", "[]")]
    }))
    .unwrap();
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    let response = handle_sqs_event(&stack.connector, sqs).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": "msg-429" }] })
    );

    let sqs: SqsEvent =
        serde_json::from_value(json!({ "Records": [sqs_record("msg-429", &limited)] })).unwrap();
    let response = handle_sqs_event(&stack.connector, sqs).await;
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({ "batchItemFailures": [] })
    );
    assert_eq!(stack.sim.meetings_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_queue_redelivers_transient_failures_then_dead_letters() {
    let stack = stack(Backend::Local).await;
    let conn = stack.connect_platform().await;
    let policy = QueuePolicy {
        max_deliveries: 5,
        first_retry_delay: Duration::from_millis(20),
        max_retry_delay: Duration::from_millis(80),
    };
    let queue = LocalMeetingQueue::new(stack.connector.clone(), policy);

    // Two 429s, then Zoom accepts: the third delivery creates it.
    let key = unique("queued");
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(2),
    });
    queue.enqueue(event(&key, &conn, meeting("Queued")).to_string());
    assert!(
        queue
            .wait_until(Duration::from_secs(15), |s| s.outstanding == 0)
            .await
    );
    let stats = queue.stats();
    assert_eq!(
        (
            stats.deliveries,
            stats.redelivered,
            stats.settled,
            stats.dead_lettered
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    let mut published = Published::new(&stack);
    assert_eq!(published.of(CREATED, &key).await.len(), 1);

    // Zoom keeps failing: five deliveries, then the message is dead-lettered, unreported.
    let doomed = unique("doomed");
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: None,
    });
    let posts_before = api_requests(&stack, "POST", "/v2/users/me/meetings");
    queue.enqueue(event(&doomed, &conn, meeting("Doomed")).to_string());
    assert!(
        queue
            .wait_until(Duration::from_secs(20), |s| s.outstanding == 0)
            .await
    );
    stack.sim.clear_faults();
    let stats = queue.stats();
    assert_eq!((stats.deliveries, stats.dead_lettered), (3 + 5, 1));
    // After a 503 Zoom may have created it: later deliveries look first and, without an
    // answer from Zoom, never create blindly.
    assert_eq!(
        api_requests(&stack, "POST", "/v2/users/me/meetings") - posts_before,
        1
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    assert!(published.of(CREATED, &doomed).await.is_empty());
    assert!(published.of(FAILED, &doomed).await.is_empty());

    // A permanent failure is settled on its first delivery.
    let bad = unique("bad");
    queue.enqueue(event(&bad, &conn, json!({ "type": 99 })).to_string());
    assert!(
        queue
            .wait_until(Duration::from_secs(15), |s| s.outstanding == 0)
            .await
    );
    assert_eq!(queue.stats().deliveries, 3 + 5 + 1);
    assert_eq!(published.of(FAILED, &bad).await.len(), 1);
}

//! Zoom event triggers on both backends: every signed event other than URL validation and
//! deauthorization is published once as `Zoom Webhook Event` for the connection of the user it
//! is about; duplicates, old timestamps, a failing bus, bring-your-own apps' own route and
//! token, and a replayed old deauthorization.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use e2e_tests::on_both_backends;
use e2e_tests::stack::{Backend, StackOptions, TestStack, serve};
use serde_json::{Value, json};
use time::OffsetDateTime;
use zoom_connector::app::Connector;
use zoom_connector::domain::error::StoreError;
use zoom_connector::ports::EventBus;
use zoom_sim::webhook::{sign_webhook, url_validation_event};

const WEBHOOK_EVENT: &str = "Zoom Webhook Event";
const REVOKED: &str = "Zoom Connection Revoked";
const BYO_CLIENT: &str = "byo-client";
const BYO_HOOK_TOKEN: &str = "byo-webhook-secret-token";

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

async fn stack(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend)).await
}

/// One delivery as Zoom sends it, replayable byte for byte.
#[derive(Clone)]
struct Delivery {
    body: Vec<u8>,
    timestamp: String,
    signature: String,
    tracking_id: Option<String>,
}

impl Delivery {
    fn signed(secret: &str, event: &Value, timestamp: i64, tracking_id: Option<&str>) -> Self {
        let body = serde_json::to_vec(event).unwrap();
        Self {
            signature: sign_webhook(secret, timestamp, &body),
            timestamp: timestamp.to_string(),
            body,
            tracking_id: tracking_id.map(str::to_owned),
        }
    }

    /// The same body signed again later (Zoom's retry with a fresh timestamp).
    fn resigned(&self, secret: &str, timestamp: i64) -> Self {
        Self {
            signature: sign_webhook(secret, timestamp, &self.body),
            timestamp: timestamp.to_string(),
            ..self.clone()
        }
    }

    async fn send_to(&self, url: &str) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json; charset=utf-8")
            .header("x-zm-request-timestamp", &self.timestamp)
            .header("x-zm-signature", &self.signature)
            .body(self.body.clone());
        if let Some(t) = &self.tracking_id {
            request = request.header("x-zm-trackingid", t);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    }
}

/// What the bus got so far (reading the AWS capture queue consumes it, so keep it here).
#[derive(Default)]
struct Seen(Vec<(String, Value)>);

impl Seen {
    async fn of(&mut self, stack: &TestStack, detail_type: &str) -> Vec<Value> {
        let new = stack.events().await;
        match stack.backend {
            Backend::Local => self.0 = new,
            Backend::Aws => self.0.extend(new),
        }
        self.0
            .iter()
            .filter(|(t, _)| t == detail_type)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

/// A bus that refuses the first `failures` events, or answers late, then passes them on.
struct FlakyBus {
    inner: Arc<dyn EventBus>,
    failures: AtomicUsize,
    delay: Duration,
}

#[async_trait]
impl EventBus for FlakyBus {
    async fn publish(&self, detail_type: &str, detail: &Value) -> Result<(), StoreError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            tokio::time::sleep(self.delay).await;
            return Err(StoreError::Transient("injected bus failure".into()));
        }
        self.inner.publish(detail_type, detail).await
    }
}

/// Another webhooks "container" on the same stores whose bus fails `failures` times.
fn flaky_container(stack: &TestStack, failures: usize, delay: Duration) -> Connector {
    stack.container_with(|ports| {
        ports.bus = Arc::new(FlakyBus {
            inner: ports.bus.clone(),
            failures: AtomicUsize::new(failures),
            delay,
        })
    })
}

const TRIGGERS: [&str; 11] = [
    "meeting.created",
    "meeting.updated",
    "meeting.deleted",
    "meeting.started",
    "meeting.ended",
    "meeting.participant_joined",
    "meeting.participant_left",
    "recording.completed",
    "recording.transcript_completed",
    "user.updated",
    "webinar.started",
];

async fn every_trigger_reaches_the_connection(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let url = stack.url("/webhooks/zoom");
    let mut seen = Seen::default();
    for (i, event) in TRIGGERS.iter().enumerate() {
        let body = stack.sim.trigger_event(event, zoom_sim::DEFAULT_USER_ID);
        let tracking = format!("track-{i}");
        let (status, answer) =
            Delivery::signed(&stack.webhook_secret, &body, now(), Some(&tracking))
                .send_to(&url)
                .await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("published")),
            "{event}"
        );
    }
    // A user without a connection: acknowledged, published nowhere.
    let mut stranger = stack
        .sim
        .trigger_event("meeting.started", zoom_sim::DEFAULT_USER_ID);
    stranger["payload"]["object"]["host_id"] = json!("someone-else");
    let (status, answer) = Delivery::signed(&stack.webhook_secret, &stranger, now(), None)
        .send_to(&url)
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("no_connection"))
    );

    let published = seen.of(&stack, WEBHOOK_EVENT).await;
    let names: Vec<&str> = published
        .iter()
        .map(|d| d["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, TRIGGERS);
    for (i, detail) in published.iter().enumerate() {
        let event = TRIGGERS[i];
        assert_eq!(detail["connection_id"], id.as_str(), "{event}");
        assert_eq!(detail["zoom_user_id"], zoom_sim::DEFAULT_USER_ID, "{event}");
        assert_eq!(detail["account_id"], "sim-account-1", "{event}");
        assert_eq!(detail["delivery_id"], format!("track-{i}"), "{event}");
        assert!(
            detail["event_ts"].as_i64().unwrap() > 1_700_000_000_000,
            "{event}"
        );
        let text = detail.to_string();
        for secret in ["download_token", "start_url", "zak=", "eyJzaW11bGF0"] {
            assert!(!text.contains(secret), "{event}: {secret} in {text}");
        }
        assert!(detail["payload"]["object"].is_object(), "{event}");
    }
    let started = &published[3]["payload"]["object"];
    assert_eq!(started["password"], "123456", "passcodes stay");
    assert!(
        started["join_url"].as_str().unwrap().contains("pwd="),
        "join URLs stay"
    );
    let joined = &published[5]["payload"]["object"]["participant"];
    assert_eq!(joined["user_name"], "Guest");
    let recording = &published[7]["payload"]["object"];
    assert_eq!(recording["recording_files"].as_array().unwrap().len(), 2);
    assert_eq!(published[9]["payload"]["object"]["last_name"], "Updated");

    // Sent by the simulator the way Zoom sends it (its own tracking id).
    let r = stack
        .sim
        .send_webhook(
            &url,
            &stack.webhook_secret,
            stack
                .sim
                .trigger_event("recording.completed", zoom_sim::DEFAULT_USER_ID),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let published = seen.of(&stack, WEBHOOK_EVENT).await;
    assert_eq!(published.len(), TRIGGERS.len() + 1);
    assert!(
        published[TRIGGERS.len()]["delivery_id"]
            .as_str()
            .unwrap()
            .contains("sim_")
    );
}

async fn duplicate_deliveries_are_published_once(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let url = stack.url("/webhooks/zoom");
    let secret = stack.webhook_secret.clone();
    let mut seen = Seen::default();

    // The same tracking id: Zoom's retry, signed anew (its body may even differ).
    let first = Delivery::signed(
        &secret,
        &stack
            .sim
            .trigger_event("meeting.started", zoom_sim::DEFAULT_USER_ID),
        now(),
        Some("retry-1"),
    );
    assert_eq!(first.send_to(&url).await.1["status"], "published");
    let (status, answer) = first.resigned(&secret, now() + 1).send_to(&url).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );
    let mut changed = stack
        .sim
        .trigger_event("meeting.started", zoom_sim::DEFAULT_USER_ID);
    changed["payload"]["object"]["topic"] = json!("changed on retry");
    let (status, answer) = Delivery::signed(&secret, &changed, now(), Some("retry-1"))
        .send_to(&url)
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );

    // No tracking id: the same event, event_ts and payload are the same delivery.
    let bare = Delivery::signed(
        &secret,
        &stack
            .sim
            .trigger_event("meeting.ended", zoom_sim::DEFAULT_USER_ID),
        now(),
        None,
    );
    assert_eq!(bare.send_to(&url).await.1["status"], "published");
    assert_eq!(bare.send_to(&url).await.1["status"], "duplicate");
    assert_eq!(
        bare.resigned(&secret, now() + 2).send_to(&url).await.1["status"],
        "duplicate"
    );

    // Two containers get the same delivery at the same moment.
    let other = serve(zoom_connector::http::webhooks_router(
        stack.another_container(),
    ))
    .await;
    let third = serve(zoom_connector::http::webhooks_router(
        stack.another_container(),
    ))
    .await;
    let concurrent = Delivery::signed(
        &secret,
        &stack
            .sim
            .trigger_event("recording.completed", zoom_sim::DEFAULT_USER_ID),
        now(),
        Some("concurrent-1"),
    );
    let urls = [
        url.clone(),
        format!("{}/webhooks/zoom", other.base_url),
        format!("{}/webhooks/zoom", third.base_url),
    ];
    let answers = futures::future::join_all(urls.iter().map(|u| concurrent.send_to(u))).await;
    let statuses: Vec<(u16, String)> = answers
        .iter()
        .map(|(s, a)| (*s, a["status"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert!(statuses.iter().all(|(s, _)| *s == 200), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|(_, a)| a == "published").count(),
        1,
        "{statuses:?}"
    );

    let published = seen.of(&stack, WEBHOOK_EVENT).await;
    let names: Vec<&str> = published
        .iter()
        .map(|d| d["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["meeting.started", "meeting.ended", "recording.completed"]
    );
    assert!(published.iter().all(|d| d["connection_id"] == id.as_str()));
    // Without a tracking id the delivery id is the content's hash.
    assert_eq!(published[1]["delivery_id"].as_str().unwrap().len(), 64);
}

async fn signatures_and_old_timestamps(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let url = stack.url("/webhooks/zoom");
    let secret = stack.webhook_secret.clone();
    let mut seen = Seen::default();
    let event = |name: &str| stack.sim.trigger_event(name, zoom_sim::DEFAULT_USER_ID);

    let (status, _) = Delivery::signed("not-the-secret", &event("meeting.started"), now(), None)
        .send_to(&url)
        .await;
    assert_eq!(status, 401);
    // Zoom's retry may keep the first attempt's timestamp: a trigger 30 minutes old is taken
    // (its deduplication record keeps a replay from publishing twice) ...
    let late = Delivery::signed(
        &secret,
        &event("meeting.ended"),
        now() - 30 * 60,
        Some("late-1"),
    );
    assert_eq!(
        late.send_to(&url).await,
        (200, json!({ "status": "published" }))
    );
    assert_eq!(late.send_to(&url).await.1["status"], "duplicate");
    // ... one older than two hours is not, nor anything from the future.
    for ts in [now() - 2 * 3600 - 60, now() + 310] {
        let (status, _) = Delivery::signed(&secret, &event("meeting.started"), ts, None)
            .send_to(&url)
            .await;
        assert_eq!(status, 401, "{ts}");
    }
    // URL validation and deauthorization stay strict: five minutes.
    let (status, _) = Delivery::signed(&secret, &url_validation_event("p"), now() - 600, None)
        .send_to(&url)
        .await;
    assert_eq!(status, 401);
    let deauth = stack
        .sim
        .app_deauthorized_event(zoom_sim::DEFAULT_CLIENT_ID, zoom_sim::DEFAULT_USER_ID);
    let (status, _) = Delivery::signed(&secret, &deauth, now() - 600, None)
        .send_to(&url)
        .await;
    assert_eq!(status, 401);
    let connection: Value = stack.connection(&id).await;
    assert_eq!(connection["status"], "active");
    assert_eq!(seen.of(&stack, WEBHOOK_EVENT).await.len(), 1);
}

async fn a_failing_bus_makes_zoom_retry(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let secret = stack.webhook_secret.clone();
    let mut seen = Seen::default();

    // The bus refuses once: 503, the claim is released, Zoom's retry publishes.
    let flaky = serve(zoom_connector::http::webhooks_router(flaky_container(
        &stack,
        1,
        Duration::ZERO,
    )))
    .await;
    let url = format!("{}/webhooks/zoom", flaky.base_url);
    let delivery = Delivery::signed(
        &secret,
        &stack
            .sim
            .trigger_event("recording.completed", zoom_sim::DEFAULT_USER_ID),
        now(),
        Some("bus-down-1"),
    );
    let (status, problem) = delivery.send_to(&url).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("webhook_publish_failed"))
    );
    assert!(seen.of(&stack, WEBHOOK_EVENT).await.is_empty());
    // Zoom retries (here: to another container, with the first timestamp kept).
    assert_eq!(
        delivery.send_to(&stack.url("/webhooks/zoom")).await.1["status"],
        "published"
    );
    assert_eq!(delivery.send_to(&url).await.1["status"], "duplicate");

    // A bus that does not answer in time: Zoom still gets its answer, well within 3 s here.
    let slow = serve(zoom_connector::http::webhooks_router(flaky_container(
        &stack,
        1,
        Duration::from_secs(300),
    )))
    .await;
    let slow_delivery = Delivery::signed(
        &secret,
        &stack
            .sim
            .trigger_event("meeting.started", zoom_sim::DEFAULT_USER_ID),
        now(),
        Some("bus-slow-1"),
    );
    let started = Instant::now();
    let (status, _) = slow_delivery
        .send_to(&format!("{}/webhooks/zoom", slow.base_url))
        .await;
    assert_eq!(status, 503);
    // Answered long before the bus's 300 s: the publish is bounded (2 s), not waited out. (How
    // close to 2 s is a figure for a benchmark, not an assertion for a busy machine.)
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        slow_delivery.send_to(&stack.url("/webhooks/zoom")).await.1["status"],
        "published"
    );

    // A process crashed after claiming a delivery: its claim is a short lease, taken over
    // once it has run out (Zoom's first retry comes after minutes).
    let crashed = Delivery::signed(
        &secret,
        &stack
            .sim
            .trigger_event("meeting.ended", zoom_sim::DEFAULT_USER_ID),
        now(),
        Some("crashed-1"),
    );
    let key = format!(
        "{}|t|{}",
        zoom_sim::DEFAULT_CLIENT_ID,
        zoom_connector::secret::sha256_hex("crashed-1")
    );
    assert!(
        stack
            .connector
            .store
            .create_item(
                zoom_connector::ports::ItemKind::WebhookDelivery,
                &key,
                &json!({ "state": "claimed", "owner": "a-crashed-process" }),
                Some(now() + 1),
                now(),
            )
            .await
            .unwrap()
    );
    assert_eq!(
        crashed.send_to(&stack.url("/webhooks/zoom")).await.1["status"],
        "duplicate"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        crashed.send_to(&stack.url("/webhooks/zoom")).await.1["status"],
        "published"
    );

    let published = seen.of(&stack, WEBHOOK_EVENT).await;
    let ids: Vec<&str> = published
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bus-down-1", "bus-slow-1", "crashed-1"]);
    assert!(published.iter().all(|d| d["connection_id"] == id.as_str()));
}

async fn byo_apps_have_their_own_route(backend: Backend) {
    let stack = stack(backend).await;
    stack.sim.register_app(BYO_CLIENT, "byo-secret");
    stack.sim.allow_loopback_redirects(BYO_CLIENT);
    let app_url = stack.url(&format!("/webhooks/zoom/apps/{BYO_CLIENT}"));
    let mut seen = Seen::default();
    let event = stack
        .sim
        .trigger_event("meeting.started", zoom_sim::DEFAULT_USER_ID);

    // No token stored for the app yet: 401, whoever signed.
    for secret in [BYO_HOOK_TOKEN, stack.webhook_secret.as_str()] {
        let (status, _) = Delivery::signed(secret, &event, now(), None)
            .send_to(&app_url)
            .await;
        assert_eq!(status, 401);
    }

    let s = stack
        .create_session(json!({ "auth_type": "byo_app", "client_id": BYO_CLIENT, "client_secret": "byo-secret", "webhook_secret_token": BYO_HOOK_TOKEN }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let byo_id = result.connection_id().unwrap();
    // The token is not in the session or connection answers, nor anywhere on the page.
    assert!(!result.body.contains(BYO_HOOK_TOKEN));

    // Zoom's URL validation of the app's endpoint, then events, verified with the app's token.
    let (status, answer) = Delivery::signed(
        BYO_HOOK_TOKEN,
        &url_validation_event("byo-plain"),
        now(),
        None,
    )
    .send_to(&app_url)
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        zoom_sim::webhook::url_validation_answer(BYO_HOOK_TOKEN, "byo-plain")
    );
    let (status, answer) = Delivery::signed(BYO_HOOK_TOKEN, &event, now(), Some("byo-1"))
        .send_to(&app_url)
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("published"))
    );
    // The platform's token does not open the app's route, and the platform's route does not
    // know the BYO connection.
    let (status, _) = Delivery::signed(&stack.webhook_secret, &event, now(), Some("byo-2"))
        .send_to(&app_url)
        .await;
    assert_eq!(status, 401);
    let (status, answer) = Delivery::signed(&stack.webhook_secret, &event, now(), Some("byo-3"))
        .send_to(&stack.url("/webhooks/zoom"))
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("no_connection"))
    );
    let published = seen.of(&stack, WEBHOOK_EVENT).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["connection_id"], byo_id.as_str());
    assert_eq!(published[0]["delivery_id"], "byo-1");

    // The app's token cannot deauthorize another app's users.
    let platform_id = stack.connect_platform().await;
    let foreign = stack
        .sim
        .app_deauthorized_event(zoom_sim::DEFAULT_CLIENT_ID, zoom_sim::DEFAULT_USER_ID);
    let (status, _) = Delivery::signed(BYO_HOOK_TOKEN, &foreign, now(), None)
        .send_to(&app_url)
        .await;
    assert_eq!(status, 200);
    // The BYO user removes the app: its deauthorization works through the app's route.
    let deauth = stack
        .sim
        .app_deauthorized_event(BYO_CLIENT, zoom_sim::DEFAULT_USER_ID);
    let (status, answer) = Delivery::signed(BYO_HOOK_TOKEN, &deauth, now(), None)
        .send_to(&app_url)
        .await;
    assert_eq!(
        (status, answer["revoked"].as_str()),
        (200, Some(byo_id.as_str()))
    );
    let revoked = seen.of(&stack, REVOKED).await;
    let revoked: Vec<&str> = revoked
        .iter()
        .map(|d| d["connection_id"].as_str().unwrap())
        .collect();
    assert_eq!(revoked, [byo_id.as_str()]);
    // Another user connects the same app with another token: it replaces the first.
    stack.sim.add_user(zoom_sim::SimUser::new(
        "sim-user-2",
        "sim-account-1",
        "second@example.com",
        "Second",
        "User",
    ));
    stack.sim.set_current_user("sim-user-2");
    let s = stack
        .create_session(json!({ "auth_type": "byo_app", "client_id": BYO_CLIENT, "client_secret": "byo-secret", "webhook_secret_token": "rotated-token" }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let second_user = stack.sim.trigger_event("meeting.ended", "sim-user-2");
    let (status, _) = Delivery::signed(BYO_HOOK_TOKEN, &second_user, now(), None)
        .send_to(&app_url)
        .await;
    assert_eq!(status, 401, "the replaced token no longer opens the route");
    let (status, answer) = Delivery::signed("rotated-token", &second_user, now(), None)
        .send_to(&app_url)
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("published"))
    );

    let status_of = |id: String| {
        let stack = &stack;
        async move {
            let c: Value = stack.connection(&id).await;
            c["status"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(status_of(byo_id).await, "revoked");
    assert_eq!(status_of(platform_id).await, "active");
}

async fn a_replayed_old_deauthorization_spares_the_new_connection(backend: Backend) {
    let stack = stack(backend).await;
    let first = stack.connect_platform().await;
    let deauth = stack
        .sim
        .app_deauthorized_event(zoom_sim::DEFAULT_CLIENT_ID, zoom_sim::DEFAULT_USER_ID);
    let url = stack.url("/webhooks/zoom");
    let delivery = Delivery::signed(&stack.webhook_secret, &deauth, now(), None);
    let (status, answer) = delivery.send_to(&url).await;
    assert_eq!(
        (status, answer["revoked"].as_str()),
        (200, Some(first.as_str()))
    );

    // The user authorizes again; then the old deauthorization comes back, signed anew.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = stack.connect_platform().await;
    let (status, answer) = delivery
        .resigned(&stack.webhook_secret, now() + 1)
        .send_to(&url)
        .await;
    assert_eq!(status, 200);
    assert!(answer["revoked"].is_null(), "{answer}");
    let c: Value = stack.connection(&second).await;
    assert_eq!(c["status"], "active");
    let mut seen = Seen::default();
    assert_eq!(seen.of(&stack, REVOKED).await.len(), 1);
}

on_both_backends!(local_triggers, aws_triggers;
    every_trigger_reaches_the_connection,
    duplicate_deliveries_are_published_once,
    signatures_and_old_timestamps,
    a_failing_bus_makes_zoom_retry,
    byo_apps_have_their_own_route,
    a_replayed_old_deauthorization_spares_the_new_connection,
);

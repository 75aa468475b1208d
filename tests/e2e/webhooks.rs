//! `POST /webhooks/zoom` on both backends: URL validation, signatures and timestamps,
//! deauthorization (including a warm token cache in this and in another container), replays,
//! body limit, and two webhook tokens during a rotation.

use e2e_tests::stack::{Backend, StackOptions, TestStack, serve};
use serde_json::{Value, json};
use time::OffsetDateTime;
use zoom_connector::app::actions::ZoomCall;
use zoom_connector::domain::connection_secret_name;
use zoom_connector::secret::SecretString;
use zoom_sim::webhook::{sign_webhook, url_validation_answer, url_validation_event};

const REVOKED: &str = "Zoom Connection Revoked";

async fn stack(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend)).await
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// One delivery exactly as given (so it can be replayed byte for byte).
struct Delivery {
    body: Vec<u8>,
    timestamp: Option<String>,
    signature: Option<String>,
}

impl Delivery {
    fn signed(secret: &str, event: &Value, timestamp: i64) -> Self {
        let body = serde_json::to_vec(event).unwrap();
        Self {
            signature: Some(sign_webhook(secret, timestamp, &body)),
            timestamp: Some(timestamp.to_string()),
            body,
        }
    }

    async fn send(&self, base_url: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{base_url}/webhooks/zoom"))
            .header("content-type", "application/json; charset=utf-8")
            .header("user-agent", "Zoom Marketplace/1.0a")
            .body(self.body.clone());
        if let Some(t) = &self.timestamp {
            request = request.header("x-zm-request-timestamp", t);
        }
        if let Some(s) = &self.signature {
            request = request.header("x-zm-signature", s);
        }
        request.send().await.unwrap()
    }
}

fn other_event() -> Value {
    json!({ "event": "meeting.started", "event_ts": now() * 1000, "payload": { "account_id": "sim-account-1", "object": { "id": "123" } } })
}

/// Published events so far (Aws reading consumes the capture queue, so keep them).
async fn revoked_events(stack: &TestStack, seen: &mut Vec<(String, Value)>) -> Vec<Value> {
    let new = stack.events().await;
    match stack.backend {
        Backend::Local => *seen = new,
        Backend::Aws => seen.extend(new),
    }
    seen.iter()
        .filter(|(t, _)| t == REVOKED)
        .map(|(_, d)| d.clone())
        .collect()
}

async fn status_of(stack: &TestStack, id: &str) -> String {
    let r = stack
        .backend(reqwest::Method::GET, &format!("/connections/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    c["status"].as_str().unwrap().to_owned()
}

async fn zoom_me(stack: &TestStack, id: &str) -> (u16, Value) {
    let r = stack
        .backend(reqwest::Method::GET, &format!("/connections/{id}/zoom/me"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

async fn signatures_and_timestamps(backend: Backend) {
    let stack = stack(backend).await;
    let secret = stack.webhook_secret.clone();
    let webhook_url = stack.url("/webhooks/zoom");

    // Zoom's URL validation, as Zoom sends it.
    let r = stack
        .sim
        .send_webhook(
            &webhook_url,
            &secret,
            url_validation_event("qgg8vlvZRS6UYooatFL8Aw"),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer,
        url_validation_answer(&secret, "qgg8vlvZRS6UYooatFL8Aw")
    );

    let good = Delivery::signed(&secret, &other_event(), now());
    assert_eq!(good.send(&stack.base_url).await.status(), 200);
    // Inside the five minutes, and with Zoom's millisecond timestamps too.
    let recent = Delivery::signed(&secret, &other_event(), now() - 240);
    assert_eq!(recent.send(&stack.base_url).await.status(), 200);
    let millis = Delivery::signed(&secret, &other_event(), now() * 1000);
    assert_eq!(millis.send(&stack.base_url).await.status(), 200);

    let refused = [
        (
            "bad signature",
            Delivery::signed("not-the-secret", &other_event(), now()),
        ),
        (
            "missing signature",
            Delivery {
                signature: None,
                ..Delivery::signed(&secret, &other_event(), now())
            },
        ),
        (
            "missing timestamp",
            Delivery {
                timestamp: None,
                ..Delivery::signed(&secret, &other_event(), now())
            },
        ),
        (
            "stale timestamp",
            // Trigger events may be up to two hours old (Zoom's retries may keep the first
            // timestamp, see triggers.rs); older is refused.
            Delivery::signed(&secret, &other_event(), now() - 2 * 3600 - 60),
        ),
        (
            "future timestamp",
            // Clear of the second in which the server reads its clock.
            Delivery::signed(&secret, &other_event(), now() + 310),
        ),
        (
            "signature of another body",
            Delivery {
                body: serde_json::to_vec(&json!({ "event": "app_deauthorized" })).unwrap(),
                ..Delivery::signed(&secret, &other_event(), now())
            },
        ),
        (
            "url validation with a bad signature",
            Delivery::signed("not-the-secret", &url_validation_event("abc"), now()),
        ),
    ];
    let mut bodies = Vec::new();
    for (case, delivery) in &refused {
        let r = delivery.send(&stack.base_url).await;
        assert_eq!(r.status(), 401, "{case}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{case}"
        );
        bodies.push((case, r.text().await.unwrap()));
    }
    // One answer for every refusal: nothing tells a caller which check failed.
    for (case, body) in &bodies {
        assert_eq!(body, &bodies[0].1, "{case}");
        let lower = body.to_lowercase();
        for hint in ["stale", "expired", "timestamp", "old", "missing", "secret"] {
            assert!(!lower.contains(hint), "{case}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_webhook_signatures_and_timestamps() {
    signatures_and_timestamps(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_webhook_signatures_and_timestamps() {
    signatures_and_timestamps(Backend::Aws).await;
}

async fn deauthorization_revokes_the_connection(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let mut seen = Vec::new();

    // Warm token caches: this process (serves actions and webhooks) and another container.
    assert_eq!(zoom_me(&stack, &id).await.0, 200);
    let other = stack.another_container();
    let me = ZoomCall::get("/users/me");
    assert!(other.zoom_pass(&id, &me).await.is_ok());

    // Zoom revokes the user's tokens and tells us.
    stack.sim.revoke_user_tokens(zoom_sim::DEFAULT_USER_ID);
    let event = stack
        .sim
        .app_deauthorized_event(zoom_sim::DEFAULT_CLIENT_ID, zoom_sim::DEFAULT_USER_ID);
    let delivery = Delivery::signed(&stack.webhook_secret, &event, now());
    let r = delivery.send(&stack.base_url).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    assert_eq!(status_of(&stack, &id).await, "revoked");
    let secret_name = connection_secret_name(&stack.connector.config.aws.secrets_prefix, &id);
    assert!(
        stack
            .connector
            .secrets
            .get_secret(&secret_name)
            .await
            .unwrap()
            .is_none(),
        "the user's tokens are deleted"
    );
    let revoked = revoked_events(&stack, &mut seen).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["connection_id"], id.as_str());

    // This process had the token cached: the action is refused all the same.
    let (status, problem) = zoom_me(&stack, &id).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("connection_revoked"))
    );
    // The other container still holds the token in memory; Zoom refuses it, and the retry
    // path finds the connection revoked: 409, not a 5xx.
    let e = other.zoom_pass(&id, &me).await.unwrap_err();
    assert_eq!(
        (e.status.as_u16(), e.code.as_str()),
        (409, "connection_revoked")
    );
    let e = other.zoom_pass(&id, &me).await.unwrap_err();
    assert_eq!(e.code.as_str(), "connection_revoked");

    // Zoom delivers the same event again: acknowledged, nothing happens twice.
    let r = delivery.send(&stack.base_url).await;
    assert_eq!(r.status(), 200);
    // And again later, signed anew (e.g. Zoom's retry after a slow answer).
    let again = Delivery::signed(&stack.webhook_secret, &event, now() + 1);
    assert_eq!(again.send(&stack.base_url).await.status(), 200);
    assert_eq!(revoked_events(&stack, &mut seen).await.len(), 1);
    assert_eq!(status_of(&stack, &id).await, "revoked");

    // The user connects again: a fresh, working connection.
    let reconnected = stack.connect_platform().await;
    assert_eq!(zoom_me(&stack, &reconnected).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_deauthorization_revokes_the_connection() {
    deauthorization_revokes_the_connection(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_deauthorization_revokes_the_connection() {
    deauthorization_revokes_the_connection(Backend::Aws).await;
}

async fn deauthorization_through_the_simulator(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    assert_eq!(zoom_me(&stack, &id).await.0, 200);
    let r = stack
        .sim
        .send_webhook(
            &stack.url("/webhooks/zoom"),
            &stack.webhook_secret,
            stack
                .sim
                .app_deauthorized_event(zoom_sim::DEFAULT_CLIENT_ID, zoom_sim::DEFAULT_USER_ID),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&stack, &id).await, "revoked");
    // Zoom has not refused the cached token here; the revocation alone stops the action.
    let (status, problem) = zoom_me(&stack, &id).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("connection_revoked"))
    );
    let mut seen = Vec::new();
    assert_eq!(revoked_events(&stack, &mut seen).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_deauthorization_through_the_simulator() {
    deauthorization_through_the_simulator(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_deauthorization_through_the_simulator() {
    deauthorization_through_the_simulator(Backend::Aws).await;
}

async fn other_deliveries_change_nothing(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let secret = stack.webhook_secret.clone();

    // A user we never connected, and an app that is not ours.
    for (client, user) in [
        (zoom_sim::DEFAULT_CLIENT_ID, "someone-else"),
        ("another-client", zoom_sim::DEFAULT_USER_ID),
    ] {
        let event = json!({
            "event": "app_deauthorized",
            "event_ts": now() * 1000,
            "payload": { "account_id": "sim-account-1", "user_id": user, "client_id": client,
                "deauthorization_time": "2026-11-30T12:00:00.000Z", "user_data_retention": "false" },
        });
        let r = Delivery::signed(&secret, &event, now())
            .send(&stack.base_url)
            .await;
        assert_eq!(r.status(), 200, "{client}/{user}");
    }
    // Events we do not act on.
    let r = Delivery::signed(&secret, &other_event(), now())
        .send(&stack.base_url)
        .await;
    assert_eq!(r.status(), 200);

    assert_eq!(status_of(&stack, &id).await, "active");
    assert_eq!(zoom_me(&stack, &id).await.0, 200);
    let mut seen = Vec::new();
    assert!(revoked_events(&stack, &mut seen).await.is_empty());

    // Over 1 MB: refused before anything else.
    let mut big = other_event();
    big["payload"]["padding"] = json!("x".repeat(1024 * 1024));
    let r = Delivery::signed(&secret, &big, now())
        .send(&stack.base_url)
        .await;
    assert_eq!(r.status(), 413);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_other_webhook_deliveries_change_nothing() {
    other_deliveries_change_nothing(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_other_webhook_deliveries_change_nothing() {
    other_deliveries_change_nothing(Backend::Aws).await;
}

async fn both_tokens_work_during_a_rotation(backend: Backend) {
    let stack = stack(backend).await;
    let old = stack.webhook_secret.clone();
    let new = zoom_connector::secret::random_token(24);
    let keys = json!({ "api_key": stack.api_key, "webhook_secret_token": new, "previous_webhook_secret_token": old });
    stack
        .connector
        .secrets
        .put_secret(
            &stack.connector.config.aws.connector_secret_id,
            &SecretString::new(keys.to_string()),
            "rotate-webhook-token",
        )
        .await
        .unwrap();
    // A container started after the rotation (warm ones pick it up within the key cache's
    // five minutes).
    let container = serve(zoom_connector::http::webhooks_router(
        stack.another_container(),
    ))
    .await;

    for secret in [&new, &old] {
        let r = Delivery::signed(secret, &other_event(), now())
            .send(&container.base_url)
            .await;
        assert_eq!(r.status(), 200);
        // URL validation is answered with the token that signed it.
        let r = Delivery::signed(secret, &url_validation_event("plain-1"), now())
            .send(&container.base_url)
            .await;
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer, url_validation_answer(secret, "plain-1"));
    }
    let r = Delivery::signed("neither", &other_event(), now())
        .send(&container.base_url)
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_both_webhook_tokens_work_during_a_rotation() {
    both_tokens_work_during_a_rotation(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_both_webhook_tokens_work_during_a_rotation() {
    both_tokens_work_during_a_rotation(Backend::Aws).await;
}

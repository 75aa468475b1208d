//! The deployed path: the functions' real binaries under the Lambda Runtime API emulator,
//! behind the API Gateway HTTP API emulator (payload 2.0), against moto and the simulator
//! (tests/src/deployed.rs). What users deploy, short of AWS itself: decoded `rawPath`,
//! `cookies` array, base64 form bodies, API Gateway's own 404/500/503.

use std::time::Duration;

use e2e_tests::deployed::{DeployedOptions, DeployedStack, sqs_record};
use e2e_tests::stack::unique;
use lambda_emulator::pool::Outcome;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use zoom_sim::webhook::{sign_webhook, url_validation_answer, url_validation_event};
use zoom_sim::{Fault, FaultTarget, SimRecording};

/// Status and body of a call through the front.
async fn call(
    stack: &DeployedStack,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = stack.backend(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.expect("a call through the front");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// One path segment, percent-encoded (`/`, `+` and `=` included).
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

async fn status_of(stack: &DeployedStack, id: &str) -> String {
    let (status, body) = call(stack, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    json_of(&body)["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_with_the_platform_app_and_a_byo_app() {
    let stack = DeployedStack::start().await;
    let platform = stack.connect_platform().await;
    assert_eq!(status_of(&stack, &platform).await, "active");

    // Bring your own app: the choice page, then its form (a base64 body in the event).
    stack.sim.register_app("byo-client", "byo-secret");
    stack.sim.allow_loopback_redirects("byo-client");
    let session = stack.create_session(json!({})).await;
    let connect_url = session["connect_url"].as_str().unwrap();
    assert!(connect_url.starts_with(&stack.base_url), "{connect_url}");
    let result = stack
        .run_flow(
            connect_url,
            Some(&[
                ("auth_type", "byo_app"),
                ("client_id", "byo-client"),
                ("client_secret", "byo-secret"),
            ]),
        )
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    assert_eq!(result.data("data-status").as_deref(), Some("success"));
    let byo = result.connection_id().unwrap();
    let (status, body) = call(&stack, Method::GET, &format!("/connections/{byo}"), None).await;
    assert_eq!(status, 200, "{body}");
    let connection = json_of(&body);
    assert_eq!(
        (
            connection["auth_type"].as_str(),
            connection["client_id"].as_str()
        ),
        (Some("byo_app"), Some("byo-client"))
    );
    let created = stack.events().await;
    let created: Vec<_> = created
        .iter()
        .filter(|(t, _)| t == "Zoom Connection Created")
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    stack.assert_aws_calls_allowed_by_iam();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_through_the_front() {
    let stack = DeployedStack::start().await;
    // API Gateway's own 404: no route, no function started.
    let r = stack.http.get(stack.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), r#"{"message":"Not Found"}"#);
    assert_eq!(stack.processes_started("actions"), 0);
    let (status, _) = call(&stack, Method::GET, "/healthz", None).await;
    assert_eq!(status, 200);
    // Over HTTP APIs' 10 MB body limit: refused before any function runs.
    let r = stack
        .backend(Method::POST, "/connect/sessions")
        .header("content-type", "application/json")
        .body(vec![b' '; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(stack.processes_started("connect"), 0);

    let id = stack.connect_platform().await;
    for listing in ["/connections", "/connections?status=active"] {
        let (status, body) = call(&stack, Method::GET, listing, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            json_of(&body)["connections"][0]["id"],
            id.as_str(),
            "{body}"
        );
    }
    let (status, body) = call(
        &stack,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["status"], "active");
    let zoom = |rest: &str| format!("/connections/{id}/zoom{rest}");
    let (status, body) = call(&stack, Method::GET, &zoom("/me"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["id"], zoom_sim::DEFAULT_USER_ID);

    let meeting = json!({ "topic": "Standup", "type": 2, "start_time": "2026-12-01T09:00:00Z", "duration": 15 });
    let (status, body) = call(&stack, Method::POST, &zoom("/meetings"), Some(meeting)).await;
    assert_eq!(status, 201, "{body}");
    let meeting_id = json_of(&body)["id"].as_i64().unwrap();
    let one = zoom(&format!("/meetings/{meeting_id}"));
    let (status, body) = call(&stack, Method::GET, &one, None).await;
    assert_eq!(
        (status, json_of(&body)["topic"].as_str()),
        (200, Some("Standup")),
        "{body}"
    );
    let (status, body) = call(
        &stack,
        Method::PATCH,
        &one,
        Some(json!({ "topic": "Renamed" })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let live = json!({ "stream_url": "rtmp://live.example.com/app", "stream_key": "k3y", "page_url": "https://example.com/live" });
    let (status, body) = call(
        &stack,
        Method::PATCH,
        &format!("{one}/livestream"),
        Some(live),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(&stack, Method::DELETE, &one, None).await;
    assert_eq!(status, 204, "{body}");

    let recording =
        SimRecording::new("Plain", datetime!(2026-03-02 10:00 UTC)).with_meeting_id(81234567890);
    stack
        .sim
        .add_recording(zoom_sim::DEFAULT_USER_ID, recording.clone());
    let (status, body) = call(
        &stack,
        Method::GET,
        &zoom("/recordings?from=2026-03-01&to=2026-03-31"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&recording.uuid), "{body}");

    // The proxy's greedy `{proxy+}` route.
    let (status, body) = call(
        &stack,
        Method::GET,
        &format!("/connections/{id}/proxy/users/me"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["id"], zoom_sim::DEFAULT_USER_ID);

    let (status, body) = call(&stack, Method::DELETE, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = call(&stack, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(status, 404);
    stack.assert_aws_calls_allowed_by_iam();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meeting_recordings_by_numeric_id_and_by_double_encoded_uuids() {
    let stack = DeployedStack::start().await;
    let id = stack.connect_platform().await;
    let user = zoom_sim::DEFAULT_USER_ID;
    let plain =
        SimRecording::new("Plain", datetime!(2026-03-02 10:00 UTC)).with_meeting_id(81234567890);
    stack.sim.add_recording(user, plain.clone());
    let path = |meeting: &str| format!("/connections/{id}/zoom/meetings/{meeting}/recordings");
    let (status, body) = call(&stack, Method::GET, &path("81234567890"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["uuid"], plain.uuid.as_str());

    let uuids = ["/ajXp112QmuoKj4854875==", "Rk9v//YmFy+ZQ==", "ab/cdEF=="];
    for (n, uuid) in uuids.into_iter().enumerate() {
        let at = OffsetDateTime::from_unix_timestamp(1_772_445_600 + 86_400 * n as i64).unwrap();
        stack
            .sim
            .add_recording(user, SimRecording::new("Slashed", at).with_uuid(uuid));
        // Double-encoded, as Zoom documents for such UUIDs: one decoding at API Gateway leaves
        // one segment.
        let (status, body) = call(&stack, Method::GET, &path(&encode(&encode(uuid))), None).await;
        assert_eq!(status, 200, "{uuid}: {body}");
        assert_eq!(json_of(&body)["uuid"], uuid);
        // Encoded once, the `/` is decoded before routing: API Gateway's own 404.
        let (status, body) = call(&stack, Method::GET, &path(&encode(uuid)), None).await;
        assert_eq!(
            (status, body.as_str()),
            (404, r#"{"message":"Not Found"}"#),
            "{uuid}"
        );
    }
    stack.assert_aws_calls_allowed_by_iam();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_validate_the_url_and_revoke_on_deauthorization() {
    let stack = DeployedStack::start().await;
    let post = |event: &Value| {
        let body = serde_json::to_vec(event).unwrap();
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        stack
            .http
            .post(stack.url("/webhooks/zoom"))
            .header("content-type", "application/json; charset=utf-8")
            .header("x-zm-request-timestamp", ts.to_string())
            .header(
                "x-zm-signature",
                sign_webhook(&stack.webhook_secret, ts, &body),
            )
            .body(body)
            .send()
    };
    let r = post(&url_validation_event("qgg8vlvZRS6UYooatFL8Aw"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer,
        url_validation_answer(&stack.webhook_secret, "qgg8vlvZRS6UYooatFL8Aw")
    );

    let id = stack.connect_platform().await;
    stack.sim.revoke_user_tokens(zoom_sim::DEFAULT_USER_ID);
    let event = stack
        .sim
        .app_deauthorized_event(zoom_sim::DEFAULT_CLIENT_ID, zoom_sim::DEFAULT_USER_ID);
    let r = post(&event).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(status_of(&stack, &id).await, "revoked");
    stack.assert_aws_calls_allowed_by_iam();
}

/// A signed delivery through the front: `(status, answer)`.
async fn deliver(
    stack: &DeployedStack,
    path: &str,
    secret: &str,
    event: &Value,
    tracking_id: &str,
) -> (u16, Value) {
    let body = serde_json::to_vec(event).unwrap();
    let ts = OffsetDateTime::now_utc().unix_timestamp();
    let r = stack
        .http
        .post(stack.url(path))
        .header("content-type", "application/json; charset=utf-8")
        .header("x-zm-request-timestamp", ts.to_string())
        .header("x-zm-signature", sign_webhook(secret, ts, &body))
        .header("x-zm-trackingid", tracking_id)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_triggers_are_published_once_for_the_platform_app_and_a_byo_app() {
    let stack = DeployedStack::start().await;
    let platform = stack.connect_platform().await;
    let user = zoom_sim::DEFAULT_USER_ID;

    // A trigger through the platform route (PLATFORM_CLIENT_ID routes it), delivered twice.
    let event = stack.sim.trigger_event("recording.completed", user);
    for expected in ["published", "duplicate"] {
        let (status, answer) = deliver(
            &stack,
            "/webhooks/zoom",
            &stack.webhook_secret,
            &event,
            "dep-1",
        )
        .await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some(expected)),
            "{answer}"
        );
    }

    // A BYO app: 401 until a connection stores its webhook token, then its own events.
    let app_path = "/webhooks/zoom/apps/byo-client";
    let started = stack.sim.trigger_event("meeting.started", user);
    let (status, _) = deliver(&stack, app_path, "byo-hook", &started, "dep-2").await;
    assert_eq!(status, 401);
    stack.sim.register_app("byo-client", "byo-secret");
    stack.sim.allow_loopback_redirects("byo-client");
    let session = stack.create_session(json!({})).await;
    let result = stack
        .run_flow(
            session["connect_url"].as_str().unwrap(),
            Some(&[
                ("auth_type", "byo_app"),
                ("client_id", "byo-client"),
                ("client_secret", "byo-secret"),
                ("webhook_secret_token", "byo-hook"),
            ]),
        )
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let byo = result.connection_id().unwrap();
    // The webhooks function cached "no token" a moment ago; it reads the app's secret again
    // after a failed verification, at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer) = deliver(&stack, app_path, "byo-hook", &started, "dep-3").await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("published")),
        "{answer}"
    );
    let deauth = stack.sim.app_deauthorized_event("byo-client", user);
    let (status, answer) = deliver(&stack, app_path, "byo-hook", &deauth, "dep-4").await;
    assert_eq!(
        (status, answer["revoked"].as_str()),
        (200, Some(byo.as_str())),
        "{answer}"
    );
    assert_eq!(status_of(&stack, &byo).await, "revoked");
    assert_eq!(status_of(&stack, &platform).await, "active");

    let triggers: Vec<Value> = stack
        .events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "Zoom Webhook Event")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(triggers.len(), 2, "{triggers:?}");
    assert_eq!(
        (
            triggers[0]["connection_id"].as_str(),
            triggers[0]["event"].as_str()
        ),
        (Some(platform.as_str()), Some("recording.completed"))
    );
    assert!(!triggers[0].to_string().contains("download_token"));
    assert_eq!(
        (
            triggers[1]["connection_id"].as_str(),
            triggers[1]["delivery_id"].as_str()
        ),
        (Some(byo.as_str()), Some("dep-3"))
    );
    stack.assert_aws_calls_allowed_by_iam();
}

fn meeting_event(key: &str, connection_id: &str) -> String {
    json!({
        "idempotency_key": key,
        "connection_id": connection_id,
        "meeting": { "topic": "From the queue", "type": 2, "start_time": "2026-12-01T09:00:00Z", "duration": 30 },
        "correlation_id": format!("corr-{key}")
    })
    .to_string()
}

fn answer_of(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Response(body) => serde_json::from_slice(&body).expect("a JSON answer"),
        other => panic!("the function failed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meeting_events_from_sqs_create_each_meeting_once() {
    let stack = DeployedStack::start().await;
    let conn = stack.connect_platform().await;

    // One key delivered twice in one batch.
    let twice = meeting_event(&unique("dup"), &conn);
    let batch = json!({ "Records": [sqs_record("m-1", &twice), sqs_record("m-2", &twice)] });
    let answer = answer_of(stack.invoke("meeting-events", batch).await);
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    assert_eq!(stack.sim.meetings_count(), 1);

    // One key in two concurrent invocations (two processes).
    let racing = meeting_event(&unique("race"), &conn);
    let one = json!({ "Records": [sqs_record("r-1", &racing)] });
    let two = json!({ "Records": [sqs_record("r-2", &racing)] });
    let (a, b) = tokio::join!(
        stack.invoke("meeting-events", one),
        stack.invoke("meeting-events", two)
    );
    let failures = |v: Value| {
        v["batchItemFailures"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let retried = failures(answer_of(a)).len() + failures(answer_of(b)).len();
    assert_eq!(stack.sim.meetings_count(), 2, "one more meeting");
    assert!(retried <= 1, "at most the loser is retried");

    // A transient failure (Zoom's 429) is reported; a malformed message is not.
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    let limited = meeting_event(&unique("limited"), &conn);
    let batch =
        json!({ "Records": [sqs_record("msg-429", &limited), sqs_record("msg-bad", "[]")] });
    let answer = answer_of(stack.invoke("meeting-events", batch).await);
    assert_eq!(
        answer,
        json!({ "batchItemFailures": [{ "itemIdentifier": "msg-429" }] })
    );
    stack.assert_aws_calls_allowed_by_iam();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduled_sweep_refreshes_a_due_connection() {
    let stack = DeployedStack::start().await;
    let id = stack.connect_platform().await;
    let past = OffsetDateTime::now_utc().unix_timestamp() - 60;
    stack
        .connector
        .update_record(&id, |r| r.next_refresh_at = Some(past))
        .await
        .unwrap()
        .expect("the connection exists");
    // What the RefreshSchedule target sends (its Input).
    let report = answer_of(
        stack
            .invoke("refresh", json!({ "source": "zoom-connector.schedule" }))
            .await,
    );
    assert_eq!(
        report,
        json!({ "scanned": 1, "refreshed": 1, "skipped": 0, "failed": 0 })
    );
    stack.assert_aws_calls_allowed_by_iam();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_function_is_503_and_a_crashed_one_500() {
    let stack = DeployedStack::start_with(
        DeployedOptions::default()
            .timeout("actions", Duration::from_secs(2))
            // The webhooks function cannot read its configuration: it exits during init.
            .env("webhooks", "REFRESH_MODE", "sometimes"),
    )
    .await;
    let id = stack.connect_platform().await;
    // The function stops its own Zoom calls before its deadline and answers itself.
    stack
        .sim
        .set_latency(FaultTarget::Api, Duration::from_secs(4));
    let (status, body) = call(
        &stack,
        Method::GET,
        &format!("/connections/{id}/zoom/me"),
        None,
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(json_of(&body)["code"], "zoom_unavailable", "{body}");
    stack.sim.set_latency(FaultTarget::Api, Duration::ZERO);
    // An AWS call slower than the time left (the SDK's own timeouts are longer): Lambda stops
    // the function and API Gateway answers for it.
    stack.slow_aws("actions", "DynamoDB_20120810.", Duration::from_millis(2500));
    let (status, body) = call(&stack, Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"message":"Service Unavailable"}"#)
    );
    stack.slow_aws("actions", "DynamoDB_20120810.", Duration::ZERO);
    // The killed process is replaced by a new one.
    let before = stack.processes_started("actions");
    let (status, body) = call(
        &stack,
        Method::GET,
        &format!("/connections/{id}/zoom/me"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.processes_started("actions"), before + 1);

    let r = stack
        .http
        .post(stack.url("/webhooks/zoom"))
        .header("content-type", "application/json")
        .body(url_validation_event("abc").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Internal Server Error"}"#
    );
}

/// `end_user` from the session onto the connection, `?end_user_id=` from its index (the
/// actions function's IAM grant on `list-end-user-index`), and the functions' EMF metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_user_listing_and_metrics_through_the_front() {
    let stack = DeployedStack::start().await;
    let session = stack
        .create_session(
            json!({ "auth_type": "platform_app", "end_user": { "id": "pu-7", "email": "p@x.io" } }),
        )
        .await;
    let result = stack
        .run_flow(session["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let id = result.connection_id().unwrap();
    let (status, body) = call(&stack, Method::GET, "/connections?end_user_id=pu-7", None).await;
    assert_eq!(status, 200, "{body}");
    let page = json_of(&body);
    assert_eq!(page["connections"][0]["id"], id.as_str());
    assert_eq!(
        page["connections"][0]["end_user"],
        json!({ "id": "pu-7", "email": "p@x.io" })
    );
    let (_, body) = call(
        &stack,
        Method::GET,
        "/connections?end_user_id=pu-7&status=revoked",
        None,
    )
    .await;
    assert_eq!(json_of(&body)["connections"], json!([]));
    let (status, body) = call(
        &stack,
        Method::GET,
        &format!("/connections/{id}/zoom/me"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The actions function wrote EMF lines for that action into its log stream.
    let namespace = format!("ZoomConnector/{}", stack.stage);
    let mut emf: Vec<Value> = Vec::new();
    for _ in 0..20 {
        emf = stack
            .function_logs("actions")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace.as_str())
            .collect();
        if emf.iter().any(|l| l.get("ZoomResponses").is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let zoom = emf
        .iter()
        .find(|l| l.get("ZoomResponses").is_some())
        .unwrap_or_else(|| panic!("no ZoomResponses line in {emf:?}"));
    assert_eq!(zoom["Function"], "actions");
    assert_eq!(zoom["StatusClass"], "2xx");
    assert!(
        emf.iter().any(|l| l.get("ActionLatency").is_some()),
        "{emf:?}"
    );
    let all = emf.iter().map(Value::to_string).collect::<String>();
    assert!(!all.contains(&id), "no connection id in a metric: {all}");
    stack.assert_aws_calls_allowed_by_iam();
}

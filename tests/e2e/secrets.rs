//! No secret in any log line or answer: every flow runs with log level TRACE captured, and
//! none of the tokens, client secrets, API key or webhook secret issued during the run may
//! appear in the logs or in any answer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the connector answered during the run: status line, headers and body.
#[derive(Default)]
struct Answers(Vec<String>);

impl Answers {
    async fn record(&mut self, r: reqwest::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let mut text = format!("{status}\n");
        for (k, v) in r.headers() {
            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or_default()));
        }
        let body = r.text().await.unwrap_or_default();
        text.push_str(&body);
        self.0.push(text);
        (status, body)
    }
}

async fn every_flow(stack: &TestStack, answers: &mut Answers) -> Vec<String> {
    let mut secrets = vec![
        stack.api_key.clone(),
        stack.webhook_secret.clone(),
        zoom_sim::DEFAULT_CLIENT_SECRET.to_owned(),
        "byo-very-secret-value".to_owned(),
    ];
    stack.sim.register_app("byo-app", "byo-very-secret-value");
    stack.sim.allow_loopback_redirects("byo-app");

    // Connect with both apps (the callback answer is recorded through run_flow's body).
    let platform = stack.connect_platform().await;
    let s = stack.create_session(json!({ "auth_type": "byo_app", "client_id": "byo-app", "client_secret": "byo-very-secret-value" })).await;
    let flow = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    answers.0.push(flow.body.clone());
    let byo = flow.connection_id().unwrap();

    for id in [&platform, &byo] {
        for (method, path, body) in [
            (Method::GET, format!("/connections/{id}"), None),
            (Method::GET, format!("/connections/{id}/zoom/me"), None),
            (
                Method::POST,
                format!("/connections/{id}/zoom/meetings"),
                Some(json!({ "topic": "t", "type": 2, "start_time": "2026-12-01T10:00:00Z" })),
            ),
            (Method::POST, format!("/connections/{id}/refresh"), None),
            (
                Method::GET,
                format!("/connections/{id}/proxy/users/me"),
                None,
            ),
            (Method::GET, "/connections".to_owned(), None),
        ] {
            let mut req = stack.backend(method, &path);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let (status, body) = answers.record(req.send().await.unwrap()).await;
            assert!(status < 300, "{path}: {status} {body}");
        }
    }
    // A 401 from Zoom and the refresh it triggers.
    stack.sim.expire_access_tokens();
    answers
        .record(
            stack
                .backend(Method::GET, &format!("/connections/{platform}/zoom/me"))
                .send()
                .await
                .unwrap(),
        )
        .await;
    // Errors: wrong key, unknown connection, validation.
    answers
        .record(
            stack
                .http
                .get(stack.url("/connections"))
                .bearer_auth("nope")
                .send()
                .await
                .unwrap(),
        )
        .await;
    answers
        .record(
            stack
                .backend(Method::GET, "/connections/conn_missing")
                .send()
                .await
                .unwrap(),
        )
        .await;
    answers
        .record(
            stack
                .backend(
                    Method::POST,
                    &format!("/connections/{platform}/zoom/meetings"),
                )
                .json(&json!({ "type": 99 }))
                .send()
                .await
                .unwrap(),
        )
        .await;
    // Webhooks: URL validation and deauthorization of the BYO user.
    let url = stack.url("/webhooks/zoom");
    let validation =
        json!({ "event": "endpoint.url_validation", "payload": { "plainToken": "plain-123" } });
    answers
        .record(
            stack
                .sim
                .send_webhook(&url, &stack.webhook_secret, validation)
                .await
                .unwrap(),
        )
        .await;
    let deauth = stack
        .sim
        .app_deauthorized_event("byo-app", zoom_sim::DEFAULT_USER_ID);
    answers
        .record(
            stack
                .sim
                .send_webhook(&url, &stack.webhook_secret, deauth)
                .await
                .unwrap(),
        )
        .await;
    // Delete (revokes at Zoom).
    answers
        .record(
            stack
                .backend(Method::DELETE, &format!("/connections/{platform}"))
                .send()
                .await
                .unwrap(),
        )
        .await;

    // Every token Zoom issued during the run.
    for request in stack
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oauth/token")
    {
        if let Ok(answer) = serde_json::from_slice::<serde_json::Value>(&request.response_body) {
            for field in ["access_token", "refresh_token"] {
                if let Some(t) = answer[field].as_str() {
                    secrets.push(t.to_owned());
                }
            }
        }
    }
    assert!(secrets.len() > 8, "the run issued tokens");
    secrets
}

async fn no_secret_leaks(backend: Backend) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = TestStack::start(StackOptions::new(backend)).await;
    let mut answers = Answers::default();
    let secrets = every_flow(&stack, &mut answers).await;

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        logs.len() > 10_000,
        "TRACE logs were captured ({} bytes)",
        logs.len()
    );
    // One-time values that travel in URLs: connect session tokens, OAuth states and codes.
    // They may appear in answers (that is how they travel) but never in a log line.
    let mut one_time: Vec<String> = Vec::new();
    for request in stack.sim.requests() {
        let query: Vec<(String, String)> = url::form_urlencoded::parse(request.query.as_bytes())
            .into_owned()
            .collect();
        let form: Vec<(String, String)> = request.form().into_iter().collect();
        for (k, v) in query.into_iter().chain(form) {
            if (k == "state" || k == "code") && v.len() >= 16 {
                one_time.push(v);
            }
        }
    }
    assert!(one_time.len() >= 4, "states and codes were seen");
    for value in &one_time {
        assert!(
            !logs.contains(value.as_str()),
            "a one-time OAuth value appears in the logs: {}…",
            &value[..4]
        );
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the logs: {}…",
            &secret[..4.min(secret.len())]
        );
        for answer in &answers.0 {
            assert!(
                !answer.contains(secret.as_str()),
                "a secret appears in an answer: {answer}"
            );
        }
    }
}

// current_thread: the thread-local TRACE subscriber then sees every task of the test (the
// connector's routers and the simulator are spawned on this runtime).
e2e_tests::on_both_backends!(no_secret_in_logs_or_answers_local, no_secret_in_logs_or_answers_aws; no_secret_leaks);

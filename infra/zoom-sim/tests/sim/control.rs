use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use zoom_sim::{Counters, Fault, FaultTarget, SimConfig};

use crate::common::*;

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook receiver on a free port that stores what it gets.
async fn receiver() -> (String, Received, tokio::task::JoinHandle<()>) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/webhooks/zoom",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!(
        "http://{}/webhooks/zoom",
        listener.local_addr().expect("addr")
    );
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, received, handle)
}

fn expected_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn webhooks_are_signed_like_zoom() {
    let h = Harness::start().await;
    let (url, received, _server) = receiver().await;
    let event = h.sim.app_deauthorized_event(CLIENT_ID, "sim-user-1");
    assert_eq!(event["event"], "app_deauthorized");
    assert!(event["event_ts"].is_i64());
    let payload = &event["payload"];
    assert_eq!(payload["account_id"], "sim-account-1");
    assert_eq!(payload["user_id"], "sim-user-1");
    assert_eq!(payload["client_id"], CLIENT_ID);
    assert_eq!(payload["user_data_retention"], "false");
    assert!(payload["signature"].is_string() && payload["deauthorization_time"].is_string());

    let response = h
        .sim
        .send_webhook(&url, "whsec-1", event.clone())
        .await
        .expect("delivered");
    assert_eq!(response.status(), StatusCode::OK);
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    let timestamp = header(headers, "x-zm-request-timestamp");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(timestamp.parse::<i64>().is_ok_and(|t| (now - t).abs() < 60));
    assert_eq!(
        header(headers, "x-zm-signature"),
        expected_signature("whsec-1", &timestamp, body)
    );
    assert_eq!(serde_json::from_slice::<Value>(body).ok(), Some(event));

    let validation = zoom_sim::webhook::url_validation_answer("whsec-1", "plain");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec-1").expect("key");
    mac.update(b"plain");
    assert_eq!(
        validation["encryptedToken"],
        hex::encode(mac.finalize().into_bytes())
    );
}

#[tokio::test]
async fn deauthorize_revokes_and_notifies() {
    let (url, received, _server) = receiver().await;
    let h = Harness::start_with(SimConfig {
        webhook_target: Some(url.clone()),
        webhook_secret_token: Some("whsec-2".into()),
        ..SimConfig::default()
    })
    .await;
    let tokens = h.connect().await;
    let response = h
        .http
        .post(h.url("/_sim/deauthorize"))
        .json(&json!({"user_id": "sim-user-1"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let outcome: Value = response.json().await.expect("json");
    assert_eq!(outcome["revoked_clients"], json!([CLIENT_ID]));
    assert_eq!(outcome["webhooks"][0]["status"], 200);
    assert_eq!(
        h.api(
            Method::GET,
            "/users/me",
            &str_field(&tokens, "access_token"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    let timestamp = header(headers, "x-zm-request-timestamp");
    assert_eq!(
        header(headers, "x-zm-signature"),
        expected_signature("whsec-2", &timestamp, body)
    );
    let event: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(event["payload"]["client_id"], CLIENT_ID);
    assert_eq!(event["payload"]["user_id"], "sim-user-1");
}

#[tokio::test]
async fn control_api_mirrors_the_rust_api() {
    let h = Harness::start().await;
    let post = |path: &str, body: Value| h.http.post(h.url(path)).json(&body).send();

    let status = post("/_sim/users", json!({"id": "u9", "account_id": "a9", "email": "u9@example.com", "first_name": "U", "last_name": "Nine"}))
        .await
        .expect("answers")
        .status();
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        post("/_sim/current-user", json!({"user_id": "u9"}))
            .await
            .expect("answers")
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("/_sim/current-user", json!({"user_id": "ghost"}))
            .await
            .expect("answers")
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post("/_sim/auto-approve", json!({"on": true}))
            .await
            .expect("answers")
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("/_sim/faults", json!({"oops": 1}))
            .await
            .expect("answers")
            .status(),
        StatusCode::BAD_REQUEST
    );

    let tokens = {
        let (verifier, challenge) = pkce();
        let answer = h
            .http
            .get(h.url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("answers");
        let code = query_param(&location(&answer), "code").expect("auto-approved");
        h.exchange(&code, &verifier).await.1
    };
    let access = str_field(&tokens, "access_token");
    assert_eq!(
        h.api(Method::GET, "/users/me", &access, None).await.1["id"],
        "u9"
    );

    // Faults in their JSON form.
    let fault = json!({"kind": "status", "target": "api", "status": 502, "times": 1});
    assert_eq!(
        serde_json::from_value::<Fault>(fault.clone()).ok(),
        Some(Fault::Status {
            target: FaultTarget::Api,
            status: 502,
            times: Some(1)
        })
    );
    assert_eq!(
        post("/_sim/faults", fault).await.expect("answers").status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.api(Method::GET, "/users/me", &access, None).await.0,
        StatusCode::BAD_GATEWAY
    );
    post(
        "/_sim/faults",
        json!({"kind": "rate_limit", "target": "api", "daily": true}),
    )
    .await
    .expect("answers");
    assert_eq!(
        h.api(Method::GET, "/users/me", &access, None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let cleared = h
        .http
        .delete(h.url("/_sim/faults"))
        .send()
        .await
        .expect("answers");
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        h.api(Method::GET, "/users/me", &access, None).await.0,
        StatusCode::OK
    );

    assert_eq!(
        post("/_sim/expire-access-tokens", json!({}))
            .await
            .expect("answers")
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.api(Method::GET, "/users/me", &access, None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let counters: Counters = h
        .http
        .get(h.url("/_sim/counters"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("counters");
    assert_eq!(counters, h.sim.counters());
    assert_eq!(counters.authorization_code_grants, 1);
    assert_eq!(counters.api_requests, 5);

    let requests: Value = h
        .http
        .get(h.url("/_sim/requests"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let list = requests["requests"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), h.sim.requests().len());
    // Control calls are not recorded; Zoom calls are, with their answers.
    assert!(
        list.iter()
            .all(|r| !r["path"].as_str().unwrap_or_default().starts_with("/_sim"))
    );
    let token_call = list
        .iter()
        .find(|r| r["path"] == "/oauth/token")
        .expect("token call");
    assert_eq!(token_call["status"], 200);
    assert!(
        token_call["headers"]["authorization"]
            .as_str()
            .is_some_and(|v| v.starts_with("Basic "))
    );
    assert!(
        token_call["response_body"]
            .as_str()
            .is_some_and(|b| b.contains("access_token"))
    );
}

#[tokio::test]
async fn recorded_requests_keep_method_query_and_time() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let before = time::OffsetDateTime::now_utc();
    h.api(
        Method::GET,
        "/users/me/recordings?from=2026-01-01&to=2026-01-31",
        &token,
        None,
    )
    .await;
    let last = h.sim.requests().into_iter().last().expect("recorded");
    assert_eq!(last.method, "GET");
    assert_eq!(last.path, "/v2/users/me/recordings");
    assert_eq!(last.query, "from=2026-01-01&to=2026-01-31");
    assert_eq!(
        last.header("Authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(last.at >= before - time::Duration::seconds(1));
    assert_eq!(last.status, 200);
    assert!(serde_json::from_slice::<Value>(&last.response_body).is_ok());
}

#[tokio::test]
async fn control_api_seeds_recordings_and_uuids() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let response = h
        .http
        .post(h.url("/_sim/recordings"))
        .json(&json!({"user_id": "sim-user-1", "recording": {"topic": "Seeded", "start_time": "2026-02-03T10:00:00Z"}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let seeded: Value = response.json().await.expect("json");
    let (_, list) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=2026-02-01&to=2026-02-28",
            &token,
            None,
        )
        .await;
    assert_eq!(list["meetings"][0]["uuid"], seeded["uuid"]);
    assert_eq!(
        list["meetings"][0]["recording_files"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let response = h
        .http
        .post(h.url("/_sim/next-meeting-uuid"))
        .json(&json!({"uuid": "/startsWithSlash0000AA=="}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (_, created) = h
        .api(
            Method::POST,
            "/users/me/meetings",
            &token,
            Some(json!({"topic": "t"})),
        )
        .await;
    assert_eq!(created["uuid"], "/startsWithSlash0000AA==");

    let response = h
        .http
        .post(h.url("/_sim/advance-clock"))
        .json(&json!({"secs": 7200}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        h.api(Method::GET, "/users/me", &token, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn contract_check_catches_bad_answers() {
    let bad_user = std::panic::catch_unwind(|| {
        check_contract(&Method::GET, "/users/me", 200, &json!({"type": 2}));
    });
    assert!(bad_user.is_err(), "email is required");
    let bad_meeting = std::panic::catch_unwind(|| {
        check_contract(
            &Method::GET,
            "/meetings/1",
            200,
            &json!({"id": "1", "start_time": "yesterday"}),
        );
    });
    assert!(
        bad_meeting.is_err(),
        "id is an integer, start_time a date-time"
    );
    let undocumented = std::panic::catch_unwind(|| {
        check_contract(&Method::PATCH, "/meetings/1", 200, &json!({}));
    });
    assert!(undocumented.is_err(), "PATCH answers 204");
    check_contract(
        &Method::GET,
        "/users/me",
        200,
        &json!({"type": 2, "email": "a@example.com"}),
    );
}

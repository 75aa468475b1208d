use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zoom_sim::{Fault, SimUser};

use crate::common::*;

fn meeting_body() -> Value {
    json!({
        "topic": "Design review",
        "type": 2,
        "start_time": "2026-07-01T10:00:00",
        "timezone": "Europe/Berlin",
        "duration": 45,
        "agenda": "Go through the plan",
        "password": "abc123",
        "settings": {"join_before_host": true, "waiting_room": true, "audio": "both"}
    })
}

#[tokio::test]
async fn users_me_and_by_id() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    for path in ["/users/me", "/users/sim-user-1", "/users/ada@example.com"] {
        let (status, me) = h.api(Method::GET, path, &token, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(me["id"], "sim-user-1");
        assert_eq!(me["first_name"], "Ada");
        assert_eq!(me["last_name"], "Lovelace");
    }
    h.sim.add_user(SimUser::new(
        "u2",
        "sim-account-1",
        "b@example.com",
        "B",
        "C",
    ));
    let (status, body) = h.api(Method::GET, "/users/u2", &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 1001);
}

#[tokio::test]
async fn meeting_lifecycle() {
    let h = Harness::start().await;
    let token = h.access_token().await;

    let (status, created) = h
        .api(
            Method::POST,
            "/users/me/meetings",
            &token,
            Some(meeting_body()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().expect("numeric id");
    assert!((10_000_000_000..100_000_000_000).contains(&id));
    assert_eq!(created["uuid"].as_str().map(str::len), Some(24));
    assert_eq!(created["host_id"], "sim-user-1");
    assert_eq!(created["topic"], "Design review");
    assert_eq!(created["type"], 2);
    // Local time in Berlin (summer, UTC+2) comes back in UTC.
    assert_eq!(created["start_time"], "2026-07-01T08:00:00Z");
    assert_eq!(created["timezone"], "Europe/Berlin");
    assert_eq!(created["duration"], 45);
    assert_eq!(created["password"], "abc123");
    assert_eq!(created["settings"]["join_before_host"], true);
    assert!(
        created["join_url"]
            .as_str()
            .is_some_and(|u| u.contains(&id.to_string()))
    );
    assert!(created["start_url"].is_string());
    assert_eq!(h.sim.meetings_count(), 1);
    assert_eq!(h.sim.counters().meetings_created, 1);

    let path = format!("/meetings/{id}");
    let (status, fetched) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, body) = h
        .api(Method::PATCH, &path, &token, Some(json!({"topic": "Renamed", "start_time": "2026-07-02T09:30:00Z", "settings": {"mute_upon_entry": true}})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_null());
    let (_, fetched) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(fetched["topic"], "Renamed");
    assert_eq!(fetched["start_time"], "2026-07-02T09:30:00Z");
    assert_eq!(fetched["duration"], 45);
    assert_eq!(fetched["settings"]["mute_upon_entry"], true);
    assert_eq!(fetched["settings"]["join_before_host"], true);

    let live = format!("/meetings/{id}/livestream");
    let (status, stream) = h.api(Method::GET, &live, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stream["stream_url"], "");
    let (status, _) = h
        .api(Method::PATCH, &live, &token, Some(json!({"stream_url": "rtmp://live.example/app", "stream_key": "k-1", "page_url": "https://example.com/live"})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, stream) = h.api(Method::GET, &live, &token, None).await;
    assert_eq!(stream["stream_url"], "rtmp://live.example/app");
    assert_eq!(stream["stream_key"], "k-1");
    assert_eq!(stream["page_url"], "https://example.com/live");
    let (status, body) = h
        .api(
            Method::PATCH,
            &live,
            &token,
            Some(json!({"stream_url": "rtmp://x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 300);

    let (status, list) = h.api(Method::GET, "/users/me/meetings", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total_records"], 1);
    assert_eq!(list["meetings"][0]["id"], id);

    let (status, _) = h.api(Method::DELETE, &path, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.sim.meetings_count(), 0);
    let (status, body) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": 3001, "message": format!("Meeting does not exist: {id}.")})
    );
    for method in [Method::PATCH, Method::DELETE] {
        let (status, body) = h
            .api(method, &path, &token, Some(json!({"topic": "x"})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], 3001);
    }
    let (status, body) = h
        .api(Method::GET, "/meetings/not-a-number", &token, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 3001);
}

#[tokio::test]
async fn meetings_belong_to_their_host() {
    let h = Harness::start().await;
    let ada = h.access_token().await;
    let (_, created) = h
        .api(
            Method::POST,
            "/users/me/meetings",
            &ada,
            Some(json!({"topic": "Ada's"})),
        )
        .await;
    let id = created["id"].as_i64().expect("id");

    h.sim.add_user(SimUser::new(
        "u2",
        "acct-2",
        "grace@example.com",
        "Grace",
        "Hopper",
    ));
    h.sim.set_current_user("u2");
    let grace = h.access_token().await;
    let (status, body) = h
        .api(Method::GET, &format!("/meetings/{id}"), &grace, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 3001);
    let (status, _) = h
        .api(Method::DELETE, &format!("/meetings/{id}"), &grace, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h.sim.meetings_count(), 1);
    // Ada's token still works: another user's authorization does not touch it.
    assert_eq!(
        h.api(Method::GET, &format!("/meetings/{id}"), &ada, None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn validation_errors() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let (status, body) = h
        .api(
            Method::POST,
            "/users/me/meetings",
            &token,
            Some(json!({"type": 7, "password": "much-too-long-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 300);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, vec!["type", "password"]);
    assert!(body["errors"][0]["message"].is_string());

    let response = h
        .http
        .post(format!("{}/users/me/meetings", h.running.api_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response
            .json::<Value>()
            .await
            .ok()
            .map(|b| b["code"].clone()),
        Some(json!(300))
    );
    assert_eq!(h.sim.meetings_count(), 0);

    let (status, _) = h
        .api(
            Method::POST,
            "/users/me/meetings",
            &token,
            Some(json!({"type": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_tokens_get_124() {
    let h = Harness::start().await;
    let expected = json!({"code": 124, "message": "Invalid access token."});
    assert_eq!(
        h.api(Method::GET, "/users/me", "made-up", None).await,
        (StatusCode::UNAUTHORIZED, expected.clone())
    );
    let response = h
        .http
        .get(format!("{}/users/me", h.running.api_url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = h
        .http
        .get(format!("{}/users/me", h.running.api_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.ok(), Some(expected));
    assert_eq!(h.sim.counters().api_requests, 3);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let h = Harness::start().await;
    h.sim.set_app_scopes(CLIENT_ID, &["user_info:read"]);
    let token = h.access_token().await;
    assert_eq!(
        h.api(Method::GET, "/users/me", &token, None).await.0,
        StatusCode::OK
    );
    let (status, body) = h
        .api(Method::POST, "/users/me/meetings", &token, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 4711, "message": "Invalid access token, does not contain scopes:[meeting:write]."})
    );
    let (status, body) = h
        .api(Method::GET, "/users/me/recordings", &token, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 4711);
}

#[tokio::test]
async fn scope_missing_fault() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.sim.inject(Fault::ScopeMissing {
        scope: "meeting:write".into(),
        times: Some(1),
    });
    let (status, body) = h.api(Method::GET, "/users/me", &token, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 4711, "message": "Invalid access token, does not contain scopes:[meeting:write]."})
    );
    assert_eq!(
        h.api(Method::GET, "/users/me", &token, None).await.0,
        StatusCode::OK
    );
    // A bad token still gets 401 first.
    h.sim.inject(Fault::ScopeMissing {
        scope: "x".into(),
        times: None,
    });
    assert_eq!(
        h.api(Method::GET, "/users/me", "nope", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_api_paths_answer_zoom_404() {
    let h = Harness::start().await;
    let response = h
        .http
        .get(format!("{}/phone/users", h.running.api_url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .json::<Value>()
            .await
            .is_ok_and(|b| b["code"].is_i64())
    );
}

#[tokio::test]
async fn uuid_hook_for_created_meetings() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.sim.set_next_meeting_uuid("/ab//cdEFghIJklMNopQR==");
    let (_, created) = h
        .api(Method::POST, "/users/me/meetings", &token, Some(json!({})))
        .await;
    assert_eq!(created["uuid"], "/ab//cdEFghIJklMNopQR==");
    let (_, created) = h
        .api(Method::POST, "/users/me/meetings", &token, Some(json!({})))
        .await;
    assert!(
        created["uuid"]
            .as_str()
            .is_some_and(|u| !zoom_sim::needs_double_encoding(u))
    );
}

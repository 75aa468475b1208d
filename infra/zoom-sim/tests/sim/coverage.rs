//! Every operation of Zoom's description is routed, answers in Zoom's shapes, and asks for the
//! scopes the description lists.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zoom_sim::scopes::{accepted_scopes, described_operations};

use crate::common::*;

/// A concrete path for a template, with ids of things that exist.
fn concrete(template: &str, meeting: i64, webinar: i64) -> String {
    template
        .replace("{userId}", "me")
        .replace("{meetingId}", &meeting.to_string())
        .replace("{webinarId}", &webinar.to_string())
        .replace("{registrantId}", "no-such-registrant")
        .replace("{recordingId}", "no-such-file")
}

fn catch_all(status: StatusCode, body: &Value) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND
            && body["message"] == "The requested resource does not exist.")
}

async fn fixtures(h: &Harness, token: &str) -> (i64, i64) {
    let meeting = h
        .create_meeting(
            token,
            json!({"topic": "Coverage", "settings": {"approval_type": 0}}),
        )
        .await;
    let (_, webinar) = h
        .api(Method::POST, "/users/me/webinars", token, Some(json!({})))
        .await;
    (
        meeting["id"].as_i64().expect("meeting id"),
        webinar["id"].as_i64().expect("webinar id"),
    )
}

#[tokio::test]
async fn every_described_operation_is_routed() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let (meeting, webinar) = fixtures(&h, &token).await;
    let operations = described_operations();
    assert_eq!(operations.len(), 30, "{operations:?}");
    for (method, template) in operations {
        let path = concrete(&template, meeting, webinar);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        // `api` also checks the answer against the description (errors in `{code, message}`).
        let (status, answer) = h.api(method.clone(), &path, &token, body).await;
        assert!(
            !catch_all(status, &answer),
            "{method} {template} is not routed: {status} {answer}"
        );
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {template}");
        assert_ne!(answer["code"], 4711, "{method} {template}: {answer}");
    }
}

#[tokio::test]
async fn every_operation_checks_its_scopes() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let (meeting, webinar) = fixtures(&h, &token).await;
    // A granular app with only the user scope.
    h.sim.set_app_scopes(CLIENT_ID, &["user:read:user"]);
    let narrow = h.access_token().await;
    for (method, template) in described_operations() {
        let path = concrete(&template, meeting, webinar);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, answer) = h.api(method.clone(), &path, &narrow, None).await;
        if template == "/users/{userId}" {
            assert_eq!(status, StatusCode::OK);
            continue;
        }
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {template}: {answer}"
        );
        assert_eq!(answer["code"], 4711, "{method} {template}");
        // A granular app is told a granular scope, one the description lists for the operation.
        let message = answer["message"].as_str().unwrap_or_default();
        let named = message
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(scope, _)| scope.to_owned())
            .unwrap_or_default();
        let accepted = accepted_scopes(method.as_str(), &template).unwrap_or_default();
        assert!(accepted.contains(&named), "{method} {template}: {named}");
        assert!(named.split(':').count() >= 3, "{named} is granular");
    }
}

#[tokio::test]
async fn granular_and_classic_scopes_both_work() {
    let h = Harness::start().await;
    h.sim.set_app_scopes(
        CLIENT_ID,
        &[
            "meeting:write:meeting",
            "meeting:read:list_meetings",
            "meeting:read:meeting",
        ],
    );
    let token = h.access_token().await;
    let created = h.create_meeting(&token, json!({"topic": "Granular"})).await;
    let path = format!("/meetings/{}", created["id"]);
    assert_eq!(
        h.api(Method::GET, &path, &token, None).await.0,
        StatusCode::OK
    );
    let (status, _) = h.api(Method::GET, "/users/me/meetings", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    // Updating needs meeting:update:meeting, which this app lacks.
    let (status, body) = h
        .api(Method::PATCH, &path, &token, Some(json!({"topic": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 4711, "message": "Invalid access token, does not contain scopes:[meeting:update:meeting]."})
    );
    // A classic write scope covers its reads; recording:read does not cover deletes.
    h.sim
        .set_app_scopes(CLIENT_ID, &["meeting:write", "recording:read"]);
    let classic = h.access_token().await;
    assert_eq!(
        h.api(Method::GET, &path, &classic, None).await.0,
        StatusCode::OK
    );
    let (status, body) = h
        .api(
            Method::DELETE,
            &format!("{path}/recordings"),
            &classic,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Invalid access token, does not contain scopes:[recording:write]."
    );
}

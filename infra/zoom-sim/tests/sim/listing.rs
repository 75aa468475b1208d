//! Listing meetings, recurring occurrences, status, invitation and live stream status.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn list_pages_without_duplicates_or_gaps_and_tokens_expire() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let mut created = Vec::new();
    for day in 1..=7 {
        let meeting = h
            .create_meeting(
                &token,
                json!({"topic": format!("m{day}"), "start_time": format!("2031-05-{day:02}T10:00:00Z")}),
            )
            .await;
        created.push(meeting["id"].clone());
    }
    let listed = walk_pages(
        &h,
        &token,
        "/users/me/meetings?page_size=2",
        "meetings",
        "id",
    )
    .await;
    assert_eq!(listed, created, "ordered by start, all of them, once");

    let (_, first) = h
        .api(Method::GET, "/users/me/meetings?page_size=3", &token, None)
        .await;
    assert_eq!(first["total_records"], 7);
    assert_eq!(first["page_size"], 3);
    assert_eq!(first["page_count"], 3);
    let next = str_field(&first, "next_page_token");
    // A meeting created meanwhile does not shift the pages already promised.
    h.create_meeting(&token, json!({"start_time": "2031-05-01T09:00:00Z"}))
        .await;
    let (_, second) = h
        .api(
            Method::GET,
            &format!("/users/me/meetings?next_page_token={next}"),
            &token,
            None,
        )
        .await;
    assert_eq!(second["meetings"][0]["id"], created[3]);

    // Zoom's page tokens live 15 minutes.
    h.sim.advance_clock(Duration::from_secs(15 * 60 + 1));
    let (status, body) = h
        .api(
            Method::GET,
            &format!("/users/me/meetings?next_page_token={next}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": 300, "message": "The next page token is invalid or expired."})
    );
    let (status, _) = h
        .api(
            Method::GET,
            "/users/me/meetings?next_page_token=made-up",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, all) = h
        .api(
            Method::GET,
            "/users/me/meetings?page_size=1000",
            &token,
            None,
        )
        .await;
    assert_eq!(all["page_size"], 300);
}

#[tokio::test]
async fn list_types_and_dates() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let past = h
        .create_meeting(
            &token,
            json!({"topic": "past", "start_time": "2020-01-10T10:00:00Z"}),
        )
        .await;
    let future = h
        .create_meeting(
            &token,
            json!({"topic": "future", "start_time": "2031-01-10T10:00:00Z"}),
        )
        .await;
    let ids = |list: &Value| -> Vec<Value> {
        list["meetings"]
            .as_array()
            .map(|m| m.iter().map(|x| x["id"].clone()).collect())
            .unwrap_or_default()
    };
    let get = |query: &'static str| {
        let h = &h;
        let token = token.clone();
        async move {
            h.api(
                Method::GET,
                &format!("/users/me/meetings{query}"),
                &token,
                None,
            )
            .await
        }
    };
    assert_eq!(
        ids(&get("").await.1),
        vec![past["id"].clone(), future["id"].clone()]
    );
    assert_eq!(
        ids(&get("?type=upcoming").await.1),
        vec![future["id"].clone()]
    );
    assert_eq!(
        ids(&get("?type=upcoming_meetings").await.1),
        vec![future["id"].clone()]
    );
    assert_eq!(
        ids(&get("?type=previous_meetings").await.1),
        vec![past["id"].clone()]
    );
    assert!(ids(&get("?type=live").await.1).is_empty());
    let future_id = future["id"].as_i64().expect("id");
    assert!(h.sim.start_meeting(future_id));
    assert_eq!(ids(&get("?type=live").await.1), vec![future["id"].clone()]);
    assert_eq!(
        ids(&get("?from=2031-01-01&to=2031-01-31").await.1),
        vec![future["id"].clone()]
    );
    let (status, body) = get("?from=01.01.2031").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );
    let (status, body) = get("?type=someday").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );
}

#[tokio::test]
async fn recurring_meeting_occurrences() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let created = h
        .create_meeting(
            &token,
            json!({
                "topic": "Weekly", "type": 8, "start_time": "2031-03-03T09:00:00Z", "duration": 30,
                "recurrence": {"type": 2, "weekly_days": "4", "end_times": 4}
            }),
        )
        .await;
    let occurrences = created["occurrences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(occurrences.len(), 4);
    // Wednesdays (4) from Monday 3 March.
    assert_eq!(occurrences[0]["start_time"], "2031-03-05T09:00:00Z");
    assert_eq!(occurrences[1]["start_time"], "2031-03-12T09:00:00Z");
    assert_eq!(occurrences[1]["status"], "available");
    let second = str_field(&occurrences[1], "occurrence_id");
    let path = format!("/meetings/{}", created["id"]);

    let (status, one) = h
        .api(
            Method::GET,
            &format!("{path}?occurrence_id={second}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["start_time"], "2031-03-12T09:00:00Z");

    let (status, _) = h
        .api(
            Method::PATCH,
            &format!("{path}?occurrence_id={second}"),
            &token,
            Some(json!({"start_time": "2031-03-12T11:00:00Z", "duration": 45})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, one) = h
        .api(
            Method::GET,
            &format!("{path}?occurrence_id={second}"),
            &token,
            None,
        )
        .await;
    assert_eq!(one["start_time"], "2031-03-12T11:00:00Z");
    assert_eq!(one["duration"], 45);

    let (status, _) = h
        .api(
            Method::DELETE,
            &format!("{path}?occurrence_id={second}&schedule_for_reminder=true"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, all) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(all["occurrences"][1]["status"], "deleted");
    assert_eq!(all["occurrences"][0]["status"], "available");
    assert_eq!(h.sim.meetings_count(), 1);

    let (status, body) = h
        .api(
            Method::GET,
            &format!("{path}?occurrence_id=123"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );
}

#[tokio::test]
async fn status_end_and_recover() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let created = h.create_meeting(&token, json!({"topic": "Stand-up"})).await;
    let id = created["id"].as_i64().expect("id");
    let status_path = format!("/meetings/{id}/status");
    assert!(h.sim.start_meeting(id));
    let (_, live) = h
        .api(Method::GET, &format!("/meetings/{id}"), &token, None)
        .await;
    assert_eq!(live["status"], "started");
    let (status, _) = h
        .api(
            Method::PUT,
            &status_path,
            &token,
            Some(json!({"action": "end"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, ended) = h
        .api(Method::GET, &format!("/meetings/{id}"), &token, None)
        .await;
    assert_eq!(ended["status"], "waiting");
    assert_ne!(
        ended["uuid"], created["uuid"],
        "the next instance has a new UUID"
    );
    let (status, past) = h
        .api(Method::GET, &format!("/past_meetings/{id}"), &token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(past["uuid"], created["uuid"]);

    let (status, body) = h
        .api(
            Method::PUT,
            &status_path,
            &token,
            Some(json!({"action": "pause"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    h.api(Method::DELETE, &format!("/meetings/{id}"), &token, None)
        .await;
    assert_eq!(h.sim.meetings_count(), 0);
    let (status, _) = h
        .api(
            Method::PUT,
            &status_path,
            &token,
            Some(json!({"action": "recover"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.sim.meetings_count(), 1);
    let (status, body) = h
        .api(
            Method::PUT,
            "/meetings/12345678901/status",
            &token,
            Some(json!({"action": "recover"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3001))
    );
}

#[tokio::test]
async fn invitation_and_livestream_status() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let created = h
        .create_meeting(&token, json!({"topic": "Launch", "password": "pw1"}))
        .await;
    let id = created["id"].as_i64().expect("id");
    let (status, invitation) = h
        .api(
            Method::GET,
            &format!("/meetings/{id}/invitation"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = str_field(&invitation, "invitation");
    assert!(text.contains("Topic: Launch"), "{text}");
    assert!(
        text.contains(created["join_url"].as_str().unwrap_or("?")),
        "{text}"
    );
    assert!(text.contains("Passcode: pw1"), "{text}");

    let path = format!("/meetings/{id}/livestream/status");
    let (status, _) = h
        .api(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"action": "start", "settings": {"active_speaker_name": true, "display_name": "Ada", "layout": "speaker_view", "close_caption": "off"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .api(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"action": "dance"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );
    let (status, body) = h
        .api(
            Method::PATCH,
            "/meetings/12345678901/livestream/status",
            &token,
            Some(json!({"action": "stop"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3001))
    );
}

//! Meeting registrants and webinars (with their registrants).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn registrant(n: usize) -> Value {
    json!({"email": format!("r{n}@example.com"), "first_name": format!("R{n}"), "last_name": "Tester"})
}

#[tokio::test]
async fn meeting_registrants() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    // Registration off (approval_type 2, the default): Zoom's 404.
    let closed = h
        .create_meeting(&token, json!({"topic": "Open house"}))
        .await;
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/meetings/{}/registrants", closed["id"]),
            &token,
            Some(registrant(0)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": 404, "message": format!("Registration has not been enabled for this meeting: {}.", closed["id"])})
    );
    // Type 3 stores approval_type 2 whatever it is sent, as Zoom does.
    let no_fixed_time = h
        .create_meeting(&token, json!({"type": 3, "settings": {"approval_type": 0}}))
        .await;
    assert_eq!(no_fixed_time["settings"]["approval_type"], 2);

    let manual = h
        .create_meeting(
            &token,
            json!({"topic": "Workshop", "settings": {"approval_type": 1}}),
        )
        .await;
    let base = format!("/meetings/{}/registrants", manual["id"]);
    let mut ids = Vec::new();
    for n in 1..=5 {
        let (status, added) = h
            .api(Method::POST, &base, &token, Some(registrant(n)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
        assert_eq!(added["id"], manual["id"]);
        assert_eq!(added["topic"], "Workshop");
        ids.push(str_field(&added, "registrant_id"));
    }
    // The same email again is the same registration.
    let (_, again) = h
        .api(Method::POST, &base, &token, Some(registrant(1)))
        .await;
    assert_eq!(again["registrant_id"], ids[0].as_str());
    let (status, body) = h
        .api(
            Method::POST,
            &base,
            &token,
            Some(json!({"email": "not-an-email", "first_name": "X"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    // Manual approval: all pending.
    let pending = walk_pages(
        &h,
        &token,
        &format!("{base}?status=pending&page_size=2"),
        "registrants",
        "id",
    )
    .await;
    assert_eq!(pending.len(), 5);
    let (_, approved) = h.api(Method::GET, &base, &token, None).await;
    assert_eq!(approved["total_records"], 0);

    let (status, _) = h
        .api(
            Method::PUT,
            &format!("{base}/status"),
            &token,
            Some(json!({"action": "approve", "registrants": [{"id": ids[0]}, {"email": "r2@example.com"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, approved) = h.api(Method::GET, &base, &token, None).await;
    assert_eq!(approved["total_records"], 2);
    assert_eq!(approved["registrants"][0]["email"], "r1@example.com");
    assert_eq!(approved["registrants"][0]["status"], "approved");
    let (status, body) = h
        .api(
            Method::PUT,
            &format!("{base}/status"),
            &token,
            Some(json!({"action": "maybe"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    let (status, _) = h
        .api(Method::DELETE, &format!("{base}/{}", ids[0]), &token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .api(Method::DELETE, &format!("{base}/{}", ids[0]), &token, None)
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    let (status, body) = h
        .api(
            Method::GET,
            "/meetings/12345678901/registrants",
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3001))
    );
}

#[tokio::test]
async fn registrants_of_an_occurrence() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let created = h
        .create_meeting(
            &token,
            json!({"type": 8, "start_time": "2031-01-05T10:00:00Z", "recurrence": {"type": 1, "end_times": 3},
                   "settings": {"approval_type": 0}}),
        )
        .await;
    let second = str_field(&created["occurrences"][1], "occurrence_id");
    let base = format!("/meetings/{}/registrants", created["id"]);
    let (status, added) = h
        .api(
            Method::POST,
            &format!("{base}?occurrence_ids={second}"),
            &token,
            Some(registrant(1)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["occurrences"].as_array().map(Vec::len), Some(1));
    h.api(Method::POST, &base, &token, Some(registrant(2)))
        .await;
    let first = str_field(&created["occurrences"][0], "occurrence_id");
    let (_, of_first) = h
        .api(
            Method::GET,
            &format!("{base}?occurrence_id={first}"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        of_first["total_records"], 1,
        "only the one registered for all"
    );
    let (_, of_second) = h
        .api(
            Method::GET,
            &format!("{base}?occurrence_id={second}"),
            &token,
            None,
        )
        .await;
    assert_eq!(of_second["total_records"], 2);
    let (status, _) = h
        .api(
            Method::POST,
            &format!("{base}?occurrence_ids=1"),
            &token,
            Some(registrant(3)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn webinar_lifecycle() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let (status, created) = h
        .api(
            Method::POST,
            "/users/me/webinars",
            &token,
            Some(json!({"topic": "Product launch", "start_time": "2031-06-01T15:00:00Z", "duration": 90,
                        "settings": {"approval_type": 0}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["type"], 5);
    assert_eq!(created["host_id"], "sim-user-1");
    assert!(
        created["join_url"]
            .as_str()
            .is_some_and(|u| u.contains("/w/"))
    );
    let path = format!("/webinars/{}", created["id"]);
    let (status, fetched) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);
    let (status, _) = h
        .api(
            Method::PATCH,
            &path,
            &token,
            Some(json!({"topic": "Launch!", "password": "pw9"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, fetched) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(fetched["topic"], "Launch!");
    assert_eq!(fetched["h323_passcode"], "pw9");
    let (status, body) = h
        .api(Method::PATCH, &path, &token, Some(json!({"type": 2})))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    for n in 1..=3 {
        let (status, added) = h
            .api(
                Method::POST,
                &format!("{path}/registrants"),
                &token,
                Some(registrant(n)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
    }
    let emails = walk_pages(
        &h,
        &token,
        &format!("{path}/registrants?page_size=2"),
        "registrants",
        "email",
    )
    .await;
    assert_eq!(emails.len(), 3);

    for n in 0..4 {
        h.api(
            Method::POST,
            "/users/me/webinars",
            &token,
            Some(json!({"topic": format!("w{n}")})),
        )
        .await;
    }
    let listed = walk_pages(
        &h,
        &token,
        "/users/me/webinars?page_size=2",
        "webinars",
        "id",
    )
    .await;
    assert_eq!(listed.len(), 5);
    assert_eq!(h.sim.webinars_count(), 5);

    let (status, _) = h.api(Method::DELETE, &path, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"code": 3001, "message": format!("Webinar does not exist: {}.", created["id"])})
    );
    // Without registration on, registrants are refused as at Zoom.
    let (_, closed) = h
        .api(Method::POST, "/users/me/webinars", &token, Some(json!({})))
        .await;
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/webinars/{}/registrants", closed["id"]),
            &token,
            Some(registrant(9)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("this webinar"))
    );
}

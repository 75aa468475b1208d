use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use time::macros::datetime;
use zoom_sim::SimRecording;

use crate::common::*;

fn ids(list: &Value) -> Vec<String> {
    list["meetings"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|r| r["uuid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn range_is_cut_to_one_month() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    h.sim.add_recording(
        "sim-user-1",
        SimRecording::new("January", datetime!(2026-01-20 10:00 UTC)).with_uuid("jan"),
    );
    h.sim.add_recording(
        "sim-user-1",
        SimRecording::new("February", datetime!(2026-02-10 10:00 UTC)).with_uuid("feb"),
    );
    h.sim.add_recording(
        "sim-user-1",
        SimRecording::new("March", datetime!(2026-03-05 10:00 UTC)).with_uuid("mar"),
    );
    h.sim.add_recording(
        "someone-else",
        SimRecording::new("Not mine", datetime!(2026-01-21 10:00 UTC)),
    );

    let (status, list) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=2026-01-15&to=2026-06-30",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["from"], "2026-01-15");
    assert_eq!(list["to"], "2026-02-15");
    assert_eq!(list["total_records"], 2);
    assert_eq!(list["page_size"], 30);
    assert_eq!(list["next_page_token"], "");
    // Newest first.
    assert_eq!(ids(&list), vec!["feb", "jan"]);
    let first = &list["meetings"][0];
    assert_eq!(first["topic"], "February");
    assert_eq!(first["host_id"], "sim-user-1");
    assert_eq!(first["recording_count"], 3);
    assert_eq!(first["recording_files"][0]["meeting_id"], "feb");

    let (_, list) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=2026-02-16&to=2026-03-31",
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&list), vec!["mar"]);

    let (status, body) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=15.01.2026",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 300);
}

#[tokio::test]
async fn pagination_with_expiring_tokens() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    for day in 1..=7u8 {
        let start = datetime!(2026-05-01 09:00 UTC)
            .replace_day(day)
            .expect("valid day");
        h.sim.add_recording(
            "sim-user-1",
            SimRecording::new(&format!("day {day}"), start).with_uuid(&format!("d{day}")),
        );
    }
    let (_, page1) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=2026-05-01&to=2026-05-31&page_size=3",
            &token,
            None,
        )
        .await;
    assert_eq!(page1["total_records"], 7);
    assert_eq!(page1["page_size"], 3);
    assert_eq!(ids(&page1), vec!["d7", "d6", "d5"]);
    let next = str_field(&page1, "next_page_token");
    assert!(!next.is_empty());

    let (_, page2) = h
        .api(
            Method::GET,
            &format!("/users/me/recordings?next_page_token={next}"),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&page2), vec!["d4", "d3", "d2"]);
    assert_eq!(page2["from"], "2026-05-01");
    let (_, page3) = h
        .api(
            Method::GET,
            &format!(
                "/users/me/recordings?next_page_token={}",
                str_field(&page2, "next_page_token")
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(ids(&page3), vec!["d1"]);
    assert_eq!(page3["next_page_token"], "");

    // Page size is capped at 300.
    let (_, all) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=2026-05-01&to=2026-05-31&page_size=1000",
            &token,
            None,
        )
        .await;
    assert_eq!(all["page_size"], 300);

    // Tokens expire after 15 minutes.
    h.sim.advance_clock(Duration::from_secs(16 * 60));
    let token = h.access_token().await;
    let (status, body) = h
        .api(
            Method::GET,
            &format!("/users/me/recordings?next_page_token={next}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 300);
}

#[tokio::test]
async fn meeting_recordings_by_id_and_uuid() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    let plain = SimRecording::new("Plain", datetime!(2026-04-01 10:00 UTC))
        .with_uuid("4444AAAiAAAAAAAAAAA+AA==")
        .with_meeting_id(85_746_065_432);
    let older = SimRecording::new("Older", datetime!(2026-03-01 10:00 UTC))
        .with_uuid("older-instance-uuid-AA==")
        .with_meeting_id(85_746_065_432);
    let slashy = SimRecording::new("Slashy", datetime!(2026-04-02 10:00 UTC))
        .with_uuid("/ajXp112QmuoKj4854875==");
    let double = SimRecording::new("Double", datetime!(2026-04-03 10:00 UTC))
        .with_uuid("ab//cdEFghIJklMNopQR==");
    for recording in [plain, older, slashy, double] {
        h.sim.add_recording("sim-user-1", recording);
    }

    // A numeric id gives the latest instance.
    let (status, body) = h
        .api(
            Method::GET,
            "/meetings/85746065432/recordings",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["uuid"], "4444AAAiAAAAAAAAAAA+AA==");
    assert_eq!(body["id"], 85_746_065_432_i64);

    let (status, body) = h
        .api(
            Method::GET,
            "/meetings/4444AAAiAAAAAAAAAAA%2BAA%3D%3D/recordings",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["topic"], "Plain");

    // Double-encoded: found.
    for (uuid, topic) in [
        ("/ajXp112QmuoKj4854875==", "Slashy"),
        ("ab//cdEFghIJklMNopQR==", "Double"),
    ] {
        let once = url::form_urlencoded::byte_serialize(uuid.as_bytes()).collect::<String>();
        let twice = url::form_urlencoded::byte_serialize(once.as_bytes()).collect::<String>();
        let (status, body) = h
            .api(
                Method::GET,
                &format!("/meetings/{twice}/recordings"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{uuid}");
        assert_eq!(body["topic"], topic);
        assert!(
            body["recording_files"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        );

        // Encoded once: Zoom cannot find it.
        let (status, body) = h
            .api(
                Method::GET,
                &format!("/meetings/{once}/recordings"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uuid}");
        assert_eq!(
            body,
            serde_json::json!({"code": 3301, "message": "This recording does not exist."})
        );
    }

    let (status, body) = h
        .api(Method::GET, "/meetings/123/recordings", &token, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 3301);
}

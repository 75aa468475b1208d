//! Past meetings and participants, AI Companion summaries, recording deletes and downloads.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;
use zoom_sim::{SimMeetingSummary, SimParticipant, SimPastMeeting, SimRecording};

use crate::common::*;

fn twice_encoded(uuid: &str) -> String {
    let once = url::form_urlencoded::byte_serialize(uuid.as_bytes()).collect::<String>();
    url::form_urlencoded::byte_serialize(once.as_bytes()).collect()
}

#[tokio::test]
async fn past_meetings_instances_and_participants() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let created = h.create_meeting(&token, json!({"topic": "Retro"})).await;
    let id = created["id"].as_i64().expect("id");

    // Held, and not yet: instances is empty, details is 3001.
    let (status, instances) = h
        .api(
            Method::GET,
            &format!("/past_meetings/{id}/instances"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(instances["meetings"], json!([]));
    let (status, body) = h
        .api(Method::GET, &format!("/past_meetings/{id}"), &token, None)
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3001))
    );

    let participants: Vec<SimParticipant> = (1..=5)
        .map(|i| SimParticipant::new(&format!("Guest {i}"), &format!("g{i}@example.com")))
        .collect();
    let slashy = "/ab//cdEFghIJklMNopQR==";
    let first = h
        .sim
        .add_past_meeting(
            id,
            SimPastMeeting {
                uuid: Some(slashy.into()),
                start_time: Some(datetime!(2026-02-01 10:00 UTC)),
                duration: Some(45),
                participants,
            },
        )
        .expect("meeting exists");
    assert_eq!(first, slashy);
    // The second instance, over the control API: the meeting's own UUID, host only.
    let response = h
        .http
        .post(h.url("/_sim/past-meetings"))
        .json(&json!({"meeting_id": id, "start_time": "2026-02-08T10:00:00Z"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let second: Value = response.json().await.expect("json");
    assert_eq!(second["uuid"], created["uuid"]);

    let (_, instances) = h
        .api(
            Method::GET,
            &format!("/past_meetings/{id}/instances"),
            &token,
            None,
        )
        .await;
    assert_eq!(instances["meetings"][0]["uuid"], slashy);
    assert_eq!(
        instances["meetings"][1]["start_time"],
        "2026-02-08T10:00:00Z"
    );

    // A numeric id is the latest instance; the double-encoded UUID is that one.
    let (_, latest) = h
        .api(Method::GET, &format!("/past_meetings/{id}"), &token, None)
        .await;
    assert_eq!(latest["uuid"], created["uuid"]);
    assert_eq!(latest["participants_count"], 1);
    assert_eq!(latest["user_email"], "ada@example.com");
    let (status, one) = h
        .api(
            Method::GET,
            &format!("/past_meetings/{}", twice_encoded(slashy)),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["duration"], 45);
    assert_eq!(one["end_time"], "2026-02-01T10:45:00Z");

    let first_page = format!(
        "/past_meetings/{}/participants?page_size=2",
        twice_encoded(slashy)
    );
    let names = walk_pages(&h, &token, &first_page, "participants", "name").await;
    assert_eq!(names.len(), 5);
    assert_eq!(names[4], "Guest 5");
    let (_, page) = h.api(Method::GET, &first_page, &token, None).await;
    assert_eq!(page["total_records"], 5);
    assert_eq!(page["participants"][0]["user_email"], "g1@example.com");
    assert_eq!(page["participants"][0]["duration"], 2700);

    // Encoded once: Zoom cannot find it.
    let once = url::form_urlencoded::byte_serialize(slashy.as_bytes()).collect::<String>();
    let (status, _) = h
        .api(Method::GET, &format!("/past_meetings/{once}"), &token, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ended_meeting_keeps_its_participants() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let id = h.create_meeting(&token, json!({})).await["id"]
        .as_i64()
        .expect("id");
    let response = h
        .http
        .post(h.url(&format!("/_sim/meetings/{id}/participants")))
        .json(&json!({"participants": [{"name": "Grace", "user_email": "grace@example.com"}]}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    h.sim.advance_clock(Duration::from_secs(600));
    let response = h
        .http
        .post(h.url(&format!("/_sim/meetings/{id}/end")))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, page) = h
        .api(
            Method::GET,
            &format!("/past_meetings/{id}/participants"),
            &token,
            None,
        )
        .await;
    let names: Vec<&str> = page["participants"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["Ada Lovelace", "Grace"]);
    assert_eq!(h.sim.end_meeting(id), None, "no longer in progress");
}

#[tokio::test]
async fn meeting_summary() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let created = h.create_meeting(&token, json!({"topic": "Planning"})).await;
    let id = created["id"].as_i64().expect("id");
    let path = format!("/meetings/{id}/meeting_summary");
    let (status, body) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3001))
    );

    let uuid = h
        .sim
        .add_past_meeting(id, SimPastMeeting::default())
        .expect("exists");
    assert_eq!(
        h.sim
            .set_meeting_summary(&id.to_string(), SimMeetingSummary::default()),
        Some(uuid.clone())
    );
    let (status, summary) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["meeting_uuid"], uuid);
    assert_eq!(summary["meeting_topic"], "Planning");
    assert_eq!(summary["next_steps"][0], "Ada sends the notes.");
    let encoded = url::form_urlencoded::byte_serialize(uuid.as_bytes()).collect::<String>();
    let (status, _) = h
        .api(
            Method::GET,
            &format!("/meetings/{encoded}/meeting_summary"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, past) = h
        .api(Method::GET, &format!("/past_meetings/{id}"), &token, None)
        .await;
    assert_eq!(past["has_meeting_summary"], true);

    let response = h
        .http
        .post(h.url("/_sim/meeting-summaries"))
        .json(&json!({"meeting": id, "summary": {"summary_overview": "Short."}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let (_, summary) = h.api(Method::GET, &path, &token, None).await;
    assert_eq!(summary["summary_overview"], "Short.");
}

#[tokio::test]
async fn recording_deletes_and_download_tokens() {
    let h = Harness::start().await;
    let token = h.full_token().await;
    let recording = SimRecording::new("Demo", datetime!(2026-04-01 10:00 UTC))
        .with_uuid("/recorded//instanceAAAA==")
        .with_meeting_id(85_746_065_432);
    let files: Vec<String> = recording
        .recording_files
        .iter()
        .map(|f| f.id.clone())
        .collect();
    h.sim.add_recording("sim-user-1", recording);
    let key = twice_encoded("/recorded//instanceAAAA==");

    let (status, plain) = h
        .api(
            Method::GET,
            &format!("/meetings/{key}/recordings"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(plain.get("download_access_token").is_none());
    let (status, with_token) = h
        .api(
            Method::GET,
            &format!("/meetings/{key}/recordings?include_fields=download_access_token&ttl=600"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let download_token = str_field(&with_token, "download_access_token");
    let url = str_field(&with_token["recording_files"][0], "download_url");
    assert!(url.starts_with(&h.running.base_url), "{url}");

    let download = |query: String| {
        let http = h.http.clone();
        let url = url.clone();
        async move {
            http.get(format!("{url}{query}"))
                .send()
                .await
                .expect("answers")
        }
    };
    let ok = download(format!("?access_token={download_token}")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap_or_default().contains(&files[0]));
    // The OAuth token works as well; nothing else does.
    assert_eq!(
        download(format!("?access_token={token}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        download("?access_token=nope".into()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        download(String::new()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The download token lives `ttl` seconds on the simulator's clock.
    h.sim.advance_clock(Duration::from_secs(601));
    let expired = download(format!("?access_token={download_token}")).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = h
        .api(
            Method::GET,
            &format!("/meetings/{key}/recordings?include_fields=download_access_token&ttl=604801"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    // One file to the trash, then one for good.
    let one = format!("/meetings/{key}/recordings/{}", files[0]);
    assert_eq!(
        h.api(Method::DELETE, &one, &token, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = h.api(Method::DELETE, &one, &token, None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3301))
    );
    let two = format!("/meetings/{key}/recordings/{}?action=delete", files[1]);
    assert_eq!(
        h.api(Method::DELETE, &two, &token, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, left) = h
        .api(
            Method::GET,
            "/meetings/85746065432/recordings",
            &token,
            None,
        )
        .await;
    assert_eq!(left["recording_count"], 1);
    assert_eq!(left["recording_files"][0]["id"], files[2].as_str());
    let (status, body) = h
        .api(
            Method::DELETE,
            &format!("/meetings/{key}/recordings?action=shred"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(300))
    );

    // The whole instance to the trash: gone from both listings.
    let (status, _) = h
        .api(
            Method::DELETE,
            "/meetings/85746065432/recordings",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .api(
            Method::GET,
            &format!("/meetings/{key}/recordings"),
            &token,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(3301))
    );
    let (_, list) = h
        .api(
            Method::GET,
            "/users/me/recordings?from=2026-04-01&to=2026-04-02",
            &token,
            None,
        )
        .await;
    assert_eq!(list["total_records"], 0);
}

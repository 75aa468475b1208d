//! The catalogue's meeting actions on both backends: list (walked behind `cursor`), get,
//! update, delete, status, invitation and live stream; Zoom's errors, bad input refused
//! before any call, a connection without meeting scopes.

use std::collections::HashSet;

use e2e_tests::answer::Answer;
use e2e_tests::catalogue::{
    act, connect_user_with_scopes, cursor_expires, last_zoom_call, ok, passed_through,
    refused_before_zoom, scope_missing, walk, zoom_calls,
};
use e2e_tests::contract::check_contract;
use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::{Value, json};

fn meeting(topic: &str, start: &str) -> Value {
    json!({ "topic": topic, "type": 2, "start_time": start, "duration": 30 })
}

async fn create(stack: &TestStack, id: &str, body: Value) -> i64 {
    let a = ok(
        act(stack, Method::POST, id, "/meetings", Some(body)).await,
        201,
        "create meeting",
    );
    a.json()["id"].as_i64().expect("a meeting id")
}

async fn meeting_actions(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let mid = create(&stack, &id, meeting("Kick-off", "2026-12-01T10:00:00Z")).await;
    let m = format!("/meetings/{mid}");

    // get_meeting: Zoom's JSON as it is.
    let got = ok(act(&stack, Method::GET, &id, &m, None).await, 200, "get");
    passed_through(&stack.sim, &got, "get_meeting");
    assert_eq!(got.json()["topic"], "Kick-off");

    // update_meeting: 204, the change is at Zoom.
    ok(
        act(
            &stack,
            Method::PATCH,
            &id,
            &m,
            Some(json!({ "topic": "Moved", "duration": 45 })),
        )
        .await,
        204,
        "update",
    );
    let got = act(&stack, Method::GET, &id, &m, None).await.json();
    assert_eq!(
        (got["topic"].as_str(), got["duration"].as_i64()),
        (Some("Moved"), Some(45))
    );

    // get_meeting_invitation.
    let inv = ok(
        act(&stack, Method::GET, &id, &format!("{m}/invitation"), None).await,
        200,
        "invitation",
    );
    passed_through(&stack.sim, &inv, "get_meeting_invitation");
    assert!(
        inv.json()["invitation"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    // Live stream: set, read back, start.
    let stream = json!({
        "stream_url": "rtmp://live.example.com/app",
        "stream_key": "key-1",
        "page_url": "https://example.com/live",
    });
    ok(
        act(
            &stack,
            Method::PATCH,
            &id,
            &format!("{m}/livestream"),
            Some(stream.clone()),
        )
        .await,
        204,
        "update_livestream",
    );
    let live = ok(
        act(&stack, Method::GET, &id, &format!("{m}/livestream"), None).await,
        200,
        "get_livestream",
    );
    passed_through(&stack.sim, &live, "get_livestream");
    assert_eq!(live.json()["stream_url"], stream["stream_url"]);
    assert_eq!(live.json()["stream_key"], stream["stream_key"]);
    ok(
        act(
            &stack,
            Method::PATCH,
            &id,
            &format!("{m}/livestream/status"),
            Some(json!({ "action": "start", "settings": { "active_speaker_name": true, "display_name": "Ada" } })),
        )
        .await,
        204,
        "update_livestream_status",
    );
    let sent = last_zoom_call(&stack.sim);
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        (
            "PATCH",
            format!("/v2/meetings/{mid}/livestream/status").as_str()
        )
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap()["action"],
        "start",
        "the body reached Zoom as given"
    );

    // update_meeting_status: end a meeting in progress; it becomes a past meeting.
    assert!(stack.sim.start_meeting(mid));
    ok(
        act(
            &stack,
            Method::PUT,
            &id,
            &format!("{m}/status"),
            Some(json!({ "action": "end" })),
        )
        .await,
        204,
        "end",
    );
    ok(
        act(
            &stack,
            Method::GET,
            &id,
            &format!("/past_meetings/{mid}"),
            None,
        )
        .await,
        200,
        "the ended meeting is a past meeting",
    );

    // Bad input: refused before any call.
    for (method, rest, body) in [
        (Method::GET, m.clone() + "?colour=red", None),
        (
            Method::GET,
            m.clone() + "?show_previous_occurrences=maybe",
            None,
        ),
        (Method::GET, m.clone() + "/invitation?lang=de", None),
        (
            Method::PATCH,
            m.clone(),
            Some(json!({ "duration": "long" })),
        ),
        (Method::PATCH, m.clone(), Some(json!([1, 2]))),
        (
            Method::PUT,
            m.clone() + "/status",
            Some(json!({ "action": "explode" })),
        ),
        (
            Method::PATCH,
            m.clone() + "/livestream",
            Some(json!({ "stream_url": "rtmp://x" })),
        ),
        (
            Method::PATCH,
            m.clone() + "/livestream/status",
            Some(json!({ "action": "dance" })),
        ),
        (
            Method::PATCH,
            m.clone() + "/livestream/status",
            Some(json!({ "action": "start", "settings": { "layout": "mosaic" } })),
        ),
        (
            Method::DELETE,
            m.clone() + "?occurrence_id=1&occurrence_id=2",
            None,
        ),
        (Method::GET, "/meetings/..%2Fusers%2Fme".to_owned(), None),
    ] {
        let doc = refused_before_zoom(&stack, method.clone(), &id, &rest, body).await;
        assert!(
            doc["errors"].as_array().is_some_and(|e| !e.is_empty())
                || doc["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {rest}: the problem says what is wrong: {doc}"
        );
    }
    // Without a body (or without `Content-Type: application/json`) where Zoom's operation
    // takes one: 415, nothing sent.
    let before = zoom_calls(&stack.sim).len();
    act(&stack, Method::PUT, &id, &format!("{m}/status"), None)
        .await
        .problem(415, "unsupported_media_type");
    let r = stack
        .backend(Method::PUT, &format!("/connections/{id}/zoom{m}/status"))
        .body(r#"{"action":"end"}"#)
        .send()
        .await
        .unwrap();
    Answer::of(r).await.problem(415, "unsupported_media_type");
    assert_eq!(zoom_calls(&stack.sim).len(), before);

    // delete_meeting, then Zoom's 404 (code 3001) on every meeting route.
    ok(
        act(&stack, Method::DELETE, &id, &m, None).await,
        204,
        "delete",
    );
    assert_eq!(stack.sim.meetings_count(), 0);
    // update_meeting_status `recover` brings it back; then it goes for good.
    let status = format!("{m}/status");
    let recover = Some(json!({ "action": "recover" }));
    ok(
        act(&stack, Method::PUT, &id, &status, recover.clone()).await,
        204,
        "recover",
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    ok(
        act(&stack, Method::DELETE, &id, &m, None).await,
        204,
        "delete again",
    );
    for (method, rest, body) in [
        (Method::GET, m.clone(), None),
        (Method::DELETE, m.clone(), None),
        (Method::PATCH, m.clone(), Some(json!({ "topic": "gone" }))),
        (Method::GET, m.clone() + "/invitation", None),
        (Method::GET, m.clone() + "/livestream", None),
        (
            Method::PATCH,
            m.clone() + "/livestream",
            Some(stream.clone()),
        ),
        (
            Method::PUT,
            m.clone() + "/status",
            Some(json!({ "action": "end" })),
        ),
    ] {
        let doc = act(&stack, method.clone(), &id, &rest, body)
            .await
            .problem(404, "zoom_not_found");
        assert_eq!(doc["zoom"]["status"], 404, "{method} {rest}: {doc}");
        assert_eq!(doc["zoom"]["code"], 3001, "{method} {rest}: {doc}");
    }
    check_contract(&stack.sim);

    // A connection whose app has no meeting scope: Zoom's 4711 becomes 403.
    let id2 = connect_user_with_scopes(&stack, "sim-user-noscope", &["user_info:read"]).await;
    scope_missing(
        &act(&stack, Method::GET, &id2, "/meetings", None).await,
        "meeting:",
    );
    scope_missing(
        &act(
            &stack,
            Method::POST,
            &id2,
            "/meetings",
            Some(meeting("x", "2026-12-01T10:00:00Z")),
        )
        .await,
        "meeting:write",
    );
    assert_eq!(stack.sim.meetings_count(), 0);
    ok(
        act(&stack, Method::GET, &id2, "/me", None).await,
        200,
        "me is allowed",
    );
}

async fn list_meetings(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let mut december = HashSet::new();
    for day in 1..=7 {
        let mid = create(
            &stack,
            &id,
            meeting(
                &format!("Dec {day}"),
                &format!("2026-12-{day:02}T09:00:00Z"),
            ),
        )
        .await;
        december.insert(mid.to_string());
    }
    for day in [5, 6] {
        create(
            &stack,
            &id,
            meeting("January", &format!("2027-01-{day:02}T09:00:00Z")),
        )
        .await;
    }

    // Filters and page size on the first page only; three pages of 3, 3 and 1.
    let list = walk(
        &stack,
        &id,
        "/meetings?type=scheduled&from=2026-12-01&to=2026-12-31&page_size=3",
        "meetings",
    )
    .await;
    assert_eq!(
        list.pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1]
    );
    assert_eq!(list.unique("id"), december, "no duplicates, no gaps");
    // The answer's items are Zoom's list items as they are.
    assert!(
        list.items()
            .iter()
            .all(|m| m["join_url"].is_string() && m["uuid"].is_string())
    );

    // Without filters: all nine, Zoom's default page size (one page).
    let all = walk(&stack, &id, "/meetings", "meetings").await;
    assert_eq!(all.pages.len(), 1);
    assert_eq!(all.unique("id").len(), 9);

    // Out of Zoom's schema: refused before any call.
    for rest in [
        "/meetings?type=soon",
        "/meetings?page_size=301",
        "/meetings?page_size=-1x",
        "/meetings?page_size=ten",
        "/meetings?next_page_token=abc",
        "/meetings?page_number=2",
        "/meetings?from=2026-13-45",
        "/meetings?colour=red",
        "/meetings?type=live&type=live",
    ] {
        refused_before_zoom(&stack, Method::GET, &id, rest, None).await;
    }
    // Zoom's own refusal (to before from) keeps Zoom's status and code.
    let doc = act(
        &stack,
        Method::GET,
        &id,
        "/meetings?from=2026-12-31&to=2026-12-01",
        None,
    )
    .await;
    assert_eq!(doc.status, 400, "{}", doc.text);
    assert!(doc.body["zoom"]["code"].is_i64(), "{}", doc.text);
    check_contract(&stack.sim);

    cursor_expires(&stack, &id, "/meetings?page_size=4", "meetings").await;
}

e2e_tests::on_both_backends!(catalogue_meetings_local, catalogue_meetings_aws;
    meeting_actions, list_meetings);

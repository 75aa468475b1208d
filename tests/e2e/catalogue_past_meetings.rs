//! The catalogue's past-meeting actions and the AI Companion summary on both backends: a
//! meeting held and ended through the connector, an instance whose UUID needs double
//! encoding toward Zoom, participants walked behind `cursor`, Zoom's errors, bad input refused
//! before any call, missing scopes (the summary needs one the default scopes lack).

use std::collections::HashSet;

use e2e_tests::catalogue::{
    ALL_SCOPES, act, connect_user_with_scopes, cursor_expires, encode, last_zoom_call, ok,
    passed_through, refused_before_zoom, scope_missing, walk,
};
use e2e_tests::contract::check_contract;
use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::json;
use time::macros::datetime;
use zoom_sim::{SimMeetingSummary, SimParticipant, SimPastMeeting};

/// An instance UUID that starts with `/` and holds `//` and `+`: Zoom wants it encoded twice.
const SLASHED: &str = "/pAst//Mtg+Q1w==";

fn people(prefix: &str, n: usize) -> Vec<SimParticipant> {
    (1..=n)
        .map(|i| SimParticipant::new(&format!("{prefix}{i}"), &format!("{prefix}{i}@example.com")))
        .collect()
}

async fn create_meeting(stack: &TestStack, id: &str, topic: &str) -> i64 {
    ok(
        act(
            stack,
            Method::POST,
            id,
            "/meetings",
            Some(json!({ "topic": topic, "type": 2, "start_time": "2026-12-01T10:00:00Z" })),
        )
        .await,
        201,
        "create meeting",
    )
    .json()["id"]
        .as_i64()
        .unwrap()
}

async fn past_meetings(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let mid = create_meeting(&stack, &id, "Retro").await;

    // Held now with seven guests, ended through the connector.
    assert!(stack.sim.join_participants(mid, people("Guest", 7)));
    ok(
        act(
            &stack,
            Method::PUT,
            &id,
            &format!("/meetings/{mid}/status"),
            Some(json!({ "action": "end" })),
        )
        .await,
        204,
        "end",
    );
    // An earlier instance with five guests, its UUID in need of double encoding.
    let older = SimPastMeeting {
        uuid: Some(SLASHED.to_owned()),
        start_time: Some(datetime!(2026-01-15 10:00 UTC)),
        duration: Some(45),
        participants: people("Early", 5),
    };
    assert_eq!(
        stack.sim.add_past_meeting(mid, older).as_deref(),
        Some(SLASHED)
    );

    // list_past_meeting_instances: both, Zoom's JSON.
    let inst = ok(
        act(
            &stack,
            Method::GET,
            &id,
            &format!("/past_meetings/{mid}/instances"),
            None,
        )
        .await,
        200,
        "instances",
    );
    passed_through(&stack.sim, &inst, "list_past_meeting_instances");
    let uuids: HashSet<String> = inst.json()["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uuids.len(), 2);
    assert!(uuids.contains(SLASHED));
    let latest = uuids.iter().find(|u| *u != SLASHED).unwrap().clone();

    // get_past_meeting: a numeric id is the latest instance.
    let got = ok(
        act(
            &stack,
            Method::GET,
            &id,
            &format!("/past_meetings/{mid}"),
            None,
        )
        .await,
        200,
        "get",
    );
    passed_through(&stack.sim, &got, "get_past_meeting");
    assert_eq!(got.json()["uuid"], latest);
    // A UUID, encoded once or (as API Gateway needs) twice: that instance; Zoom gets it twice.
    let twice = encode(&encode(SLASHED));
    for segment in [encode(SLASHED), twice.clone()] {
        let got = ok(
            act(
                &stack,
                Method::GET,
                &id,
                &format!("/past_meetings/{segment}"),
                None,
            )
            .await,
            200,
            &segment,
        );
        assert_eq!(got.json()["uuid"], SLASHED);
        assert_eq!(got.json()["participants_count"], 5);
        assert_eq!(
            last_zoom_call(&stack.sim).path,
            format!("/v2/past_meetings/{twice}")
        );
    }

    // list_past_meeting_participants behind cursor, by UUID (twice-encoded toward Zoom)...
    let list = walk(
        &stack,
        &id,
        &format!(
            "/past_meetings/{}/participants?page_size=2",
            encode(SLASHED)
        ),
        "participants",
    )
    .await;
    assert_eq!(
        list.pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    let expected: HashSet<String> = (1..=5).map(|i| format!("Early{i}")).collect();
    assert_eq!(list.unique("name"), expected, "no duplicates, no gaps");
    assert_eq!(
        last_zoom_call(&stack.sim).path,
        format!("/v2/past_meetings/{twice}/participants")
    );
    // ...and by meeting id (the latest instance: the host and seven guests).
    let list = walk(
        &stack,
        &id,
        &format!("/past_meetings/{mid}/participants?page_size=3"),
        "participants",
    )
    .await;
    let names = list.unique("name");
    assert!(
        (1..=7).all(|i| names.contains(&format!("Guest{i}"))),
        "{names:?}"
    );
    assert_eq!(list.pages.len(), names.len().div_ceil(3));

    // Zoom's errors.
    for rest in [
        "/past_meetings/99999999999".to_owned(),
        "/past_meetings/99999999999/instances".to_owned(),
        "/past_meetings/99999999999/participants".to_owned(),
        format!("/past_meetings/{}", encode("/nO//such==")),
    ] {
        let doc = act(&stack, Method::GET, &id, &rest, None)
            .await
            .problem(404, "zoom_not_found");
        assert_eq!(doc["zoom"]["code"], 3001, "{rest}: {doc}");
    }

    // Bad input: refused before any call.
    for rest in [
        format!("/past_meetings/{mid}?type=live"),
        format!("/past_meetings/{mid}/instances?page_size=2"),
        format!("/past_meetings/{mid}/participants?page_size=301"),
        format!("/past_meetings/{mid}/participants?next_page_token=abc"),
        format!("/past_meetings/{mid}/participants?include_fields=registrant_id"),
        format!("/past_meetings/{mid}/participants?cursor="),
        "/past_meetings/..%2Fusers%2Fme".to_owned(),
    ] {
        refused_before_zoom(&stack, Method::GET, &id, &rest, None).await;
    }

    // The summary needs `meeting_summary:read`, which the default scopes lack.
    scope_missing(
        &act(
            &stack,
            Method::GET,
            &id,
            &format!("/meetings/{mid}/meeting_summary"),
            None,
        )
        .await,
        "meeting_summary:read",
    );
    check_contract(&stack.sim);

    // Without a meeting scope, past meetings are refused too.
    let bare = connect_user_with_scopes(&stack, "sim-user-bare", &["user_info:read"]).await;
    scope_missing(
        &act(
            &stack,
            Method::GET,
            &bare,
            &format!("/past_meetings/{mid}"),
            None,
        )
        .await,
        "meeting:",
    );
    scope_missing(
        &act(
            &stack,
            Method::GET,
            &bare,
            &format!("/past_meetings/{mid}/participants"),
            None,
        )
        .await,
        "meeting:",
    );

    cursor_expires(
        &stack,
        &id,
        &format!("/past_meetings/{mid}/participants?page_size=2"),
        "participants",
    )
    .await;
}

async fn meeting_summary(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    stack
        .sim
        .set_app_scopes(zoom_sim::DEFAULT_CLIENT_ID, ALL_SCOPES);
    let id = stack.connect_platform().await;
    let mid = create_meeting(&stack, &id, "Planning").await;
    let instance = SimPastMeeting {
        uuid: Some(SLASHED.to_owned()),
        ..SimPastMeeting::default()
    };
    assert!(stack.sim.add_past_meeting(mid, instance).is_some());
    let summary = SimMeetingSummary {
        summary_title: "Planning summary".to_owned(),
        ..SimMeetingSummary::default()
    };
    assert!(stack.sim.set_meeting_summary(SLASHED, summary).is_some());

    // By UUID (twice-encoded toward Zoom) and by meeting id (its latest summary).
    let twice = encode(&encode(SLASHED));
    for segment in [encode(SLASHED), twice.clone(), mid.to_string()] {
        let a = ok(
            act(
                &stack,
                Method::GET,
                &id,
                &format!("/meetings/{segment}/meeting_summary"),
                None,
            )
            .await,
            200,
            &segment,
        );
        passed_through(&stack.sim, &a, "get_meeting_summary");
        assert_eq!(a.json()["meeting_uuid"], SLASHED);
        assert_eq!(a.json()["summary_title"], "Planning summary");
    }
    assert!(
        stack
            .sim
            .requests()
            .iter()
            .any(|r| r.path == format!("/v2/meetings/{twice}/meeting_summary")),
        "the UUID reached Zoom encoded twice"
    );

    // A meeting without a summary: Zoom's 404.
    let other = create_meeting(&stack, &id, "Unsummarised").await;
    let doc = act(
        &stack,
        Method::GET,
        &id,
        &format!("/meetings/{other}/meeting_summary"),
        None,
    )
    .await
    .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 3001, "{doc}");
    refused_before_zoom(
        &stack,
        Method::GET,
        &id,
        &format!("/meetings/{mid}/meeting_summary?lang=en"),
        None,
    )
    .await;
    check_contract(&stack.sim);
}

e2e_tests::on_both_backends!(catalogue_past_meetings_local, catalogue_past_meetings_aws;
    past_meetings, meeting_summary);

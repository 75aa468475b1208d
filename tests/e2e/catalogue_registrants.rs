//! The catalogue's meeting registrant actions on both backends: add (exactly once per
//! `Idempotency-Key`), list (walked behind `cursor`, the status filter kept), approve, remove;
//! Zoom's errors, bad input refused before any call, a connection without meeting scopes.

use std::collections::HashSet;

use e2e_tests::catalogue::{
    act, act_once, connect_user_with_scopes, cursor_expires, ok, passed_through,
    refused_before_zoom, scope_missing, walk, zoom_calls,
};
use e2e_tests::contract::check_contract;
use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::{Value, json};

fn person(n: usize) -> Value {
    json!({ "email": format!("guest{n}@example.com"), "first_name": format!("Guest{n}"), "last_name": "Lovelace" })
}

async fn registrants(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    // Registration on, with manual approval: new registrants are pending.
    let meeting = ok(
        act(
            &stack,
            Method::POST,
            &id,
            "/meetings",
            Some(json!({
                "topic": "Workshop", "type": 2, "start_time": "2026-12-01T10:00:00Z",
                "duration": 60, "settings": { "approval_type": 1 },
            })),
        )
        .await,
        201,
        "create meeting",
    )
    .json();
    let mid = meeting["id"].as_i64().unwrap();
    let reg = format!("/meetings/{mid}/registrants");
    let zoom_reg = format!("/v2/meetings/{mid}/registrants");
    let posts_at_zoom = |stack: &TestStack| {
        zoom_calls(&stack.sim)
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == zoom_reg)
            .count()
    };

    // add_meeting_registrant with an Idempotency-Key: one registration at Zoom.
    let first = ok(
        act_once(&stack, &id, &reg, "signup-1", &person(1)).await,
        201,
        "add",
    );
    passed_through(&stack.sim, &first, "add_meeting_registrant");
    assert_eq!(first.header("idempotent-replayed"), None);
    let r1 = first.json()["registrant_id"]
        .as_str()
        .expect("registrant_id")
        .to_owned();
    let again = ok(
        act_once(&stack, &id, &reg, "signup-1", &person(1)).await,
        201,
        "retry",
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json(), "the first answer, as it was");
    assert_eq!(posts_at_zoom(&stack), 1, "the retry did not reach Zoom");
    act_once(&stack, &id, &reg, "signup-1", &person(2))
        .await
        .problem(422, "idempotency_key_reused");
    assert_eq!(posts_at_zoom(&stack), 1);

    // Six more (without a key), all pending.
    let mut pending = HashSet::from([r1.clone()]);
    for n in 2..=7 {
        let a = ok(
            act(&stack, Method::POST, &id, &reg, Some(person(n))).await,
            201,
            "add",
        );
        pending.insert(a.json()["registrant_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(posts_at_zoom(&stack), 7);

    // list_meeting_registrants: the status filter travels in the cursor.
    let list = walk(
        &stack,
        &id,
        &format!("{reg}?status=pending&page_size=3"),
        "registrants",
    )
    .await;
    assert_eq!(
        list.pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1]
    );
    assert_eq!(list.unique("id"), pending, "no duplicates, no gaps");
    assert!(list.items().iter().all(|r| r["status"] == "pending"));
    // Zoom's default filter is `approved`: nobody yet.
    assert!(
        walk(&stack, &id, &reg, "registrants")
            .await
            .items()
            .is_empty()
    );

    // update_meeting_registrant_status: approve r1.
    ok(
        act(
            &stack,
            Method::PUT,
            &id,
            &format!("{reg}/status"),
            Some(json!({ "action": "approve", "registrants": [{ "id": r1 }] })),
        )
        .await,
        204,
        "approve",
    );
    let approved = walk(
        &stack,
        &id,
        &format!("{reg}?status=approved"),
        "registrants",
    )
    .await;
    assert_eq!(approved.unique("id"), HashSet::from([r1.clone()]));

    // delete_meeting_registrant; removing it again is Zoom's 404.
    ok(
        act(&stack, Method::DELETE, &id, &format!("{reg}/{r1}"), None).await,
        204,
        "delete",
    );
    assert!(
        walk(
            &stack,
            &id,
            &format!("{reg}?status=approved"),
            "registrants"
        )
        .await
        .items()
        .is_empty()
    );
    let doc = act(&stack, Method::DELETE, &id, &format!("{reg}/{r1}"), None)
        .await
        .problem(404, "zoom_not_found");
    assert!(doc["zoom"]["code"].is_i64(), "{doc}");

    // Zoom's errors: registration off; an unknown meeting.
    let closed = ok(
        act(
            &stack,
            Method::POST,
            &id,
            "/meetings",
            Some(json!({ "topic": "Closed", "type": 2, "start_time": "2026-12-02T10:00:00Z" })),
        )
        .await,
        201,
        "create meeting",
    )
    .json()["id"]
        .as_i64()
        .unwrap();
    let doc = act(
        &stack,
        Method::POST,
        &id,
        &format!("/meetings/{closed}/registrants"),
        Some(person(9)),
    )
    .await
    .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 404, "{doc}");
    for (method, rest, body) in [
        (
            Method::GET,
            "/meetings/99999999999/registrants".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/meetings/99999999999/registrants".to_owned(),
            Some(person(9)),
        ),
        (
            Method::PUT,
            "/meetings/99999999999/registrants/status".to_owned(),
            Some(json!({ "action": "deny", "registrants": [{ "id": "x" }] })),
        ),
    ] {
        let doc = act(&stack, method.clone(), &id, &rest, body)
            .await
            .problem(404, "zoom_not_found");
        assert_eq!(doc["zoom"]["code"], 3001, "{method} {rest}: {doc}");
    }

    // Bad input: refused before any call (and before the idempotency record).
    for (method, rest, body) in [
        (
            Method::POST,
            reg.clone(),
            Some(json!({ "email": "ada@example.com" })),
        ),
        (
            Method::POST,
            reg.clone(),
            Some(json!({ "email": "x@example.com", "first_name": 7 })),
        ),
        (
            Method::POST,
            reg.clone(),
            Some(json!({ "email": "x@example.com", "first_name": "X", "language": "xx-XX" })),
        ),
        (
            Method::POST,
            reg.clone() + "?occurrence_id=1",
            Some(person(8)),
        ),
        (Method::GET, reg.clone() + "?status=maybe", None),
        (Method::GET, reg.clone() + "?page_size=1000", None),
        (Method::GET, reg.clone() + "?page_number=2", None),
        (
            Method::PUT,
            reg.clone() + "/status",
            Some(json!({ "registrants": [] })),
        ),
        (
            Method::PUT,
            reg.clone() + "/status",
            Some(json!({ "action": "promote" })),
        ),
        (
            Method::DELETE,
            reg.clone() + "/abc?occurrence_id=1&x=2",
            None,
        ),
    ] {
        refused_before_zoom(&stack, method, &id, &rest, body).await;
    }
    let before = zoom_calls(&stack.sim).len();
    let bad = stack
        .backend(Method::POST, &format!("/connections/{id}/zoom{reg}"))
        .header("idempotency-key", "signup-bad")
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    e2e_tests::answer::Answer::of(bad)
        .await
        .problem(400, "validation_failed");
    assert_eq!(zoom_calls(&stack.sim).len(), before);
    // The key was not taken by the refused body.
    ok(
        act_once(&stack, &id, &reg, "signup-bad", &person(10)).await,
        201,
        "the key is free",
    );
    check_contract(&stack.sim);

    // Without a meeting scope: 403.
    let id2 = connect_user_with_scopes(&stack, "sim-user-reg", &["user_info:read"]).await;
    scope_missing(
        &act(&stack, Method::GET, &id2, &reg, None).await,
        "meeting:",
    );
    scope_missing(
        &act(&stack, Method::POST, &id2, &reg, Some(person(11))).await,
        "meeting:write",
    );

    cursor_expires(
        &stack,
        &id,
        &format!("{reg}?status=pending&page_size=2"),
        "registrants",
    )
    .await;
}

e2e_tests::on_both_backends!(catalogue_registrants_local, catalogue_registrants_aws; registrants);

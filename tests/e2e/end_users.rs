//! `Connection.end_user` and `GET /connections?end_user_id=` on both backends: stored from the
//! connect session, kept or replaced on reconnect, listed from its own index in id order with
//! cursors that belong to their filter, and validated at `POST /connect/sessions`.

use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::{Value, json};
use zoom_sim::SimUser;

e2e_tests::on_both_backends!(
    end_users_local, end_users_aws;
    end_user_is_stored_and_listed_by_its_own_filter,
    reconnect_keeps_or_replaces_the_end_user,
    end_user_fields_are_validated,
);

async fn start(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend)).await
}

/// Connects a new simulator user through a session with this `end_user` (or none).
async fn connect_as(stack: &TestStack, name: &str, end_user: Option<Value>) -> String {
    let user_id = format!("user-{name}");
    stack.sim.add_user(SimUser::new(
        &user_id,
        &format!("acc-{name}"),
        &format!("{name}@example.com"),
        "Test",
        name,
    ));
    stack.sim.set_current_user(&user_id);
    let mut body = json!({ "auth_type": "platform_app" });
    if let Some(eu) = end_user {
        body["end_user"] = eu;
    }
    let s = stack.create_session(body).await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    result.connection_id().expect("a connection id")
}

async fn get(stack: &TestStack, path: &str) -> (u16, Value) {
    let r = stack.backend(Method::GET, path).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<String> {
    page["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn end_user_is_stored_and_listed_by_its_own_filter(backend: Backend) {
    let stack = start(backend).await;
    let alice = json!({ "id": "platform-user-1", "email": "alice@platform.example" });
    let mut mine = vec![
        connect_as(&stack, "ada", Some(alice.clone())).await,
        connect_as(&stack, "bob", Some(alice.clone())).await,
        connect_as(&stack, "cyd", Some(alice.clone())).await,
    ];
    mine.sort();
    let other = connect_as(&stack, "dan", Some(json!({ "id": "platform-user-2" }))).await;
    let nobody = connect_as(&stack, "eve", None).await;

    let (status, conn) = get(&stack, &format!("/connections/{}", mine[0])).await;
    assert_eq!(status, 200);
    assert_eq!(conn["end_user"], alice);
    let (_, conn) = get(&stack, &format!("/connections/{nobody}")).await;
    assert!(conn.get("end_user").is_none(), "{conn}");

    // The end user's connections only, in id order, two pages.
    let (status, page1) = get(&stack, "/connections?end_user_id=platform-user-1&limit=2").await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(ids(&page1), mine[..2]);
    let cursor = page1["next_cursor"].as_str().expect("a next cursor");
    let (status, page2) = get(
        &stack,
        &format!("/connections?end_user_id=platform-user-1&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(ids(&page2), mine[2..]);
    assert!(page2["next_cursor"].is_null());
    let (_, page) = get(&stack, "/connections?end_user_id=platform-user-2").await;
    assert_eq!(ids(&page), vec![other.clone()]);
    let (_, page) = get(&stack, "/connections?end_user_id=nobody-here").await;
    assert!(ids(&page).is_empty() && page["next_cursor"].is_null());
    let (_, all) = get(&stack, "/connections").await;
    assert_eq!(
        ids(&all).len(),
        5,
        "the unfiltered listing still has everyone"
    );

    // The cursor belongs to its filter: not another end user's, not the unfiltered listing.
    for query in [
        format!("end_user_id=platform-user-2&cursor={cursor}"),
        format!("cursor={cursor}"),
        format!("end_user_id=platform-user-1&status=active&cursor={cursor}"),
    ] {
        let (status, body) = get(&stack, &format!("/connections?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "validation_failed");
    }

    // Combined with `status`: within the end user's connections.
    stack.sim.revoke_user_tokens("user-bob");
    let bob = find_by_zoom_user(&stack, &mine, "user-bob").await;
    let r = stack
        .backend(Method::POST, &format!("/connections/{bob}/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let (_, page) = get(
        &stack,
        "/connections?end_user_id=platform-user-1&status=needs_reauth",
    )
    .await;
    assert_eq!(ids(&page), vec![bob.clone()]);
    let (_, page) = get(
        &stack,
        "/connections?end_user_id=platform-user-1&status=active&limit=1",
    )
    .await;
    let first_active = ids(&page);
    assert_eq!(first_active.len(), 1);
    let cursor = page["next_cursor"].as_str().expect("a second active one");
    let (_, page) = get(
        &stack,
        &format!("/connections?end_user_id=platform-user-1&status=active&limit=1&cursor={cursor}"),
    )
    .await;
    let mut active: Vec<String> = first_active.into_iter().chain(ids(&page)).collect();
    active.sort();
    let mut want: Vec<String> = mine.iter().filter(|id| **id != bob).cloned().collect();
    want.sort();
    assert_eq!(active, want);

    // A deleted connection leaves the end user's listing.
    let r = stack
        .backend(Method::DELETE, &format!("/connections/{bob}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, page) = get(&stack, "/connections?end_user_id=platform-user-1").await;
    assert_eq!(ids(&page), want);
}

async fn find_by_zoom_user(stack: &TestStack, ids: &[String], zoom_user: &str) -> String {
    for id in ids {
        let (_, conn) = get(stack, &format!("/connections/{id}")).await;
        if conn["zoom"]["user_id"] == zoom_user {
            return id.clone();
        }
    }
    panic!("no connection of {zoom_user}");
}

async fn reconnect_keeps_or_replaces_the_end_user(backend: Backend) {
    let stack = start(backend).await;
    let id = connect_as(
        &stack,
        "ada",
        Some(json!({ "id": "pu-1", "email": "a@p.example" })),
    )
    .await;

    // A reconnect session without `end_user` keeps the stored one.
    let s = stack.create_session(json!({ "connection_id": id })).await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        result.connection_id().as_deref(),
        Some(id.as_str()),
        "{}",
        result.body
    );
    let (_, conn) = get(&stack, &format!("/connections/{id}")).await;
    assert_eq!(
        conn["end_user"],
        json!({ "id": "pu-1", "email": "a@p.example" })
    );

    // One that names an end user moves the connection to them (and out of the old listing).
    let s = stack
        .create_session(json!({ "connection_id": id, "end_user": { "id": "pu-2" } }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        result.connection_id().as_deref(),
        Some(id.as_str()),
        "{}",
        result.body
    );
    let (_, conn) = get(&stack, &format!("/connections/{id}")).await;
    assert_eq!(conn["end_user"], json!({ "id": "pu-2" }));
    let (_, page) = get(&stack, "/connections?end_user_id=pu-1").await;
    assert!(ids(&page).is_empty(), "{page}");
    let (_, page) = get(&stack, "/connections?end_user_id=pu-2").await;
    assert_eq!(ids(&page), vec![id.clone()]);

    // An end user with an email only is shown but not listed by id.
    let s = stack
        .create_session(json!({ "connection_id": id, "end_user": { "email": "x@p.example" } }))
        .await;
    stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    let (_, conn) = get(&stack, &format!("/connections/{id}")).await;
    assert_eq!(conn["end_user"], json!({ "email": "x@p.example" }));
    let (_, page) = get(&stack, "/connections?end_user_id=pu-2").await;
    assert!(ids(&page).is_empty(), "{page}");
}

async fn end_user_fields_are_validated(backend: Backend) {
    let stack = start(backend).await;
    let too_long_id = "u".repeat(257);
    let too_long_email = format!("{}@example.com", "e".repeat(320));
    for body in [
        json!({ "end_user": { "id": too_long_id } }),
        json!({ "end_user": { "email": too_long_email } }),
        json!({ "end_user": { "id": "" } }),
        json!({ "end_user": { "id": "a\u{0}b" } }),
        json!({ "end_user": { "id": 42 } }),
    ] {
        let r = stack
            .backend(Method::POST, "/connect/sessions")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let problem: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["code"], "validation_failed", "{body}");
    }
    // The longest allowed ones are fine.
    stack
        .create_session(json!({ "end_user": { "id": "u".repeat(256), "email": format!("{}@x.io", "e".repeat(315)) } }))
        .await;
    let (status, body) = get(
        &stack,
        &format!("/connections?end_user_id={}", "u".repeat(257)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

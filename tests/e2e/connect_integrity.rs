//! Issue 14, the connect flow's integrity, through the real routers on both backends:
//! concurrent callbacks of one Zoom user end with one connection holding the newest grant;
//! the callback writes an existing connection's tokens under the refresh lease; a BYO
//! reconnect repairs its credentials; abandoned BYO sessions leave no secret behind.

use e2e_tests::front::location;
use e2e_tests::stack::{Backend, StackOptions, TestStack, cookie_pair};
use reqwest::Method;
use serde_json::json;
use zoom_connector::ports::ItemKind;
use zoom_sim::SimUser;

async fn stack(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend)).await
}

async fn connections(stack: &TestStack) -> Vec<serde_json::Value> {
    let list: serde_json::Value = stack
        .backend(Method::GET, "/connections")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["connections"].as_array().unwrap().clone()
}

/// Runs a flow up to Zoom's redirect back: `(callback URL with the code, binding cookie)`.
async fn up_to_the_callback(stack: &TestStack, session: serde_json::Value) -> (String, String) {
    let s = stack.create_session(session).await;
    let r = stack
        .http
        .get(s["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let cookie = cookie_pair(&r).expect("binding cookie");
    let authorize = location(&r).unwrap();
    let z = stack.http.get(&authorize).send().await.unwrap();
    assert_eq!(z.status(), 302);
    (location(&z).expect("a redirect to the callback"), cookie)
}

/// `n` tabs of one Zoom user come back at the same moment: one active connection, every page
/// names it or says why not in a way that asks for no more than a retry
/// (`authorization_superseded`: Zoom revoked that tab's grant for a newer one before it could
/// read the user; `temporarily_unavailable`), never `zoom_unavailable` while Zoom is up; and
/// the stored tokens are the newest grant's (Zoom revoked the others).
async fn concurrent_callbacks_round(stack: &TestStack, user: &str, n: usize) {
    stack.sim.add_user(SimUser::new(
        user,
        "acc-race",
        &format!("{user}@example.com"),
        "Race",
        "Condition",
    ));
    stack.sim.set_current_user(user);
    let before: std::collections::HashSet<String> = connections(stack)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let mut pending = Vec::new();
    for _ in 0..n {
        pending.push(up_to_the_callback(stack, json!({ "auth_type": "platform_app" })).await);
    }
    let results = futures::future::join_all(
        pending
            .iter()
            .map(|(url, cookie)| stack.callback(url, Some(cookie))),
    )
    .await;
    let new: Vec<serde_json::Value> = connections(stack)
        .await
        .into_iter()
        .filter(|c| !before.contains(c["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "{n} concurrent callbacks of one Zoom user: one connection, got {new:#?}"
    );
    let id = new[0]["id"].as_str().unwrap();
    assert_eq!(new[0]["status"], "active");
    let mut successes = 0;
    for r in &results {
        match r.connection_id() {
            Some(got) => {
                assert_eq!(got, id, "every page names the one connection");
                successes += 1;
            }
            None => assert!(
                matches!(
                    r.error_code().as_deref(),
                    Some("authorization_superseded" | "temporarily_unavailable")
                ),
                "status {}: {}",
                r.status,
                r.body
            ),
        }
    }
    assert!(successes >= 1);
    let latest = stack
        .sim
        .latest_tokens(user, zoom_sim::DEFAULT_CLIENT_ID)
        .expect("a live grant");
    let stored = stack.connector.read_connection_secret(id).await.unwrap();
    assert_eq!(
        stored.refresh_token.expose(),
        latest.refresh_token,
        "the stored tokens are the newest grant's"
    );
    // And they work.
    let me = stack
        .backend(Method::GET, &format!("/connections/{id}/zoom/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "{}", me.text().await.unwrap());
}

async fn concurrent_callbacks_of_one_zoom_user_make_one_connection(backend: Backend) {
    let stack = stack(backend).await;
    concurrent_callbacks_round(&stack, "race-two", 2).await;
    for round in 0..3 {
        concurrent_callbacks_round(&stack, &format!("race-ten-{round}"), 10).await;
    }
}

/// A reconnect writes into an existing connection: it waits for a refresh in flight (which
/// holds the refresh lease) and writes after it, so the newest grant is what stays stored.
async fn the_callback_waits_for_a_refresh_in_flight(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let (callback, cookie) = up_to_the_callback(&stack, json!({ "connection_id": id })).await;

    // Another process is refreshing this connection: it holds the lease.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let lease = json!({ "owner": "inst_elsewhere", "at": now });
    assert!(
        stack
            .connector
            .store
            .create_item(ItemKind::Lease, &id, &lease, Some(now + 30), now)
            .await
            .unwrap()
    );
    let before = stack.connector.read_connection_secret(&id).await.unwrap();
    let page = stack.callback(&callback, Some(&cookie));
    let refresher = async {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let during = stack.connector.read_connection_secret(&id).await.unwrap();
        // The refresh in flight stores its answer (tokens of the older grant), then lets go.
        let mut theirs = during.clone();
        theirs.refresh_token = zoom_connector::secret::SecretString::new("rt-of-the-refresh");
        let value =
            zoom_connector::secret::SecretString::new(serde_json::to_string(&theirs).unwrap());
        let name = zoom_connector::domain::connection_secret_name(
            &stack.connector.config.aws.secrets_prefix,
            &id,
        );
        stack
            .connector
            .secrets
            .update_secret(&name, &value, "refresh-in-flight")
            .await
            .unwrap();
        let held = stack
            .connector
            .store
            .get_item(ItemKind::Lease, &id, now)
            .await
            .unwrap()
            .unwrap();
        stack
            .connector
            .store
            .delete_item(ItemKind::Lease, &id, Some(held.version))
            .await
            .unwrap();
        during
    };
    let (result, during) = tokio::join!(page, refresher);
    assert_eq!(
        during.refresh_token.expose(),
        before.refresh_token.expose(),
        "the callback wrote the tokens while a refresh held the lease"
    );
    assert_eq!(
        result.connection_id().as_deref(),
        Some(id.as_str()),
        "{}",
        result.body
    );
    let latest = stack
        .sim
        .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
        .unwrap();
    let after = stack.connector.read_connection_secret(&id).await.unwrap();
    assert_eq!(after.refresh_token.expose(), latest.refresh_token);
    // The callback let go of the lease.
    assert!(
        stack
            .connector
            .store
            .get_item(
                ItemKind::Lease,
                &id,
                time::OffsetDateTime::now_utc().unix_timestamp()
            )
            .await
            .unwrap()
            .is_none()
    );
}

/// A BYO connection, connected through the real pages.
async fn byo_connection(stack: &TestStack, client_id: &str, secret: &str) -> String {
    stack.sim.register_app(client_id, secret);
    stack.sim.allow_loopback_redirects(client_id);
    let s = stack
        .create_session(
            json!({ "auth_type": "byo_app", "client_id": client_id, "client_secret": secret }),
        )
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    result.connection_id().expect(&result.body)
}

/// The reconnect page of a broken BYO connection: the BYO form, its client ID filled in, the
/// secret asked for; submitting the new secret brings the connection back with its id.
async fn repair_through_the_form(
    stack: &TestStack,
    id: &str,
    client_id: &str,
    secret: &str,
    session: Option<serde_json::Value>,
) {
    let s = match session {
        Some(s) => s,
        None => stack.create_session(json!({ "connection_id": id })).await,
    };
    let connect_url = s["connect_url"].as_str().unwrap();
    let page = stack.http.get(connect_url).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the choice page, not a redirect to Zoom"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("data-page=\"choice\""), "{html}");
    assert!(
        html.contains(&format!("name=\"client_id\" value=\"{client_id}\"")),
        "client ID filled in: {html}"
    );
    assert!(
        html.contains("value=\"byo_app\" id=\"auth-byo\" checked"),
        "{html}"
    );
    assert!(
        !html.contains("value=\"platform_app\""),
        "a BYO connection is repaired with its own app: {html}"
    );
    assert!(html.contains("id=\"repair-hint\""), "{html}");
    let result = stack
        .run_flow(
            connect_url,
            Some(&[
                ("auth_type", "byo_app"),
                ("client_id", client_id),
                ("client_secret", secret),
            ]),
        )
        .await;
    assert_eq!(
        result.connection_id().as_deref(),
        Some(id),
        "{}",
        result.body
    );
    let conn = stack.connection(id).await;
    assert_eq!(conn["status"], "active", "{conn}");
    assert!(conn.get("last_error").is_none(), "{conn}");
    let stored = stack.connector.read_connection_secret(id).await.unwrap();
    assert_eq!(
        stored.client_secret.as_ref().map(|s| s.expose().to_owned()),
        Some(secret.to_owned())
    );
    // It refreshes with the new secret.
    let r = stack
        .backend(Method::POST, &format!("/connections/{id}/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(connections(stack).await.len(), 1);
}

async fn a_byo_reconnect_after_invalid_client_asks_for_the_new_secret(backend: Backend) {
    let stack = stack(backend).await;
    let id = byo_connection(&stack, "byo-rotated", "old-secret").await;
    // The app's secret is rotated in the Zoom Marketplace: refreshing now fails.
    stack.sim.register_app("byo-rotated", "new-secret");
    let r = stack
        .backend(Method::POST, &format!("/connections/{id}/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
    let conn = stack.connection(&id).await;
    assert_eq!(conn["status"], "needs_reauth");
    assert_eq!(conn["last_error"]["code"], "invalid_client");
    repair_through_the_form(&stack, &id, "byo-rotated", "new-secret", None).await;
}

async fn a_byo_reconnect_without_stored_credentials_asks_for_the_secret(backend: Backend) {
    let stack = stack(backend).await;
    let id = byo_connection(&stack, "byo-lost", "lost-secret").await;
    // A reconnect session made while the connection was still fine: the page decides again.
    let early = stack.create_session(json!({ "connection_id": id })).await;
    let name = zoom_connector::domain::connection_secret_name(
        &stack.connector.config.aws.secrets_prefix,
        &id,
    );
    stack.connector.secrets.delete_secret(&name).await.unwrap();
    // The connector finds out on use and says so on the record.
    let r = stack
        .backend(Method::POST, &format!("/connections/{id}/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "{}", r.text().await.unwrap());
    assert_eq!(
        stack.connection(&id).await["last_error"]["code"],
        "credentials_missing"
    );
    repair_through_the_form(&stack, &id, "byo-lost", "lost-secret", Some(early)).await;
}

/// The record still says the connection is fine, so the reconnect goes to Zoom; the callback
/// finds the stored client secret gone: a clear page (not a 500), the record says so, nothing
/// else changes, and the next reconnect asks for the secret and repairs the connection.
async fn a_byo_reconnect_whose_secret_vanished_unnoticed_says_so_then_repairs(backend: Backend) {
    let stack = stack(backend).await;
    let id = byo_connection(&stack, "byo-vanished", "vanished-secret").await;
    let name = zoom_connector::domain::connection_secret_name(
        &stack.connector.config.aws.secrets_prefix,
        &id,
    );
    stack.connector.secrets.delete_secret(&name).await.unwrap();
    assert_eq!(stack.connection(&id).await["status"], "active");
    let s = stack.create_session(json!({ "connection_id": id })).await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 409, "{}", result.body);
    assert_eq!(
        result.error_code().as_deref(),
        Some("credentials_missing"),
        "{}",
        result.body
    );
    assert!(result.body.contains("client secret"), "{}", result.body);
    assert_eq!(
        stack.connection(&id).await["last_error"]["code"],
        "credentials_missing"
    );
    assert_eq!(connections(&stack).await.len(), 1);
    repair_through_the_form(&stack, &id, "byo-vanished", "vanished-secret", None).await;
}

/// The secrets a BYO connect flow parks in the secret store: tracked from the moment they are
/// written, removed (with their tracking) when the flow uses them, and deleted by the sweep once
/// the session's lifetime is over when the flow was abandoned.
async fn abandoned_byo_sessions_leave_no_secret_behind(backend: Backend) {
    use zoom_connector::app::connect::{
        PENDING_SECRET_LIFETIME_SECS, pending_secret_name, pending_webhook_secret_name,
    };
    use zoom_connector::secret::sha256_hex;
    let stack = stack(backend).await;
    let prefix = stack.connector.config.aws.secrets_prefix.clone();
    let sweep = |at: i64| {
        let connector = stack.connector.clone();
        async move {
            connector
                .delete_orphaned_pending_secrets(at, None, None)
                .await
        }
    };
    stack.sim.register_app("byo-abandon", "abandon-secret");
    stack.sim.allow_loopback_redirects("byo-abandon");
    let token_of = |s: &serde_json::Value| {
        let url = url::Url::parse(s["connect_url"].as_str().unwrap()).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "session")
            .unwrap()
            .1
            .into_owned()
    };
    let secret_exists = |name: String| {
        let secrets = stack.connector.secrets.clone();
        async move { secrets.get_secret(&name).await.unwrap().is_some() }
    };
    let tracked = |name: String| {
        let store = stack.connector.store.clone();
        async move {
            store
                .get_item(ItemKind::PendingSecret, &name, 0)
                .await
                .unwrap()
                .is_some()
        }
    };

    // 1. A session with a secret and a webhook token, never opened.
    let abandoned = stack
        .create_session(json!({
            "auth_type": "byo_app", "client_id": "byo-abandon",
            "client_secret": "abandon-secret", "webhook_secret_token": "abandon-webhook"
        }))
        .await;
    let key = sha256_hex(&token_of(&abandoned));
    let parked = [
        pending_secret_name(&prefix, &key),
        pending_webhook_secret_name(&prefix, &key),
    ];
    for name in &parked {
        assert!(secret_exists(name.clone()).await, "{name}");
        assert!(tracked(name.clone()).await, "tracked: {name}");
    }

    // 2. A choice-page flow: the secret typed on the form waits for a callback that never comes.
    let s = stack.create_session(json!({})).await;
    let r = stack
        .http
        .post(stack.url("/connect"))
        .form(&[
            ("session", token_of(&s).as_str()),
            ("auth_type", "byo_app"),
            ("client_id", "byo-abandon"),
            ("client_secret", "abandon-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let state = url::Url::parse(&location(&r).unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let typed = pending_secret_name(&prefix, &sha256_hex(&state));
    assert!(secret_exists(typed.clone()).await);
    assert!(tracked(typed.clone()).await);

    // 3. A completed flow: its parked secret and the tracking are gone.
    let done = stack
        .create_session(json!({
            "auth_type": "byo_app", "client_id": "byo-abandon", "client_secret": "abandon-secret"
        }))
        .await;
    let done_name = pending_secret_name(&prefix, &sha256_hex(&token_of(&done)));
    assert!(tracked(done_name.clone()).await);
    let result = stack
        .run_flow(done["connect_url"].as_str().unwrap(), None)
        .await;
    assert!(result.connection_id().is_some(), "{}", result.body);
    assert!(!secret_exists(done_name.clone()).await);
    assert!(!tracked(done_name.clone()).await, "tracking removed");

    // The sweep leaves them while a flow could still use them...
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let early = sweep(now + 60).await;
    assert_eq!(early, 0);
    for name in parked.iter().chain([&typed]) {
        assert!(secret_exists(name.clone()).await, "{name}");
    }
    // ...and deletes them once the session's lifetime is over.
    let late = now + PENDING_SECRET_LIFETIME_SECS + 1;
    let deleted = sweep(late).await;
    assert_eq!(deleted, 3);
    for name in parked.iter().chain([&typed]) {
        assert!(!secret_exists(name.clone()).await, "deleted: {name}");
        assert!(!tracked(name.clone()).await, "tracking gone: {name}");
    }
    // The connection made meanwhile is untouched.
    let id = result.connection_id().unwrap();
    assert!(stack.connector.read_connection_secret(&id).await.is_ok());
    assert_eq!(sweep(late).await, 0);
}

e2e_tests::on_both_backends!(
    connect_integrity_local, connect_integrity_aws;
    concurrent_callbacks_of_one_zoom_user_make_one_connection,
    the_callback_waits_for_a_refresh_in_flight,
    a_byo_reconnect_after_invalid_client_asks_for_the_new_secret,
    a_byo_reconnect_without_stored_credentials_asks_for_the_secret,
    a_byo_reconnect_whose_secret_vanished_unnoticed_says_so_then_repairs,
);

e2e_tests::on_both_backends!(
    pending_secrets_local, pending_secrets_aws;
    abandoned_byo_sessions_leave_no_secret_behind,
);

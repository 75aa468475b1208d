//! The connect flow (issue 3) through the real routers, against the simulator, on both
//! backends: sessions, the choice page, the redirect to Zoom, the callback, result pages and
//! every error code, the uniqueness rule, reconnect, state and cookie checks.

use e2e_tests::stack::{Backend, FlowResult, StackOptions, TestStack, cookie_pair};
use reqwest::Method;
use serde_json::json;
use zoom_sim::{Fault, FaultTarget, SimUser};

const UI: &str = "http://ui.example.test";

async fn stack(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend).env("CONNECTOR_UI_ORIGINS", UI)).await
}

async fn connection_count(stack: &TestStack) -> usize {
    let list: serde_json::Value = stack
        .backend(Method::GET, "/connections")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["connections"].as_array().unwrap().len()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Starts a flow and stops at Zoom's authorize URL: `(authorize_url, binding cookie)`.
async fn start(stack: &TestStack, session: serde_json::Value) -> (String, String) {
    let s = stack.create_session(session).await;
    let r = stack
        .http
        .get(s["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cookie = cookie_pair(&r).expect("binding cookie");
    (r.headers()["location"].to_str().unwrap().to_owned(), cookie)
}

async fn assert_nothing_stored(stack: &TestStack, result: &FlowResult, code: &str) {
    assert_eq!(
        result.error_code().as_deref(),
        Some(code),
        "{}",
        result.body
    );
    assert!(
        (400..500).contains(&result.status),
        "failure pages are 4xx, got {}",
        result.status
    );
    assert!(result.body.contains("data-status=\"error\""));
    assert_eq!(
        connection_count(stack).await,
        0,
        "nothing stored on failure"
    );
    assert!(
        !stack
            .events()
            .await
            .iter()
            .any(|(t, _)| t == "Zoom Connection Created"),
        "no Created event on failure"
    );
}

async fn platform_flow(backend: Backend) {
    let stack = stack(backend).await;
    let s = stack
        .create_session(json!({ "auth_type": "platform_app", "end_user": { "id": "u-42" } }))
        .await;
    let connect_url = s["connect_url"].as_str().unwrap();
    assert!(connect_url.starts_with(&stack.url("/connect?session=")));

    let r = stack.http.get(connect_url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Path=/oauth/callback")
    );
    assert!(
        !set_cookie.contains("Secure"),
        "plain http public URL: no Secure flag"
    );
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&format!(
        "{}/oauth/authorize?",
        stack.running_sim.oauth_url()
    )));
    assert_eq!(
        query_param(&authorize, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(
        query_param(&authorize, "client_id").as_deref(),
        Some(zoom_sim::DEFAULT_CLIENT_ID)
    );
    assert_eq!(
        query_param(&authorize, "redirect_uri").unwrap(),
        stack.url("/oauth/callback")
    );
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(&authorize, "code_challenge").unwrap().len(), 43);
    assert!(query_param(&authorize, "state").unwrap().len() >= 43);

    let z = stack.http.get(&authorize).send().await.unwrap();
    let callback = z.headers()["location"].to_str().unwrap().to_owned();
    let result = stack.callback(&callback, cookie_pair(&r).as_deref()).await;
    assert_eq!(result.status, 200, "{}", result.body);
    assert!(result.body.contains("data-status=\"success\""));
    let id = result.connection_id().unwrap();
    // The page posts to the opener on the allowed origin only.
    assert!(result.body.contains(UI) && result.body.contains("zoom-connector"));

    let conn: serde_json::Value = stack.connection(&id).await;
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["auth_type"], "platform_app");
    assert_eq!(conn["zoom"]["user_id"], zoom_sim::DEFAULT_USER_ID);
    assert_eq!(conn["zoom"]["email"], "ada@example.com");
    let text = conn.to_string();
    assert!(
        !text.contains("access_token\"") && !text.contains("refresh_token"),
        "no token in a Connection: {text}"
    );

    // The code exchange used HTTP Basic and the PKCE verifier; no secret in the form.
    let token_calls: Vec<_> = stack
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oauth/token")
        .collect();
    assert_eq!(token_calls.len(), 1);
    let call = &token_calls[0];
    assert!(call.header("authorization").unwrap().starts_with("Basic "));
    let form = call.form();
    assert!(form.contains_key("code_verifier") && !form.contains_key("client_secret"));
    assert_eq!(
        form.get("redirect_uri").map(String::as_str),
        Some(stack.url("/oauth/callback").as_str())
    );

    let events = stack.events().await;
    let created: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "Zoom Connection Created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].1["connection_id"], id);
    assert_eq!(created[0].1["end_user"]["id"], "u-42");

    // The connection works.
    let me = stack
        .backend(Method::GET, &format!("/connections/{id}/zoom/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // The session was single use.
    let again = stack.http.get(connect_url).send().await.unwrap();
    assert_eq!(again.status(), 410);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("data-error-code=\"session_invalid\"")
    );
}

e2e_tests::on_both_backends!(platform_app_flow_local, platform_app_flow_aws; platform_flow);

async fn byo_flow(backend: Backend) {
    let stack = stack(backend).await;
    stack.sim.register_app("byo-client", "byo-secret");
    stack.sim.allow_loopback_redirects("byo-client");
    let s = stack
        .create_session(json!({ "auth_type": "byo_app", "client_id": "byo-client", "client_secret": "byo-secret" }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let id = result.connection_id().unwrap();
    let conn: serde_json::Value = stack.connection(&id).await;
    assert_eq!(
        (conn["auth_type"].as_str(), conn["client_id"].as_str()),
        (Some("byo_app"), Some("byo-client"))
    );
    let token_call = stack
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .unwrap();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("byo-client:byo-secret");
    assert_eq!(
        token_call.header("authorization").unwrap(),
        format!("Basic {basic}")
    );
    // The secret waited in the secret store, not in the session, and is gone now.
    let token = query_param(s["connect_url"].as_str().unwrap(), "session").unwrap();
    let pending = zoom_connector::app::connect::pending_secret_name(
        &stack.connector.config.aws.secrets_prefix,
        &zoom_connector::secret::sha256_hex(&token),
    );
    assert!(
        stack
            .connector
            .secrets
            .get_secret(&pending)
            .await
            .unwrap()
            .is_none()
    );
    // Refreshing uses the BYO app.
    let r = stack
        .backend(Method::POST, &format!("/connections/{id}/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

e2e_tests::on_both_backends!(byo_app_flow_local, byo_app_flow_aws; byo_flow);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn choice_page_then_byo_form() {
    let stack = stack(Backend::Local).await;
    stack.sim.register_app("own-client", "own-secret");
    stack.sim.allow_loopback_redirects("own-client");
    let s = stack.create_session(json!({})).await;
    let url = s["connect_url"].as_str().unwrap();
    let page = stack.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    for text in [
        "OAuth 2.0 Authorization code",
        "Bring your own OAuth 2.0 app",
        "Client ID",
        "Client secret",
        ">Connect</button>",
    ] {
        assert!(html.contains(text), "choice page lacks {text:?}");
    }
    assert!(
        !html.contains("<script"),
        "the choice page works without JavaScript"
    );

    // BYO without a secret: the page again, with what is missing; the session survives.
    let session = query_param(url, "session").unwrap();
    let r = stack
        .http
        .post(stack.url("/connect"))
        .form(&[
            ("session", session.as_str()),
            ("auth_type", "byo_app"),
            ("client_id", "own-client"),
            ("client_secret", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("client secret"));

    let result = stack
        .run_flow(
            url,
            Some(&[
                ("auth_type", "byo_app"),
                ("client_id", "own-client"),
                ("client_secret", "own-secret"),
            ]),
        )
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    let id = result.connection_id().unwrap();
    let conn: serde_json::Value = stack.connection(&id).await;
    assert_eq!(conn["client_id"], "own-client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn choice_page_platform_choice() {
    let stack = stack(Backend::Local).await;
    let s = stack.create_session(json!({})).await;
    let result = stack
        .run_flow(
            s["connect_url"].as_str().unwrap(),
            Some(&[("auth_type", "platform_app")]),
        )
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
}

async fn same_user_twice(backend: Backend) {
    let stack = stack(backend).await;
    let first = stack.connect_platform().await;
    let second = stack.connect_platform().await;
    assert_eq!(first, second, "one connection per Zoom user per app");
    assert_eq!(connection_count(&stack).await, 1);
    // Zoom revoked the first tokens; the connection holds the new ones and works.
    let me = stack
        .backend(Method::GET, &format!("/connections/{first}/zoom/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        stack.sim.counters().refresh_grants,
        0,
        "no refresh needed: the newest tokens are stored"
    );

    // A different Zoom user gets a connection of their own.
    stack.sim.add_user(SimUser {
        id: "sim-user-2".into(),
        account_id: "sim-account-1".into(),
        email: "grace@example.com".into(),
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
    });
    stack.sim.set_current_user("sim-user-2");
    let other = stack.connect_platform().await;
    assert_ne!(other, first);
    assert_eq!(connection_count(&stack).await, 2);
}

e2e_tests::on_both_backends!(same_zoom_user_twice_local, same_zoom_user_twice_aws; same_user_twice);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconnect_into_existing_connection() {
    let stack = stack(Backend::Local).await;
    let id = stack.connect_platform().await;
    stack.sim.revoke_user_tokens(zoom_sim::DEFAULT_USER_ID);
    stack
        .connector
        .update_record(&id, |r| {
            r.status = zoom_connector::domain::ConnectionStatus::NeedsReauth
        })
        .await
        .unwrap();
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
    let conn: serde_json::Value = stack.connection(&id).await;
    assert_eq!(conn["status"], "active");
    assert_eq!(connection_count(&stack).await, 1);

    let unknown = stack
        .backend(Method::POST, "/connect/sessions")
        .json(&json!({ "connection_id": "conn_nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn return_url_redirect_and_foreign_origin() {
    let stack = stack(Backend::Local).await;
    let foreign = stack
        .backend(Method::POST, "/connect/sessions")
        .json(&json!({ "return_url": "https://evil.example/steal" }))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);
    assert_eq!(
        foreign.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = foreign.json().await.unwrap();
    assert_eq!(body["code"], "validation_failed");

    let s = stack
        .create_session(
            json!({ "auth_type": "platform_app", "return_url": format!("{UI}/done?x=1") }),
        )
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 303);
    let location = result.location.unwrap();
    assert!(
        location.starts_with(&format!("{UI}/done?x=1&status=success&connection_id=conn_")),
        "{location}"
    );

    stack.sim.inject(Fault::Status {
        target: FaultTarget::Token,
        status: 503,
        times: Some(1),
    });
    let s = stack
        .create_session(json!({ "auth_type": "platform_app", "return_url": format!("{UI}/done") }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        result.location.as_deref(),
        Some(format!("{UI}/done?status=error&error=zoom_unavailable").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_denied() {
    let stack = stack(Backend::Local).await;
    stack.sim.set_auto_approve(false);
    let (authorize, cookie) = start(&stack, json!({ "auth_type": "platform_app" })).await;
    let consent = stack
        .http
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("id=\"decline\""));
    // Press "Decline": post the consent form's fields.
    let mut fields: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    fields.push(("decision".into(), "decline".into()));
    let d = stack
        .http
        .post(format!(
            "{}/oauth/authorize/decision",
            stack.running_sim.base_url
        ))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let callback = d.headers()["location"].to_str().unwrap().to_owned();
    let result = stack.callback(&callback, Some(&cookie)).await;
    assert_nothing_stored(&stack, &result, "access_denied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_preapproval_required_explains_the_admin_steps() {
    let stack = stack(Backend::Local).await;
    stack.sim.set_require_preapproval("sim-account-1", true);
    let s = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_nothing_stored(&stack, &result, "admin_preapproval_required").await;
    for step in [
        "Marketplace",
        "Manage",
        "Permissions",
        "pre-approval",
        "Who can install",
        "users or groups",
    ] {
        assert!(result.body.contains(step), "admin page lacks {step:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_byo_client() {
    let stack = stack(Backend::Local).await;
    stack.sim.register_app("real-client", "real-secret");
    stack.sim.allow_loopback_redirects("real-client");
    let s = stack
        .create_session(
            json!({ "auth_type": "byo_app", "client_id": "real-client", "client_secret": "typo" }),
        )
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_nothing_stored(&stack, &result, "invalid_client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redirect_uri_mismatch() {
    let stack = stack(Backend::Local).await;
    let (authorize, cookie) = start(&stack, json!({ "auth_type": "platform_app" })).await;
    // A code issued for another redirect URI cannot be exchanged with ours.
    let mut url = url::Url::parse(&authorize).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k.into_owned(), "http://127.0.0.1:9/elsewhere".to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let z = stack.http.get(url.as_str()).send().await.unwrap();
    let elsewhere = z.headers()["location"].to_str().unwrap().to_owned();
    let callback = elsewhere.replace(
        "http://127.0.0.1:9/elsewhere",
        &stack.url("/oauth/callback"),
    );
    let result = stack.callback(&callback, Some(&cookie)).await;
    assert_nothing_stored(&stack, &result, "redirect_uri_mismatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zoom_unavailable_on_token_endpoint() {
    let stack = stack(Backend::Local).await;
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Token,
        status: 500,
        times: Some(1),
    });
    let s = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_nothing_stored(&stack, &result, "zoom_unavailable").await;
    assert!(
        result.body.to_lowercase().contains("wait a minute"),
        "retry hint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_replay_unknown_and_cookie_mismatch() {
    let stack = stack(Backend::Local).await;
    let (authorize, cookie) = start(&stack, json!({ "auth_type": "platform_app" })).await;
    let z = stack.http.get(&authorize).send().await.unwrap();
    let callback = z.headers()["location"].to_str().unwrap().to_owned();

    // Without the cookie, or with another browser's: refused, and the state is not burnt.
    let no_cookie = stack.callback(&callback, None).await;
    assert_nothing_stored(&stack, &no_cookie, "state_invalid").await;
    let name = cookie.split('=').next().unwrap();
    let forged = stack
        .callback(&callback, Some(&format!("{name}=forged-value")))
        .await;
    assert_eq!(forged.error_code().as_deref(), Some("state_invalid"));

    let ok = stack.callback(&callback, Some(&cookie)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    // Replay of the same callback.
    let replay = stack.callback(&callback, Some(&cookie)).await;
    assert_eq!(replay.error_code().as_deref(), Some("state_invalid"));
    // Unknown state.
    let unknown = stack
        .callback(
            &stack.url("/oauth/callback?code=x&state=not-a-state"),
            Some(&cookie),
        )
        .await;
    assert_eq!(unknown.error_code().as_deref(), Some("state_invalid"));
    let missing = stack.callback(&stack.url("/oauth/callback"), None).await;
    assert_eq!(missing.error_code().as_deref(), Some("state_invalid"));
    assert_eq!(connection_count(&stack).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backend_routes_need_the_api_key() {
    let stack = stack(Backend::Local).await;
    for (method, path) in [
        (Method::POST, "/connect/sessions"),
        (Method::GET, "/connections"),
        (Method::GET, "/connections/x/zoom/me"),
    ] {
        let r = stack
            .http
            .request(method.clone(), stack.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let r = stack
            .http
            .request(method, stack.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
    let bad = stack
        .backend(Method::POST, "/connect/sessions")
        .json(&json!({ "auth_type": "platform_app", "client_id": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = stack
        .backend(Method::POST, "/connect/sessions")
        .json(&json!({ "auth_type": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // Bodies are JSON objects (serde alone would fill the request from an array).
    let array = stack
        .backend(Method::POST, "/connect/sessions")
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(array.status(), 400);
    let health: serde_json::Value = stack
        .http
        .get(stack.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({ "status": "ok" }));
    let spec: serde_json::Value = stack
        .http
        .get(stack.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for path in [
        "/connect/sessions",
        "/oauth/callback",
        "/connections/{id}/zoom/meetings",
        "/webhooks/zoom",
        "/healthz",
    ] {
        assert!(spec["paths"].get(path).is_some(), "openapi lacks {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconnect_a_byo_connection_without_typing_the_secret_again() {
    let stack = stack(Backend::Local).await;
    stack.sim.register_app("byo-re", "byo-re-secret");
    stack.sim.allow_loopback_redirects("byo-re");
    let s = stack
        .create_session(json!({ "auth_type": "byo_app", "client_id": "byo-re", "client_secret": "byo-re-secret" }))
        .await;
    let id = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await
        .connection_id()
        .unwrap();
    // Reconnect: the session names only the connection; its app comes from the connection.
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
    let authorizes: Vec<_> = stack
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oauth/authorize")
        .collect();
    assert_eq!(authorizes.len(), 2);
    assert!(
        authorizes[1].query.contains("client_id=byo-re"),
        "{}",
        authorizes[1].query
    );
    assert_eq!(connection_count(&stack).await, 1);
}

/// Lambda stops a function at its deadline: the single-use code is only spent when the
/// exchange, `/users/me` and storing the result all fit in the time left.
#[tokio::test]
async fn the_code_is_not_spent_without_time_to_finish() {
    use zoom_connector::app::callback::{CODE_EXCHANGE_BUDGET, CallbackErrorCode, CallbackParams};
    let stack = stack(Backend::Local).await;
    let (authorize, cookie) = start(&stack, json!({ "auth_type": "platform_app" })).await;
    let z = stack.http.get(&authorize).send().await.unwrap();
    assert_eq!(z.status(), 302);
    let callback = z.headers()["location"].to_str().unwrap().to_owned();
    let (cookie_name, cookie_value) = cookie.split_once('=').unwrap();
    let params = CallbackParams {
        code: query_param(&callback, "code"),
        state: query_param(&callback, "state"),
        error: None,
        error_description: None,
    };
    let short =
        tokio::time::Instant::now() + CODE_EXCHANGE_BUDGET - std::time::Duration::from_secs(1);
    let outcome = zoom_connector::deadline::within(
        Some(short),
        stack.connector.complete_authorization(params, |name| {
            (name == cookie_name).then(|| cookie_value.to_owned())
        }),
    )
    .await;
    assert_eq!(
        outcome.result.unwrap_err(),
        CallbackErrorCode::TemporarilyUnavailable
    );
    let counters = stack.sim.counters();
    assert_eq!(counters.token_requests, 0, "the code was sent to Zoom");
    assert_eq!(connection_count(&stack).await, 0);
}

/// The connect form is only taken from the connector's own page: a post from another site
/// (by `Sec-Fetch-Site` or `Origin`) is refused before the session is read, and the session
/// stays usable from the real page.
#[tokio::test]
async fn a_connect_form_from_another_site_is_refused() {
    let stack = stack(Backend::Local).await;
    let s = stack.create_session(json!({})).await;
    let connect_url = s["connect_url"].as_str().unwrap().to_owned();
    let session = query_param(&connect_url, "session").unwrap();
    let fields = [("session", session.as_str()), ("auth_type", "platform_app")];
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = stack
            .http
            .post(stack.url("/connect"))
            .header(name, value)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("data-error-code=\"cross_site_request\""),
            "{body}"
        );
    }
    // From the connector's own origin it goes on to Zoom, with the same session.
    let origin = stack.base_url.clone();
    let r = stack
        .http
        .post(stack.url("/connect"))
        .header("origin", origin)
        .header("sec-fetch-site", "same-origin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(connection_count(&stack).await, 0);
}

/// `GET /connect/status` (what the connect helper polls when the popup lost its opener) and
/// `GET /connect.js`: pending while unused, pending and started at Zoom, then the result page's
/// outcome; CORS for the allowed UI origin only.
async fn session_status_and_helper(backend: Backend) {
    let stack = stack(backend).await;
    let status = |token: String, origin: &'static str| {
        let http = stack.http.clone();
        let url = stack.url(&format!("/connect/status?session={token}"));
        async move {
            let r = http.get(url).header("origin", origin).send().await.unwrap();
            let code = r.status().as_u16();
            let allow = r
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(r.headers()["cache-control"], "no-store");
            assert_eq!(r.headers()["vary"], "origin");
            let body: serde_json::Value = r.json().await.unwrap();
            (code, allow, body)
        }
    };

    let s = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let token = s["session_token"].as_str().unwrap().to_owned();
    let (code, allow, body) = status(token.clone(), UI).await;
    assert_eq!(code, 200);
    assert_eq!(allow.as_deref(), Some(UI));
    assert_eq!(body, json!({ "status": "pending", "started": false }));
    // Another origin reads nothing from a browser: no CORS header for it.
    let (_, allow, _) = status(token.clone(), "http://evil.example.test").await;
    assert_eq!(allow, None);

    let r = stack
        .http
        .get(s["connect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let (_, _, body) = status(token.clone(), UI).await;
    assert_eq!(body, json!({ "status": "pending", "started": true }));

    let z = stack
        .http
        .get(r.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = z.headers()["location"].to_str().unwrap().to_owned();
    let result = stack.callback(&callback, cookie_pair(&r).as_deref()).await;
    let id = result.connection_id().unwrap();
    let (code, _, body) = status(token.clone(), UI).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({ "status": "success", "started": true, "connection_id": id })
    );

    // A failure: the page's code.
    stack.sim.set_require_preapproval("sim-account-1", true);
    let s = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        result.error_code().as_deref(),
        Some("admin_preapproval_required")
    );
    let (_, _, body) = status(s["session_token"].as_str().unwrap().to_owned(), UI).await;
    assert_eq!(
        body,
        json!({ "status": "error", "started": true, "error": "admin_preapproval_required" })
    );

    // Unknown tokens.
    for token in ["nope".to_owned(), "x".repeat(300), String::new()] {
        let (code, _, body) = status(token, UI).await;
        assert_eq!(
            (code, body["code"].as_str()),
            (404, Some("session_not_found"))
        );
    }

    // The helper itself: the package's file, cacheable, versioned by its ETag.
    let r = stack
        .http
        .get(stack.url("/connect.js"))
        .header("origin", UI)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(h["access-control-allow-origin"], UI);
    assert!(
        h["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public, max-age=")
    );
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let js = r.text().await.unwrap();
    assert_eq!(
        js,
        include_str!("../../packages/zoom-connect/index.js"),
        "served as kept in the repository"
    );
    assert!(!js.contains("eval(") && !js.contains("new Function"));
    let r = stack
        .http
        .get(stack.url("/connect.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
}

e2e_tests::on_both_backends!(session_status_and_helper_local, session_status_and_helper_aws; session_status_and_helper);

/// A reconnect must come back as the connection's own Zoom user: signed in as another user
/// (or account), the page says `reconnect_user_mismatch` (409), the connection keeps its user,
/// tokens and status, no second connection appears, and the unwanted grant is revoked at Zoom.
async fn a_reconnect_as_another_zoom_user_changes_nothing(backend: Backend) {
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let before = stack.connection(&id).await;
    let tokens_before = stack.connector.read_connection_secret(&id).await.unwrap();
    stack.sim.add_user(SimUser::new(
        "user-other",
        "acc-other",
        "other@example.com",
        "Other",
        "Person",
    ));
    stack.sim.set_current_user("user-other");
    let revocations = stack.sim.counters().revocations;

    let s = stack.create_session(json!({ "connection_id": id })).await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(
        result.error_code().as_deref(),
        Some("reconnect_user_mismatch"),
        "{}",
        result.body
    );
    assert_eq!(result.status, 409);

    let after = stack.connection(&id).await;
    assert_eq!(after["zoom"], before["zoom"]);
    assert_eq!(after["status"], "active");
    let tokens_after = stack.connector.read_connection_secret(&id).await.unwrap();
    assert_eq!(
        tokens_after.refresh_token.expose(),
        tokens_before.refresh_token.expose()
    );
    assert_eq!(connection_count(&stack).await, 1);
    assert_eq!(stack.sim.counters().revocations, revocations + 1);
}

e2e_tests::on_both_backends!(
    reconnect_mismatch_local, reconnect_mismatch_aws;
    a_reconnect_as_another_zoom_user_changes_nothing,
);

/// Deleting a connection frees its uniqueness claim only while it still holds it: a claim that
/// another connection of the same Zoom user won meanwhile (a concurrent callback) stays.
async fn deleting_a_connection_leaves_a_claim_it_no_longer_holds(backend: Backend) {
    use zoom_connector::ports::ItemKind;
    let stack = stack(backend).await;
    let id = stack.connect_platform().await;
    let record = stack
        .connector
        .store
        .get_connection(&id)
        .await
        .unwrap()
        .unwrap();
    let key = zoom_connector::domain::identity_key(&record.client_id, &record.zoom);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claim = stack
        .connector
        .store
        .get_item(ItemKind::Identity, &key, now)
        .await
        .unwrap()
        .expect("the connection's claim");
    assert_eq!(claim.value["connection_id"], id.as_str());
    let survivor = json!({ "connection_id": "conn_survivor" });
    assert!(
        stack
            .connector
            .store
            .replace_item(ItemKind::Identity, &key, &survivor, None, claim.version)
            .await
            .unwrap()
    );

    let r = stack
        .backend(Method::DELETE, &format!("/connections/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let left = stack
        .connector
        .store
        .get_item(ItemKind::Identity, &key, now)
        .await
        .unwrap()
        .expect("the survivor's claim was deleted");
    assert_eq!(left.value["connection_id"], "conn_survivor");
}

e2e_tests::on_both_backends!(
    identity_local, identity_aws;
    deleting_a_connection_leaves_a_claim_it_no_longer_holds,
);

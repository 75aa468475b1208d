//! Token lifecycle end to end, on both backends: single-flight refresh under concurrency (one
//! process, several connectors, several OS processes), faults at Zoom's token endpoint, the
//! connection management routes, and the sweep (due selection, `REFRESH_TPS`, deadline).
//!
//! What a lost refresh answer means (`rotate_then_fail_*`): Zoom rotated the refresh token
//! and then the answer never arrived. The old refresh token is dead and the new pair exists
//! only at Zoom, so nothing can bring the connection back but a new authorization. The
//! connector must notice on its next attempt (`invalid_grant` for the old token), mark the
//! connection `needs_reauth`, say so (event and log), and keep answering 409 — never store
//! anything but tokens it really received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use e2e_tests::fakes::{AheadClock, oauth_with_timeout};
use e2e_tests::fakes::{BeforeSecretWrite, HookedSecrets, SecretWrite};
use e2e_tests::stack::{Backend, StackOptions, TestStack, serve};
use futures::future::join_all;
use reqwest::Method;
use serde_json::Value;
use time::OffsetDateTime;
use zoom_connector::app::Connector;
use zoom_connector::app::sweep::{DEADLINE_MARGIN, SweepReport};
use zoom_connector::app::tokens::refresh::LEASE_SECS;
use zoom_connector::domain::{ConnectionRecord, ConnectionSecret, ConnectionStatus};
use zoom_connector::ports::{Clock, StoreResult};
use zoom_connector::secret::SecretString;
use zoom_sim::{Fault, FaultTarget, SimUser};

e2e_tests::on_both_backends!(
    local, aws;
    concurrent_actions_in_one_process_refresh_once,
    several_containers_refresh_once,
    separate_os_processes_refresh_once,
    token_endpoint_500_keeps_the_old_token_and_backs_off,
    three_failures_show_refresh_failing,
    hanging_token_endpoint_is_abandoned_cleanly,
    latency_beyond_the_lease_recovers_from_the_stored_tokens,
    rotate_then_fail_goes_to_needs_reauth_loudly,
    reauthorization_elsewhere_means_needs_reauth,
    list_and_read_connections,
    delete_revokes_at_zoom_and_forgets,
    forced_refresh,
    sweep_refreshes_only_due_connections,
    sweep_keeps_refresh_tps_and_its_deadline,
    eager_mode_schedules_the_sweep_before_expiry,
);

// ---- helpers -----------------------------------------------------------------------------

async fn start(backend: Backend) -> TestStack {
    TestStack::start(StackOptions::new(backend)).await
}

/// Connects a new simulator user (the simulator's browser signs in as them).
async fn connect_user(stack: &TestStack, name: &str) -> (String, String) {
    let user_id = format!("user-{name}");
    stack.sim.add_user(SimUser::new(
        &user_id,
        &format!("acc-{name}"),
        &format!("{name}@example.com"),
        "Test",
        name,
    ));
    stack.sim.set_current_user(&user_id);
    (stack.connect_platform().await, user_id)
}

async fn status_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get_me(http: &reqwest::Client, base_url: &str, api_key: &str, id: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base_url}/connections/{id}/zoom/me"))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap();
    status_of(r).await
}

async fn backend_call(stack: &TestStack, method: Method, path: &str) -> (u16, Value) {
    status_of(stack.backend(method, path).send().await.unwrap()).await
}

async fn record(stack: &TestStack, id: &str) -> ConnectionRecord {
    stack
        .connector
        .store
        .get_connection(id)
        .await
        .unwrap()
        .expect("the connection record")
}

async fn stored_secret(stack: &TestStack, id: &str) -> Option<ConnectionSecret> {
    stack.connector.read_connection_secret(id).await.ok()
}

/// Moves the stored access token's expiry to `secs` from now (as if it had aged), and drops
/// the stack's cached copy.
async fn age_token(stack: &TestStack, id: &str, secs: i64) {
    let mut secret = stored_secret(stack, id).await.expect("stored tokens");
    secret.expires_at = OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    let name = format!(
        "{}/connections/{id}",
        stack.connector.config.aws.secrets_prefix
    );
    stack
        .connector
        .secrets
        .put_secret(
            &name,
            &SecretString::new(serde_json::to_string(&secret).unwrap()),
            &uuid::Uuid::new_v4().simple().to_string(),
        )
        .await
        .unwrap();
    stack.connector.tokens.forget(id);
}

/// Makes a connection due for the sweep.
async fn make_due(connector: &Connector, id: &str) {
    let past = OffsetDateTime::now_utc().unix_timestamp() - 60;
    connector
        .update_record(id, |r| r.next_refresh_at = Some(past))
        .await
        .unwrap()
        .expect("the connection exists");
}

async fn events_of(stack: &TestStack, detail_type: &str) -> Vec<Value> {
    stack
        .events()
        .await
        .into_iter()
        .filter(|(t, _)| t == detail_type)
        .map(|(_, d)| d)
        .collect()
}

/// Serves another container's routers.
async fn serve_container(connector: Connector) -> e2e_tests::stack::Served {
    serve(zoom_connector::http::common::finish(
        zoom_connector::http::all_routes(connector.clone()),
        connector,
    ))
    .await
}

/// Another container with its own Zoom OAuth client (e.g. a short timeout) or clock.
fn container_with(
    stack: &TestStack,
    oauth_timeout: Option<Duration>,
    clock: Option<Arc<dyn Clock>>,
) -> Connector {
    stack.container_with(|ports| {
        if let Some(timeout) = oauth_timeout {
            ports.oauth = oauth_with_timeout(&stack.connector.config, timeout);
        }
        if let Some(clock) = clock {
            ports.clock = clock;
        }
    })
}

fn assert_problem(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
}

// ---- single flight -----------------------------------------------------------------------

async fn concurrent_actions_in_one_process_refresh_once(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;

    // Zoom stops accepting the access token early: every call sees 401 once.
    stack.sim.expire_access_tokens();
    let calls = (0..200).map(|_| get_me(&stack.http, &stack.base_url, &stack.api_key, &id));
    let results = join_all(calls).await;
    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed[0]
    );
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 0);

    // The token nears expiry on our side: refreshed ahead, once.
    age_token(&stack, &id, 60).await;
    let calls = (0..200).map(|_| get_me(&stack.http, &stack.base_url, &stack.api_key, &id));
    let results = join_all(calls).await;
    assert!(results.iter().all(|(s, _)| *s == 200));
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 2);
    assert_eq!(counters.refresh_token_reuse, 0);
    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::Active);
    let live = stack
        .sim
        .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
        .unwrap();
    assert_eq!(
        stored_secret(&stack, &id)
            .await
            .unwrap()
            .refresh_token
            .expose(),
        live.refresh_token,
        "the stored refresh token is Zoom's live one"
    );
}

async fn several_containers_refresh_once(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(serve_container(stack.another_container()).await);
    }
    stack.sim.expire_access_tokens();
    let calls = servers
        .iter()
        .flat_map(|s| std::iter::repeat_n(&s.base_url, 70))
        .map(|url| get_me(&stack.http, url, &stack.api_key, &id));
    let results = join_all(calls).await;
    assert_eq!(results.len(), 210);
    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed[0]
    );
    let counters = stack.sim.counters();
    assert_eq!(
        counters.refresh_grants, 1,
        "one refresh across three containers"
    );
    assert_eq!(counters.refresh_token_reuse, 0);
}

async fn separate_os_processes_refresh_once(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    stack.sim.expire_access_tokens();

    let start_at =
        (OffsetDateTime::now_utc() + time::Duration::seconds(2)).unix_timestamp_nanos() / 1_000_000;
    let config = &stack.connector.config;
    let mut workers = Vec::new();
    for _ in 0..3 {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_race_worker"));
        cmd.args([id.as_str(), "40", &start_at.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CONNECTOR_PUBLIC_URL", config.public_url.as_str())
            .env("ZOOM_OAUTH_URL", stack.running_sim.oauth_url())
            .env("ZOOM_API_URL", stack.running_sim.api_url())
            .env("SECRETS_PREFIX", &config.aws.secrets_prefix)
            .env("CONNECTIONS_TABLE", &config.aws.connections_table)
            .env("EVENT_BUS_NAME", &config.aws.event_bus_name)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        match backend {
            Backend::Local => {
                cmd.env("RACE_BACKEND", "local")
                    .env("RACE_DATA_DIR", stack.data_dir.path());
            }
            Backend::Aws => {
                cmd.env("RACE_BACKEND", "aws")
                    .env("AWS_ENDPOINT_URL", &e2e_tests::moto::moto().endpoint)
                    .env("AWS_REGION", "us-east-1")
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing");
            }
        }
        workers.push(cmd.spawn().expect("start race_worker"));
    }
    for worker in workers {
        let out = tokio::time::timeout(Duration::from_secs(60), worker.wait_with_output())
            .await
            .expect("race_worker finished in time")
            .unwrap();
        assert!(
            out.status.success(),
            "race_worker exited with {}",
            out.status
        );
        let summary: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
        assert_eq!(summary["ok"], 40, "{summary}");
    }
    let counters = stack.sim.counters();
    assert_eq!(
        counters.refresh_grants, 1,
        "one refresh across three processes"
    );
    assert_eq!(counters.refresh_token_reuse, 0);
}

// ---- faults at Zoom's token endpoint -----------------------------------------------------

async fn token_endpoint_500_keeps_the_old_token_and_backs_off(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    age_token(&stack, &id, 120).await;
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Token,
        status: 500,
        times: Some(1),
    });
    let token_requests = stack.sim.counters().token_requests;

    // The refresh fails; the old token still works at Zoom, so the action succeeds.
    let (status, body) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.sim.counters().token_requests, token_requests + 1);
    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::Active);
    assert_eq!(rec.consecutive_failures, 1);
    assert_eq!(rec.last_error.as_ref().unwrap().code, "zoom_unavailable");
    assert!(rec.next_refresh_at.unwrap() > OffsetDateTime::now_utc().unix_timestamp() + 60);
    let failed = events_of(&stack, "Zoom Connection Refresh Failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["connection_id"], id.as_str());

    // Backing off: the next actions do not ask Zoom's token endpoint again.
    for _ in 0..3 {
        let (status, _) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
        assert_eq!(status, 200);
    }
    assert_eq!(stack.sim.counters().token_requests, token_requests + 1);

    // A forced refresh goes through and clears the failure.
    let (status, body) =
        backend_call(&stack, Method::POST, &format!("/connections/{id}/refresh")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");
    assert!(body.get("last_error").is_none(), "{body}");
    assert_eq!(stack.sim.counters().refresh_grants, 1);
    assert_eq!(record(&stack, &id).await.consecutive_failures, 0);
}

async fn three_failures_show_refresh_failing(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Token,
        status: 503,
        times: Some(3),
    });
    for attempt in 1..=3 {
        let r = stack
            .backend(Method::POST, &format!("/connections/{id}/refresh"))
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("retry-after").is_some());
        let (status, body) = status_of(r).await;
        assert_problem(status, &body, 502, "zoom_unavailable");
        let (_, conn) = backend_call(&stack, Method::GET, &format!("/connections/{id}")).await;
        let want = if attempt < 3 {
            "active"
        } else {
            "refresh_failing"
        };
        assert_eq!(conn["status"], want, "after failure {attempt}: {conn}");
        assert_eq!(conn["last_error"]["code"], "zoom_unavailable");
    }
    assert_eq!(
        events_of(&stack, "Zoom Connection Refresh Failed")
            .await
            .len(),
        3
    );
    // Still usable with its old token meanwhile.
    let (status, _) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
    assert_eq!(status, 200);
    let (status, body) =
        backend_call(&stack, Method::POST, &format!("/connections/{id}/refresh")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");
}

async fn hanging_token_endpoint_is_abandoned_cleanly(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    // A container whose Zoom OAuth timeout is 1 s (the product's is 10 s).
    let container = container_with(&stack, Some(Duration::from_secs(1)), None);
    let server = serve_container(container).await;
    age_token(&stack, &id, 120).await;
    stack.sim.inject(Fault::Hang {
        target: FaultTarget::Token,
        times: Some(1),
    });

    let (status, body) = get_me(&stack.http, &server.base_url, &stack.api_key, &id).await;
    assert_eq!(status, 200, "the old token carries the action: {body}");
    let rec = record(&stack, &id).await;
    assert_eq!(rec.consecutive_failures, 1);
    assert_eq!(rec.last_error.as_ref().unwrap().code, "zoom_unavailable");
    assert_eq!(stack.sim.counters().refresh_grants, 0);

    // The lease was released: a forced refresh proceeds at once, with the same token.
    let r = stack
        .http
        .post(format!("{}/connections/{id}/refresh", server.base_url))
        .bearer_auth(&stack.api_key)
        .send()
        .await
        .unwrap();
    let (status, body) = status_of(r).await;
    assert_eq!(status, 200, "{body}");
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 0);
}

/// Container A's Zoom call is slow; container B, for which A's lease has run out (its clock
/// is ahead by more than the lease), takes the lease over and refreshes with the same refresh
/// token. Zoom rotates for A and refuses B (`invalid_grant`, counted as reuse); B must find
/// A's tokens in the store instead of declaring the connection dead.
async fn latency_beyond_the_lease_recovers_from_the_stored_tokens(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    let a = serve_container(stack.another_container()).await;
    let ahead = time::Duration::seconds(LEASE_SECS + 10);
    let b = serve_container(container_with(
        &stack,
        None,
        Some(Arc::new(AheadClock(ahead))),
    ))
    .await;
    stack
        .sim
        .set_latency(FaultTarget::Token, Duration::from_millis(1500));
    stack.sim.expire_access_tokens();

    let first = {
        let (http, url, key, id) = (
            stack.http.clone(),
            a.base_url.clone(),
            stack.api_key.clone(),
            id.clone(),
        );
        tokio::spawn(async move { get_me(&http, &url, &key, &id).await })
    };
    // Wait until A's refresh is in flight at Zoom, then let B in.
    let in_flight = || {
        stack
            .sim
            .requests()
            .iter()
            .any(|r| r.path == "/oauth/token" && r.status == 0)
    };
    let waited = tokio::time::Instant::now();
    while !in_flight() {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "A never called Zoom"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status_b, body_b) = get_me(&stack.http, &b.base_url, &stack.api_key, &id).await;
    let (status_a, body_a) = first.await.unwrap();
    assert_eq!(status_a, 200, "{body_a}");
    assert_eq!(status_b, 200, "{body_b}");

    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 1, "B really overlapped A");
    assert_eq!(record(&stack, &id).await.status, ConnectionStatus::Active);
    assert!(
        events_of(&stack, "Zoom Connection Needs Reauth")
            .await
            .is_empty()
    );
    let live = stack
        .sim
        .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
        .unwrap();
    assert_eq!(
        stored_secret(&stack, &id)
            .await
            .unwrap()
            .refresh_token
            .expose(),
        live.refresh_token
    );
}

async fn rotate_then_fail_goes_to_needs_reauth_loudly(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    age_token(&stack, &id, 120).await;
    let before = stored_secret(&stack, &id).await.unwrap();
    stack.sim.inject(Fault::RotateThenFail { times: Some(1) });

    // The refresh rotates at Zoom but its answer is lost (500). Zoom killed the old access
    // token with the rotation, so the action's 401 forces another refresh, with the old
    // (now dead) refresh token: invalid_grant, and nothing to recover from.
    let (status, body) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
    assert_problem(status, &body, 409, "connection_needs_reauth");
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 1);

    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::NeedsReauth);
    assert_eq!(rec.next_refresh_at, None);
    assert_eq!(rec.last_error.as_ref().unwrap().code, "invalid_grant");
    // (Sorted: the AWS capture queue does not keep the order.)
    let mut types: Vec<String> = stack
        .events()
        .await
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t.starts_with("Zoom Connection") && t != "Zoom Connection Created")
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "Zoom Connection Needs Reauth",
            "Zoom Connection Refresh Failed"
        ]
    );
    // No wrong tokens stored: still exactly what we had; Zoom's live pair never reached us.
    let after = stored_secret(&stack, &id).await.unwrap();
    assert_eq!(after.refresh_token, before.refresh_token);
    assert_eq!(after.access_token, before.access_token);
    let live = stack
        .sim
        .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
        .unwrap();
    assert_ne!(after.refresh_token.expose(), live.refresh_token);

    // From now on 409, without bothering Zoom's token endpoint.
    let token_requests = stack.sim.counters().token_requests;
    let (status, body) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
    assert_problem(status, &body, 409, "connection_needs_reauth");
    let (status, body) =
        backend_call(&stack, Method::POST, &format!("/connections/{id}/refresh")).await;
    assert_problem(status, &body, 409, "connection_needs_reauth");
    assert_eq!(stack.sim.counters().token_requests, token_requests);
}

async fn reauthorization_elsewhere_means_needs_reauth(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    stack.sim.revoke_user_tokens(zoom_sim::DEFAULT_USER_ID);

    let (status, body) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
    assert_problem(status, &body, 409, "connection_needs_reauth");
    let (status, conn) = backend_call(&stack, Method::GET, &format!("/connections/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(conn["status"], "needs_reauth");
    assert_eq!(conn["last_error"]["code"], "invalid_grant");
    let reauth = events_of(&stack, "Zoom Connection Needs Reauth").await;
    assert_eq!(reauth.len(), 1);
    assert_eq!(reauth[0]["connection_id"], id.as_str());

    let (status, body) =
        backend_call(&stack, Method::POST, &format!("/connections/{id}/refresh")).await;
    assert_problem(status, &body, 409, "connection_needs_reauth");
    let report = stack
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(120))
        .await;
    assert_eq!(report, SweepReport::default(), "the sweep never picks it");
    assert_eq!(stack.sim.counters().refresh_token_reuse, 0);
}

// ---- connection management routes --------------------------------------------------------

async fn list_and_read_connections(backend: Backend) {
    let stack = start(backend).await;
    let mut ids = Vec::new();
    for name in ["ada", "bob", "cyd"] {
        ids.push(connect_user(&stack, name).await);
    }
    // One of them is re-authorized elsewhere and found dead.
    let (dead, dead_user) = ids[1].clone();
    stack.sim.revoke_user_tokens(&dead_user);
    let (status, _) = backend_call(
        &stack,
        Method::POST,
        &format!("/connections/{dead}/refresh"),
    )
    .await;
    assert_eq!(status, 409);

    // Pages of two, in a stable order, each id once.
    let (status, page1) = backend_call(&stack, Method::GET, "/connections?limit=2").await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["connections"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let (status, page2) = backend_call(
        &stack,
        Method::GET,
        &format!("/connections?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(page2["connections"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    let mut listed: Vec<String> = [&page1, &page2]
        .iter()
        .flat_map(|p| p["connections"].as_array().unwrap().clone())
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let mut want: Vec<String> = ids.iter().map(|(id, _)| id.clone()).collect();
    want.sort();
    assert_eq!(listed, want, "ordered by id");
    listed.dedup();
    assert_eq!(listed.len(), 3);

    let (_, failing) = backend_call(&stack, Method::GET, "/connections?status=needs_reauth").await;
    let failing = failing["connections"].as_array().unwrap().clone();
    assert_eq!(failing.len(), 1);
    assert_eq!(failing[0]["id"], dead.as_str());
    let (_, active) = backend_call(&stack, Method::GET, "/connections?status=active").await;
    assert_eq!(active["connections"].as_array().unwrap().len(), 2);

    let (status, body) = backend_call(&stack, Method::GET, "/connections?status=sleepy").await;
    assert_problem(status, &body, 400, "validation_failed");
    let (status, body) =
        backend_call(&stack, Method::GET, "/connections?cursor=not*a*cursor").await;
    assert_problem(status, &body, 400, "validation_failed");

    // One connection: the documented fields, never a token.
    let (id, user) = ids[0].clone();
    let r = stack
        .backend(Method::GET, &format!("/connections/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let conn: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(conn["id"], id.as_str());
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["auth_type"], "platform_app");
    assert_eq!(conn["client_id"], zoom_sim::DEFAULT_CLIENT_ID);
    assert_eq!(conn["zoom"]["user_id"], user.as_str());
    assert_eq!(conn["zoom"]["account_id"], "acc-ada");
    for field in [
        "access_token_expires_at",
        "last_refreshed_at",
        "created_at",
        "updated_at",
    ] {
        assert!(conn[field].is_string(), "{field}: {conn}");
    }
    assert!(conn["scopes"].as_array().is_some_and(|s| !s.is_empty()));
    let live = stack
        .sim
        .latest_tokens(&user, zoom_sim::DEFAULT_CLIENT_ID)
        .unwrap();
    assert!(!text.contains(&live.access_token) && !text.contains(&live.refresh_token));
    assert!(!text.contains("refresh_token") && !text.contains("\"access_token\""));

    let (status, body) = backend_call(&stack, Method::GET, "/connections/conn_nope").await;
    assert_problem(status, &body, 404, "connection_not_found");
    let r = stack
        .http
        .get(stack.url("/connections"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn delete_revokes_at_zoom_and_forgets(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    // Warm the cache, so the deletion must also drop it.
    assert_eq!(
        get_me(&stack.http, &stack.base_url, &stack.api_key, &id)
            .await
            .0,
        200
    );

    let r = stack
        .backend(Method::DELETE, &format!("/connections/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(stack.sim.counters().revocations, 1);
    assert!(
        stack
            .sim
            .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
            .is_none(),
        "revoked at Zoom"
    );
    let name = format!(
        "{}/connections/{id}",
        stack.connector.config.aws.secrets_prefix
    );
    assert!(
        stack
            .connector
            .secrets
            .get_secret(&name)
            .await
            .unwrap()
            .is_none()
    );
    let deleted = events_of(&stack, "Zoom Connection Deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["connection_id"], id.as_str());

    let (status, body) = backend_call(&stack, Method::GET, &format!("/connections/{id}")).await;
    assert_problem(status, &body, 404, "connection_not_found");
    let (status, body) = backend_call(&stack, Method::DELETE, &format!("/connections/{id}")).await;
    assert_problem(status, &body, 404, "connection_not_found");
    let (status, body) = get_me(&stack.http, &stack.base_url, &stack.api_key, &id).await;
    assert_problem(status, &body, 404, "connection_not_found");

    // Connecting again makes a new connection (the uniqueness claim went with the old one).
    let again = stack.connect_platform().await;
    assert_ne!(again, id);
}

async fn forced_refresh(backend: Backend) {
    let stack = start(backend).await;
    let id = stack.connect_platform().await;
    let before = record(&stack, &id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // timestamps have whole seconds

    let (status, body) =
        backend_call(&stack, Method::POST, &format!("/connections/{id}/refresh")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["status"], "active");
    assert_eq!(stack.sim.counters().refresh_grants, 1);
    let after = record(&stack, &id).await;
    assert!(after.last_refreshed_at > before.last_refreshed_at);
    assert!(after.next_refresh_at > before.next_refresh_at);
    let live = stack
        .sim
        .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
        .unwrap();
    assert_eq!(
        stored_secret(&stack, &id)
            .await
            .unwrap()
            .refresh_token
            .expose(),
        live.refresh_token
    );
    // Actions go on with the new token.
    assert_eq!(
        get_me(&stack.http, &stack.base_url, &stack.api_key, &id)
            .await
            .0,
        200
    );
    let (status, body) = backend_call(&stack, Method::POST, "/connections/conn_nope/refresh").await;
    assert_problem(status, &body, 404, "connection_not_found");
}

// ---- the sweep ---------------------------------------------------------------------------

async fn sweep_refreshes_only_due_connections(backend: Backend) {
    let stack = start(backend).await;
    let (due, _) = connect_user(&stack, "due").await;
    let (later, _) = connect_user(&stack, "later").await;
    let (dead, dead_user) = connect_user(&stack, "dead").await;
    stack.sim.revoke_user_tokens(&dead_user);
    let (status, _) = backend_call(
        &stack,
        Method::POST,
        &format!("/connections/{dead}/refresh"),
    )
    .await;
    assert_eq!(status, 409);
    make_due(&stack.connector, &due).await;
    // A stale index entry for the dead one must not make the sweep touch it either.
    make_due(&stack.connector, &dead).await;
    let later_before = record(&stack, &later).await;
    let token_requests = stack.sim.counters().token_requests;

    let report = stack
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(120))
        .await;
    assert_eq!(
        report,
        SweepReport {
            scanned: 2,
            refreshed: 1,
            skipped: 1,
            failed: 0
        }
    );
    assert_eq!(stack.sim.counters().refresh_grants, 1);
    assert_eq!(stack.sim.counters().token_requests, token_requests + 1);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let due_after = record(&stack, &due).await;
    assert!(
        due_after.next_refresh_at.unwrap() > now + 23 * 3600,
        "next keep-alive a day away"
    );
    assert_eq!(
        record(&stack, &later).await.next_refresh_at,
        later_before.next_refresh_at
    );
    let dead_after = record(&stack, &dead).await;
    assert_eq!(dead_after.status, ConnectionStatus::NeedsReauth);
    assert_eq!(dead_after.next_refresh_at, None);
}

/// Records when each connection secret is written (the sweep's token writes).
#[derive(Default)]
struct TokenWriteTimes(Mutex<Vec<OffsetDateTime>>);

#[async_trait]
impl BeforeSecretWrite for TokenWriteTimes {
    async fn before(&self, name: &str, write: SecretWrite) -> StoreResult<()> {
        if write == SecretWrite::Update && name.contains("/connections/") {
            self.0.lock().unwrap().push(OffsetDateTime::now_utc());
        }
        Ok(())
    }
}

async fn sweep_keeps_refresh_tps_and_its_deadline(backend: Backend) {
    // The pace itself (REFRESH_TPS per second) is asserted on the pacer's own decisions in
    // the sweep module's unit tests and measured in `make bench`; a rate measured here would
    // depend on how busy the machine is.
    const TPS: usize = 10;
    // Twenty start at once (the sweep's concurrency at this rate), then about TPS a second:
    // a 2 s window starts fewer than DUE even on an idle machine, and at least one on a busy one.
    const DUE: usize = 50;
    let stack =
        TestStack::start(StackOptions::new(backend).env("REFRESH_TPS", TPS.to_string())).await;
    let mut ids = Vec::new();
    for n in 0..DUE {
        ids.push(connect_user(&stack, &format!("sweep{n}")).await.0);
    }
    for id in &ids {
        make_due(&stack.connector, id).await;
    }
    let mut log = None;
    let sweeper = stack.container_with(|ports| {
        let writes = Arc::new(HookedSecrets {
            inner: ports.secrets.clone(),
            hook: TokenWriteTimes::default(),
        });
        ports.secrets = writes.clone();
        log = Some(writes);
    });
    let log = log.expect("the sweeper's write log");
    let still_due = || async {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        stack
            .connector
            .store
            .due_connections(now, 100)
            .await
            .unwrap()
            .len()
    };

    // No time left: nothing starts, everything stays due.
    let report = sweeper
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(2))
        .await;
    assert_eq!(report, SweepReport::default());
    assert_eq!(stack.sim.counters().refresh_grants, 0);
    assert_eq!(still_due().await, DUE);

    // Time to start only a few: the sweep stops starting, finishes what it started, and
    // leaves the rest due for the next run.
    let deadline = tokio::time::Instant::now() + DEADLINE_MARGIN + Duration::from_secs(2);
    let partial = sweeper.run_sweep(deadline).await;
    // That it returns before the deadline is a time, asserted with a paused clock in the
    // sweep's unit tests; here, what it left done and due.
    println!(
        "partial sweep: {partial:?}, {:?} before its deadline",
        deadline.checked_duration_since(tokio::time::Instant::now())
    );
    assert!(
        partial.scanned > 0 && partial.scanned < DUE as u64,
        "{partial:?}"
    );
    assert_eq!(partial.refreshed, partial.scanned, "{partial:?}");
    assert_eq!(still_due().await, DUE - partial.refreshed as usize);

    // The rest, paced.
    let rest = sweeper
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(300))
        .await;
    assert_eq!(rest.refreshed + partial.refreshed, DUE as u64, "{rest:?}");
    assert_eq!(rest.failed, 0);
    assert_eq!(still_due().await, 0);
    let grants = stack.sim.refresh_grant_times();
    let writes = log.hook.0.lock().unwrap().clone();
    assert_eq!(grants.len(), DUE);
    assert_eq!(writes.len(), DUE);
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, DUE as u64);
    assert_eq!(counters.refresh_token_reuse, 0);
}

async fn eager_mode_schedules_the_sweep_before_expiry(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend).env("REFRESH_MODE", "eager")).await;
    let id = stack.connect_platform().await;
    let rec = record(&stack, &id).await;
    let expires = rec.access_token_expires_at.unwrap().unix_timestamp();
    // REFRESH_AHEAD_SECS (300) plus one sweep period (600) before expiry.
    assert_eq!(rec.next_refresh_at, Some(expires - 900));
    make_due(&stack.connector, &id).await;
    let report = stack
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(120))
        .await;
    assert_eq!(report.refreshed, 1);
    let after = record(&stack, &id).await;
    let new_expiry = after.access_token_expires_at.unwrap().unix_timestamp();
    assert!(new_expiry > expires - 60);
    assert_eq!(after.next_refresh_at, Some(new_expiry - 900));
}

//! Fault injection through the real routers: Zoom's token endpoint and REST API failing in
//! every way the simulator can (5xx, 429, resets, hangs, slowness), AWS throttling and 5xx
//! from Secrets Manager and DynamoDB (through `faultproxy` in front of moto), and worker
//! processes killed with SIGKILL in the middle of a refresh or a meeting event.
//!
//! After each fault the same things must hold: no connection is marked dead for a transient
//! failure (status stays `active` or `refresh_failing`, never `needs_reauth`), no tokens are
//! lost (what is stored is Zoom's live pair, or the old pair when Zoom did not rotate), and
//! the caller gets a clear problem+json answer with a stable code.

use std::sync::Arc;
use std::time::Duration;

use e2e_tests::answer::Answer;
use e2e_tests::fakes::{AheadClock, ShortApiTimeout, oauth_with_timeout};
use e2e_tests::faultproxy::{AwsFault, FaultProxy};
use e2e_tests::stack::{Backend, StackOptions, TestStack, serve};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use zoom_connector::app::Connector;
use zoom_connector::app::meeting_events::EventOutcome;
use zoom_connector::app::tokens::refresh::LEASE_SECS;
use zoom_connector::domain::idempotency::IDEMPOTENCY_STALE_SECS;
use zoom_connector::domain::{ConnectionRecord, ConnectionSecret, ConnectionStatus};
use zoom_connector::ports::ItemKind;
use zoom_sim::{Fault, FaultTarget};

async fn send(
    stack: &TestStack,
    base_url: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = stack
        .http
        .request(method, format!("{base_url}{path}"))
        .bearer_auth(&stack.api_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Answer::of(request.send().await.expect("request sent")).await
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

async fn stored_secret(stack: &TestStack, id: &str) -> ConnectionSecret {
    stack
        .connector
        .read_connection_secret(id)
        .await
        .expect("stored tokens")
}

/// The refresh token Zoom (the simulator) currently accepts for the default user.
fn live_refresh_token(stack: &TestStack) -> String {
    stack
        .sim
        .latest_tokens(zoom_sim::DEFAULT_USER_ID, zoom_sim::DEFAULT_CLIENT_ID)
        .expect("live tokens at the simulator")
        .refresh_token
}

/// No tokens lost: the stored refresh token is the one Zoom accepts.
async fn assert_stored_tokens_are_live(stack: &TestStack, id: &str, what: &str) {
    assert_eq!(
        stored_secret(stack, id).await.refresh_token.expose(),
        live_refresh_token(stack),
        "{what}: the stored refresh token is Zoom's live one"
    );
}

/// Transient failures never kill a connection.
fn assert_alive(record: &ConnectionRecord, what: &str) {
    assert!(
        matches!(
            record.status,
            ConnectionStatus::Active | ConnectionStatus::RefreshFailing
        ),
        "{what}: status {:?}",
        record.status
    );
}

fn meeting_body(topic: &str) -> Value {
    json!({ "topic": topic, "type": 2, "start_time": "2031-03-04T10:00:00Z", "duration": 30 })
}

/// Another container on the stack's backend, optionally with short Zoom timeouts or a clock
/// ahead of real time.
fn container(
    stack: &TestStack,
    oauth_timeout: Option<Duration>,
    api_timeout: Option<Duration>,
    ahead: Option<time::Duration>,
) -> Connector {
    stack.container_with(|ports| {
        if let Some(timeout) = oauth_timeout {
            ports.oauth = oauth_with_timeout(&stack.connector.config, timeout);
        }
        if let Some(timeout) = api_timeout {
            ports.zoom = Arc::new(ShortApiTimeout {
                inner: ports.zoom.clone(),
                timeout,
            });
        }
        if let Some(ahead) = ahead {
            ports.clock = Arc::new(AheadClock(ahead));
        }
    })
}

async fn serve_container(connector: Connector) -> e2e_tests::stack::Served {
    serve(zoom_connector::http::common::finish(
        zoom_connector::http::all_routes(connector.clone()),
        connector,
    ))
    .await
}

fn types_of(events: &[(String, Value)], detail_type: &str) -> usize {
    events.iter().filter(|(t, _)| t == detail_type).count()
}

// ---- Zoom's token endpoint ----------------------------------------------------------------

/// Every way the token endpoint can fail, one after the other on one connection, through a
/// container whose token calls time out after 1 s. Each forced refresh answers 502
/// `zoom_unavailable` with Retry-After; the connection stays alive (it reaches
/// `refresh_failing` after three failures); the stored tokens stay the live ones; once Zoom
/// is back a refresh succeeds with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_endpoint_faults_never_kill_a_connection() {
    let stack = TestStack::start(StackOptions::new(Backend::Local)).await;
    let id = stack.connect_platform().await;
    let server = serve_container(container(&stack, Some(Duration::from_secs(1)), None, None)).await;
    let before = stored_secret(&stack, &id).await;
    let faults = [
        Fault::Status {
            target: FaultTarget::Token,
            status: 500,
            times: Some(1),
        },
        Fault::Status {
            target: FaultTarget::Token,
            status: 502,
            times: Some(1),
        },
        Fault::Status {
            target: FaultTarget::Token,
            status: 503,
            times: Some(1),
        },
        Fault::Status {
            target: FaultTarget::Token,
            status: 504,
            times: Some(1),
        },
        Fault::RateLimit {
            target: FaultTarget::Token,
            daily: false,
            times: Some(1),
        },
        Fault::ResetConnection {
            target: FaultTarget::Token,
            times: Some(1),
        },
        Fault::Hang {
            target: FaultTarget::Token,
            times: Some(1),
        },
    ];
    let count = faults.len();
    for (n, fault) in faults.into_iter().enumerate() {
        let what = format!("{fault:?}");
        stack.sim.inject(fault);
        let a = send(
            &stack,
            &server.base_url,
            Method::POST,
            &format!("/connections/{id}/refresh"),
            None,
        )
        .await;
        a.retryable_problem(&[502], "zoom_unavailable", &what);
        let rec = record(&stack, &id).await;
        assert_alive(&rec, &what);
        assert_eq!(rec.consecutive_failures as usize, n + 1, "{what}");
        assert_eq!(
            rec.last_error.as_ref().map(|e| e.code.as_str()),
            Some("zoom_unavailable"),
            "{what}"
        );
        let now = stored_secret(&stack, &id).await;
        assert_eq!(
            now.refresh_token, before.refresh_token,
            "{what}: tokens kept"
        );
        assert_eq!(now.access_token, before.access_token, "{what}: tokens kept");
        assert_stored_tokens_are_live(&stack, &id, &what).await;
        stack.sim.clear_faults();
    }
    assert_eq!(
        record(&stack, &id).await.status,
        ConnectionStatus::RefreshFailing
    );
    // Meanwhile actions go on with the old access token.
    let a = send(
        &stack,
        &server.base_url,
        Method::GET,
        &format!("/connections/{id}/zoom/me"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(stack.sim.counters().refresh_grants, 0);

    // Zoom is back: one refresh, with the stored token, and the connection is active again.
    let a = send(
        &stack,
        &server.base_url,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "active");
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 0);
    assert_stored_tokens_are_live(&stack, &id, "after recovery").await;
    let events = stack.events().await;
    assert_eq!(types_of(&events, "Zoom Connection Refresh Failed"), count);
    assert_eq!(types_of(&events, "Zoom Connection Needs Reauth"), 0);
}

/// A slow token endpoint and a slow API (both well inside the timeouts) while every access
/// token has just been refused: all concurrent actions succeed after one refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_zoom_within_the_timeouts_is_only_slow() {
    let stack = TestStack::start(StackOptions::new(Backend::Local)).await;
    let id = stack.connect_platform().await;
    stack
        .sim
        .set_latency(FaultTarget::Token, Duration::from_millis(1500));
    stack
        .sim
        .set_latency(FaultTarget::Api, Duration::from_millis(700));
    stack.sim.expire_access_tokens();
    let me = format!("/connections/{id}/zoom/me");
    let calls = (0..20).map(|_| send(&stack, &stack.base_url, Method::GET, &me, None));
    for a in join_all(calls).await {
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 0);
    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::Active);
    assert_eq!(rec.consecutive_failures, 0);
    assert_stored_tokens_are_live(&stack, &id, "slow refresh").await;
}

/// The sweep while the token endpoint fails for everyone (a Zoom outage): every due
/// connection is reported failed, none is marked dead, every stored token stays live; the
/// next sweep after the outage refreshes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweep_during_a_zoom_outage_marks_nothing_dead() {
    let stack = TestStack::start(StackOptions::new(Backend::Local)).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let user = format!("user-outage-{n}");
        stack.sim.add_user(zoom_sim::SimUser::new(
            &user,
            &format!("acc-outage-{n}"),
            &format!("outage{n}@example.com"),
            "Out",
            "Age",
        ));
        stack.sim.set_current_user(&user);
        ids.push((stack.connect_platform().await, user));
    }
    let make_due = || async {
        let past = OffsetDateTime::now_utc().unix_timestamp() - 60;
        for (id, _) in &ids {
            stack
                .connector
                .update_record(id, |r| r.next_refresh_at = Some(past))
                .await
                .unwrap()
                .expect("the connection");
        }
    };
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(120);

    make_due().await;
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Token,
        status: 503,
        times: None,
    });
    let report = stack.connector.run_sweep(deadline()).await;
    assert_eq!((report.scanned, report.failed, report.refreshed), (3, 3, 0));
    for (id, user) in &ids {
        let rec = record(&stack, id).await;
        assert_alive(&rec, id);
        assert_eq!(rec.consecutive_failures, 1);
        let live = stack
            .sim
            .latest_tokens(user, zoom_sim::DEFAULT_CLIENT_ID)
            .unwrap()
            .refresh_token;
        assert_eq!(stored_secret(&stack, id).await.refresh_token.expose(), live);
    }

    stack.sim.clear_faults();
    make_due().await;
    let report = stack.connector.run_sweep(deadline()).await;
    assert_eq!((report.failed, report.refreshed), (0, 3));
    for (id, user) in &ids {
        let rec = record(&stack, id).await;
        assert_eq!(rec.status, ConnectionStatus::Active);
        assert_eq!(rec.consecutive_failures, 0);
        let live = stack
            .sim
            .latest_tokens(user, zoom_sim::DEFAULT_CLIENT_ID)
            .unwrap()
            .refresh_token;
        assert_eq!(stored_secret(&stack, id).await.refresh_token.expose(), live);
    }
    assert_eq!(stack.sim.counters().refresh_token_reuse, 0);
}

// ---- Zoom's REST API ----------------------------------------------------------------------

/// Every way the API can fail, for a read and a create, through a container whose API
/// calls time out after 300 ms: a clear 502/504 `zoom_unavailable`, no meeting created, no
/// refresh attempted (an API failure says nothing about the tokens), the connection
/// untouched; afterwards the same calls work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_faults_answer_clearly_and_leave_the_connection_alone() {
    let stack = TestStack::start(StackOptions::new(Backend::Local)).await;
    let id = stack.connect_platform().await;
    let server = serve_container(container(
        &stack,
        None,
        Some(Duration::from_millis(300)),
        None,
    ))
    .await;
    let me = format!("/connections/{id}/zoom/me");
    let meetings = format!("/connections/{id}/zoom/meetings");
    // Warm: this container has the token cached.
    assert_eq!(
        send(&stack, &server.base_url, Method::GET, &me, None)
            .await
            .status,
        200
    );
    let before = record(&stack, &id).await;
    let secret = stored_secret(&stack, &id).await;
    let token_requests = stack.sim.counters().token_requests;
    let status = |status| Fault::Status {
        target: FaultTarget::Api,
        status,
        times: None,
    };
    let faults = [
        (status(500), 502),
        (status(502), 502),
        (status(503), 502),
        (status(504), 502),
        (
            Fault::ResetConnection {
                target: FaultTarget::Api,
                times: None,
            },
            502,
        ),
        (
            Fault::Hang {
                target: FaultTarget::Api,
                times: None,
            },
            504,
        ),
    ];
    for (fault, want) in faults {
        let what = format!("{fault:?}");
        stack.sim.inject(fault);
        send(&stack, &server.base_url, Method::GET, &me, None)
            .await
            .retryable_problem(&[want], "zoom_unavailable", &format!("GET {what}"));
        send(
            &stack,
            &server.base_url,
            Method::POST,
            &meetings,
            Some(meeting_body("fault")),
        )
        .await
        .retryable_problem(&[want], "zoom_unavailable", &format!("POST {what}"));
        // And through the raw proxy: Zoom's own 5xx passes through as is, a transport failure
        // is ours.
        let proxied = send(
            &stack,
            &server.base_url,
            Method::GET,
            &format!("/connections/{id}/proxy/users/me"),
            None,
        )
        .await;
        assert!(proxied.status >= 500, "proxy {what}: {}", proxied.text);
        stack.sim.clear_faults();
        assert_eq!(stack.sim.meetings_count(), 0, "{what}: nothing created");
        let rec = record(&stack, &id).await;
        assert_eq!(rec.status, ConnectionStatus::Active, "{what}");
        assert_eq!(
            rec.version, before.version,
            "{what}: the record is untouched"
        );
        let now = stored_secret(&stack, &id).await;
        assert_eq!(now.refresh_token, secret.refresh_token, "{what}");
    }
    assert_eq!(
        stack.sim.counters().token_requests,
        token_requests,
        "API failures never refresh"
    );
    let a = send(&stack, &server.base_url, Method::GET, &me, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let a = send(
        &stack,
        &server.base_url,
        Method::POST,
        &meetings,
        Some(meeting_body("after")),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(stack.sim.meetings_count(), 1);
}

// ---- AWS: Secrets Manager and DynamoDB through the fault proxy -------------------------------

const PUT_SECRET: &str = "secretsmanager.PutSecretValue";
const CREATE_SECRET: &str = "secretsmanager.CreateSecret";
const DYNAMODB: &str = "DynamoDB_20120810.";

/// A stack on moto whose connector reaches AWS through a fault proxy.
async fn stack_via_proxy() -> (TestStack, FaultProxy) {
    let proxy = FaultProxy::in_front_of_moto().await;
    let sdk = proxy.sdk_config().await;
    let stack = TestStack::start(StackOptions::new(Backend::Aws).with_aws_sdk(sdk)).await;
    (stack, proxy)
}

/// The new tokens of a refresh are written even when Secrets Manager throttles or fails the
/// write several times in a row: 7 throttles outlast the SDK's 5 attempts, so the
/// connector's own retry of the token write runs too. Nothing is lost, nothing is marked
/// failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttled_token_writes_are_retried_until_stored() {
    let (stack, proxy) = stack_via_proxy().await;
    let id = stack.connect_platform().await;
    let writes = proxy.count(PUT_SECRET);

    proxy.inject(PUT_SECRET, AwsFault::Throttle, Some(7));
    let a = send(
        &stack,
        &stack.base_url,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "active");
    assert_eq!(proxy.faulted(PUT_SECRET), 7);
    assert_eq!(
        proxy.count(PUT_SECRET) - writes,
        8,
        "seven throttled attempts, then the write"
    );
    assert_stored_tokens_are_live(&stack, &id, "after throttling").await;

    // 5xx from Secrets Manager: the SDK retries them too.
    for fault in [AwsFault::InternalError, AwsFault::Unavailable] {
        proxy.inject(PUT_SECRET, fault, Some(3));
        let a = send(
            &stack,
            &stack.base_url,
            Method::POST,
            &format!("/connections/{id}/refresh"),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{fault:?}: {}", a.text);
        assert_stored_tokens_are_live(&stack, &id, &format!("{fault:?}")).await;
    }
    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::Active);
    assert_eq!(rec.consecutive_failures, 0);
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 3);
    assert_eq!(counters.refresh_token_reuse, 0);
    // Another container (no cache) works from the stored tokens.
    let other = serve_container(stack.another_container()).await;
    let a = send(
        &stack,
        &other.base_url,
        Method::GET,
        &format!("/connections/{id}/zoom/me"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

/// DynamoDB failing outright: the routes that need it answer 503 `store_unavailable` with
/// Retry-After, a warm action still works (it needs no AWS call), a forced refresh does not
/// reach Zoom (nothing is rotated that could not be recorded), and nothing is half-written:
/// afterwards the record is as it was and an idempotent create works once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_failures_answer_503_and_corrupt_nothing() {
    let (stack, proxy) = stack_via_proxy().await;
    let id = stack.connect_platform().await;
    let me = format!("/connections/{id}/zoom/me");
    // Warm the token cache.
    assert_eq!(
        send(&stack, &stack.base_url, Method::GET, &me, None)
            .await
            .status,
        200
    );
    let before = record(&stack, &id).await;
    let token_requests = stack.sim.counters().token_requests;

    for fault in [AwsFault::InternalError, AwsFault::Unavailable] {
        proxy.inject(DYNAMODB, fault, None);
        let what = format!("{fault:?}");
        for (method, path, body) in [
            (Method::GET, format!("/connections/{id}"), None),
            (Method::GET, "/connections".to_owned(), None),
            (Method::POST, format!("/connections/{id}/refresh"), None),
            (
                Method::POST,
                "/connect/sessions".to_owned(),
                Some(json!({ "auth_type": "platform_app" })),
            ),
        ] {
            send(&stack, &stack.base_url, method.clone(), &path, body)
                .await
                .retryable_problem(
                    &[503],
                    "store_unavailable",
                    &format!("{what} {method} {path}"),
                );
        }
        // An idempotent create needs its record first: refused before Zoom is asked.
        let r = stack
            .backend(Method::POST, &format!("/connections/{id}/zoom/meetings"))
            .header("idempotency-key", "ddb-down")
            .json(&meeting_body("idempotent"))
            .send()
            .await
            .unwrap();
        Answer::of(r).await.retryable_problem(
            &[503],
            "store_unavailable",
            &format!("{what} idempotent create"),
        );
        // A warm action does not touch DynamoDB.
        let a = send(&stack, &stack.base_url, Method::GET, &me, None).await;
        assert_eq!(a.status, 200, "{what}: warm action: {}", a.text);
        proxy.clear();
    }
    assert_eq!(stack.sim.meetings_count(), 0);
    assert_eq!(
        stack.sim.counters().token_requests,
        token_requests,
        "no refresh reached Zoom"
    );

    // Throttling that the SDK's retries absorb is invisible.
    let faulted = proxy.faulted(DYNAMODB);
    proxy.inject(DYNAMODB, AwsFault::Throttle, Some(3));
    let a = send(
        &stack,
        &stack.base_url,
        Method::GET,
        &format!("/connections/{id}"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(proxy.faulted(DYNAMODB) - faulted, 3);

    // Nothing corrupted.
    let after = record(&stack, &id).await;
    assert_eq!(after, before);
    assert_stored_tokens_are_live(&stack, &id, "after the outage").await;
    let create = || {
        stack
            .backend(Method::POST, &format!("/connections/{id}/zoom/meetings"))
            .header("idempotency-key", "ddb-down")
            .json(&meeting_body("idempotent"))
            .send()
    };
    let first = Answer::of(create().await.unwrap()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = Answer::of(create().await.unwrap()).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(stack.sim.meetings_count(), 1);
}

/// DynamoDB fails only the record update after a refresh: the new tokens are already in
/// Secrets Manager, so the refresh counts; the record catches up on the next refresh, which
/// uses the stored (live) refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_update_failure_after_a_refresh_loses_no_tokens() {
    let (stack, proxy) = stack_via_proxy().await;
    let id = stack.connect_platform().await;
    let before = record(&stack, &id).await;
    // Connection records are written with PutItem (the small records use UpdateItem).
    proxy.inject(&format!("{DYNAMODB}PutItem"), AwsFault::InternalError, None);
    let a = send(
        &stack,
        &stack.base_url,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(proxy.faulted(&format!("{DYNAMODB}PutItem")) >= 1);
    proxy.clear();
    assert_stored_tokens_are_live(&stack, &id, "record update failed").await;
    assert_eq!(record(&stack, &id).await.version, before.version);

    let a = send(
        &stack,
        &stack.base_url,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let after = record(&stack, &id).await;
    assert_eq!(after.status, ConnectionStatus::Active);
    assert!(after.version > before.version);
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 2);
    assert_eq!(counters.refresh_token_reuse, 0);
    assert_stored_tokens_are_live(&stack, &id, "after catching up").await;
}

/// The callback's token write throttled: a few times is absorbed by the SDK's retries; for
/// good, the callback fails cleanly (an error page, no connection, no event) and a second
/// attempt after the outage connects normally, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callback_with_throttled_secret_writes() {
    let (stack, proxy) = stack_via_proxy().await;
    // A new connection's secret does not exist yet: PutSecretValue fails "not found", then
    // CreateSecret writes it.
    proxy.inject(CREATE_SECRET, AwsFault::Throttle, Some(3));
    let first = stack.connect_platform().await;
    assert_eq!(proxy.faulted(CREATE_SECRET), 3);
    assert_stored_tokens_are_live(&stack, &first, "callback after throttling").await;

    // A second Zoom user, while every secret write is throttled.
    stack.sim.add_user(zoom_sim::SimUser::new(
        "user-throttled",
        "acc-throttled",
        "throttled@example.com",
        "Thr",
        "Ottled",
    ));
    stack.sim.set_current_user("user-throttled");
    proxy.inject(PUT_SECRET, AwsFault::Throttle, None);
    proxy.inject(CREATE_SECRET, AwsFault::Throttle, None);
    let session = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let result = stack
        .run_flow(session["connect_url"].as_str().unwrap(), None)
        .await;
    assert!(
        (400..500).contains(&result.status),
        "a failure page: {} {}",
        result.status,
        result.body
    );
    assert!(
        result.body.contains("data-status=\"error\""),
        "{}",
        result.body
    );
    assert!(result.connection_id().is_none());
    // The page says our side was briefly unavailable and to try again.
    assert_eq!(
        result.error_code().as_deref(),
        Some("temporarily_unavailable"),
        "{}",
        result.body
    );
    proxy.clear();
    let (_, list) = {
        let a = send(&stack, &stack.base_url, Method::GET, "/connections", None).await;
        (a.status, a.body)
    };
    let ids: Vec<&str> = list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [first.as_str()],
        "no connection for the failed callback"
    );

    // The person tries again once AWS is back: connected, once.
    let second = stack.connect_platform().await;
    assert_ne!(second, first);
    let a = send(&stack, &stack.base_url, Method::GET, "/connections", None).await;
    assert_eq!(a.body["connections"].as_array().unwrap().len(), 2);
    let events = stack.events().await;
    assert_eq!(types_of(&events, "Zoom Connection Created"), 2);
    let a = send(
        &stack,
        &stack.base_url,
        Method::GET,
        &format!("/connections/{second}/zoom/me"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["id"], "user-throttled");
}

// ---- processes killed mid-way -------------------------------------------------------------

e2e_tests::on_both_backends!(
    crash_local, crash_aws;
    killed_during_the_zoom_call_the_lease_expires_and_refreshing_resumes,
    killed_after_zoom_rotated_is_recognised_as_lost,
    killed_between_meeting_creation_and_done_creates_exactly_one_meeting,
);

/// A `race_worker` process on the stack's backend (see tests/bin/race_worker.rs).
fn worker(stack: &TestStack, args: &[&str], hang_at: Option<&str>) -> tokio::process::Child {
    let config = &stack.connector.config;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_race_worker"));
    cmd.args(args)
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
    if let Some(point) = hang_at {
        cmd.env("RACE_HANG_AT", point);
    }
    match stack.backend {
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
    cmd.spawn().expect("start race_worker")
}

/// Waits (bounded) until the worker prints `hang: <point>`.
async fn wait_for_hang(child: &mut tokio::process::Child, point: &str) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let want = format!("hang: {point}");
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line == want {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the worker never reached {point}");
}

/// SIGKILL, and reap it.
async fn kill_9(mut child: tokio::process::Child) {
    child.start_kill().expect("SIGKILL the worker");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the worker died")
        .unwrap();
    assert!(!status.success(), "killed, not finished: {status}");
}

/// Whether a token request reached the simulator and is still unanswered.
fn token_call_in_flight(stack: &TestStack) -> bool {
    stack
        .sim
        .requests()
        .iter()
        .any(|r| r.path == "/oauth/token" && r.status == 0)
}

async fn killed_during_the_zoom_call_the_lease_expires_and_refreshing_resumes(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let before = stored_secret(&stack, &id).await;
    // Long enough that the kill surely lands while the call waits at Zoom.
    let latency = Duration::from_secs(3);
    stack.sim.set_latency(FaultTarget::Token, latency);
    let mut child = worker(&stack, &["refresh", &id], None);
    let waited = tokio::time::Instant::now();
    while !token_call_in_flight(&stack) {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "the worker never called Zoom"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the worker ended before calling Zoom: {status}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill_9(child).await;
    // Let the simulator's side of the dead call play out before looking at what Zoom did.
    // Like a server that had not acted yet, it drops a request whose client went away during
    // the latency: no rotation. (Zoom rotating and the answer dying with the worker is
    // `killed_after_zoom_rotated_is_recognised_as_lost`.)
    tokio::time::sleep(latency + Duration::from_millis(300)).await;
    stack.sim.set_latency(FaultTarget::Token, Duration::ZERO);
    assert_eq!(stack.sim.counters().refresh_grants, 0);

    // The dead worker's lease is still there and would block others until it expires.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        stack
            .connector
            .store
            .get_item(ItemKind::Lease, &id, now)
            .await
            .unwrap()
            .is_some(),
        "the dead worker's lease outlives it"
    );
    assert_eq!(
        stored_secret(&stack, &id).await.refresh_token,
        before.refresh_token
    );
    assert_alive(&record(&stack, &id).await, "after the kill");

    // A container for which the lease has expired (its clock is past the lease) refreshes.
    let later = serve_container(container(
        &stack,
        None,
        None,
        Some(time::Duration::seconds(LEASE_SECS + 5)),
    ))
    .await;
    let a = send(
        &stack,
        &later.base_url,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "active");
    let counters = stack.sim.counters();
    assert_eq!(counters.refresh_grants, 1);
    assert_eq!(counters.refresh_token_reuse, 0);
    assert_stored_tokens_are_live(&stack, &id, "after the takeover").await;
    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::Active);
    assert_eq!(rec.consecutive_failures, 0);
}

async fn killed_after_zoom_rotated_is_recognised_as_lost(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let before = stored_secret(&stack, &id).await;
    let mut child = worker(&stack, &["refresh", &id], Some("token_write"));
    wait_for_hang(&mut child, "token_write").await;
    kill_9(child).await;
    // Zoom rotated; the new pair died with the worker.
    assert_eq!(stack.sim.counters().refresh_grants, 1);
    assert_ne!(before.refresh_token.expose(), live_refresh_token(&stack));

    let later = serve_container(container(
        &stack,
        None,
        None,
        Some(time::Duration::seconds(LEASE_SECS + 5)),
    ))
    .await;
    let a = send(
        &stack,
        &later.base_url,
        Method::POST,
        &format!("/connections/{id}/refresh"),
        None,
    )
    .await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert_eq!(a.body["code"], "connection_needs_reauth", "{}", a.text);
    let rec = record(&stack, &id).await;
    assert_eq!(rec.status, ConnectionStatus::NeedsReauth);
    assert_eq!(
        rec.last_error.as_ref().map(|e| e.code.as_str()),
        Some("invalid_grant")
    );
    // Nothing invented: still exactly the old pair.
    let after = stored_secret(&stack, &id).await;
    assert_eq!(after.refresh_token, before.refresh_token);
    assert_eq!(after.access_token, before.access_token);
    assert_eq!(stack.sim.counters().refresh_token_reuse, 1);
    let events = stack.events().await;
    assert_eq!(types_of(&events, "Zoom Connection Needs Reauth"), 1);
}

async fn killed_between_meeting_creation_and_done_creates_exactly_one_meeting(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let key = e2e_tests::stack::unique("killed");
    let message =
        json!({ "idempotency_key": key, "connection_id": id, "meeting": meeting_body("Crash") })
            .to_string();
    let mut child = worker(&stack, &["event", &message], Some("meeting_published"));
    wait_for_hang(&mut child, "meeting_published").await;
    kill_9(child).await;
    assert_eq!(
        stack.sim.meetings_count(),
        1,
        "Zoom created it before the kill"
    );

    // The queue delivers again. A delivery right away finds the record in progress (its
    // owner might still be alive) and comes back later; once the record is stale (a
    // container whose clock is past the stale limit) the next one takes over, finds the
    // meeting at Zoom and settles without creating another.
    let now_connector = stack.another_container();
    assert!(matches!(
        now_connector.process_meeting_event(&message).await,
        EventOutcome::Retry(_)
    ));
    let later = container(
        &stack,
        None,
        None,
        Some(time::Duration::seconds(IDEMPOTENCY_STALE_SECS + 5)),
    );
    assert_eq!(
        later.process_meeting_event(&message).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 1, "no second meeting");
    // And once more: settled from the record.
    assert_eq!(
        stack.connector.process_meeting_event(&message).await,
        EventOutcome::Settled
    );
    assert_eq!(stack.sim.meetings_count(), 1);
    let created: Vec<Value> = stack
        .events()
        .await
        .into_iter()
        .filter(|(t, d)| t == "Zoom Meeting Created" && d["idempotency_key"] == key.as_str())
        .map(|(_, d)| d)
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let meetings = stack
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/users/me/meetings")
        .count();
    assert_eq!(meetings, 1, "one create call at Zoom");
}

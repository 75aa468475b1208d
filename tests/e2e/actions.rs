//! Zoom actions and the raw proxy through the real routers against the simulator: one test per
//! route, Zoom's error mappings, request validation, idempotent creation, the recordings walker,
//! the proxy's path and header rules, and a contract check of every request the connector sent
//! (and every answer it read) against Zoom's OpenAPI description.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use e2e_tests::answer::Answer;
use e2e_tests::catalogue::{idempotency_record, zoom_calls};
use e2e_tests::contract::{check_contract, contract_violations};
use e2e_tests::fakes::ShortApiTimeout;
use e2e_tests::stack::{Backend, StackOptions, TestStack, ports_for};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zoom_connector::app::Connector;
use zoom_connector::config::Config;
use zoom_connector::domain::ConnectionStatus;
use zoom_sim::{Fault, FaultTarget, RecordedRequest, SimRecording, ZoomSim};

// ---- helpers ------------------------------------------------------------------------------

/// A stack with one connected platform-app connection.
async fn connected(backend: Backend) -> (TestStack, String) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    (stack, id)
}

async fn call(stack: &TestStack, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = stack.backend(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Answer::of(request.send().await.expect("request sent")).await
}

fn zoom_path(id: &str, rest: &str) -> String {
    format!("/connections/{id}/zoom{rest}")
}

/// The requests the simulator received under `/v2` (Zoom's REST API).
fn api_requests_to(sim: &ZoomSim, method: &str, path: &str) -> Vec<RecordedRequest> {
    zoom_calls(sim)
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .collect()
}

/// One path segment, percent-encoded (`/` and `=` included).
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// The connection's current access token, as stored.
async fn access_token(stack: &TestStack, id: &str) -> String {
    stack
        .connector
        .read_connection_secret(id)
        .await
        .expect("connection secret")
        .access_token
        .expose()
        .to_owned()
}

fn meeting_body(topic: &str) -> Value {
    json!({
        "topic": topic,
        "type": 2,
        "start_time": "2026-12-01T10:00:00Z",
        "duration": 30,
        "agenda": "e2e",
    })
}

async fn create_meeting(stack: &TestStack, id: &str, topic: &str) -> Value {
    let a = call(
        stack,
        Method::POST,
        &zoom_path(id, "/meetings"),
        Some(meeting_body(topic)),
    )
    .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
    a.json()
}

/// A raw HTTP/1.1 request, so paths reach the server exactly as written (HTTP clients
/// normalise `..` and `%2e%2e` away).
async fn raw_request(stack: &TestStack, method: &str, target: &str) -> (u16, String) {
    let addr = stack.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        stack.api_key
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// A raw chunked POST of `chunks` × `size` bytes (the size is not announced up front). The
/// server may answer and close before reading everything, so write errors are not failures.
async fn raw_chunked_post(
    stack: &TestStack,
    target: &str,
    chunks: usize,
    size: usize,
) -> (u16, String) {
    let addr = stack.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        stack.api_key
    );
    let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
    let mut written = stream.write_all(head.as_bytes()).await;
    for _ in 0..chunks {
        if written.is_err() {
            break;
        }
        written = stream.write_all(chunk.as_bytes()).await;
    }
    if written.is_ok() {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// Seconds from now until the next midnight UTC (Zoom's daily limits reset then).
fn secs_to_utc_midnight() -> i64 {
    let now = OffsetDateTime::now_utc();
    let midnight = now
        .date()
        .next_day()
        .expect("a next day")
        .midnight()
        .assume_utc();
    (midnight - now).whole_seconds()
}

// ---- routes -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_me_passes_zooms_user() {
    let (stack, id) = connected(Backend::Local).await;
    let a = call(&stack, Method::GET, &zoom_path(&id, "/me"), None).await;
    assert_eq!(a.status, 200);
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let me = a.json();
    assert_eq!(me["id"], zoom_sim::DEFAULT_USER_ID);
    assert_eq!(me["email"], "ada@example.com");
    let sent = api_requests_to(&stack.sim, "GET", "/v2/users/me");
    let last = sent.last().expect("GET /users/me reached Zoom");
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {}", access_token(&stack, &id).await).as_str())
    );
    // Unknown connections are ours to answer, without a call to Zoom.
    let before = zoom_calls(&stack.sim).len();
    call(&stack, Method::GET, &zoom_path("conn_missing", "/me"), None)
        .await
        .problem(404, "connection_not_found");
    assert_eq!(zoom_calls(&stack.sim).len(), before);
    // The API key is required.
    let r = stack
        .http
        .get(stack.url(&zoom_path(&id, "/me")))
        .send()
        .await
        .unwrap();
    Answer::of(r).await.problem(401, "unauthorized");
    assert!(check_contract(&stack.sim) >= 1);
}

async fn create_meeting_case(backend: Backend) {
    let (stack, id) = connected(backend).await;
    let body = meeting_body("Quarterly review");
    let a = call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
    let meeting = a.json();
    // Zoom's own JSON, unchanged.
    let sent = api_requests_to(&stack.sim, "POST", "/v2/users/me/meetings");
    assert_eq!(sent.len(), 1);
    let zoom_answer: Value = serde_json::from_slice(&sent[0].response_body).unwrap();
    assert_eq!(meeting, zoom_answer);
    assert!(meeting["id"].is_i64());
    assert_eq!(meeting["topic"], "Quarterly review");
    assert_eq!(meeting["start_time"], "2026-12-01T10:00:00Z");
    assert!(meeting["join_url"].is_string());
    assert!(meeting.get("warning").is_none());
    // The body reached Zoom as given.
    let forwarded: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(forwarded, body);
    assert_eq!(stack.sim.meetings_count(), 1);
    assert!(check_contract(&stack.sim) >= 1);
}

e2e_tests::on_both_backends!(create_meeting_answers_201_with_zooms_body_local, create_meeting_answers_201_with_zooms_body_aws; create_meeting_case);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_update_delete_meeting() {
    let (stack, id) = connected(Backend::Local).await;
    let meeting = create_meeting(&stack, &id, "Before").await;
    let mid = meeting["id"].as_i64().unwrap().to_string();
    let path = zoom_path(&id, &format!("/meetings/{mid}"));

    let got = call(&stack, Method::GET, &path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["id"], meeting["id"]);

    let patched = call(
        &stack,
        Method::PATCH,
        &path,
        Some(json!({ "topic": "After", "duration": 45 })),
    )
    .await;
    assert_eq!(patched.status, 204);
    assert!(patched.bytes.is_empty(), "204 has no body");
    assert_eq!(patched.header("content-type"), None);
    let got = call(&stack, Method::GET, &path, None).await.json();
    assert_eq!(got["topic"], "After");
    assert_eq!(got["duration"], 45);

    let deleted = call(&stack, Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.bytes.is_empty(), "204 has no body");
    assert_eq!(stack.sim.meetings_count(), 0);

    // 404 / 3001 keeps Zoom's code.
    let doc = call(&stack, Method::GET, &path, None)
        .await
        .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["status"], 404);
    assert_eq!(doc["zoom"]["code"], 3001);
    assert!(doc["zoom"]["message"].as_str().unwrap().contains(&mid));
    let doc = call(&stack, Method::DELETE, &path, None)
        .await
        .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 3001);
    assert!(check_contract(&stack.sim) >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_livestream_answers_204() {
    let (stack, id) = connected(Backend::Local).await;
    let meeting = create_meeting(&stack, &id, "Streamed").await;
    let mid = meeting["id"].as_i64().unwrap();
    let path = zoom_path(&id, &format!("/meetings/{mid}/livestream"));
    let body = json!({
        "stream_url": "rtmp://live.example.com/app",
        "stream_key": "key-123",
        "page_url": "https://example.com/live",
    });
    let a = call(&stack, Method::PATCH, &path, Some(body.clone())).await;
    assert_eq!(a.status, 204, "{}", String::from_utf8_lossy(&a.bytes));
    assert!(a.bytes.is_empty());
    let sent = api_requests_to(
        &stack.sim,
        "PATCH",
        &format!("/v2/meetings/{mid}/livestream"),
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[0].body).unwrap(),
        body
    );

    // A missing required field is ours to refuse, naming it.
    let before = zoom_calls(&stack.sim).len();
    let doc = call(
        &stack,
        Method::PATCH,
        &path,
        Some(json!({ "stream_url": "rtmp://x", "stream_key": "k" })),
    )
    .await
    .problem(400, "validation_failed");
    assert!(
        doc["detail"].as_str().unwrap().contains("page_url"),
        "{doc}"
    );
    assert_eq!(doc["errors"][0]["field"], "page_url", "{doc}");
    assert_eq!(zoom_calls(&stack.sim).len(), before);
    check_contract(&stack.sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meeting_recordings_by_id_and_by_uuids_that_need_double_encoding() {
    let (stack, id) = connected(Backend::Local).await;
    let user = zoom_sim::DEFAULT_USER_ID;

    // A numeric meeting id.
    let plain =
        SimRecording::new("Plain", datetime!(2026-03-02 10:00 UTC)).with_meeting_id(81234567890);
    stack.sim.add_recording(user, plain.clone());
    let a = call(
        &stack,
        Method::GET,
        &zoom_path(&id, "/meetings/81234567890/recordings"),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    assert_eq!(a.json()["uuid"], plain.uuid);

    // A meeting whose UUID starts with `/`, created through the connector.
    let leading = "/ajXp112QmuoKj4854875==";
    stack.sim.set_next_meeting_uuid(leading);
    let meeting = create_meeting(&stack, &id, "Slashed").await;
    assert_eq!(meeting["uuid"], leading);
    let mid = meeting["id"].as_i64().unwrap();
    stack.sim.add_recording(
        user,
        SimRecording::new("Slashed", datetime!(2026-03-03 10:00 UTC))
            .with_meeting_id(mid)
            .with_uuid(leading),
    );
    // And one containing `//` (and `+`).
    let inner = "Rk9v//YmFy+ZQ==";
    stack.sim.add_recording(
        user,
        SimRecording::new("Inner", datetime!(2026-03-04 10:00 UTC)).with_uuid(inner),
    );
    // One with a single `/` inside: encoded once is right.
    let single = "ab/cdEF==";
    stack.sim.add_recording(
        user,
        SimRecording::new("Single", datetime!(2026-03-05 10:00 UTC)).with_uuid(single),
    );

    for uuid in [leading, inner, single] {
        // Callers encode the UUID once, as for any path segment.
        let a = call(
            &stack,
            Method::GET,
            &zoom_path(&id, &format!("/meetings/{}/recordings", encode(uuid))),
            None,
        )
        .await;
        assert_eq!(
            a.status,
            200,
            "{uuid}: {}",
            String::from_utf8_lossy(&a.bytes)
        );
        assert_eq!(a.json()["uuid"], uuid);
        // A caller that already double-encoded (as Zoom's docs say) gets the same meeting.
        let a = call(
            &stack,
            Method::GET,
            &zoom_path(
                &id,
                &format!("/meetings/{}/recordings", encode(&encode(uuid))),
            ),
            None,
        )
        .await;
        assert_eq!(
            a.status,
            200,
            "{uuid} pre-encoded: {}",
            String::from_utf8_lossy(&a.bytes)
        );
        assert_eq!(a.json()["uuid"], uuid);
    }
    // What Zoom saw: double encoding exactly where it is needed.
    let paths: Vec<String> = zoom_calls(&stack.sim)
        .into_iter()
        .filter(|r| r.path.ends_with("/recordings") && r.path.starts_with("/v2/meetings/"))
        .map(|r| r.path)
        .collect();
    assert!(
        paths.contains(&"/v2/meetings/%252FajXp112QmuoKj4854875%253D%253D/recordings".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/v2/meetings/Rk9v%252F%252FYmFy%252BZQ%253D%253D/recordings".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/v2/meetings/ab%2FcdEF%3D%3D/recordings".to_owned()),
        "{paths:?}"
    );

    // No recording: Zoom's 3301 comes back as 404.
    let doc = call(
        &stack,
        Method::GET,
        &zoom_path(&id, "/meetings/99999999999/recordings"),
        None,
    )
    .await
    .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 3301);
    check_contract(&stack.sim);
}

// ---- recordings walker ------------------------------------------------------------------

async fn recordings_walk_case(backend: Backend) {
    let (stack, id) = connected(backend).await;
    let user = zoom_sim::DEFAULT_USER_ID;
    // Three months, several recordings per 28-day window, plus some just outside.
    let mut expected = HashSet::new();
    let start = datetime!(2026-01-01 00:30 UTC);
    for day in (0..90).step_by(4) {
        for hour in [1, 9, 17] {
            let at = start + time::Duration::days(day) + time::Duration::hours(hour);
            let r = SimRecording::new(&format!("day {day} hour {hour}"), at);
            expected.insert(r.uuid.clone());
            stack.sim.add_recording(user, r);
        }
    }
    let last_day = SimRecording::new("last day", datetime!(2026-03-31 23:59 UTC));
    expected.insert(last_day.uuid.clone());
    stack.sim.add_recording(user, last_day);
    for outside in [
        datetime!(2025-12-31 23:59 UTC),
        datetime!(2026-04-01 00:00 UTC),
    ] {
        stack
            .sim
            .add_recording(user, SimRecording::new("outside", outside));
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 100, "the walk does not end");
        let mut path = zoom_path(&id, "/recordings?from=2026-01-01&to=2026-03-31&page_size=4");
        if let Some(c) = &cursor {
            path = zoom_path(&id, &format!("/recordings?cursor={c}"));
        }
        let a = call(&stack, Method::GET, &path, None).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
        let page = a.json();
        assert_eq!(page["from"], "2026-01-01");
        assert_eq!(page["to"], "2026-03-31");
        let meetings = page["meetings"].as_array().unwrap();
        assert!(meetings.len() <= 4);
        seen.extend(
            meetings
                .iter()
                .map(|m| m["uuid"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a recording came back twice");
    assert_eq!(unique, expected);

    // Zoom was only ever asked for windows within one month, inside the range, with
    // several pages per window.
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let mut windows = BTreeMap::new();
    for r in api_requests_to(&stack.sim, "GET", "/v2/users/me/recordings") {
        let q: BTreeMap<String, String> = url::form_urlencoded::parse(r.query.as_bytes())
            .into_owned()
            .collect();
        let from = time::Date::parse(&q["from"], day).unwrap();
        let to = time::Date::parse(&q["to"], day).unwrap();
        assert!(from >= time::macros::date!(2026 - 01 - 01), "{q:?}");
        assert!(to <= time::macros::date!(2026 - 03 - 31), "{q:?}");
        assert!(from <= to, "{q:?}");
        assert!(
            (to - from).whole_days() < 28,
            "window longer than 28 days: {q:?}"
        );
        assert_eq!(q["page_size"], "4");
        *windows.entry((from, to)).or_insert(0) += 1;
    }
    assert!(windows.len() >= 4, "{windows:?}");
    assert!(
        windows.values().filter(|pages| **pages >= 3).count() >= 3,
        "several pages per window: {windows:?}"
    );
    // Windows tile the range without gaps or overlaps.
    let mut next = time::macros::date!(2026 - 01 - 01);
    for (from, to) in windows.keys() {
        assert_eq!(*from, next, "{windows:?}");
        next = to.next_day().unwrap();
    }
    assert_eq!(next, time::macros::date!(2026 - 04 - 01));
    check_contract(&stack.sim);
}

e2e_tests::on_both_backends!(recordings_walk_every_window_and_page_once_local, recordings_walk_every_window_and_page_once_aws; recordings_walk_case);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recordings_query_is_validated() {
    let (stack, id) = connected(Backend::Local).await;
    let baseline = zoom_calls(&stack.sim).len();
    let cases = [
        ("/recordings?from=2026-13-01&to=2026-12-31", "from"),
        ("/recordings?from=2026-01-01&to=yesterday", "to"),
        ("/recordings?from=2026-02-01&to=2026-01-01", "from"),
        ("/recordings?page_size=301", "page_size"),
        ("/recordings?page_size=0", "page_size"),
        ("/recordings?page_size=many", "page_size"),
        ("/recordings?cursor=not-a-cursor", "cursor"),
    ];
    for (query, field) in cases {
        let doc = call(&stack, Method::GET, &zoom_path(&id, query), None)
            .await
            .problem(400, "validation_failed");
        assert!(
            doc["detail"].as_str().unwrap().contains(field),
            "{query}: {doc}"
        );
    }
    assert_eq!(
        zoom_calls(&stack.sim).len(),
        baseline,
        "nothing sent to Zoom"
    );
    // Without a range: the last 30 days, answered with the range used.
    let page = call(&stack, Method::GET, &zoom_path(&id, "/recordings"), None).await;
    assert_eq!(page.status, 200);
    let page = page.json();
    assert!(page["meetings"].as_array().unwrap().is_empty());
    assert!(page["next_cursor"].is_null(), "{page}");
    check_contract(&stack.sim);
}

// ---- the proxy ----------------------------------------------------------------------------

async fn proxy_case(backend: Backend) {
    let (stack, id) = connected(backend).await;
    let token = access_token(&stack, &id).await;

    // GET with a query; hop-by-hop, cookie and caller auth headers stay here.
    let r = stack
        .backend(
            Method::GET,
            &format!("/connections/{id}/proxy/users/me?login_type=100"),
        )
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("cookie", "session=abc")
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .unwrap();
    let a = Answer::of(r).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(a.json()["id"], zoom_sim::DEFAULT_USER_ID);
    let sent = api_requests_to(&stack.sim, "GET", "/v2/users/me");
    let got = sent.last().expect("the proxy reached Zoom");
    assert_eq!(got.query, "login_type=100");
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    for header in [
        "x-hop",
        "te",
        "proxy-authorization",
        "cookie",
        "x-forwarded-for",
    ] {
        assert_eq!(got.header(header), None, "{header} was forwarded");
    }
    for (name, value) in &got.headers {
        assert!(
            !value.contains(&stack.api_key),
            "the API key went to Zoom in {name}"
        );
    }

    // POST: body and content type passed on, Zoom's 201 and body back.
    let body = json!({ "topic": "Through the proxy", "type": 2, "start_time": "2026-12-02T09:00:00Z", "duration": 15 });
    let a = Answer::of(
        stack
            .backend(
                Method::POST,
                &format!("/connections/{id}/proxy/users/me/meetings"),
            )
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
    let created = a.json();
    assert_eq!(created["topic"], "Through the proxy");
    let sent = api_requests_to(&stack.sim, "POST", "/v2/users/me/meetings");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[0].body).unwrap(),
        body
    );
    assert_eq!(sent[0].header("content-type"), Some("application/json"));
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );

    // PATCH and DELETE: 204 with no body.
    let mid = created["id"].as_i64().unwrap();
    let a = Answer::of(
        stack
            .backend(
                Method::PATCH,
                &format!("/connections/{id}/proxy/meetings/{mid}"),
            )
            .json(&json!({ "topic": "Renamed" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 204);
    assert!(a.bytes.is_empty());

    // Zoom's errors come back as Zoom gave them.
    let a = Answer::of(
        stack
            .backend(Method::GET, &format!("/connections/{id}/proxy/meetings/1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["code"], 3001);

    // Rate-limit headers come back with the 429.
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    let a = Answer::of(
        stack
            .backend(Method::GET, &format!("/connections/{id}/proxy/users/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.header("x-ratelimit-type"), Some("QPS"));
    assert_eq!(a.header("x-ratelimit-category"), Some("Light"));
    assert_eq!(a.header("x-ratelimit-limit"), Some("30"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(a.json()["code"], 429);

    // Double-encoded UUID paths pass through untouched.
    let uuid = "/proxyUuid//x==";
    stack.sim.add_recording(
        zoom_sim::DEFAULT_USER_ID,
        SimRecording::new("Proxied", datetime!(2026-02-01 10:00 UTC)).with_uuid(uuid),
    );
    let a = Answer::of(
        stack
            .backend(
                Method::GET,
                &format!(
                    "/connections/{id}/proxy/meetings/{}/recordings",
                    encode(&encode(uuid))
                ),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    assert_eq!(a.json()["uuid"], uuid);
    check_contract(&stack.sim);
}

e2e_tests::on_both_backends!(proxy_passes_method_path_query_body_and_injects_the_token_local, proxy_passes_method_path_query_body_and_injects_the_token_aws; proxy_case);

/// The contract check itself can fail: the proxy does not validate, so an off-contract body
/// and an undeclared query parameter reach the simulator and must be caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contract_check_catches_off_contract_requests() {
    let (stack, id) = connected(Backend::Local).await;
    check_contract(&stack.sim);
    let r = stack
        .backend(
            Method::POST,
            &format!("/connections/{id}/proxy/users/me/meetings"),
        )
        .json(&json!({ "topic": "t", "type": "weekly" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "Zoom refuses it too");
    let violations = contract_violations(&stack.sim);
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("POST /v2/users/me/meetings?") && v.contains("type")),
        "the off-contract body is caught: {violations:?}"
    );

    let stack = TestStack::start(StackOptions::new(Backend::Local)).await;
    let id = stack.connect_platform().await;
    let r = stack
        .backend(
            Method::GET,
            &format!("/connections/{id}/proxy/users/me?not_a_parameter=1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let violations = contract_violations(&stack.sim);
    assert!(
        violations
            .iter()
            .any(|v| v.ends_with("undeclared query parameter not_a_parameter")),
        "the undeclared query parameter is caught: {violations:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_refuses_paths_that_climb_out_of_the_api_base() {
    let (stack, id) = connected(Backend::Local).await;
    let baseline = zoom_calls(&stack.sim).len();
    let base = format!("/connections/{id}/proxy");
    let targets = [
        format!("{base}/../../oauth/token"),
        format!("{base}/users/../../oauth/token"),
        format!("{base}/.."),
        format!("{base}/./users/me"),
        format!("{base}/%2e%2e/oauth/token"),
        format!("{base}/users/%2E%2E/%2e%2E/oauth/token"),
        format!("{base}/%252e%252e/oauth/token"),
        format!("{base}/users/%2e%2e%2f%2e%2e%2foauth/token"),
        format!("{base}/users/..%5c..%5coauth/token"),
        format!("{base}/users/%5c/me"),
        format!("{base}/users\\..\\..\\oauth"),
        format!("{base}/users/me%00"),
        format!("{base}/"),
    ];
    for target in &targets {
        for method in ["GET", "POST", "DELETE"] {
            let (status, text) = raw_request(&stack, method, target).await;
            assert_eq!(status, 400, "{method} {target}: {text}");
            assert!(
                text.contains("application/problem+json") && text.contains("validation_failed"),
                "{method} {target}: {text}"
            );
        }
    }
    assert_eq!(
        zoom_calls(&stack.sim).len(),
        baseline,
        "nothing may reach Zoom: {:?}",
        zoom_calls(&stack.sim)[baseline..]
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
    // The same client reaches Zoom with a clean path.
    let (status, text) = raw_request(&stack, "GET", &format!("{base}/users/me")).await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_over_one_megabyte_are_refused() {
    let (stack, id) = connected(Backend::Local).await;
    let baseline = zoom_calls(&stack.sim).len();
    let big = json!({ "topic": "big", "agenda": "x".repeat(1024 * 1024 + 10) });
    call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(big.clone()),
    )
    .await
    .problem(413, "payload_too_large");
    let a = Answer::of(
        stack
            .backend(
                Method::POST,
                &format!("/connections/{id}/proxy/users/me/meetings"),
            )
            .json(&big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    a.problem(413, "payload_too_large");
    // Also when the size is not announced up front (chunked).
    let (status, text) = raw_chunked_post(
        &stack,
        &format!("/connections/{id}/proxy/users/me/meetings"),
        17,
        64 * 1024,
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    assert_eq!(
        zoom_calls(&stack.sim).len(),
        baseline,
        "nothing sent to Zoom"
    );
}

// ---- error mappings ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_token_is_refreshed_once_and_the_call_retried() {
    let (stack, id) = connected(Backend::Local).await;
    // Warm: the token is cached in this process.
    assert_eq!(
        call(&stack, Method::GET, &zoom_path(&id, "/me"), None)
            .await
            .status,
        200
    );
    let old = access_token(&stack, &id).await;
    let grants = stack.sim.counters().refresh_grants;
    stack.sim.expire_access_tokens();

    let a = call(&stack, Method::GET, &zoom_path(&id, "/me"), None).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    assert_eq!(
        stack.sim.counters().refresh_grants,
        grants + 1,
        "exactly one refresh"
    );
    let new = access_token(&stack, &id).await;
    assert_ne!(old, new);
    let sent = api_requests_to(&stack.sim, "GET", "/v2/users/me");
    let tail: Vec<(u16, Option<&str>)> = sent[sent.len() - 2..]
        .iter()
        .map(|r| (r.status, r.header("authorization")))
        .collect();
    assert_eq!(
        tail,
        vec![
            (401, Some(format!("Bearer {old}").as_str())),
            (200, Some(format!("Bearer {new}").as_str()))
        ]
    );

    // Also for a create: the 401 means nothing was created, so the retry is safe.
    stack.sim.expire_access_tokens();
    create_meeting(&stack, &id, "After 401").await;
    assert_eq!(stack.sim.counters().refresh_grants, grants + 2);
    assert_eq!(stack.sim.meetings_count(), 1);

    // And through the proxy.
    stack.sim.expire_access_tokens();
    let r = stack
        .backend(Method::GET, &format!("/connections/{id}/proxy/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(stack.sim.counters().refresh_grants, grants + 3);
    check_contract(&stack.sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_401_is_not_refreshed_again() {
    let (stack, id) = connected(Backend::Local).await;
    let grants = stack.sim.counters().refresh_grants;
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 401,
        times: Some(2),
    });
    let doc = call(&stack, Method::GET, &zoom_path(&id, "/me"), None)
        .await
        .problem(502, "zoom_unauthorized");
    assert_eq!(doc["zoom"]["status"], 401);
    assert_eq!(doc["zoom"]["code"], 124);
    assert_eq!(stack.sim.counters().refresh_grants, grants + 1);
    // Through the proxy the refused token is ours to report too: a pass-through 401 would
    // read as a wrong API key.
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 401,
        times: Some(2),
    });
    let a = Answer::of(
        stack
            .backend(Method::GET, &format!("/connections/{id}/proxy/users/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    a.problem(502, "zoom_unauthorized");
    assert_eq!(a.header("www-authenticate"), None);
    assert_eq!(stack.sim.counters().refresh_grants, grants + 2);
    // The connection still works.
    assert_eq!(
        call(&stack, Method::GET, &zoom_path(&id, "/me"), None)
            .await
            .status,
        200
    );
    check_contract(&stack.sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_scope_is_403_naming_the_scope() {
    let (stack, id) = connected(Backend::Local).await;
    stack.sim.inject(Fault::ScopeMissing {
        scope: "meeting:write".into(),
        times: Some(1),
    });
    let doc = call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(meeting_body("no scope")),
    )
    .await
    .problem(403, "zoom_scope_missing");
    assert!(
        doc["detail"].as_str().unwrap().contains("meeting:write"),
        "{doc}"
    );
    assert_eq!(doc["zoom"]["code"], 4711);
    assert_eq!(doc["zoom"]["status"], 400);
    assert_eq!(stack.sim.meetings_count(), 0);
    check_contract(&stack.sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_become_429_with_retry_after() {
    let (stack, id) = connected(Backend::Local).await;
    // Per-second limit: Zoom's seconds.
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: false,
        times: Some(1),
    });
    let a = call(&stack, Method::GET, &zoom_path(&id, "/me"), None).await;
    let doc = a.problem(429, "zoom_rate_limited");
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(doc["zoom"]["status"], 429);
    assert_eq!(doc["zoom"]["code"], 429);

    // Daily limit on create: the date-time becomes seconds, and nothing is retried.
    stack.sim.inject(Fault::RateLimit {
        target: FaultTarget::Api,
        daily: true,
        times: Some(1),
    });
    let expected = secs_to_utc_midnight();
    let a = call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(meeting_body("limited")),
    )
    .await;
    let after = secs_to_utc_midnight();
    a.problem(429, "zoom_rate_limited");
    let retry: i64 = a.header("retry-after").unwrap().parse().unwrap();
    // Midnight as seen between the request and the answer (a rounding second either side);
    // across midnight itself, either day's midnight.
    let within = |from: i64, to: i64| (from - 1..=to + 1).contains(&retry);
    assert!(
        if after <= expected {
            within(after, expected)
        } else {
            within(0, expected) || within(after, 86_400)
        },
        "Retry-After {retry}, midnight in {expected} s before the call and {after} s after"
    );
    assert_eq!(
        api_requests_to(&stack.sim, "POST", "/v2/users/me/meetings").len(),
        1,
        "POST /meetings is not retried on 429"
    );
    assert_eq!(stack.sim.meetings_count(), 0);
    check_contract(&stack.sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_errors_retry_safe_calls_only() {
    let (stack, id) = connected(Backend::Local).await;
    let baseline = zoom_calls(&stack.sim).len();
    // GET: one 503, then success on the retry.
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    let a = call(&stack, Method::GET, &zoom_path(&id, "/me"), None).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.bytes));
    let statuses: Vec<u16> = zoom_calls(&stack.sim)[baseline..]
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503, 200], "one retry after the 503");

    // GET that keeps failing: bounded retries, then 502.
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 500,
        times: None,
    });
    let before = zoom_calls(&stack.sim).len();
    call(&stack, Method::GET, &zoom_path(&id, "/me"), None)
        .await
        .problem(502, "zoom_unavailable");
    let attempts = zoom_calls(&stack.sim).len() - before;
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
    stack.sim.clear_faults();

    // POST: no retry, 502 zoom_unavailable with Zoom's answer kept.
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    let a = call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(meeting_body("unavailable")),
    )
    .await;
    let doc = a.problem(502, "zoom_unavailable");
    assert_eq!(doc["zoom"]["status"], 503);
    assert!(a.header("retry-after").is_some());
    assert_eq!(
        api_requests_to(&stack.sim, "POST", "/v2/users/me/meetings").len(),
        1,
        "POST is not retried on 5xx"
    );
    assert_eq!(stack.sim.meetings_count(), 0);
    check_contract(&stack.sim);
}

/// A second "container" on the same backend whose Zoom calls time out after `timeout`,
/// serving the actions router on its own port. Returns its base URL.
async fn short_timeout_actions(
    stack: &TestStack,
    timeout: Duration,
) -> (String, tokio::task::JoinHandle<()>) {
    let connector = stack.container_with(|ports| {
        ports.zoom = Arc::new(ShortApiTimeout {
            inner: ports.zoom.clone(),
            timeout,
        })
    });
    let router = zoom_connector::http::actions_router(connector);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
    (base, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zoom_timeouts_answer_504() {
    let (stack, id) = connected(Backend::Local).await;
    let (base, server) = short_timeout_actions(&stack, Duration::from_secs(2)).await;
    let send = |method: Method, path: String, body: Option<Value>| {
        let mut r = stack
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&stack.api_key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move { Answer::of(r.send().await.unwrap()).await }
    };
    // Warm up this container (token cached), then make Zoom hang once.
    assert_eq!(
        send(Method::GET, zoom_path(&id, "/me"), None).await.status,
        200
    );
    stack.sim.inject(Fault::Hang {
        target: FaultTarget::Api,
        times: Some(1),
    });
    let a = send(
        Method::POST,
        zoom_path(&id, "/meetings"),
        Some(meeting_body("slow")),
    )
    .await;
    a.problem(504, "zoom_unavailable");
    assert!(a.header("retry-after").is_some());
    let posts = api_requests_to(&stack.sim, "POST", "/v2/users/me/meetings");
    assert_eq!(posts.len(), 1, "a timed-out POST is not retried");

    // A GET that hangs every time: bounded retries, then 504.
    stack.sim.inject(Fault::Hang {
        target: FaultTarget::Api,
        times: None,
    });
    let before = zoom_calls(&stack.sim).len();
    send(Method::GET, zoom_path(&id, "/me"), None)
        .await
        .problem(504, "zoom_unavailable");
    let attempts = zoom_calls(&stack.sim).len() - before;
    assert!((1..=3).contains(&attempts), "{attempts} attempts");
    // And through the proxy.
    let a = send(
        Method::GET,
        format!("/connections/{id}/proxy/users/me"),
        None,
    )
    .await;
    a.problem(504, "zoom_unavailable");
    stack.sim.clear_faults();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unusable_connections_answer_409() {
    let stack = TestStack::start(StackOptions::new(Backend::Local)).await;
    // Two Zoom users, two connections.
    let first = stack.connect_platform().await;
    stack.sim.add_user(zoom_sim::SimUser::new(
        "sim-user-2",
        "sim-account-1",
        "grace@example.com",
        "Grace",
        "Hopper",
    ));
    stack.sim.set_current_user("sim-user-2");
    let second = stack.connect_platform().await;
    assert_ne!(first, second);

    for (id, status, code) in [
        (
            &first,
            ConnectionStatus::NeedsReauth,
            "connection_needs_reauth",
        ),
        (&second, ConnectionStatus::Revoked, "connection_revoked"),
    ] {
        stack
            .connector
            .update_record(id, |r| r.status = status)
            .await
            .unwrap()
            .expect("record exists");
        let before = zoom_calls(&stack.sim).len();
        for (method, path, body) in [
            (Method::GET, zoom_path(id, "/me"), None),
            (
                Method::POST,
                zoom_path(id, "/meetings"),
                Some(meeting_body("x")),
            ),
            (Method::GET, zoom_path(id, "/recordings"), None),
            (
                Method::GET,
                format!("/connections/{id}/proxy/users/me"),
                None,
            ),
        ] {
            call(&stack, method, &path, body).await.problem(409, code);
        }
        assert_eq!(zoom_calls(&stack.sim).len(), before, "nothing sent to Zoom");
    }

    // A warm connection whose tokens Zoom revoked: the refresh is refused, 409 needs_reauth.
    stack.sim.set_current_user(zoom_sim::DEFAULT_USER_ID);
    let stack2 = TestStack::start(StackOptions::new(Backend::Local)).await;
    let id = stack2.connect_platform().await;
    assert_eq!(
        call(&stack2, Method::GET, &zoom_path(&id, "/me"), None)
            .await
            .status,
        200
    );
    stack2.sim.revoke_user_tokens(zoom_sim::DEFAULT_USER_ID);
    call(&stack2, Method::GET, &zoom_path(&id, "/me"), None)
        .await
        .problem(409, "connection_needs_reauth");
    check_contract(&stack.sim);
    check_contract(&stack2.sim);
}

// ---- validation -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meeting_bodies_are_validated_against_zooms_schema() {
    let (stack, id) = connected(Backend::Local).await;
    let baseline = zoom_calls(&stack.sim).len();
    let cases = [
        (json!({ "topic": 5 }), "topic"),
        (json!({ "topic": "t", "duration": "long" }), "duration"),
        (json!({ "topic": "t", "type": 5 }), "type"),
        (json!({ "topic": "t", "type": "2" }), "type"),
        (
            json!({ "topic": "t", "password": "12345678901" }),
            "password",
        ),
        (json!({ "topic": "t", "password": "bad pass!" }), "password"),
        (
            json!({ "topic": "t", "start_time": "tomorrow" }),
            "start_time",
        ),
        (
            json!({ "topic": "t", "start_time": "2026-02-30T10:00:00Z" }),
            "start_time",
        ),
        (
            json!({ "topic": "t", "start_time": 1767261600 }),
            "start_time",
        ),
        (
            json!({ "topic": "t", "settings": { "audio": "loud" } }),
            "settings.audio",
        ),
        (
            json!({ "topic": "t", "settings": { "host_video": "yes" } }),
            "settings.host_video",
        ),
        (
            json!({ "topic": "t", "recurrence": { "repeat_interval": 1 } }),
            "recurrence.type",
        ),
    ];
    for (body, field) in cases {
        for (method, path) in [
            (Method::POST, zoom_path(&id, "/meetings")),
            (Method::PATCH, zoom_path(&id, "/meetings/81234567890")),
        ] {
            let doc = call(&stack, method.clone(), &path, Some(body.clone()))
                .await
                .problem(400, "validation_failed");
            assert!(
                doc["detail"].as_str().unwrap().contains(field),
                "{method} {body}: detail names {field}: {doc:#}"
            );
            let fields: Vec<&str> = doc["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("errors[] in {doc:#}"))
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            assert!(
                fields.contains(&field),
                "{body}: errors name {field}: {doc:#}"
            );
            assert!(
                !doc.to_string().contains("12345678901"),
                "the refused password is not echoed: {doc}"
            );
        }
    }
    // Not an object at all.
    for body in [json!([1, 2]), json!("meeting"), json!(null)] {
        call(
            &stack,
            Method::POST,
            &zoom_path(&id, "/meetings"),
            Some(body),
        )
        .await
        .problem(400, "validation_failed");
    }
    // Malformed JSON.
    let r = stack
        .backend(Method::POST, &zoom_path(&id, "/meetings"))
        .header("content-type", "application/json")
        .body("{\"topic\": ")
        .send()
        .await
        .unwrap();
    Answer::of(r).await.problem(400, "validation_failed");
    assert_eq!(
        zoom_calls(&stack.sim).len(),
        baseline,
        "nothing invalid reached Zoom"
    );

    // Z and a timezone: created, with a warning; local time with a timezone: no warning.
    let a = call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(json!({ "topic": "utc", "type": 2, "start_time": "2026-07-01T10:00:00Z", "timezone": "Europe/Berlin" })),
    )
    .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
    let m = a.json();
    assert!(m["warning"].as_str().unwrap().contains("timezone"), "{m}");
    assert_eq!(m["start_time"], "2026-07-01T10:00:00Z");
    let a = call(
        &stack,
        Method::POST,
        &zoom_path(&id, "/meetings"),
        Some(json!({ "topic": "local", "type": 2, "start_time": "2026-07-01T10:00:00", "timezone": "Europe/Berlin" })),
    )
    .await;
    assert_eq!(a.status, 201);
    let m = a.json();
    assert!(m.get("warning").is_none(), "{m}");
    assert_eq!(m["start_time"], "2026-07-01T08:00:00Z");
    check_contract(&stack.sim);
}

// ---- idempotency ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_returns_the_first_answer() {
    let (stack, id) = connected(Backend::Local).await;
    let path = zoom_path(&id, "/meetings");
    let send = |key: &str, body: Value| {
        let r = stack
            .backend(Method::POST, &path)
            .header("idempotency-key", key)
            .json(&body);
        async move { Answer::of(r.send().await.unwrap()).await }
    };
    let first = send("key-1", meeting_body("once")).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = send("key-1", meeting_body("once")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(again.json(), first.json());
    assert_eq!(stack.sim.meetings_count(), 1);

    // Same key, different body.
    send("key-1", meeting_body("twice"))
        .await
        .problem(422, "idempotency_key_reused");
    assert_eq!(stack.sim.meetings_count(), 1);

    // Another key creates another meeting.
    let other = send("key-2", meeting_body("once")).await;
    assert_eq!(other.status, 201);
    assert_ne!(other.json()["id"], first.json()["id"]);
    assert_eq!(stack.sim.meetings_count(), 2);

    // A failed attempt does not pin the key: the retry creates.
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    send("key-3", meeting_body("retried"))
        .await
        .problem(502, "zoom_unavailable");
    let retried = send("key-3", meeting_body("retried")).await;
    assert_eq!(retried.status, 201);
    assert_eq!(retried.header("idempotent-replayed"), None);
    assert_eq!(stack.sim.meetings_count(), 3);

    // A 5xx may come after Zoom created the meeting (the answer was lost). Simulate that:
    // the attempt fails, but the meeting exists at Zoom. The retry finds it, creates none.
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    send("key-4", meeting_body("answer lost"))
        .await
        .problem(502, "zoom_unavailable");
    let token = access_token(&stack, &id).await;
    let created_at_zoom: Value = reqwest::Client::new()
        .post(format!("{}/users/me/meetings", stack.running_sim.api_url()))
        .bearer_auth(token)
        .json(&meeting_body("answer lost"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stack.sim.meetings_count(), 4);
    let recovered = send("key-4", meeting_body("answer lost")).await;
    assert_eq!(recovered.status, 201);
    assert_eq!(recovered.json()["id"], created_at_zoom["id"]);
    // The whole meeting, as the lost answer had it (not just the list's fields).
    assert_eq!(recovered.json()["start_url"], created_at_zoom["start_url"]);
    assert_eq!(recovered.json()["password"], created_at_zoom["password"]);
    assert_eq!(
        stack.sim.meetings_count(),
        4,
        "the retry did not create a second meeting"
    );
    check_contract(&stack.sim);
}

async fn send_keyed(stack: &TestStack, id: &str, key: &str, body: &Value) -> Answer {
    let r = stack
        .backend(Method::POST, &zoom_path(id, "/meetings"))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::of(r).await
}

/// Issue 14: the same key with another body, after the first request's outcome was left
/// unknown (Zoom answered 5xx), is refused with 422; it does not take the record over and
/// create another meeting under the key. The first body's retry still creates once.
async fn reused_key_after_an_unknown_outcome_is_refused(backend: Backend) {
    let (stack, id) = connected(backend).await;
    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: Some(1),
    });
    send_keyed(&stack, &id, "k-unknown", &meeting_body("first"))
        .await
        .problem(502, "zoom_unavailable");
    send_keyed(&stack, &id, "k-unknown", &meeting_body("second"))
        .await
        .problem(422, "idempotency_key_reused");
    assert_eq!(stack.sim.meetings_count(), 0);
    let first = send_keyed(&stack, &id, "k-unknown", &meeting_body("first")).await;
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.bytes)
    );
    assert_eq!(first.json()["topic"], "first");
    assert_eq!(stack.sim.meetings_count(), 1);
}

/// Issue 14: the record of an `Idempotency-Key` keeps neither the host key (`start_url`) nor
/// a passcode; a replay gets them from Zoom and equals the first answer; when Zoom cannot be
/// asked, the replay is the stored answer with a `warning`.
async fn idempotent_answers_are_stored_without_secrets(backend: Backend) {
    let (stack, id) = connected(backend).await;
    let mut body = meeting_body("with a passcode");
    body["password"] = json!("Pa55word");
    let first = send_keyed(&stack, &id, "k-secret", &body).await;
    assert_eq!(first.status, 201);
    let m = first.json();
    for field in [
        "start_url",
        "password",
        "h323_password",
        "pstn_password",
        "encrypted_password",
    ] {
        assert!(m[field].is_string(), "{field} in the first answer: {m}");
    }
    let stored = idempotency_record(&stack, &id, "k-secret")
        .await
        .to_string();
    let encrypted = m["encrypted_password"].as_str().unwrap();
    for secret in [
        "zak=",
        "start_url",
        "password",
        "Pa55word",
        "pwd=",
        encrypted,
    ] {
        assert!(!stored.contains(secret), "{secret} kept in {stored}");
    }
    assert!(stored.contains(&m["id"].to_string()), "{stored}");

    let again = send_keyed(&stack, &id, "k-secret", &body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), m, "the replay is the first answer");

    stack.sim.inject(Fault::Status {
        target: FaultTarget::Api,
        status: 503,
        times: None,
    });
    let degraded = send_keyed(&stack, &id, "k-secret", &body).await;
    stack.sim.clear_faults();
    assert_eq!(degraded.status, 201);
    assert_eq!(degraded.header("idempotent-replayed"), Some("true"));
    let d = degraded.json();
    assert_eq!((&d["id"], &d["topic"]), (&m["id"], &m["topic"]));
    assert!(
        d.get("start_url").is_none() && d.get("password").is_none(),
        "{d}"
    );
    assert!(!d.to_string().contains(encrypted), "{d}");
    assert!(
        d["join_url"]
            .as_str()
            .is_some_and(|u| m["join_url"].as_str().unwrap().starts_with(u)),
        "{d}"
    );
    assert!(
        d["warning"]
            .as_str()
            .is_some_and(|w| w.contains("start_url")),
        "{d}"
    );
    assert_eq!(stack.sim.meetings_count(), 1);
}

e2e_tests::on_both_backends!(
    local_idempotency_edges,
    aws_idempotency_edges;
    reused_key_after_an_unknown_outcome_is_refused,
    idempotent_answers_are_stored_without_secrets,
);

async fn concurrent_duplicates_case(backend: Backend) {
    let (stack, id) = connected(backend).await;
    let created_before = stack.sim.counters().meetings_created;
    let path = zoom_path(&id, "/meetings");
    let answers = join_all((0..20).map(|_| {
        let r = stack
            .backend(Method::POST, &path)
            .header("idempotency-key", "same-key-20")
            .json(&meeting_body("concurrent"));
        async move { Answer::of(r.send().await.unwrap()).await }
    }))
    .await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.bytes));
            a.json()["id"].to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one meeting for every duplicate");
    let fresh = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "exactly one answer is the original");
    assert_eq!(stack.sim.counters().meetings_created, created_before + 1);
    assert_eq!(stack.sim.meetings_count(), 1);
    assert_eq!(
        api_requests_to(&stack.sim, "POST", "/v2/users/me/meetings").len(),
        1
    );
    check_contract(&stack.sim);
}

e2e_tests::on_both_backends!(concurrent_duplicates_create_one_meeting_local, concurrent_duplicates_create_one_meeting_aws; concurrent_duplicates_case);

// ---- API base ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_base_honours_the_tokens_api_url() {
    let dir = tempfile::tempdir().unwrap();
    let connector = |vars: &[(&str, &str)]| {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config =
            Config::from_lookup(|k| vars.get(k).cloned(), Some("http://127.0.0.1:3000")).unwrap();
        let (ports, _) = ports_for(&config, None, dir.path());
        Connector::new(config, ports)
    };
    let implicit = connector(&[]);
    assert_eq!(implicit.api_base(None), "https://api.zoom.us/v2");
    assert_eq!(
        implicit.api_base(Some("https://api.zoom.us")),
        "https://api.zoom.us/v2"
    );
    assert_eq!(
        implicit.api_base(Some("https://api-eu.zoom.us")),
        "https://api-eu.zoom.us/v2"
    );
    assert_eq!(
        implicit.api_base(Some("https://api-eu.zoom.us/")),
        "https://api-eu.zoom.us/v2"
    );
    for ignored in [
        "https://evil.example.com",
        "https://api-eu.zoom.us.evil.com",
        "https://api.zoom.us@evil.com",
        "http://api.zoom.us",
        "https://zoom.us",
        "https://api-.zoom.us",
        "not a url",
        "",
    ] {
        assert_eq!(
            implicit.api_base(Some(ignored)),
            "https://api.zoom.us/v2",
            "{ignored}"
        );
    }
    let explicit = connector(&[("ZOOM_API_URL", "http://127.0.0.1:9/v2")]);
    assert_eq!(
        explicit.api_base(Some("https://api-eu.zoom.us")),
        "http://127.0.0.1:9/v2"
    );
    assert_eq!(explicit.api_base(None), "http://127.0.0.1:9/v2");
    // An explicit value equal to the default still wins.
    let explicit_default = connector(&[("ZOOM_API_URL", "https://api.zoom.us/v2")]);
    assert_eq!(
        explicit_default.api_base(Some("https://api-eu.zoom.us")),
        "https://api.zoom.us/v2"
    );
}

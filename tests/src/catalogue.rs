//! Helpers of the actions-catalogue tests (`tests/e2e/catalogue_*.rs`): calling a catalogue
//! route, connecting with chosen scopes, walking a list behind `cursor`, checking that a
//! refused request never reached Zoom (the contract check of what it sent is `crate::contract`).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;
use zoom_sim::{RecordedRequest, SimUser, ZoomSim};

use crate::answer::Answer;
use crate::stack::TestStack;

/// Every catalogue action as API.md names it: `(method, route below /connections/{id}/zoom,
/// operationId)`. Written out here, not read from the library, so a changed route shows.
pub const EXPECTED_ACTIONS: &[(&str, &str, &str)] = &[
    ("GET", "/me", "zoom_me"),
    ("GET", "/meetings", "list_meetings"),
    ("POST", "/meetings", "create_meeting"),
    ("GET", "/meetings/{meetingId}", "get_meeting"),
    ("PATCH", "/meetings/{meetingId}", "update_meeting"),
    ("DELETE", "/meetings/{meetingId}", "delete_meeting"),
    (
        "PUT",
        "/meetings/{meetingId}/status",
        "update_meeting_status",
    ),
    (
        "GET",
        "/meetings/{meetingId}/invitation",
        "get_meeting_invitation",
    ),
    ("GET", "/meetings/{meetingId}/livestream", "get_livestream"),
    (
        "PATCH",
        "/meetings/{meetingId}/livestream",
        "update_livestream",
    ),
    (
        "PATCH",
        "/meetings/{meetingId}/livestream/status",
        "update_livestream_status",
    ),
    (
        "GET",
        "/meetings/{meetingId}/registrants",
        "list_meeting_registrants",
    ),
    (
        "POST",
        "/meetings/{meetingId}/registrants",
        "add_meeting_registrant",
    ),
    (
        "PUT",
        "/meetings/{meetingId}/registrants/status",
        "update_meeting_registrant_status",
    ),
    (
        "DELETE",
        "/meetings/{meetingId}/registrants/{registrantId}",
        "delete_meeting_registrant",
    ),
    ("GET", "/past_meetings/{meetingId}", "get_past_meeting"),
    (
        "GET",
        "/past_meetings/{meetingId}/instances",
        "list_past_meeting_instances",
    ),
    (
        "GET",
        "/past_meetings/{meetingId}/participants",
        "list_past_meeting_participants",
    ),
    ("GET", "/recordings", "list_recordings"),
    (
        "GET",
        "/meetings/{meetingId}/recordings",
        "meeting_recordings",
    ),
    (
        "DELETE",
        "/meetings/{meetingId}/recordings",
        "delete_meeting_recordings",
    ),
    (
        "DELETE",
        "/meetings/{meetingId}/recordings/{recordingId}",
        "delete_meeting_recording",
    ),
    (
        "GET",
        "/meetings/{meetingId}/meeting_summary",
        "get_meeting_summary",
    ),
    ("GET", "/webinars", "list_webinars"),
    ("POST", "/webinars", "create_webinar"),
    ("GET", "/webinars/{webinarId}", "get_webinar"),
    ("PATCH", "/webinars/{webinarId}", "update_webinar"),
    ("DELETE", "/webinars/{webinarId}", "delete_webinar"),
    (
        "GET",
        "/webinars/{webinarId}/registrants",
        "list_webinar_registrants",
    ),
    (
        "POST",
        "/webinars/{webinarId}/registrants",
        "add_webinar_registrant",
    ),
];

/// Classic scopes that allow every catalogue action.
pub const ALL_SCOPES: &[&str] = &[
    "meeting:write",
    "recording:write",
    "user_info:read",
    "webinar:write",
    "meeting_summary:read",
];

/// `/connections/{id}/zoom{rest}`.
pub fn route(id: &str, rest: &str) -> String {
    format!("/connections/{id}/zoom{rest}")
}

/// One path segment percent-encoded (`/`, `+` and `=` included).
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// A catalogue call with the API key.
pub async fn act(
    stack: &TestStack,
    method: Method,
    id: &str,
    rest: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = stack.backend(method, &route(id, rest));
    if let Some(body) = body {
        request = request.json(&body);
    }
    Answer::of(request.send().await.expect("request sent")).await
}

/// A create with an `Idempotency-Key`.
pub async fn act_once(stack: &TestStack, id: &str, rest: &str, key: &str, body: &Value) -> Answer {
    let r = stack
        .backend(Method::POST, &route(id, rest))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    Answer::of(r).await
}

/// Asserts a 2xx with this status; returns the answer.
pub fn ok(answer: Answer, status: u16, what: &str) -> Answer {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    if status == 204 {
        assert!(answer.bytes.is_empty(), "{what}: a 204 has no body");
    } else {
        assert!(
            answer.content_type().starts_with("application/json"),
            "{what}: {}",
            answer.content_type()
        );
    }
    answer
}

/// The requests the simulator received on Zoom's REST API (`/v2/..`).
pub fn zoom_calls(sim: &ZoomSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v2/"))
        .collect()
}

/// The last REST request Zoom received.
pub fn last_zoom_call(sim: &ZoomSim) -> RecordedRequest {
    zoom_calls(sim).pop().expect("a request reached Zoom")
}

/// The query of a recorded request as pairs.
pub fn query_pairs(r: &RecordedRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(r.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Asserts that the answer is exactly what Zoom answered the last REST request.
pub fn passed_through(sim: &ZoomSim, answer: &Answer, what: &str) {
    let last = last_zoom_call(sim);
    let zoom: Value = serde_json::from_slice(&last.response_body).expect("Zoom answered JSON");
    assert_eq!(answer.body, zoom, "{what}: Zoom's JSON passes unchanged");
}

/// Asserts `400 validation_failed` and that Zoom received nothing; returns the problem.
pub async fn refused_before_zoom(
    stack: &TestStack,
    method: Method,
    id: &str,
    rest: &str,
    body: Option<Value>,
) -> Value {
    let before = zoom_calls(&stack.sim).len();
    let answer = act(stack, method.clone(), id, rest, body).await;
    let doc = answer.problem(400, "validation_failed");
    assert_eq!(
        zoom_calls(&stack.sim).len(),
        before,
        "{method} {rest}: a refused request reaches no Zoom endpoint"
    );
    doc
}

/// Asserts `403 zoom_scope_missing` (Zoom's 4711) naming a scope that starts with `scope`.
pub fn scope_missing(answer: &Answer, scope: &str) -> Value {
    let doc = answer.problem(403, "zoom_scope_missing");
    assert_eq!(doc["zoom"]["code"], 4711, "{doc}");
    assert!(
        doc["detail"].as_str().unwrap_or_default().contains(scope),
        "the problem names {scope}: {doc}"
    );
    doc
}

/// Another Zoom user of the simulator, made the one who signs in next.
pub fn sign_in_as(sim: &ZoomSim, user_id: &str) {
    sim.add_user(SimUser::new(
        user_id,
        &format!("acct-{user_id}"),
        &format!("{user_id}@example.com"),
        "Grace",
        user_id,
    ));
    sim.set_current_user(user_id);
}

/// Connects `user_id` (a new simulator user) with the platform app holding `scopes`.
pub async fn connect_user_with_scopes(stack: &TestStack, user_id: &str, scopes: &[&str]) -> String {
    sign_in_as(&stack.sim, user_id);
    stack
        .sim
        .set_app_scopes(zoom_sim::DEFAULT_CLIENT_ID, scopes);
    stack.connect_platform().await
}

/// A list walked behind `cursor`.
pub struct Walk {
    pub pages: Vec<Vec<Value>>,
}

impl Walk {
    pub fn items(&self) -> Vec<Value> {
        self.pages.iter().flatten().cloned().collect()
    }

    /// The items' `field` values, asserting each appears once.
    pub fn unique(&self, field: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        for item in self.items() {
            let value = match &item[field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert!(seen.insert(value.clone()), "{field} {value} listed twice");
        }
        seen
    }
}

/// Walks a list route (`rest` holds the first page's query) with `cursor` until
/// `next_cursor` is null. Each answer is `{ key: [..], "next_cursor" }`; pages after the
/// first send only `cursor`, and Zoom still gets the first page's filters and page size with
/// its `next_page_token`.
pub async fn walk(stack: &TestStack, id: &str, rest: &str, key: &str) -> Walk {
    let (path, _) = rest.split_once('?').unwrap_or((rest, ""));
    let mut pages = Vec::new();
    let mut next = rest.to_owned();
    let mut first_query: Option<Vec<(String, String)>> = None;
    for _ in 0..50 {
        let answer = ok(act(stack, Method::GET, id, &next, None).await, 200, &next);
        let body = answer.json();
        let members: HashSet<&str> = body
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            HashSet::from([key, "next_cursor"]),
            "{next}: {body}"
        );
        let sent = query_pairs(&last_zoom_call(&stack.sim));
        match &first_query {
            None => {
                assert!(
                    !sent.iter().any(|(k, _)| k == "next_page_token"),
                    "the first page asks Zoom for its first page"
                );
                first_query = Some(sent);
            }
            Some(first) => {
                for pair in first {
                    assert!(
                        sent.contains(pair),
                        "page {}: {pair:?} kept in {sent:?}",
                        pages.len() + 1
                    );
                }
                assert!(
                    sent.iter()
                        .any(|(k, v)| k == "next_page_token" && !v.is_empty()),
                    "a later page sends Zoom's token: {sent:?}"
                );
            }
        }
        pages.push(body[key].as_array().expect("an item array").clone());
        match &body["next_cursor"] {
            Value::Null => return Walk { pages },
            Value::String(cursor) => {
                assert!(!cursor.is_empty());
                next = format!("{path}?cursor={}", encode(cursor));
            }
            other => panic!("next_cursor {other}"),
        }
    }
    panic!("{rest}: the list did not end within 50 pages");
}

/// The first page's `next_cursor` goes stale when Zoom forgets its page token (15 minutes
/// on the simulator's clock): `400 cursor_expired`. A cursor we never issued is refused
/// before any call. Moves the simulator's clock: call last.
pub async fn cursor_expires(stack: &TestStack, id: &str, rest: &str, key: &str) {
    let (path, _) = rest.split_once('?').unwrap_or((rest, ""));
    let first = ok(act(stack, Method::GET, id, rest, None).await, 200, rest).json();
    assert!(!first[key].as_array().expect("items").is_empty());
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    refused_before_zoom(
        stack,
        Method::GET,
        id,
        &format!("{path}?cursor=bm90LWEtY3Vyc29y"),
        None,
    )
    .await;
    stack
        .sim
        .advance_clock(std::time::Duration::from_secs(16 * 60));
    let before = zoom_calls(&stack.sim).len();
    let doc = act(
        stack,
        Method::GET,
        id,
        &format!("{path}?cursor={}", encode(&cursor)),
        None,
    )
    .await
    .problem(400, "cursor_expired");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("cursor"),
        "{doc}"
    );
    let calls = zoom_calls(&stack.sim);
    assert_eq!(calls.len(), before + 1, "one call to Zoom, not retried");
    let last = calls.last().unwrap();
    assert_eq!(last.status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&last.response_body).unwrap()["code"],
        300
    );
}

/// The stored record of an HTTP `Idempotency-Key` of connection `id` (what is kept 24 h).
pub async fn idempotency_record(stack: &TestStack, id: &str, key: &str) -> Value {
    let record_key = format!("http|{id}|{}", zoom_connector::secret::sha256_hex(key));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    stack
        .connector
        .store
        .get_item(
            zoom_connector::ports::ItemKind::Idempotency,
            &record_key,
            now,
        )
        .await
        .unwrap()
        .expect("the idempotency record")
        .value
}

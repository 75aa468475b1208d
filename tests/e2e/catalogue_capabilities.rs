//! What a connection may do, from its granted scopes, on both backends: `capabilities` with
//! the platform app's default (classic) scopes and with granular-only apps, the default
//! actions a bring-your-own app's scopes leave out (`missing_actions` in the `Zoom Connection
//! Created` event and on the result page) and the 403 such an action answers; and
//! `/openapi.json` listing every catalogue operation with its `operationId`, each route
//! reaching the actions handler.

use std::collections::{BTreeMap, BTreeSet};

use e2e_tests::answer::Answer;
use e2e_tests::catalogue::{EXPECTED_ACTIONS, act, ok, scope_missing, sign_in_as};
use e2e_tests::stack::{Backend, FlowResult, StackOptions, TestStack};
use reqwest::Method;
use serde_json::{Value, json};

/// The actions the platform app's default scopes (`meeting:write recording:read
/// user_info:read`) allow: no webinar, summary or recording-delete action.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "zoom_me",
    "list_meetings",
    "create_meeting",
    "get_meeting",
    "update_meeting",
    "delete_meeting",
    "update_meeting_status",
    "get_meeting_invitation",
    "get_livestream",
    "update_livestream",
    "update_livestream_status",
    "list_meeting_registrants",
    "add_meeting_registrant",
    "update_meeting_registrant_status",
    "delete_meeting_registrant",
    "get_past_meeting",
    "list_past_meeting_instances",
    "list_past_meeting_participants",
    "list_recordings",
    "meeting_recordings",
];

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a name").to_owned())
        .collect()
}

/// The `Zoom Connection Created` events so far, by connection id.
async fn created_events(stack: &TestStack) -> BTreeMap<String, Value> {
    stack
        .events()
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "Zoom Connection Created")
        .map(|(_, d)| {
            (
                d["connection_id"].as_str().unwrap_or_default().to_owned(),
                d,
            )
        })
        .collect()
}

/// `missing_actions` of an event as `action -> scopes to add`.
fn missing(detail: &Value) -> BTreeMap<String, Vec<String>> {
    detail["missing_actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["action"].as_str().unwrap().to_owned(),
                names(&m["add_scopes"]),
            )
        })
        .collect()
}

/// Connects the simulator's current user with a bring-your-own app holding `scopes`.
async fn connect_byo(stack: &TestStack, client_id: &str, scopes: &[&str]) -> FlowResult {
    stack.sim.register_app(client_id, "byo-secret");
    stack.sim.allow_loopback_redirects(client_id);
    stack.sim.set_app_scopes(client_id, scopes);
    let s = stack
        .create_session(json!({ "auth_type": "byo_app", "client_id": client_id, "client_secret": "byo-secret" }))
        .await;
    let result = stack
        .run_flow(s["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(result.status, 200, "{}", result.body);
    assert_eq!(result.data("data-status").as_deref(), Some("success"));
    result
}

async fn capabilities(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;

    // The platform app's default scopes.
    let platform = stack.connect_platform().await;
    let conn = stack.connection(&platform).await;
    assert_eq!(names(&conn["capabilities"]), DEFAULT_CAPABILITIES, "{conn}");
    let listed = stack
        .backend(Method::GET, "/connections")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let item = listed["connections"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == platform.as_str()).cloned())
        .unwrap_or_else(|| panic!("listed: {listed}"));
    assert_eq!(
        item["capabilities"], conn["capabilities"],
        "the list shows the same"
    );

    // A granular-only bring-your-own app (as Zoom creates them since 2024), without any
    // recording scope: its capabilities follow the granular names.
    sign_in_as(&stack.sim, "sim-user-granular");
    let granular = connect_byo(
        &stack,
        "byo-granular",
        &[
            "user:read:user",
            "meeting:read:list_meetings",
            "meeting:write:meeting",
            "meeting:read:meeting",
        ],
    )
    .await;
    let gid = granular.connection_id().unwrap();
    assert_eq!(
        names(&stack.connection(&gid).await["capabilities"]),
        ["zoom_me", "list_meetings", "create_meeting", "get_meeting"]
    );
    // The missing default actions are on the result page, with the scopes to add.
    assert_eq!(
        granular.data("data-missing-actions").as_deref(),
        Some("update_meeting delete_meeting list_recordings meeting_recordings"),
        "{}",
        granular.body
    );
    // What the granted scopes allow works; the rest is Zoom's 403.
    ok(
        act(&stack, Method::GET, &gid, "/meetings", None).await,
        200,
        "list_meetings",
    );
    scope_missing(
        &act(&stack, Method::GET, &gid, "/recordings", None).await,
        "cloud_recording:",
    );
    scope_missing(
        &act(&stack, Method::DELETE, &gid, "/meetings/81234567890", None).await,
        "meeting:delete:meeting",
    );

    // A classic bring-your-own app without `recording:read`.
    sign_in_as(&stack.sim, "sim-user-classic");
    let classic = connect_byo(&stack, "byo-classic", &["meeting:write", "user:read"]).await;
    let cid = classic.connection_id().unwrap();
    let caps = names(&stack.connection(&cid).await["capabilities"]);
    let expected: Vec<&str> = DEFAULT_CAPABILITIES
        .iter()
        .copied()
        .filter(|a| !["list_recordings", "meeting_recordings"].contains(a))
        .collect();
    assert_eq!(caps, expected);
    assert_eq!(
        classic.data("data-missing-actions").as_deref(),
        Some("list_recordings meeting_recordings")
    );
    assert!(
        classic.body.contains("<code>recording:read</code>"),
        "{}",
        classic.body
    );
    scope_missing(
        &act(&stack, Method::GET, &cid, "/recordings", None).await,
        "recording:read",
    );
    scope_missing(
        &act(
            &stack,
            Method::GET,
            &cid,
            "/meetings/81234567890/recordings",
            None,
        )
        .await,
        "recording:read",
    );

    // The Created events say the same; the platform connection lacks nothing.
    let events = created_events(&stack).await;
    let event = |id: &str| {
        events
            .get(id)
            .unwrap_or_else(|| panic!("a Created event for {id}: {events:?}"))
    };
    assert!(
        event(&platform).get("missing_actions").is_none(),
        "{}",
        event(&platform)
    );
    let classic_missing = missing(event(&cid));
    assert_eq!(
        classic_missing
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["list_recordings", "meeting_recordings"]
    );
    for scopes in classic_missing.values() {
        assert_eq!(
            scopes,
            &["recording:read"],
            "classic names for a classic app"
        );
    }
    let granular_missing = missing(event(&gid));
    assert_eq!(
        granular_missing
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "update_meeting",
            "delete_meeting",
            "list_recordings",
            "meeting_recordings"
        ])
    );
    // A granular-only app can only add granular scopes: those are the names it is told.
    assert!(
        granular_missing["delete_meeting"].contains(&"meeting:delete:meeting".to_owned()),
        "{granular_missing:?}"
    );
    assert!(
        granular_missing["list_recordings"]
            .contains(&"cloud_recording:read:list_user_recordings".to_owned()),
        "{granular_missing:?}"
    );
    for (action, scopes) in &granular_missing {
        assert!(
            scopes.iter().all(|s| s.split(':').count() >= 3
                && !s.ends_with(":admin")
                && !s.ends_with(":master")),
            "{action}: {scopes:?}"
        );
    }
}

async fn openapi_lists_the_catalogue(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let r = stack
        .http
        .get(stack.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let spec: Value = r.json().await.unwrap();
    let mut zoom_ops = 0;
    for (method, route, name) in EXPECTED_ACTIONS {
        let path = format!("/connections/{{id}}/zoom{route}");
        let op = &spec["paths"][&path][method.to_ascii_lowercase()];
        assert_eq!(op["operationId"], *name, "{method} {path}: {op}");
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let in_route: Vec<&str> = std::iter::once("id")
            .chain(
                route
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')),
            )
            .collect();
        assert_eq!(params, in_route, "{name}");
        assert!(op["responses"].get("400").is_some(), "{name}");
        if *method == "POST" {
            assert!(
                op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key"),
                "{name} takes Idempotency-Key"
            );
        }
        // The route reaches the actions handler (an unknown connection is its 404).
        let concrete = route
            .replace("{meetingId}", "81234567890")
            .replace("{webinarId}", "81234567891")
            .replace("{registrantId}", "9tboDiHUQAeOnbmudzWa5g")
            .replace("{recordingId}", "d9ef0a1b");
        let mut request = stack.backend(
            Method::from_bytes(method.as_bytes()).unwrap(),
            &format!("/connections/conn_missing/zoom{concrete}"),
        );
        if op.get("requestBody").is_some() {
            request = request.json(&json!({ "email": "a@example.com", "first_name": "A", "action": "end",
                "stream_url": "rtmp://x", "stream_key": "k", "page_url": "https://x", "topic": "T" }));
        }
        let a = Answer::of(request.send().await.unwrap()).await;
        assert!(
            a.status == 404 && a.body["code"] == "connection_not_found"
                || a.status == 400 && a.body["code"] == "validation_failed",
            "{method} {concrete}: {} {}",
            a.status,
            a.text
        );
    }
    // Below `/zoom` there is nothing else (the proxy, also tagged `zoom`, is `/proxy/{path}`).
    for (path, item) in spec["paths"].as_object().unwrap() {
        if path.starts_with("/connections/{id}/zoom") {
            zoom_ops += item
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .count();
        }
    }
    assert_eq!(
        zoom_ops,
        EXPECTED_ACTIONS.len(),
        "no other operation below /zoom"
    );
    let ids: BTreeSet<&str> = EXPECTED_ACTIONS.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(ids.len(), 30);
}

e2e_tests::on_both_backends!(catalogue_capabilities_local, catalogue_capabilities_aws;
    capabilities, openapi_lists_the_catalogue);

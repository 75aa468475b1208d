//! The catalogue's recording actions on both backends: a meeting's recordings with download
//! links (Zoom's download token on every file, never the connection's OAuth token), the
//! date-range listing, and deleting recordings (a scope the default scopes lack); UUIDs
//! double-encoded toward Zoom, Zoom's errors, bad input refused before any call.

use e2e_tests::catalogue::{
    ALL_SCOPES, act, connect_user_with_scopes, encode, last_zoom_call, ok, passed_through,
    query_pairs, refused_before_zoom, scope_missing,
};
use e2e_tests::contract::check_contract;
use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use zoom_sim::SimRecording;

const SLASHED: &str = "/rEc//Uu+id==";

async fn oauth_token(stack: &TestStack, id: &str) -> String {
    stack
        .connector
        .read_connection_secret(id)
        .await
        .expect("the connection's secret")
        .access_token
        .expose()
        .to_owned()
}

async fn download_links(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let id = stack.connect_platform().await;
    let mid = zoom_sim::random_meeting_id();
    let rec = SimRecording::new("Board", datetime!(2026-03-02 10:00 UTC))
        .with_meeting_id(mid)
        .with_uuid(SLASHED);
    stack
        .sim
        .add_recording(zoom_sim::DEFAULT_USER_ID, rec.clone());
    let oauth = oauth_token(&stack, &id).await;
    let twice = encode(&encode(SLASHED));

    // Without links: Zoom's answer as it is; no token on any URL.
    let plain = ok(
        act(
            &stack,
            Method::GET,
            &id,
            &format!("/meetings/{mid}/recordings"),
            None,
        )
        .await,
        200,
        "meeting_recordings",
    );
    passed_through(&stack.sim, &plain, "meeting_recordings");
    assert_eq!(plain.json()["uuid"], SLASHED);
    for file in plain.json()["recording_files"].as_array().unwrap() {
        assert!(
            !file["download_url"]
                .as_str()
                .unwrap()
                .contains("access_token"),
            "{file}"
        );
        assert!(file.get("download_expires_at").is_none());
    }

    for segment in [mid.to_string(), encode(SLASHED), twice.clone()] {
        let before = OffsetDateTime::now_utc();
        let a = ok(
            act(
                &stack,
                Method::GET,
                &id,
                &format!("/meetings/{segment}/recordings?download_links=true&ttl=60"),
                None,
            )
            .await,
            200,
            &segment,
        );
        let after = OffsetDateTime::now_utc();
        let sent = last_zoom_call(&stack.sim);
        if segment != mid.to_string() {
            assert_eq!(sent.path, format!("/v2/meetings/{twice}/recordings"));
        }
        let q = query_pairs(&sent);
        assert!(
            q.contains(&("include_fields".into(), "download_access_token".into())),
            "{q:?}"
        );
        assert!(q.contains(&("ttl".into(), "60".into())), "{q:?}");
        let zoom: Value = serde_json::from_slice(&sent.response_body).unwrap();
        let download_token = zoom["download_access_token"]
            .as_str()
            .expect("Zoom's token");

        let body = a.json();
        assert!(
            body.get("download_access_token").is_none(),
            "the token is on the URLs only"
        );
        assert!(!a.text.contains(&oauth), "the OAuth token appears nowhere");
        assert_eq!(body["uuid"], SLASHED);
        let files = body["recording_files"].as_array().unwrap();
        assert_eq!(files.len(), rec.recording_files.len());
        for (file, zoom_file) in files
            .iter()
            .zip(zoom["recording_files"].as_array().unwrap())
        {
            let url = url::Url::parse(file["download_url"].as_str().unwrap()).unwrap();
            let tokens: Vec<String> = url
                .query_pairs()
                .filter(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert_eq!(tokens, [download_token], "{url}");
            assert!(
                url.as_str()
                    .starts_with(zoom_file["download_url"].as_str().unwrap()),
                "Zoom's URL plus the token: {url}"
            );
            let expires =
                OffsetDateTime::parse(file["download_expires_at"].as_str().unwrap(), &Rfc3339)
                    .expect("an RFC 3339 time");
            // 60 s from the moment the connector answered: between the request and the answer.
            assert!(
                expires >= before + time::Duration::seconds(59)
                    && expires <= after + time::Duration::seconds(61),
                "expires 60 s after the answer: {expires} (asked {before}, answered {after})"
            );
            // Everything else is Zoom's.
            for (k, v) in zoom_file.as_object().unwrap() {
                if k != "download_url" {
                    assert_eq!(&file[k], v, "{k}");
                }
            }
            // The link works with no credentials but its own.
            let got = reqwest::get(url.as_str()).await.unwrap();
            assert_eq!(got.status(), 200, "{url}");
            let text = got.text().await.unwrap();
            assert!(text.contains(file["id"].as_str().unwrap()), "{text}");
        }
    }

    // list_recordings: the date-range walk finds it.
    let listed = ok(
        act(
            &stack,
            Method::GET,
            &id,
            "/recordings?from=2026-03-01&to=2026-03-20",
            None,
        )
        .await,
        200,
        "list_recordings",
    )
    .json();
    assert!(
        listed["meetings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["uuid"] == SLASHED),
        "{listed}"
    );
    assert!(listed["next_cursor"].is_null());

    // Bad input: refused before any call.
    let r = format!("/meetings/{mid}/recordings");
    for query in [
        "?ttl=60",
        "?download_links=false&ttl=60",
        "?download_links=true&ttl=604801",
        "?download_links=true&ttl=-1",
        "?download_links=yes",
        "?include_fields=download_access_token",
        "?download_links=true&download_links=true",
    ] {
        refused_before_zoom(&stack, Method::GET, &id, &format!("{r}{query}"), None).await;
    }
    refused_before_zoom(
        &stack,
        Method::GET,
        &id,
        "/recordings?from=2026-02-30",
        None,
    )
    .await;

    // Zoom's error: no recording.
    let doc = act(
        &stack,
        Method::GET,
        &id,
        "/meetings/99999999999/recordings?download_links=true",
        None,
    )
    .await
    .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 3301, "{doc}");
    check_contract(&stack.sim);

    // The links stop working when their ttl has passed.
    let a = act(
        &stack,
        Method::GET,
        &id,
        &format!("{r}?download_links=true&ttl=60"),
        None,
    )
    .await;
    let url = a.json()["recording_files"][0]["download_url"]
        .as_str()
        .unwrap()
        .to_owned();
    stack.sim.advance_clock(std::time::Duration::from_secs(61));
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 401);
}

async fn recording_deletes(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    // The default scopes read recordings but cannot delete them.
    let reader = stack.connect_platform().await;
    let kept = SimRecording::new("Kept", datetime!(2026-03-02 10:00 UTC));
    stack
        .sim
        .add_recording(zoom_sim::DEFAULT_USER_ID, kept.clone());
    let kept_path = format!("/meetings/{}/recordings", kept.meeting_id);
    scope_missing(
        &act(&stack, Method::DELETE, &reader, &kept_path, None).await,
        "recording:write",
    );
    scope_missing(
        &act(
            &stack,
            Method::DELETE,
            &reader,
            &format!("{kept_path}/{}", kept.recording_files[0].id),
            None,
        )
        .await,
        "recording:write",
    );
    let still = ok(
        act(&stack, Method::GET, &reader, &kept_path, None).await,
        200,
        "kept",
    );
    assert_eq!(still.json()["recording_files"].as_array().unwrap().len(), 3);

    // A connection whose app may delete.
    let user = "sim-user-rec";
    let id = connect_user_with_scopes(&stack, user, ALL_SCOPES).await;
    let a = SimRecording::new("A", datetime!(2026-03-03 10:00 UTC)).with_uuid(SLASHED);
    let b = SimRecording::new("B", datetime!(2026-03-04 10:00 UTC));
    stack.sim.add_recording(user, a.clone());
    stack.sim.add_recording(user, b.clone());
    let twice = encode(&encode(SLASHED));
    let a_path = format!("/meetings/{}/recordings", encode(SLASHED));

    // delete_meeting_recording: one file to the trash, by UUID.
    let file = &a.recording_files[0].id;
    ok(
        act(
            &stack,
            Method::DELETE,
            &id,
            &format!("{a_path}/{file}?action=trash"),
            None,
        )
        .await,
        204,
        "delete one",
    );
    let sent = last_zoom_call(&stack.sim);
    assert_eq!(sent.path, format!("/v2/meetings/{twice}/recordings/{file}"));
    assert_eq!(sent.query, "action=trash");
    let left = ok(
        act(&stack, Method::GET, &id, &a_path, None).await,
        200,
        "left",
    )
    .json();
    let ids: Vec<&str> = left["recording_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&file.as_str()));
    let doc = act(
        &stack,
        Method::DELETE,
        &id,
        &format!("{a_path}/{file}"),
        None,
    )
    .await
    .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 3301, "{doc}");

    // delete_meeting_recordings: all of A for good (by UUID), all of B to the trash (by id).
    ok(
        act(
            &stack,
            Method::DELETE,
            &id,
            &format!("{a_path}?action=delete"),
            None,
        )
        .await,
        204,
        "delete all",
    );
    assert_eq!(
        last_zoom_call(&stack.sim).path,
        format!("/v2/meetings/{twice}/recordings")
    );
    let b_path = format!("/meetings/{}/recordings", b.meeting_id);
    ok(
        act(&stack, Method::DELETE, &id, &b_path, None).await,
        204,
        "trash all",
    );
    for path in [&a_path, &b_path] {
        let doc = act(&stack, Method::GET, &id, path, None)
            .await
            .problem(404, "zoom_not_found");
        assert_eq!(doc["zoom"]["code"], 3301, "{path}: {doc}");
    }
    let doc = act(
        &stack,
        Method::DELETE,
        &id,
        "/meetings/99999999999/recordings",
        None,
    )
    .await
    .problem(404, "zoom_not_found");
    assert_eq!(doc["zoom"]["code"], 3301, "{doc}");

    // Bad input: refused before any call; the kept recording is untouched.
    for rest in [
        format!("{kept_path}?action=shred"),
        format!("{kept_path}?action=trash&action=delete"),
        format!("{kept_path}/{}?colour=red", kept.recording_files[1].id),
        format!("{kept_path}/..%2F..%2Fusers"),
    ] {
        refused_before_zoom(&stack, Method::DELETE, &id, &rest, None).await;
    }
    assert_eq!(
        act(&stack, Method::GET, &reader, &kept_path, None)
            .await
            .json()["recording_files"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    check_contract(&stack.sim);
}

e2e_tests::on_both_backends!(catalogue_recordings_local, catalogue_recordings_aws;
    download_links, recording_deletes);

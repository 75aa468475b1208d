//! The local stack as a person runs it (`make dev`): the real binary, its `ready:` line, the
//! built-in simulator, a connect flow clicked through the consent page, a meeting event
//! through the in-process queue, a sweep, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_stack_serves_the_whole_flow_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoom-connector-local"))
        .args(["--port", "0", "--data-dir"])
        .arg(data.path())
        .env_remove("ZOOM_CLIENT_ID")
        .env_remove("CONNECTOR_PUBLIC_URL")
        .env_remove("CONNECTOR_API_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zoom-connector-local");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let base = ready
        .strip_prefix("ready: ")
        .unwrap_or_else(|| panic!("first line must be `ready: URL`, got {ready:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"));
    let second = lines.next().unwrap().unwrap();
    let key = std::fs::read_to_string(data.path().join("api-key")).unwrap();
    assert!(
        second.contains(key.trim()) && second.contains("connect_url"),
        "{second}"
    );
    let connect_url = second
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .to_owned();

    // The third line: the connect helper's demo, on the other loopback name (another origin).
    let third = lines.next().unwrap().unwrap();
    let demo = third
        .strip_prefix("demo: ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("third line must be `demo: URL ...`, got {third:?}"))
        .to_owned();
    assert!(
        demo.starts_with("http://localhost:") && demo.ends_with("/local/demo"),
        "{demo}"
    );

    let http = no_redirects();
    let page = http.get(&demo).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains(&format!("script-src 'self' {base}")), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-connect-url=\"http://127.0.0.1:") && html.contains("demo.js"),
        "{html}"
    );
    let demo_origin = demo.trim_end_matches("/local/demo");
    let helper = http
        .get(format!("{base}/connect.js"))
        .header("origin", demo_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(helper.status(), 200);
    assert_eq!(helper.headers()["access-control-allow-origin"], demo_origin);
    let health: serde_json::Value = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, serde_json::json!({ "status": "ok" }));
    assert_eq!(
        http.get(format!("{base}/connections"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // The printed connect URL: choice page → platform app → the simulator's consent page → Allow.
    let session = url::Url::parse(&connect_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "session")
        .unwrap()
        .1
        .into_owned();
    let page = http.get(&connect_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let r = http
        .post(format!("{base}/connect"))
        .form(&[("session", session.as_str()), ("auth_type", "platform_app")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = location(&r);
    let consent = http
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("id=\"allow\""));
    let mut fields: Vec<(String, String)> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    fields.push(("decision".into(), "allow".into()));
    let sim_base = authorize.split("/oauth/").next().unwrap().to_owned();
    let decided = http
        .post(format!("{sim_base}/oauth/authorize/decision"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let callback = http
        .get(location(&decided))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 200);
    let html = callback.text().await.unwrap();
    let id = html
        .split("data-connection-id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let auth = format!("Bearer {}", key.trim());
    let me = http
        .get(format!("{base}/connections/{id}/zoom/me"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // A meeting event through the in-process queue.
    let event = serde_json::json!({ "idempotency_key": "smoke-1", "connection_id": id, "meeting": { "topic": "Smoke", "type": 2, "start_time": "2026-12-01T10:00:00Z", "duration": 15 } });
    let r = http
        .post(format!("{base}/local/events/meetings"))
        .header("authorization", &auth)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut created = false;
    for _ in 0..50 {
        let events: serde_json::Value = http
            .get(format!("{base}/local/events"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail_type"] == "Zoom Meeting Created")
        {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(created, "the queued event created a meeting");

    let sweep: serde_json::Value = http
        .post(format!("{base}/local/refresh/run"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for field in ["scanned", "refreshed", "skipped", "failed"] {
        assert!(sweep[field].is_u64(), "sweep report lacks {field}: {sweep}");
    }

    // Zoom events the simulator sends to the stack's webhook route become triggers on the bus.
    for event in ["meeting.started", "recording.completed"] {
        let sent: serde_json::Value = http
            .post(format!("{sim_base}/_sim/webhooks/events"))
            .json(&serde_json::json!({ "event": event, "user_id": "sim-user-1" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(sent["status"], 200, "{sent}");
    }
    let events: serde_json::Value = http
        .get(format!("{base}/local/events"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let triggers: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail_type"] == "Zoom Webhook Event")
        .collect();
    assert_eq!(triggers.len(), 2, "{events}");
    assert_eq!(triggers[0]["detail"]["event"], "meeting.started");
    assert_eq!(triggers[1]["detail"]["event"], "recording.completed");
    assert!(
        triggers
            .iter()
            .all(|t| t["detail"]["connection_id"] == id.as_str())
    );

    // The counters of what happened, by metric and outcome (API key required).
    let unauthorized = http
        .get(format!("{base}/local/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let metrics: serde_json::Value = http
        .get(format!("{base}/local/metrics"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics["namespace"], "ZoomConnector/local");
    let count = |name: &str, value: Option<&str>| {
        metrics["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name && m["value"].as_str() == value)
            .and_then(|m| m["count"].as_f64())
            .unwrap_or(0.0)
    };
    assert!(count("ZoomResponses", Some("2xx")) >= 2.0, "{metrics}");
    assert!(count("MeetingEvents", Some("settled")) >= 1.0, "{metrics}");
    assert!(
        count("EventsPublished", Some("published")) >= 2.0,
        "{metrics}"
    );
    assert!(count("ActionLatency", None) >= 1.0, "{metrics}");

    // The data dir is private.
    use std::os::unix::fs::PermissionsExt;
    for file in ["connector.db", "api-key"] {
        let mode = std::fs::metadata(data.path().join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("the local stack did not stop on SIGTERM");
}

/// A public URL with a path would send browsers to routes this stack does not serve there:
/// refused at start with a message that says why, before anything listens.
#[test]
fn a_public_url_with_a_path_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zoom-connector-local"))
        .args(["--port", "0", "--data-dir"])
        .arg(data.path())
        .env_remove("ZOOM_CLIENT_ID")
        .env("CONNECTOR_PUBLIC_URL", "http://127.0.0.1:3000/zoom")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run zoom-connector-local");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("ready:"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CONNECTOR_PUBLIC_URL") && stderr.contains("/zoom"),
        "{stderr}"
    );
}

//! A real browser (Debian's headless Chromium through chromedriver) clicks through the whole
//! connect flow: a parent page of the integration UI opens the connect URL in a popup, the
//! person picks "Bring your own OAuth 2.0 app", types the app's credentials, presses Connect,
//! presses Allow on the simulator's consent page, and the parent page receives the success
//! postMessage with the connection id.
//!
//! Needs `chromium` and `chromedriver` (installed by `make test`; paths from `CHROMIUM` and
//! `CHROMEDRIVER`). Missing ones fail the test with instructions, never skip it.
//! `UPDATE_SCREENSHOTS=1` rewrites the screenshots under docs/img/.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::response::Html;
use e2e_tests::deployed::{DeployedOptions, DeployedStack};
use e2e_tests::stack::{Backend, StackOptions, TestStack};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(env: &str, default: &str) -> String {
    let path = std::env::var(env)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: install Debian's chromium and chromium-driver (`make test` does), or set {env}"
    );
    path
}

async fn start_browser() -> (Driver, Client) {
    start_browser_with(false).await
}

/// `popup_blocking`: keep Chromium's popup blocker on (chromedriver turns it off by default).
async fn start_browser_with(popup_blocking: bool) -> (Driver, Client) {
    let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = tool("CHROMIUM", "/usr/bin/chromium");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--window-size=1000,900".to_owned(),
        format!("--user-data-dir={}", driver._profile.path().display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        if popup_blocking {
            json!({ "binary": chromium, "args": args, "excludeSwitches": ["disable-popup-blocking"] })
        } else {
            json!({ "binary": chromium, "args": args })
        },
    );
    let mut last_error = None;
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => {
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("could not start a browser session: {last_error:?}");
}

/// The integration UI's page: opens the connect URL in a popup and shows what it is told.
fn parent_page(connect_url: &str, connector_origin: &str) -> String {
    format!(
        r#"<!doctype html><html><body>
<button id="open">Connect Zoom</button><pre id="result">waiting</pre>
<script>
document.getElementById('open').onclick = function () {{ window.open({url}, 'zoom-connect', 'width=600,height=700'); }};
window.addEventListener('message', function (e) {{
  if (e.origin !== {origin}) return;
  document.getElementById('result').textContent = JSON.stringify(e.data);
}});
</script></body></html>"#,
        url = serde_json::to_string(connect_url).unwrap(),
        origin = serde_json::to_string(connector_origin).unwrap(),
    )
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let dir = if std::env::var("UPDATE_SCREENSHOTS").is_ok() {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/img"))
    } else {
        std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/screenshots"
        ))
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

async fn wait_for_window_count(client: &Client, n: usize) -> Vec<fantoccini::wd::WindowHandle> {
    for _ in 0..100 {
        let windows = client.windows().await.unwrap();
        if windows.len() == n {
            return windows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {n} browser windows");
}

/// Serves the integration UI's parent pages (path, page) on `listener`.
fn serve_ui(
    listener: tokio::net::TcpListener,
    pages: Vec<(&'static str, String)>,
) -> tokio::task::JoinHandle<()> {
    let mut app = axum::Router::new();
    for (path, page) in pages {
        app = app.route(path, axum::routing::get(move || async move { Html(page) }));
    }
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    })
}

/// A UI origin other than the connector's (localhost vs 127.0.0.1), with its listener.
async fn ui_origin() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    (listener, origin)
}

/// The person's part: on the UI page, open the popup, pick "Bring your own" and type the app's
/// credentials when `byo` is given (a platform-app session goes straight to Zoom), press Allow
/// on the simulator's consent page; returns the message the parent page received.
async fn connect_in_a_popup(
    client: &Client,
    ui_url: &str,
    byo: Option<(&str, &str)>,
    screenshots: bool,
) -> serde_json::Value {
    client.goto(ui_url).await.unwrap();
    let (parent, popup) = open_popup(client, "#open").await;
    client.switch_to_window(popup).await.unwrap();

    if let Some((client_id, client_secret)) = byo {
        client
            .wait()
            .for_element(Locator::Css("#auth-byo"))
            .await
            .unwrap();
        if screenshots {
            screenshot(client, "choice-page.png").await;
        }
        click(client, "#auth-byo").await;
        for (field, value) in [("#client_id", client_id), ("#client_secret", client_secret)] {
            client
                .find(Locator::Css(field))
                .await
                .unwrap()
                .send_keys(value)
                .await
                .unwrap();
        }
        client
            .find(Locator::Css("#connect"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    // The simulator's consent page.
    click(client, "#allow").await;

    // The result page posts to the opener and closes itself.
    wait_for_window_count(client, 1).await;
    client.switch_to_window(parent).await.unwrap();
    let message = page_result(client, &["waiting"]).await;
    assert_eq!(message["type"], "zoom-connector");
    assert_eq!(message["status"], "success");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn byo_connect_in_a_popup_posts_the_connection_to_the_parent_page() {
    let (ui_listener, ui_origin) = ui_origin().await;
    let stack = TestStack::start(
        StackOptions::new(Backend::Local).env("CONNECTOR_UI_ORIGINS", ui_origin.clone()),
    )
    .await;
    stack.sim.set_auto_approve(false);
    stack.sim.register_app("browser-client", "browser-secret");
    stack.sim.allow_loopback_redirects("browser-client");
    let session = stack.create_session(json!({})).await;
    let page = parent_page(session["connect_url"].as_str().unwrap(), &stack.base_url);
    let ui = serve_ui(ui_listener, vec![("/", page)]);

    let (_driver, client) = start_browser().await;
    let message = connect_in_a_popup(
        &client,
        &format!("{ui_origin}/"),
        Some(("browser-client", "browser-secret")),
        true,
    )
    .await;
    let id = message["connection_id"].as_str().unwrap();
    let conn: serde_json::Value = stack.connection(id).await;
    assert_eq!(
        (conn["status"].as_str(), conn["client_id"].as_str()),
        (Some("active"), Some("browser-client"))
    );

    // An error page, as a person sees it (admin pre-approval required).
    stack.sim.set_auto_approve(true);
    stack.sim.set_require_preapproval("sim-account-1", true);
    let failing = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    client
        .goto(failing["connect_url"].as_str().unwrap())
        .await
        .unwrap();
    let body = client
        .wait()
        .for_element(Locator::Css("body[data-status=error]"))
        .await
        .unwrap();
    assert_eq!(
        body.attr("data-error-code").await.unwrap().as_deref(),
        Some("admin_preapproval_required")
    );
    screenshot(&client, "error-admin-preapproval.png").await;

    client.close().await.ok();
    ui.abort();
}

/// The same person, deployed: every page and redirect goes through the API Gateway front to
/// the real connect and callback binaries (cookies in the event's `cookies` array, the BYO
/// form base64-encoded), with the platform app and with a bring-your-own app.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_app_types_connect_in_a_browser_through_api_gateway() {
    let (ui_listener, ui_origin) = ui_origin().await;
    let stack = DeployedStack::start_with(DeployedOptions::default().ui_origins(&ui_origin)).await;
    stack.sim.set_auto_approve(false);
    stack.sim.register_app("browser-client", "browser-secret");
    stack.sim.allow_loopback_redirects("browser-client");
    let platform = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let byo = stack.create_session(json!({})).await;
    let ui = serve_ui(
        ui_listener,
        vec![
            (
                "/platform",
                parent_page(platform["connect_url"].as_str().unwrap(), &stack.base_url),
            ),
            (
                "/byo",
                parent_page(byo["connect_url"].as_str().unwrap(), &stack.base_url),
            ),
        ],
    );
    let (_driver, client) = start_browser().await;
    let mut seen = Vec::new();
    for (path, app) in [
        ("/platform", None),
        ("/byo", Some(("browser-client", "browser-secret"))),
    ] {
        let message = connect_in_a_popup(&client, &format!("{ui_origin}{path}"), app, false).await;
        seen.push(message["connection_id"].as_str().unwrap().to_owned());
    }
    ui.abort();
    for (id, (auth_type, client_id)) in seen.iter().zip([
        ("platform_app", zoom_sim::DEFAULT_CLIENT_ID),
        ("byo_app", "browser-client"),
    ]) {
        let conn: serde_json::Value = stack.connection(id).await;
        assert_eq!(conn["status"], "active", "{conn}");
        assert_eq!(conn["auth_type"], auth_type, "{conn}");
        assert_eq!(conn["client_id"], client_id, "{conn}");
    }
    client.close().await.ok();
    stack.assert_aws_calls_allowed_by_iam();
}

/// The integration UI's origin serving the connect helper's demo page (packages/zoom-connect):
/// `/demo` shows the connect URL last stored in the returned cell, under the page's strict CSP.
fn serve_demo(
    listener: tokio::net::TcpListener,
    connector_url: String,
) -> (
    std::sync::Arc<std::sync::Mutex<String>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::http::header;
    use zoom_connector::http::pages;
    let current = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let cell = current.clone();
    let app = axum::Router::new()
        .route(
            "/demo",
            axum::routing::get(move || {
                let connect_url = cell.lock().unwrap().clone();
                let connector_url = connector_url.clone();
                async move {
                    let (html, csp) = pages::connect_demo_page(&connector_url, &connect_url);
                    ([(header::CONTENT_SECURITY_POLICY, csp)], Html(html))
                }
            }),
        )
        .route(
            "/demo.js",
            axum::routing::get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    pages::CONNECT_DEMO_JS,
                )
            }),
        );
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (current, handle)
}

/// Opens the demo page (with `query`) for `connect_url`, clicks "Connect Zoom" and returns the
/// parent window and the popup.
async fn open_demo(
    client: &Client,
    cell: &std::sync::Mutex<String>,
    demo_url: &str,
    connect_url: &str,
) -> (fantoccini::wd::WindowHandle, fantoccini::wd::WindowHandle) {
    *cell.lock().unwrap() = connect_url.to_owned();
    client.goto(demo_url).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("body[data-ready=true]"))
        .await
        .unwrap();
    open_popup(client, "#connect").await
}

/// Clicks `button` on the current page, which opens the popup: `(page, popup)`.
async fn open_popup(
    client: &Client,
    button: &str,
) -> (fantoccini::wd::WindowHandle, fantoccini::wd::WindowHandle) {
    let parent = client.window().await.unwrap();
    click(client, button).await;
    let windows = wait_for_window_count(client, 2).await;
    let popup = windows.into_iter().find(|w| *w != parent).unwrap();
    (parent, popup)
}

/// What the page's `#result` shows once it is no longer one of `pending`, as JSON (the
/// parent page's postMessage, or the demo's `{ ok, connectionId | code, message }`).
async fn page_result(client: &Client, pending: &[&str]) -> serde_json::Value {
    let mut text = String::new();
    for _ in 0..150 {
        text = client
            .find(Locator::Css("#result"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !pending.contains(&text.as_str()) {
            return serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("the page did not get a result: {text}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page did not settle: {text}");
}

/// What the demo page shows once the helper's `open()` settled.
async fn demo_result(client: &Client) -> serde_json::Value {
    page_result(client, &["waiting", "connecting"]).await
}

async fn click(client: &Client, css: &str) {
    client
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The connect helper (`GET /connect.js`) imported by a page of another origin under a strict
/// CSP: success (a message forged by the page's own origin is ignored), each rejection the
/// page reports, the person closing the popup, and a popup that lost `window.opener` (the
/// helper learns the outcome from `GET /connect/status`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_connect_helper_settles_with_the_outcome_of_the_popup() {
    let (ui_listener, ui_origin) = ui_origin().await;
    let stack = TestStack::start(
        StackOptions::new(Backend::Local).env("CONNECTOR_UI_ORIGINS", ui_origin.clone()),
    )
    .await;
    let (cell, ui) = serve_demo(ui_listener, stack.base_url.clone());
    let (_driver, client) = start_browser().await;
    let demo = format!("{ui_origin}/demo");
    let platform = json!({ "auth_type": "platform_app" });
    stack.sim.set_auto_approve(false);

    // Success; meanwhile the page's own origin posts a forged success to itself.
    let session = stack.create_session(platform.clone()).await;
    let (parent, popup) = open_demo(
        &client,
        &cell,
        &demo,
        session["connect_url"].as_str().unwrap(),
    )
    .await;
    client
        .execute(
            "window.postMessage({type:'zoom-connector',status:'success',connection_id:'forged'}, '*'); return true;",
            vec![],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let text = client
        .find(Locator::Css("#result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "connecting", "a forged message settled the helper");
    client.switch_to_window(popup).await.unwrap();
    click(&client, "#allow").await;
    wait_for_window_count(&client, 1).await;
    client.switch_to_window(parent).await.unwrap();
    let result = demo_result(&client).await;
    assert_eq!(result["ok"], true, "{result}");
    let id = result["connectionId"].as_str().unwrap();
    assert!(id.starts_with("conn_"), "{result}");
    let conn: serde_json::Value = stack.connection(id).await;
    assert_eq!(conn["status"], "active");

    // The person presses Decline: the page's code.
    let session = stack.create_session(platform.clone()).await;
    let (parent, popup) = open_demo(
        &client,
        &cell,
        &demo,
        session["connect_url"].as_str().unwrap(),
    )
    .await;
    client.switch_to_window(popup).await.unwrap();
    click(&client, "#decline").await;
    client
        .wait()
        .for_element(Locator::Css("body[data-status=error]"))
        .await
        .unwrap();
    client.close_window().await.unwrap();
    client.switch_to_window(parent).await.unwrap();
    let result = demo_result(&client).await;
    assert_eq!(
        (result["ok"].clone(), result["code"].clone()),
        (json!(false), json!("access_denied")),
        "{result}"
    );

    // Admin pre-approval required: the page's code, the error page left open to read.
    stack.sim.set_auto_approve(true);
    stack.sim.set_require_preapproval("sim-account-1", true);
    let session = stack.create_session(platform.clone()).await;
    let (parent, popup) = open_demo(
        &client,
        &cell,
        &demo,
        session["connect_url"].as_str().unwrap(),
    )
    .await;
    let result = demo_result(&client).await;
    assert_eq!(result["code"], "admin_preapproval_required", "{result}");
    assert!(
        result["message"].as_str().unwrap().contains("admin"),
        "{result}"
    );
    client.switch_to_window(popup).await.unwrap();
    client.close_window().await.unwrap();
    client.switch_to_window(parent).await.unwrap();
    stack.sim.set_require_preapproval("sim-account-1", false);
    stack.sim.set_auto_approve(false);

    // The person closes the popup at Zoom's consent page.
    let session = stack.create_session(platform.clone()).await;
    let (parent, popup) = open_demo(
        &client,
        &cell,
        &format!("{demo}?closed_grace_ms=1500"),
        session["connect_url"].as_str().unwrap(),
    )
    .await;
    client.switch_to_window(popup).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("#allow"))
        .await
        .unwrap();
    client.close_window().await.unwrap();
    client.switch_to_window(parent).await.unwrap();
    let result = demo_result(&client).await;
    assert_eq!(result["code"], "closed", "{result}");

    // The popup lost window.opener (as under Zoom's Cross-Origin-Opener-Policy): no message
    // comes, the result page stays open; the helper reads the outcome from the status route.
    let session = stack.create_session(platform.clone()).await;
    let (parent, popup) = open_demo(
        &client,
        &cell,
        &format!("{demo}?open_poll_ms=500"),
        session["connect_url"].as_str().unwrap(),
    )
    .await;
    client.switch_to_window(popup.clone()).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("#allow"))
        .await
        .unwrap();
    client
        .execute("window.opener = null; return true;", vec![])
        .await
        .unwrap();
    click(&client, "#allow").await;
    client
        .wait()
        .for_element(Locator::Css("body[data-status=success]"))
        .await
        .unwrap();
    client.switch_to_window(parent.clone()).await.unwrap();
    let result = demo_result(&client).await;
    assert_eq!(result["ok"], true, "{result}");
    assert!(
        result["connectionId"]
            .as_str()
            .unwrap()
            .starts_with("conn_")
    );
    // (The result page without an opener stays open: "You can close this window.")
    client.switch_to_window(popup).await.unwrap();
    client.close_window().await.unwrap();
    client.switch_to_window(parent).await.unwrap();

    // Nothing happens in time: the helper closes the popup and rejects with `timeout`.
    let session = stack.create_session(platform.clone()).await;
    open_demo(
        &client,
        &cell,
        &format!("{demo}?timeout_ms=1500"),
        session["connect_url"].as_str().unwrap(),
    )
    .await;
    let result = demo_result(&client).await;
    assert_eq!(result["code"], "timeout", "{result}");
    wait_for_window_count(&client, 1).await;

    client.close().await.ok();
    ui.abort();
}

/// `open()` called outside a click, with Chromium's popup blocker on: `popup_blocked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_connect_helper_reports_a_blocked_popup() {
    let (ui_listener, ui_origin) = ui_origin().await;
    let stack = TestStack::start(
        StackOptions::new(Backend::Local).env("CONNECTOR_UI_ORIGINS", ui_origin.clone()),
    )
    .await;
    let (cell, ui) = serve_demo(ui_listener, stack.base_url.clone());
    let session = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    *cell.lock().unwrap() = session["connect_url"].as_str().unwrap().to_owned();
    let (_driver, client) = start_browser_with(true).await;
    client.goto(&format!("{ui_origin}/demo")).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("body[data-ready=true]"))
        .await
        .unwrap();
    // No user gesture: a timer long after the page loaded.
    let code = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const b = document.body.dataset;
             import(b.connector + '/connect.js').then((m) => setTimeout(() => {
               m.open({ connectUrl: b.connectUrl }).then(() => done('resolved'), (e) => done(e.code));
             }, 50));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(code, json!("popup_blocked"));
    assert_eq!(client.windows().await.unwrap().len(), 1);
    client.close().await.ok();
    ui.abort();
}

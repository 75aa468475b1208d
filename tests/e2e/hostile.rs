//! Hostile input through the real routers: oversized heads, malformed bodies, forms and query
//! strings, CRLF where a header is made, open redirects through `return_url`, arbitrary
//! session tokens and OAuth states, arbitrary webhook deliveries, and odd path segments.
//! Whatever comes in, the answer is a 4xx (problem+json on the JSON routes, a page on the
//! browser routes), never a 5xx or a dropped connection, and nothing is stored.
//!
//! (Proxy path traversal, forged and replayed states, forged webhooks and body sizes have
//! their own tests in actions.rs, connect.rs and webhooks.rs; the parsers have property tests
//! beside them in shared/.)

use e2e_tests::answer::Answer;
use e2e_tests::stack::{Backend, StackOptions, TestStack};
use reqwest::Method;
use serde_json::{Value, json};
use zoom_connector::app::webhooks::signature;
use zoom_connector::secret::SecretString;

const UI: &str = "https://ui.example.test";

async fn stack() -> TestStack {
    TestStack::start(StackOptions::new(Backend::Local).env("CONNECTOR_UI_ORIGINS", UI)).await
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    Answer::of(
        request
            .send()
            .await
            .expect("an answer, not a dropped connection"),
    )
    .await
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn connection_count(stack: &TestStack) -> usize {
    let a = send(stack.backend(Method::GET, "/connections")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()["connections"].as_array().unwrap().len()
}

/// A tiny deterministic generator (the e2e crate has no proptest): xorshift64*.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A string of up to `max` characters drawn from printable ASCII, controls and a few
    /// multi-byte characters.
    fn string(&mut self, max: usize) -> String {
        const EXTRA: [char; 8] = ['é', 'ß', '中', '\u{202e}', '\u{0}', '\r', '\n', '😀'];
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len)
            .map(|_| match self.next() % 10 {
                0 => EXTRA[(self.next() % EXTRA.len() as u64) as usize],
                _ => char::from(b' ' + (self.next() % 95) as u8),
            })
            .collect()
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A request written byte for byte (an HTTP client would resolve `%2e%2e` segments itself).
/// Returns the status and the raw answer.
async fn raw_request(stack: &TestStack, method: &str, target: &str, json: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = stack.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        stack.api_key,
        json.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer to {method} {target}: {text:?}"));
    (status, text)
}

/// Strings a hostile caller would try first, then generated ones.
fn hostile_strings(noise: &mut Noise, generated: usize) -> Vec<String> {
    let mut all: Vec<String> = [
        "",
        " ",
        "null",
        "undefined",
        "%00",
        "\u{0}",
        "../../etc/passwd",
        "..%2f..%2f",
        "' OR '1'='1",
        "{{7*7}}",
        "${jndi:ldap://127.0.0.1/x}",
        "<script>alert(1)</script>",
        "\r\nSet-Cookie: evil=1",
        "%0d%0aSet-Cookie:%20evil=1",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "😀😀😀",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    all.push("x".repeat(5000));
    all.extend((0..generated).map(|_| noise.string(80)));
    all
}

// ---- oversized request heads ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_heads_are_refused_with_4xx() {
    let stack = stack().await;
    let big = "a".repeat(100 * 1024);
    // One 100 KB header, on every kind of route: 431 problem+json, before anything runs.
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/connections"),
        (Method::GET, "/connect?session=x"),
        (Method::GET, "/oauth/callback?state=x&code=y"),
        (Method::POST, "/webhooks/zoom"),
        (Method::GET, "/no/such/route"),
    ] {
        let a = send(
            stack
                .backend(method.clone(), path)
                .header("x-padding", big.as_str()),
        )
        .await;
        a.problem(431, "headers_too_large");
    }
    // A 100 KB cookie: the same.
    let a = send(
        stack
            .http
            .get(stack.url("/healthz"))
            .header("cookie", format!("zc_bind_x={big}")),
    )
    .await;
    a.problem(431, "headers_too_large");
    // A large but sane head still works (many cookies of other apps on localhost).
    let a = send(
        stack
            .http
            .get(stack.url("/healthz"))
            .header("cookie", format!("other={}", "c".repeat(12 * 1024))),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // A 20 KB request target: 414 problem+json.
    let a = send(stack.backend(
        Method::GET,
        &format!("/connections?cursor={}", "a".repeat(20 * 1024)),
    ))
    .await;
    a.problem(414, "uri_too_long");

    // Beyond hyper's own buffer (about 400 KB), or more than 100 headers, hyper answers 431
    // itself (without a body) or closes the connection: never a 5xx.
    let huge = "a".repeat(600 * 1024);
    let outcome = stack
        .http
        .get(stack.url("/healthz"))
        .header("x-padding", huge.as_str())
        .send()
        .await;
    if let Ok(r) = outcome {
        assert_eq!(r.status(), 431);
    }
    let mut many = stack.http.get(stack.url("/healthz"));
    for n in 0..150 {
        many = many.header(format!("x-h{n}"), "v");
    }
    if let Ok(r) = many.send().await {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // The server is still there.
    assert_eq!(
        send(stack.http.get(stack.url("/healthz"))).await.status,
        200
    );
}

// ---- malformed bodies, forms and query strings ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_json_bodies_are_400_problems() {
    let stack = stack().await;
    let id = stack.connect_platform().await;
    // Not JSON, or JSON no parser should accept (too deep, out of range, lone surrogates),
    // or JSON that is not an object: refused on every JSON route.
    let mut everywhere: Vec<Vec<u8>> = [
        "{",
        "}",
        "",
        "1e400",
        "{\"topic\":\"a\",\"topic\":",
        "{\"a\":\"\\ud800\"}",
        "\"text\"",
        "null",
        "42",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    everywhere.push(b"\xff\xfe{\"a\":1}".to_vec());
    everywhere.push("[".repeat(100_000).into_bytes());
    everywhere.push(format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200)).into_bytes());
    // A meeting body is an object. (A session body is read into a struct, which serde also
    // fills from an array, positionally: `[]` is the empty session, so not listed here.)
    let meetings_only: Vec<Vec<u8>> = vec![b"[]".to_vec(), b"[1,2]".to_vec()];
    // The session body is a closed shape.
    let sessions_only: Vec<Vec<u8>> = [
        "{\"auth_type\":\"sideways\"}",
        "{\"unknown_field\":1}",
        "{\"return_url\":5}",
        "{\"client_id\":{\"$gt\":\"\"}}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let routes = [
        (Method::POST, "/connect/sessions".to_owned()),
        (Method::POST, format!("/connections/{id}/zoom/meetings")),
        (
            Method::PATCH,
            format!("/connections/{id}/zoom/meetings/123"),
        ),
        (
            Method::PATCH,
            format!("/connections/{id}/zoom/meetings/123/livestream"),
        ),
    ];
    for (method, path) in &routes {
        let extra = if path == "/connect/sessions" {
            sessions_only.as_slice()
        } else {
            meetings_only.as_slice()
        };
        for body in everywhere.iter().chain(extra) {
            let a = send(
                stack
                    .backend(method.clone(), path)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
            a.problem(400, "validation_failed");
        }
        // Without a JSON content type: 415.
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut request = stack.backend(method.clone(), path).body("{}");
            if let Some(ct) = content_type {
                request = request.header("content-type", ct);
            }
            send(request).await.problem(415, "unsupported_media_type");
        }
    }
    assert_eq!(stack.sim.meetings_count(), 0);
    let zoom_writes = stack
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v2/") && r.method != "GET")
        .count();
    assert_eq!(zoom_writes, 0, "nothing reached Zoom");
    assert_eq!(connection_count(&stack).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_forms_and_query_strings_are_4xx() {
    let stack = stack().await;
    let id = stack.connect_platform().await;
    let mut noise = Noise(0x5eed_1234);
    // The choice page's form: garbage gives the "link expired" page (410) or the form again
    // (400), never a 5xx, and never a redirect to Zoom.
    let mut forms: Vec<Vec<u8>> = [
        "",
        "=",
        "&&&",
        "session",
        "session=%ZZ",
        "session=%ff%fe",
        "session=a&session=b",
        "session=x&auth_type=%00",
        "session=x&auth_type=byo_app&client_id=\r\n&client_secret=%0d%0a",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    forms.extend((0..40).map(|_| noise.bytes(200)));
    for form in forms {
        let a = send(
            stack
                .http
                .post(stack.url("/connect"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone()),
        )
        .await;
        a.client_error(&format!("form {:?}", String::from_utf8_lossy(&form)));
        assert!(a.headers.get("location").is_none());
    }
    // Query strings that do not parse, on JSON routes (problem+json) and pages.
    for path in [
        "/connections?status=a&status=b".to_owned(),
        "/connections?limit=-1".to_owned(),
        "/connections?limit=99999999999999999999".to_owned(),
        "/connections?cursor=%ff%fe".to_owned(),
        "/connections?status=%00".to_owned(),
        format!("/connections/{id}/zoom/recordings?from=%ff&to=x"),
        format!("/connections/{id}/zoom/recordings?page_size=abc"),
        format!("/connections/{id}/zoom/recordings?page_size=-5"),
        format!("/connections/{id}/zoom/recordings?from=2024-02-30&to=2024-03-01"),
        format!("/connections/{id}/zoom/recordings?cursor=e30"),
    ] {
        let a = send(stack.backend(Method::GET, &path)).await;
        a.client_error(&path);
        assert_eq!(a.content_type(), "application/problem+json", "{path}");
    }
    for path in [
        "/connect?session=a&session=b",
        "/connect?session=%ff",
        "/oauth/callback?state=a&state=b",
        "/oauth/callback?state=%ff%fe&code=%00",
        "/oauth/callback?error=%ff",
    ] {
        send(stack.http.get(stack.url(path)))
            .await
            .client_error(path);
    }
    assert_eq!(connection_count(&stack).await, 1);
}

/// Recordings dates at the calendar's ends: the walk's date arithmetic once overflowed and
/// panicked (the connection was dropped with no answer; on Lambda, `panic = "abort"` kills
/// the container).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recordings_at_the_ends_of_the_calendar_do_not_crash() {
    let stack = stack().await;
    let id = stack.connect_platform().await;
    for query in [
        "from=9999-12-30&to=9999-12-31",
        "to=9999-12-31",
        "to=-9999-01-01",
        "from=-9999-01-01&to=-9999-01-02",
        "to=0000-01-05",
    ] {
        let path = format!("/connections/{id}/zoom/recordings?{query}");
        let a = send(stack.backend(Method::GET, &path)).await;
        assert!(a.status < 500, "{query}: {} {}", a.status, a.text);
    }
    assert_eq!(
        send(stack.http.get(stack.url("/healthz"))).await.status,
        200
    );
}

// ---- CRLF and open redirects ---------------------------------------------------------------------

/// CR/LF in a return URL, a client ID, a session token or an OAuth state never ends up as a
/// header of ours: no injected `Set-Cookie`, no broken `Location`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crlf_never_reaches_a_header() {
    let stack = stack().await;
    let no_injection = |a: &Answer, what: &str| {
        for cookie in a.set_cookies() {
            assert!(
                !cookie.contains("evil"),
                "{what}: injected cookie {cookie:?}"
            );
        }
        assert!(a.headers.get("x-evil").is_none(), "{what}");
        if let Some(location) = a.headers.get("location") {
            let location = location.to_str().unwrap();
            assert!(
                !location.contains(['\r', '\n', ' ']),
                "{what}: {location:?}"
            );
        }
    };

    // Fields with control characters are refused outright.
    for body in [
        json!({ "auth_type": "byo_app", "client_id": "abc\r\nSet-Cookie: evil=1", "client_secret": "s" }),
        json!({ "auth_type": "byo_app", "client_id": "abc", "client_secret": "s\r\nX-Evil: 1" }),
        json!({ "end_user": { "email": "a@b.c\r\nSet-Cookie: evil=1" } }),
    ] {
        send(stack.backend(Method::POST, "/connect/sessions").json(&body))
            .await
            .problem(400, "validation_failed");
    }

    // A return URL with raw or encoded CR/LF: refused, or accepted in a form whose
    // serialisation holds no CR/LF; the redirect at the end stays one Location header.
    let mut redirected = 0;
    for return_url in [
        format!("{UI}/done\r\nSet-Cookie: evil=1"),
        format!("{UI}/done%0d%0aSet-Cookie:%20evil=1"),
        format!("{UI}/done?x=%0d%0aX-Evil:%201"),
        format!("{UI}/done#\r\nX-Evil: 1"),
    ] {
        let a = send(
            stack
                .backend(Method::POST, "/connect/sessions")
                .json(&json!({ "auth_type": "platform_app", "return_url": return_url })),
        )
        .await;
        if a.status == 400 {
            continue;
        }
        assert_eq!(a.status, 201, "{return_url:?}: {}", a.text);
        let connect_url = a.json()["connect_url"].as_str().unwrap().to_owned();
        let start = send(stack.http.get(&connect_url)).await;
        no_injection(&start, &return_url);
        let authorize = start.headers["location"].to_str().unwrap().to_owned();
        let cookie = start
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("zc_bind_"))
            .and_then(|c| c.split(';').next().map(str::to_owned))
            .unwrap();
        let zoom = send(stack.http.get(&authorize)).await;
        let callback = zoom.headers["location"].to_str().unwrap().to_owned();
        let done = send(stack.http.get(&callback).header("cookie", cookie)).await;
        assert_eq!(done.status, 303, "{return_url:?}: {}", done.text);
        no_injection(&done, &return_url);
        let location = url::Url::parse(done.headers["location"].to_str().unwrap()).unwrap();
        assert_eq!(location.origin().ascii_serialization(), UI);
        redirected += 1;
    }
    assert!(
        redirected >= 2,
        "the encoded forms are valid URLs: {redirected}"
    );

    // The choice page's form with CR/LF in the client ID: the redirect to Zoom carries it
    // encoded inside the URL.
    let s = stack.create_session(json!({})).await;
    let token = s["session_token"].as_str().unwrap();
    let a = send(stack.http.post(stack.url("/connect")).form(&[
        ("session", token),
        ("auth_type", "byo_app"),
        ("client_id", "abc\r\nSet-Cookie: evil=1"),
        ("client_secret", "secret\r\nX-Evil: 1"),
    ]))
    .await;
    no_injection(&a, "form");
    // Token and state values with CR/LF (encoded in the query) are simply unknown.
    for path in [
        "/connect?session=x%0d%0aSet-Cookie:%20evil=1",
        "/oauth/callback?code=c&state=x%0d%0aSet-Cookie:%20evil=1",
        "/oauth/callback?error=access_denied&error_description=%0d%0aX-Evil:%201&state=x",
    ] {
        let a = send(stack.http.get(stack.url(path))).await;
        a.client_error(path);
        no_injection(&a, path);
    }
}

/// `return_url` candidates an attacker would try. The clearly foreign ones are refused with
/// 400; any that is accepted (a harmless spelling of the allowed origin) must, at the end of
/// a real flow, redirect to the allowed origin and nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn return_url_cannot_redirect_elsewhere() {
    let stack = stack().await;
    let refused = [
        "//evil.com/x",
        "///evil.com/x",
        "/\\evil.com",
        "\\\\evil.com",
        "https:/\\evil.com",
        "https://evil.com",
        "https://ui.example.test.evil.com/",
        "https://ui.example.test@evil.com/",
        "https://ui.example.test%2f@evil.com/",
        "https://ui.example.test%40evil.com/",
        "https://evil.com#https://ui.example.test",
        "https://evil.com/?r=https://ui.example.test",
        "https://evil.com\\.ui.example.test/",
        "https://ui.exаmple.test/",
        "http://ui.example.test/",
        "https://ui.example.test:8443/",
        "ftp://ui.example.test/",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.domain)",
        "javascript://ui.example.test/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "/relative/path",
        "ui.example.test/x",
        "https://127.0.0.1/",
        "https://[::1]/",
        "",
    ];
    let maybe = [
        "HTTPS://UI.EXAMPLE.TEST/ok",
        "https://ui.example.test:443/ok",
        "https:ui.example.test/ok",
        "https://ui.example.test\\@evil.com/",
        " https://ui.example.test/ok",
        "https://ui.example.test./ok",
        "https://user:pass@ui.example.test/ok",
        "https://ui.example.test/ok/../../evil.com",
        "https://ui.example.test//evil.com",
    ];
    let mut followed = Vec::new();
    for candidate in refused.iter().chain(maybe.iter()) {
        let a = send(
            stack
                .backend(Method::POST, "/connect/sessions")
                .json(&json!({ "auth_type": "platform_app", "return_url": candidate })),
        )
        .await;
        if refused.contains(candidate) {
            a.problem(400, "validation_failed");
            continue;
        }
        if a.status == 400 {
            continue;
        }
        assert_eq!(a.status, 201, "{candidate:?}: {}", a.text);
        let connect_url = a.json()["connect_url"].as_str().unwrap().to_owned();
        let flow = stack.run_flow(&connect_url, None).await;
        assert_eq!(flow.status, 303, "{candidate:?}: {}", flow.body);
        let location = url::Url::parse(flow.location.as_deref().unwrap()).unwrap();
        assert_eq!(
            location.origin().ascii_serialization(),
            UI,
            "{candidate:?} redirected to {location}"
        );
        followed.push(*candidate);
    }
    // Spellings of the allowed origin itself are accepted (and were followed above).
    for same in [
        "HTTPS://UI.EXAMPLE.TEST/ok",
        "https://ui.example.test:443/ok",
    ] {
        assert!(
            followed.contains(&same),
            "{same} accepted; followed {followed:?}"
        );
    }
}

// ---- arbitrary tokens and states ------------------------------------------------------------

/// Hundreds of arbitrary session tokens and OAuth states (with and without a cookie) through
/// the real routes: never accepted, never a 5xx, nothing stored; the real session and state
/// still work afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arbitrary_tokens_and_states_are_refused() {
    let stack = stack().await;
    let real = stack
        .create_session(json!({ "auth_type": "platform_app" }))
        .await;
    let real_token = real["session_token"].as_str().unwrap().to_owned();
    let mut noise = Noise(0xdead_beef_cafe);
    let mut candidates = hostile_strings(&mut noise, 120);
    // Near misses of the real token.
    let mut flipped = real_token.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    candidates.push(String::from_utf8(flipped).unwrap());
    candidates.push(format!("{real_token}x"));
    candidates.push(real_token[..real_token.len() - 1].to_owned());
    candidates.push(real_token.to_uppercase());

    for candidate in &candidates {
        let what = format!("{candidate:?}");
        let a = send(stack.http.get(format!(
            "{}?session={}",
            stack.url("/connect"),
            encode(candidate)
        )))
        .await;
        assert_eq!(a.status, 410, "GET /connect {what}: {}", a.text);
        let a = send(stack.http.post(stack.url("/connect")).form(&[
            ("session", candidate.as_str()),
            ("auth_type", "platform_app"),
        ]))
        .await;
        assert_eq!(a.status, 410, "POST /connect {what}: {}", a.text);
        let callback = format!(
            "{}?code=abc&state={}",
            stack.url("/oauth/callback"),
            encode(candidate)
        );
        for cookie in [
            None,
            Some(format!("zc_bind_0123456789ab={}", encode(candidate))),
        ] {
            let result = stack.callback(&callback, cookie.as_deref()).await;
            assert_eq!(result.status, 400, "callback {what}: {}", result.body);
            assert_eq!(
                result.error_code().as_deref(),
                Some("state_invalid"),
                "{what}"
            );
        }
    }
    assert_eq!(connection_count(&stack).await, 0);
    assert!(stack.events().await.is_empty());
    assert_eq!(
        stack.sim.counters().token_requests,
        0,
        "nothing reached Zoom"
    );

    // The real session was not consumed by any of that.
    let flow = stack
        .run_flow(real["connect_url"].as_str().unwrap(), None)
        .await;
    assert_eq!(flow.status, 200, "{}", flow.body);
    assert!(flow.connection_id().is_some());
}

// ---- webhooks ------------------------------------------------------------------------------

/// Arbitrary deliveries: unsigned ones are 401, signed garbage is a 4xx, never a 5xx; a
/// body over the webhook limit is 413 before the signature is even checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arbitrary_webhook_deliveries_are_4xx() {
    let stack = stack().await;
    let id = stack.connect_platform().await;
    let token = SecretString::new(stack.webhook_secret.clone());
    let mut noise = Noise(0x0bad_f00d);
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let post = |body: Vec<u8>, ts: Option<String>, sig: Option<String>| {
        let mut r = stack
            .http
            .post(stack.url("/webhooks/zoom"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(ts) = ts {
            r = r.header("x-zm-request-timestamp", ts);
        }
        if let Some(sig) = sig {
            r = r.header("x-zm-signature", sig);
        }
        r
    };
    for n in 0..120 {
        let body = if n % 2 == 0 {
            noise.bytes(400)
        } else {
            json!({ "event": noise.string(20), "payload": { "plainToken": noise.string(300), "user_id": noise.string(10) } })
                .to_string()
                .into_bytes()
        };
        let ts = match n % 4 {
            0 => Some(now.clone()),
            1 => Some(noise.string(12)),
            2 => None,
            _ => Some(i64::MIN.to_string()),
        }
        .filter(|t| reqwest::header::HeaderValue::from_str(t).is_ok());
        let forged = format!("v0={:064x}", noise.next());
        let a = send(post(body.clone(), ts.clone(), Some(forged))).await;
        a.problem(401, "invalid_signature");
        // Signed for real: the signature is fine, the content is garbage.
        if let Some(ts) = ts {
            let sig = signature(&token, &ts, &body);
            let a = send(post(body, Some(ts.clone()), Some(sig))).await;
            assert!(
                a.status < 500,
                "signed #{n} (ts {ts:?}): {} {}",
                a.status,
                a.text
            );
            if a.status >= 400 {
                assert_eq!(a.content_type(), "application/problem+json");
            }
        }
    }
    let big = vec![b'{'; 1024 * 1024 + 1];
    let sig = signature(&token, &now, &big);
    send(post(big, Some(now.clone()), Some(sig)))
        .await
        .problem(413, "payload_too_large");
    // The connection is untouched.
    let a = send(stack.backend(Method::GET, &format!("/connections/{id}"))).await;
    assert_eq!(a.json()["status"], "active", "{}", a.text);
}

// ---- odd path segments ---------------------------------------------------------------------

/// Odd connection and meeting ids: a 4xx, and nothing with a climbing path reaches Zoom.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn odd_ids_in_paths_are_4xx() {
    let stack = stack().await;
    let id = stack.connect_platform().await;
    let baseline = stack.sim.requests().len();
    for path in [
        "/connections/%00".to_owned(),
        "/connections/%ff".to_owned(),
        "/connections/%2e%2e".to_owned(),
        "/connections/..%2f..%2fhealthz".to_owned(),
        format!("/connections/{}", "x".repeat(8000)),
        "/connections/a%2fb/zoom/me".to_owned(),
        "/connections/%20/zoom/me".to_owned(),
        format!("/connections/{id}/zoom/meetings/%2e%2e"),
        format!("/connections/{id}/zoom/meetings/%2e"),
        format!("/connections/{id}/zoom/meetings/%252e%252e"),
        format!("/connections/{id}/zoom/meetings/%2e%2e/recordings"),
        format!("/connections/{id}/zoom/meetings/..%2f..%2fusers%2fme"),
        format!("/connections/{id}/zoom/meetings/%00"),
        format!("/connections/{id}/zoom/meetings/{}", "9".repeat(300)),
    ] {
        for method in ["GET", "DELETE"] {
            let (status, text) = raw_request(&stack, method, &path, "").await;
            assert!((400..500).contains(&status), "{method} {path}: {text}");
            assert!(
                text.to_ascii_lowercase()
                    .contains("content-type: application/problem+json"),
                "{method} {path}: {text}"
            );
        }
    }
    // PATCHes of a dotted meeting id (which URLs resolve away) never reach Zoom either.
    let body = json!({ "topic": "x", "stream_url": "rtmp://a", "stream_key": "k", "page_url": "https://a" })
        .to_string();
    for path in [
        format!("/connections/{id}/zoom/meetings/%2e%2e"),
        format!("/connections/{id}/zoom/meetings/%2e%2e/livestream"),
    ] {
        let (status, text) = raw_request(&stack, "PATCH", &path, &body).await;
        assert!((400..500).contains(&status), "PATCH {path}: {text}");
    }
    let sent: Vec<String> = stack.sim.requests()[baseline..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    for path in &sent {
        assert!(
            path.starts_with("/v2/meetings/") && !path.contains(".."),
            "unexpected call to Zoom: {path}"
        );
    }
    assert_eq!(
        send(stack.backend(Method::GET, &format!("/connections/{id}/zoom/me")))
            .await
            .status,
        200
    );
}

/// Ill-formed connection ids (5 KB, control characters, another alphabet) in paths and in
/// queued events: a plain 404 that does not echo them, on both stores (DynamoDB refuses keys
/// over 2 KB: that must not become a 500), and a queued event with one is settled once with a
/// failure event instead of going round SQS's retries into the DLQ.
async fn ill_formed_connection_ids_are_not_found_and_not_echoed(backend: Backend) {
    let stack = TestStack::start(StackOptions::new(backend)).await;
    let long = "a".repeat(5000);
    for id in [long.as_str(), "conn_%07bell", "conn_..%2F", "c%C3%A9"] {
        for (method, path) in [
            (Method::GET, format!("/connections/{id}")),
            (Method::DELETE, format!("/connections/{id}")),
            (Method::POST, format!("/connections/{id}/refresh")),
            (Method::GET, format!("/connections/{id}/zoom/me")),
        ] {
            let r = stack.backend(method.clone(), &path).send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert_eq!(
                status,
                404,
                "{method} {}: {text}",
                &path[..path.len().min(80)]
            );
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["code"], "connection_not_found");
            assert!(text.len() < 400, "the id was echoed: {} bytes", text.len());
        }
    }
    let event =
        json!({ "idempotency_key": "k-long", "connection_id": long, "meeting": { "topic": "t" } });
    assert_eq!(
        stack
            .connector
            .process_meeting_event(&event.to_string())
            .await,
        zoom_connector::app::meeting_events::EventOutcome::Settled
    );
    let failed: Vec<Value> = stack
        .events()
        .await
        .into_iter()
        .filter(|(t, _)| t == "Zoom Meeting Creation Failed")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"]["code"], "validation_failed");
    assert_eq!(failed[0]["connection_id"], Value::Null);
}

e2e_tests::on_both_backends!(
    local_ids, aws_ids;
    ill_formed_connection_ids_are_not_found_and_not_echoed,
);

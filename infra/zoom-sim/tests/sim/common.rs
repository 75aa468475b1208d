//! Shared test harness: a running simulator, an HTTP client, OAuth helpers and the contract check.

use std::sync::OnceLock;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest;
use zoom_sim::contract::{load_zoom_openapi, match_path_template, openapi_response_schema};
use zoom_sim::{RunningSim, SimConfig, ZoomSim};

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret";
pub const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
/// Classic scopes that cover every operation of the description.
pub const ALL_SCOPES: [&str; 5] = [
    "meeting:write",
    "recording:write",
    "user_info:read",
    "webinar:write",
    "meeting_summary:read",
];

pub struct Harness {
    pub sim: ZoomSim,
    pub running: RunningSim,
    pub http: reqwest::Client,
}

pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(load_zoom_openapi)
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let sim = ZoomSim::new(config);
        sim.register_app(CLIENT_ID, CLIENT_SECRET);
        sim.allow_redirect_uri(CLIENT_ID, REDIRECT);
        let running = sim.start().await.expect("simulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client builds");
        Self { sim, running, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.base_url, path)
    }

    /// Authorizes through the consent page (Allow) and returns the code from the redirect.
    pub async fn authorize(&self, challenge: &str) -> String {
        let location = self.authorize_location(challenge, "allow").await;
        query_param(&location, "code").expect("redirect carries a code")
    }

    /// GET the consent page, then POST the decision form; returns the redirect `Location`.
    pub async fn authorize_location(&self, challenge: &str, decision: &str) -> String {
        let page = self
            .http
            .get(self.url("/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT),
                ("state", "st-1"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize answers");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("page body");
        assert!(html.contains("would like to access your Zoom account"));
        assert!(html.contains(r#"<button type="submit" id="allow">Allow</button>"#));
        let answer = self
            .http
            .post(self.url("/oauth/authorize/decision"))
            .form(&[
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", REDIRECT),
                ("state", "st-1"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("decision", decision),
            ])
            .send()
            .await
            .expect("decision answers");
        assert_eq!(answer.status(), StatusCode::FOUND);
        location(&answer)
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(form)
            .send()
            .await
            .expect("token answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// A full authorization; returns the token answer.
    pub async fn connect(&self) -> Value {
        let (verifier, challenge) = pkce();
        let code = self.authorize(&challenge).await;
        let (status, body) = self.exchange(&code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn access_token(&self) -> String {
        str_field(&self.connect().await, "access_token")
    }

    /// A token of the test app granted [`ALL_SCOPES`].
    pub async fn full_token(&self) -> String {
        self.sim.set_app_scopes(CLIENT_ID, &ALL_SCOPES);
        self.access_token().await
    }

    /// Creates a meeting for the signed-in user and returns its answer.
    pub async fn create_meeting(&self, token: &str, body: Value) -> Value {
        let (status, created) = self
            .api(Method::POST, "/users/me/meetings", token, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    /// Calls the REST API and checks the answer against Zoom's OpenAPI description.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(
                method.clone(),
                format!("{}{}", self.running.api_url(), path),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("api answers");
        let status = response.status();
        let bytes = response.bytes().await.expect("api body");
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("api answers JSON")
        };
        check_contract(&method, path, status.as_u16(), &value);
        (status, value)
    }
}

/// Validates a REST answer against the fixture's schema for that operation and status; error
/// statuses must be in Zoom's `{code, message}` form.
pub fn check_contract(method: &Method, path: &str, status: u16, body: &Value) {
    let spec = spec();
    let template =
        match_path_template(spec, path).unwrap_or_else(|| panic!("no template for {path}"));
    if status >= 400 {
        assert!(
            body["code"].is_i64(),
            "error body has a numeric code: {body}"
        );
        assert!(
            body["message"].is_string(),
            "error body has a message: {body}"
        );
        return;
    }
    match openapi_response_schema(spec, &template, method.as_str(), status) {
        Some(schema) => {
            let validator = jsonschema::draft4::options()
                .should_validate_formats(true)
                .build(&schema)
                .expect("schema compiles");
            let errors: Vec<String> = validator
                .iter_errors(body)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {template} {status}: {errors:#?}\n{body:#}"
            );
        }
        None => {
            let documented =
                spec["paths"][&template][method.as_str().to_ascii_lowercase()]["responses"]
                    .get(status.to_string())
                    .is_some();
            assert!(
                documented,
                "{method} {template} answered undocumented {status}"
            );
            assert!(
                body.is_null(),
                "{method} {template} {status} has no body in the spec: {body}"
            );
        }
    }
}

pub fn pkce() -> (String, String) {
    let verifier = format!(
        "verifier-{}-0123456789abcdefghijklmnopq",
        uuid::Uuid::new_v4()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Walks a paged list to its end, asserting no item comes twice; returns the items' `key`s.
pub async fn walk_pages(
    h: &Harness,
    token: &str,
    first: &str,
    items: &str,
    key: &str,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let (status, mut page) = h.api(Method::GET, first, token, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let base = first.split('?').next().unwrap_or_default().to_owned();
    loop {
        for item in page[items].as_array().cloned().unwrap_or_default() {
            assert!(!seen.contains(&item[key]), "{} listed twice", item[key]);
            seen.push(item[key].clone());
        }
        let next = page["next_page_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if next.is_empty() {
            return seen;
        }
        let (status, next_page) = h
            .api(
                Method::GET,
                &format!("{base}?page_size=2&next_page_token={next}"),
                token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{next_page}");
        page = next_page;
    }
}

pub fn str_field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
        .to_owned()
}

//! A connector's HTTP front as a test drives it: the in-process stack (`TestStack`) and the
//! deployed one behind the API Gateway emulator (`DeployedStack`) both deref to one, so every
//! flow helper exists once.

/// What a test reaches the connector with.
pub struct Front {
    pub base_url: String,
    pub api_key: String,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
}

/// How a connect flow ended: the result page (or the redirect to `return_url`).
#[derive(Debug)]
pub struct FlowResult {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl FlowResult {
    pub fn data(&self, attr: &str) -> Option<String> {
        let needle = format!("{attr}=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }

    pub fn connection_id(&self) -> Option<String> {
        self.data("data-connection-id")
    }

    pub fn error_code(&self) -> Option<String> {
        self.data("data-error-code")
    }
}

pub fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `name=value` part of the browser-binding `Set-Cookie`.
pub fn cookie_pair(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("zc_bind_"))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

impl Front {
    pub fn new(base_url: String, api_key: String) -> Self {
        Self {
            base_url,
            api_key,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A request to a backend route with the API key.
    pub fn backend(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.api_key)
    }

    pub async fn create_session(&self, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .backend(reqwest::Method::POST, "/connect/sessions")
            .json(&body)
            .send()
            .await
            .expect("POST /connect/sessions");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, 201, "create session: {text}");
        serde_json::from_str(&text).expect("a session")
    }

    /// Follows a connect URL to Zoom and back; `form` is posted when the choice page shows.
    pub async fn run_flow(&self, connect_url: &str, form: Option<&[(&str, &str)]>) -> FlowResult {
        let mut r = self
            .http
            .get(connect_url)
            .send()
            .await
            .expect("GET connect_url");
        if r.status() == 200 {
            let form = form.expect("the choice page was shown but no form was given");
            let session = url::Url::parse(connect_url)
                .expect("connect_url")
                .query_pairs()
                .find(|(k, _)| k == "session")
                .expect("a session parameter")
                .1
                .to_string();
            let mut fields: Vec<(&str, &str)> = vec![("session", &session)];
            fields.extend_from_slice(form);
            r = self
                .http
                .post(self.url("/connect"))
                .form(&fields)
                .send()
                .await
                .expect("POST /connect");
        }
        if r.status() != 302 {
            return FlowResult {
                status: r.status().as_u16(),
                location: location(&r),
                body: r.text().await.unwrap_or_default(),
            };
        }
        let cookie = cookie_pair(&r);
        let authorize = location(&r).expect("a redirect to Zoom");
        let z = self.http.get(&authorize).send().await.expect("authorize");
        assert_eq!(
            z.status(),
            302,
            "simulator authorize: {}",
            z.text().await.unwrap_or_default()
        );
        let callback = location(&z).expect("a redirect to the callback");
        assert!(callback.starts_with(&self.base_url), "{callback}");
        // The binding cookie goes back beside another one, as browsers send them (behind API
        // Gateway: two entries in the event's `cookies` array).
        let cookie = cookie.map(|c| format!("unrelated=1; {c}"));
        self.callback(&callback, cookie.as_deref()).await
    }

    pub async fn callback(&self, callback_url: &str, cookie: Option<&str>) -> FlowResult {
        let mut req = self.http.get(callback_url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.expect("GET /oauth/callback");
        FlowResult {
            status: r.status().as_u16(),
            location: location(&r),
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// `GET /connections/{id}` as JSON (a `Connection`, or the problem).
    pub async fn connection(&self, id: &str) -> serde_json::Value {
        self.backend(reqwest::Method::GET, &format!("/connections/{id}"))
            .send()
            .await
            .expect("GET /connections/{id}")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Connects the simulator's current user with the platform app; the connection id.
    pub async fn connect_platform(&self) -> String {
        let s = self
            .create_session(serde_json::json!({ "auth_type": "platform_app" }))
            .await;
        let result = self
            .run_flow(s["connect_url"].as_str().expect("connect_url"), None)
            .await;
        assert_eq!(result.status, 200, "{}", result.body);
        assert_eq!(result.data("data-status").as_deref(), Some("success"));
        result.connection_id().expect("a connection id")
    }
}

/// The events a bus's capture queue holds (each read once): `(detail_type, detail)`.
pub async fn captured_events(
    sdk: &aws_config::SdkConfig,
    queue_url: &str,
) -> Vec<(String, serde_json::Value)> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(3600)
            .send()
            .await
            .expect("read the capture queue");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let v: serde_json::Value =
                serde_json::from_str(m.body.as_deref().unwrap_or("{}")).unwrap_or_default();
            out.push((
                v["detail-type"].as_str().unwrap_or_default().to_owned(),
                v["detail"].clone(),
            ));
        }
    }
}

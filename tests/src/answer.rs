//! An HTTP answer read once (status, headers, body as bytes, text and JSON), with the
//! assertions the end-to-end tests share.

use serde_json::Value;

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
    /// The body as text (lossy).
    pub text: String,
    /// The body as JSON, `Null` when it is not JSON.
    pub body: Value,
}

impl Answer {
    pub async fn of(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            bytes,
            text,
            body,
        }
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        self.body.clone()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }

    /// Asserts a problem+json answer with this status and code; returns the document.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {}: {}",
            self.status, self.text
        );
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "problem content type: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["status"], status, "{}", self.text);
        for member in ["type", "title", "detail"] {
            assert!(
                self.body[member].is_string(),
                "problem lacks {member}: {}",
                self.text
            );
        }
        self.body.clone()
    }

    /// A problem+json answer with one of `statuses` and this code, and a `Retry-After`.
    pub fn retryable_problem(&self, statuses: &[u16], code: &str, what: &str) {
        assert!(
            statuses.contains(&self.status),
            "{what}: expected {statuses:?} {code}, got {}: {}",
            self.status,
            self.text
        );
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{what}: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "{what}: {}", self.text);
        assert_eq!(self.body["status"], self.status, "{what}");
        assert!(
            self.header("retry-after").is_some(),
            "{what}: a retryable failure carries Retry-After"
        );
    }

    /// Any 4xx; problem+json unless it is a page.
    pub fn client_error(&self, what: &str) {
        assert!(
            (400..500).contains(&self.status),
            "{what}: {} {}",
            self.status,
            self.text
        );
        let ct = self.content_type();
        assert!(
            ct == "application/problem+json" || ct.starts_with("text/html"),
            "{what}: content type {ct:?}: {}",
            self.text
        );
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }
}

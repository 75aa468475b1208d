//! A tiny HTTP proxy in front of moto that notes every request reaching it (when, and which
//! AWS operation), so the bench can count the AWS calls of a warm action or of an init.
//! Processes under test get its address as `AWS_ENDPOINT_URL`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::BenchError;

/// One request that went through to moto.
#[derive(Debug, Clone)]
pub struct AwsCall {
    pub at: Instant,
    /// `X-Amz-Target` (e.g. `secretsmanager.GetSecretValue`), else `METHOD /path`.
    pub operation: String,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
    calls: Arc<Mutex<Vec<AwsCall>>>,
}

/// The running proxy; it stops when dropped.
pub struct CountingProxy {
    pub endpoint: String,
    calls: Arc<Mutex<Vec<AwsCall>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> Result<Self, BenchError> {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            calls: calls.clone(),
        };
        let router = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            endpoint,
            calls,
            handle,
        })
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<AwsCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls that arrived in `[from, to)`.
    pub fn calls_between(&self, from: Instant, to: Instant) -> Vec<AwsCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.at >= from && c.at < to)
            .collect()
    }
}

/// `"GetSecretValue ×2, GetItem"`: the operations of `calls`, in first-seen order.
pub fn summarize(calls: &[AwsCall]) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for call in calls {
        let name = call
            .operation
            .rsplit('.')
            .next()
            .unwrap_or(&call.operation)
            .to_owned();
        match seen.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => seen.push((name, 1)),
        }
    }
    if seen.is_empty() {
        return "none".into();
    }
    seen.into_iter()
        .map(|(name, count)| {
            if count == 1 {
                name
            } else {
                format!("{name} ×{count}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn forward(State(up): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{} {}", parts.method, parts.uri.path()));
    if let Ok(mut calls) = up.calls.lock() {
        calls.push(AwsCall {
            at: Instant::now(),
            operation,
        });
    }
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = up
        .client
        .request(parts.method.clone(), format!("{}{path}", up.base));
    for (name, value) in &parts.headers {
        // The client sets its own Host and framing headers for the upstream connection.
        if name != "host" && name != "content-length" && name != "transfer-encoding" {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.body(body).send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_else(|_| Bytes::new());
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("moto unreachable: {e}")).into_response(),
    }
}

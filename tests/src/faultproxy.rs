//! A small HTTP proxy in front of moto that injects AWS faults: the AWS SDK of a stack is
//! pointed at the proxy, which forwards every request to moto unless a fault rule matches.
//!
//! Rules match the `X-Amz-Target` header by prefix (`secretsmanager.PutSecretValue`,
//! `DynamoDB_20120810.UpdateItem`, or `DynamoDB_20120810.` for every DynamoDB call) and apply
//! to the next `times` matching requests (`None`: until cleared). The answers are the ones the
//! services give: 400 `ThrottlingException` (Secrets Manager) or
//! `ProvisionedThroughputExceededException` (DynamoDB), 500 `InternalServiceError` /
//! `InternalServerError`, 503 `ServiceUnavailable`, so the SDK's own retry classification
//! and the connector's error mapping both see what production would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the proxy answers instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFault {
    /// 400 with the service's throttling error (retryable).
    Throttle,
    /// 500 with the service's internal error (retryable).
    InternalError,
    /// 503 `ServiceUnavailable` (retryable).
    Unavailable,
    /// Forwarded, after this many milliseconds (a service answering slowly).
    SlowMs(u64),
}

const DYNAMODB: &str = "DynamoDB_20120810.";

impl AwsFault {
    fn answer(self, target: &str) -> Response {
        let dynamodb = target.starts_with(DYNAMODB);
        let (status, kind, message) = match (self, dynamodb) {
            (Self::Throttle, false) => (
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            ),
            (Self::Throttle, true) => (
                StatusCode::BAD_REQUEST,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            ),
            (Self::InternalError, false) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                "An error occurred on the server side.",
            ),
            (Self::InternalError, true) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "Internal server error",
            ),
            (Self::Unavailable | Self::SlowMs(_), _) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service unavailable",
            ),
        };
        let content_type = if dynamodb {
            "application/x-amz-json-1.0"
        } else {
            "application/x-amz-json-1.1"
        };
        let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
        (status, [("content-type", content_type)], body).into_response()
    }
}

#[derive(Debug)]
struct Rule {
    target: String,
    fault: AwsFault,
    remaining: Option<u32>,
}

/// One request the proxy saw: its `X-Amz-Target`, whether a fault answered it, and the
/// resource it names in its JSON body (see [`resource_of`]).
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: String,
    pub faulted: Option<AwsFault>,
    pub resource: Option<String>,
}

/// An AWS call in IAM terms: `dynamodb:PutItem` on a table name, secret id, bus name or
/// queue URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct AwsCall {
    pub action: String,
    pub resource: String,
}

/// `DynamoDB_20120810.PutItem` → `dynamodb:PutItem` (the IAM action of an `X-Amz-Target`).
pub fn iam_action(target: &str) -> String {
    let (service, operation) = target.split_once('.').unwrap_or(("", target));
    let service = match service {
        "DynamoDB_20120810" => "dynamodb",
        "AWSEvents" => "events",
        "AmazonSQS" => "sqs",
        "TrentService" => "kms",
        other => other,
    };
    format!("{}:{operation}", service.to_ascii_lowercase())
}

/// The resource a JSON request body names: `TableName` (`<table>/index/<name>` with an
/// `IndexName`; also inside transactions and batch `RequestItems`), `SecretId` / `Name`,
/// `EventBusName` / `Entries[].EventBusName`, `QueueUrl`; several are joined with `,`.
pub fn resource_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut found: Vec<String> = Vec::new();
    let mut add = |v: &serde_json::Value| {
        if let Some(s) = v.as_str()
            && !found.iter().any(|f| f == s)
        {
            found.push(s.to_owned());
        }
    };
    // A query on an index is granted on `<table>/index/<name>`, not on the table.
    match (value["TableName"].as_str(), value["IndexName"].as_str()) {
        (Some(table), Some(index)) => add(&format!("{table}/index/{index}").into()),
        _ => add(&value["TableName"]),
    }
    for key in ["SecretId", "Name", "EventBusName", "QueueUrl"] {
        add(&value[key]);
    }
    for item in value["TransactItems"].as_array().into_iter().flatten() {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            add(&op["TableName"]);
        }
    }
    for table in value["RequestItems"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.keys())
    {
        add(&serde_json::Value::String(table.clone()));
    }
    for entry in value["Entries"].as_array().into_iter().flatten() {
        add(&entry["EventBusName"]);
    }
    (!found.is_empty()).then(|| found.join(","))
}

#[derive(Default)]
struct Inner {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    inner: Mutex<Inner>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    /// A proxy in front of `upstream` (e.g. moto's endpoint) on a loopback port.
    pub async fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            inner: Mutex::new(Inner::default()),
        });
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        Self {
            endpoint,
            shared,
            server,
        }
    }

    /// A proxy in front of this test binary's moto.
    pub async fn in_front_of_moto() -> Self {
        Self::start(&crate::moto::moto().endpoint).await
    }

    /// Answers the next `times` requests whose `X-Amz-Target` starts with `target` with
    /// `fault` (`None`: until [`FaultProxy::clear`]).
    pub fn inject(&self, target: &str, fault: AwsFault, times: Option<u32>) {
        self.lock().rules.push(Rule {
            target: target.to_owned(),
            fault,
            remaining: times,
        });
    }

    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Every request seen so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Every request seen so far as an IAM action and resource, oldest first.
    pub fn calls(&self) -> Vec<AwsCall> {
        self.lock()
            .seen
            .iter()
            .map(|s| AwsCall {
                action: iam_action(&s.target),
                resource: s.resource.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// Requests seen whose target starts with `target`.
    pub fn count(&self, target: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.target.starts_with(target))
            .count()
    }

    /// Of those, the ones a fault answered.
    pub fn faulted(&self, target: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.target.starts_with(target) && s.faulted.is_some())
            .count()
    }

    /// SDK configuration through this proxy with the connector's own retry and timeout
    /// settings (`zoom_connector::adapters::aws::load_sdk_config`: standard retries, 5
    /// attempts, 2 s connect, 5 s per attempt, 15 s per operation). Only the first back-off
    /// is shorter (10 ms instead of 1 s) so that retries do not slow the tests down; which
    /// errors are retried, and how often, is the same. (`load_sdk_config` itself resolves the
    /// region from the environment, which a test process should not depend on.)
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(5)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(15))
                    .build(),
            )
            .load()
            .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let fault = {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        let fault = inner
            .rules
            .iter_mut()
            .find(|r| {
                !target.is_empty()
                    && target.starts_with(&r.target)
                    && r.remaining.is_none_or(|n| n > 0)
            })
            .map(|r| {
                if let Some(n) = r.remaining.as_mut() {
                    *n -= 1;
                }
                r.fault
            });
        inner.seen.push(Seen {
            target: target.clone(),
            faulted: fault,
            resource: resource_of(&body),
        });
        fault
    };
    match fault {
        Some(AwsFault::SlowMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(fault) => return fault.answer(&target),
        None => {}
    }

    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut upstream = shared
        .http
        .request(parts.method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.send().await {
        Ok(a) => a,
        Err(e) => {
            return (StatusCode::BAD_GATEWAY, format!("moto: {e}")).into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !is_hop_by_hop(name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// Headers that belong to one connection, plus the ones the HTTP stacks set themselves.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "keep-alive" | "transfer-encoding" | "content-length" | "upgrade"
    )
}

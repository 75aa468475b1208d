//! A minimal Lambda Runtime API emulator (the part a custom runtime talks to):
//! `GET /2018-06-01/runtime/invocation/next`, `POST .../invocation/{id}/response`,
//! `POST .../invocation/{id}/error` and `POST /2018-06-01/runtime/init/error`.
//!
//! One emulator per function process, as each Lambda sandbox has its own endpoint. Two ways
//! to use it:
//! - the bench queues invocations ([`RuntimeApi::enqueue`]) and reads what happened, with the
//!   moment each thing happened, from [`RuntimeApi::next_event`]. The first `next` poll marks
//!   the end of init, as on Lambda (the `Init Duration` of a REPORT line ends there too);
//! - the function pool calls [`RuntimeApi::invoke`] and awaits the answer of exactly that
//!   invocation (correlated by its request id).
//!
//! The `lambda-runtime-deadline-ms` header carries the invocation's deadline (its timeout
//! after delivery), which `lambda_runtime` exposes as `Context::deadline`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, mpsc, oneshot};

/// One queued invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: String,
    pub event: serde_json::Value,
    /// How long the function gets (it reads the deadline from the `next` answer).
    pub timeout: Duration,
}

impl Invocation {
    pub fn new(event: serde_json::Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            event,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What the function did, in order.
#[derive(Debug, Clone)]
pub enum RuntimeEvent {
    /// A `GET .../invocation/next` arrived (the function is ready for work).
    NextPolled {
        at: Instant,
    },
    /// An invocation was handed to the function.
    Delivered {
        id: String,
        at: Instant,
    },
    Response {
        id: String,
        at: Instant,
        body: Bytes,
    },
    Error {
        id: String,
        at: Instant,
        body: Bytes,
    },
    InitError {
        body: Bytes,
    },
}

/// The function's answer to one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `POST .../invocation/{id}/response`: the handler's result.
    Response(Bytes),
    /// `POST .../invocation/{id}/error`: the handler failed (a function error).
    Error(Bytes),
}

struct ApiState {
    queue: Mutex<VecDeque<Invocation>>,
    /// Invocations handed to the function and not answered yet.
    delivered: Mutex<HashSet<String>>,
    /// Who awaits the answer of an invocation ([`RuntimeApi::invoke`]).
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    ready: Notify,
    events: mpsc::UnboundedSender<RuntimeEvent>,
    function_arn: String,
}

/// The emulator for one function process; it stops when dropped.
pub struct RuntimeApi {
    /// `127.0.0.1:PORT`, what `AWS_LAMBDA_RUNTIME_API` wants.
    pub address: String,
    state: Arc<ApiState>,
    events: mpsc::UnboundedReceiver<RuntimeEvent>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(ApiState {
            queue: Mutex::new(VecDeque::new()),
            delivered: Mutex::new(HashSet::new()),
            waiting: Mutex::new(HashMap::new()),
            ready: Notify::new(),
            events: tx,
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
        });
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            address,
            state,
            events: rx,
            handle,
        })
    }

    pub fn enqueue(&self, invocation: Invocation) {
        if let Ok(mut queue) = self.state.queue.lock() {
            queue.push_back(invocation);
        }
        self.state.ready.notify_one();
    }

    /// Queues `invocation`; the receiver gets the function's answer to exactly it. (It never
    /// resolves if the process dies first: the caller watches the process too.)
    pub fn invoke(&self, invocation: Invocation) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.state.waiting.lock() {
            waiting.insert(invocation.id.clone(), tx);
        }
        self.enqueue(invocation);
        rx
    }

    /// The next thing the function did, or `None` after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<RuntimeEvent> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    let _ = state
        .events
        .send(RuntimeEvent::NextPolled { at: Instant::now() });
    let invocation = loop {
        let popped = state.queue.lock().ok().and_then(|mut q| q.pop_front());
        match popped {
            Some(invocation) => break invocation,
            // `notify_one` keeps a permit when nobody waits, so no wake-up is lost.
            None => state.ready.notified().await,
        }
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(invocation.timeout)
        .as_millis();
    let mut response = axum::Json(invocation.event).into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{}-{};Parent=0000000000000001;Sampled=0",
            "00000000",
            &uuid::Uuid::new_v4().simple().to_string()[..24]
        ),
    );
    if let Ok(mut delivered) = state.delivered.lock() {
        delivered.insert(invocation.id.clone());
    }
    let _ = state.events.send(RuntimeEvent::Delivered {
        id: invocation.id,
        at: Instant::now(),
    });
    response
}

/// Hands the answer to its waiter; `false` when `id` was never delivered or already answered
/// (Lambda answers that with `InvalidRequestID`).
fn settle(state: &ApiState, id: &str, answer: Answer) -> bool {
    let known = state
        .delivered
        .lock()
        .map(|mut d| d.remove(id))
        .unwrap_or(false);
    if let Some(tx) = state.waiting.lock().ok().and_then(|mut w| w.remove(id)) {
        let _ = tx.send(answer);
    }
    known
}

fn invalid_request_id() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "errorMessage": "Invalid request ID",
            "errorType": "InvalidRequestID"
        })),
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "OK" })),
    )
        .into_response()
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    if !settle(&state, &id, Answer::Response(body.clone())) {
        return invalid_request_id();
    }
    let _ = state.events.send(RuntimeEvent::Response { id, at, body });
    accepted()
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    _headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    if !settle(&state, &id, Answer::Error(body.clone())) {
        return invalid_request_id();
    }
    let _ = state.events.send(RuntimeEvent::Error { id, at, body });
    accepted()
}

async fn init_error(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let _ = state.events.send(RuntimeEvent::InitError { body });
    accepted()
}

/// An API Gateway HTTP API (payload 2.0) event, as API Gateway sends it to the HTTP functions.
pub fn http_event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc();
    let mut header_map = serde_json::Map::new();
    header_map.insert(
        "host".into(),
        "bench.execute-api.us-east-1.amazonaws.com".into(),
    );
    header_map.insert("user-agent".into(), "zoom-bench".into());
    header_map.insert("x-forwarded-proto".into(), "https".into());
    for (name, value) in headers {
        header_map.insert((*name).to_owned(), (*value).into());
    }
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "zoom-bench"
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.unix_timestamp().to_string(),
            "timeEpoch": now.unix_timestamp() * 1000
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The `statusCode` of an API Gateway answer (`None` for other shapes).
pub fn http_status(body: &[u8]) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
}

//! Wiring of the local stack: configuration, credentials, the simulator, the store, the
//! routers plus the local-only routes, the sweep timer, the in-process queue, shutdown.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use zoom_connector::adapters::local::queue::{LocalMeetingQueue, QueuePolicy};
use zoom_connector::adapters::local::{LocalStore, PublishedEvent};
use zoom_connector::app::{Connector, Ports};
use zoom_connector::config::Config;
use zoom_connector::domain::error::{ApiError, StoreError};
use zoom_connector::http::common::{self, JsonBody};
use zoom_connector::ports::EventBus;
use zoom_connector::secret::{SecretString, random_token};

use crate::{Args, StoreKind};

/// Reads a credential from the environment, else from the data dir, else generates and keeps it.
fn credential(data_dir: &Path, env: &str, file: &str) -> std::io::Result<SecretString> {
    if let Some(v) = std::env::var(env).ok().filter(|v| !v.is_empty()) {
        return Ok(SecretString::new(v));
    }
    let path = data_dir.join(file);
    if let Ok(v) = std::fs::read_to_string(&path)
        && !v.trim().is_empty()
    {
        return Ok(SecretString::new(v.trim()));
    }
    let value = random_token(32);
    write_private(&path, &value)?;
    Ok(SecretString::new(value))
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(value.as_bytes())
}

/// Events published in this process, for `GET /local/events` when the bus is EventBridge.
struct RecordingBus {
    inner: Arc<dyn EventBus>,
    log: Mutex<Vec<PublishedEvent>>,
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.inner.publish(detail_type, detail).await?;
        if let Ok(mut log) = self.log.lock() {
            log.push(PublishedEvent {
                detail_type: detail_type.to_owned(),
                detail: detail.clone(),
                time: format!("{:?}", std::time::SystemTime::now()),
            });
        }
        Ok(())
    }
}

enum EventLog {
    Local(LocalStore),
    Memory(Arc<RecordingBus>),
}

#[derive(Clone)]
struct LocalState {
    connector: Connector,
    queue: LocalMeetingQueue,
    events: Arc<EventLog>,
}

pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.data_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let port = listener.local_addr()?.port();
    let public_default = format!("http://127.0.0.1:{port}");

    let api_key = credential(&args.data_dir, "CONNECTOR_API_KEY", "api-key")?;
    let webhook_token = credential(
        &args.data_dir,
        "ZOOM_WEBHOOK_SECRET_TOKEN",
        "webhook-secret-token",
    )?;
    let mut overrides: HashMap<&str, String> = HashMap::new();
    let (_sim, client_id, client_secret) = match std::env::var("ZOOM_CLIENT_ID")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(id) => {
            let secret = std::env::var("ZOOM_CLIENT_SECRET").unwrap_or_default();
            (None, id, secret)
        }
        None => {
            let public =
                std::env::var("CONNECTOR_PUBLIC_URL").unwrap_or_else(|_| public_default.clone());
            let sim = zoom_sim::ZoomSim::with_defaults_and_config(zoom_sim::SimConfig {
                webhook_secret_token: Some(webhook_token.expose().to_owned()),
                webhook_target: Some(format!("{}/webhooks/zoom", public.trim_end_matches('/'))),
                ..Default::default()
            });
            let running = sim.start().await?;
            overrides.insert("ZOOM_OAUTH_URL", running.oauth_url());
            overrides.insert("ZOOM_API_URL", running.api_url());
            eprintln!(
                "zoom simulator: {} (consent page, /_sim/ controls)",
                running.base_url
            );
            (
                Some(running),
                zoom_sim::DEFAULT_CLIENT_ID.to_owned(),
                zoom_sim::DEFAULT_CLIENT_SECRET.to_owned(),
            )
        }
    };
    let config = Config::from_lookup(
        |name| {
            overrides
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        },
        Some(&public_default),
    )?;
    let mut config = config;
    let public_url = config.public_url.as_str().trim_end_matches('/').to_owned();
    // The connect helper's demo lives on another origin than the connector's, like a real
    // integration UI: the same port under the other loopback name. Allowed unless the
    // operator set CONNECTOR_UI_ORIGINS.
    let demo_host = if config.public_url.host_str() == Some("localhost") {
        "127.0.0.1"
    } else {
        "localhost"
    };
    let demo_origin = format!("http://{demo_host}:{port}");
    if std::env::var("CONNECTOR_UI_ORIGINS").is_err() && !config.ui_origins.contains(&demo_origin) {
        config.ui_origins.push(demo_origin.clone());
    }
    // Behind API Gateway a base path (a custom domain's API mapping) is fine: the functions
    // route on the matched route. This stack serves every route at the root of its port.
    if config.public_url.path() != "/" && !config.public_url.path().is_empty() {
        return Err(format!(
            "CONNECTOR_PUBLIC_URL {public_url} has a path ({}): the local stack serves its routes \
             at the root of its port, so links and the OAuth redirect would miss them. Use a URL \
             without a path (e.g. http://127.0.0.1:{}).",
            config.public_url.path(),
            args.port
        )
        .into());
    }

    let (connector, events) = match args.store {
        StoreKind::Local => {
            let store = LocalStore::open(&args.data_dir)?;
            (
                zoom_connector::wiring::local_connector(config, store.clone()),
                EventLog::Local(store),
            )
        }
        StoreKind::Aws => {
            let aws = zoom_connector::wiring::aws_connector(config.clone()).await;
            let bus = Arc::new(RecordingBus {
                inner: aws.bus.clone(),
                log: Mutex::new(Vec::new()),
            });
            let ports = Ports {
                secrets: aws.secrets.clone(),
                store: aws.store.clone(),
                bus: bus.clone(),
                oauth: aws.oauth.clone(),
                zoom: aws.zoom.clone(),
                clock: aws.clock.clone(),
                data_keys: aws.data_keys.clone(),
            };
            (Connector::new(config, ports), EventLog::Memory(bus))
        }
    };

    // The same secrets the Lambdas read from Secrets Manager.
    let seed = zoom_connector::wiring::SeedSecrets {
        platform_client_id: &client_id,
        platform_client_secret: &client_secret,
        api_key: api_key.expose(),
        webhook_secret_token: webhook_token.expose(),
    };
    zoom_connector::wiring::seed_secrets(&connector, &seed).await?;

    // SQS semantics: 5 deliveries (maxReceiveCount), growing back-off, then dead-lettered.
    let queue = LocalMeetingQueue::new(connector.clone(), QueuePolicy::default());
    let state = LocalState {
        connector: connector.clone(),
        queue: queue.clone(),
        events: Arc::new(events),
    };
    let local_routes = Router::new()
        .route("/local/events/meetings", post(enqueue_meeting_event))
        .route("/local/refresh/run", post(run_sweep_now))
        .route("/local/events", get(list_events))
        .route("/local/metrics", get(list_metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            connector.clone(),
            common::require_api_key,
        ))
        .with_state(state);
    // The demo page of the connect helper: no API key (a person opens it); each load makes
    // a new connect session.
    let demo_routes = Router::new()
        .route("/local/demo", get(connect_demo_page))
        .route("/local/demo.js", get(connect_demo_js))
        .with_state(connector.clone());
    let router = common::finish(
        zoom_connector::http::all_routes(connector.clone()),
        connector.clone(),
    )
    .merge(local_routes)
    .merge(demo_routes);

    let sweeper = tokio::spawn(sweep_timer(
        connector.clone(),
        Duration::from_secs(args.sweep_interval.max(1)),
    ));

    println!("ready: {public_url}");
    let example = connector.create_session(Default::default()).await;
    match example {
        Ok(s) => println!(
            "api_key: {} connect_url: {}",
            api_key.expose(),
            s.connect_url
        ),
        Err(e) => println!(
            "api_key: {} (no example connect_url: {e})",
            api_key.expose()
        ),
    }

    println!("demo: {demo_origin}/local/demo (the connect helper, from another origin)");

    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    sweeper.abort();
    if !queue.finish_in_flight(Duration::from_secs(20)).await {
        eprintln!("meeting events still in flight were abandoned");
    }
    eprintln!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

async fn sweep_timer(connector: Connector, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        connector
            .run_sweep(tokio::time::Instant::now() + Duration::from_secs(300))
            .await;
    }
}

async fn enqueue_meeting_event(
    State(state): State<LocalState>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    state.queue.enqueue(body.to_string());
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "enqueued": true })),
    ))
}

async fn run_sweep_now(State(state): State<LocalState>) -> Json<serde_json::Value> {
    let report = state
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(300))
        .await;
    Json(serde_json::to_value(report).unwrap_or_default())
}

async fn list_events(State(state): State<LocalState>) -> Result<Json<serde_json::Value>, ApiError> {
    let events = match &*state.events {
        EventLog::Local(store) => store.events().await?,
        EventLog::Memory(bus) => bus.log.lock().map(|l| l.clone()).unwrap_or_default(),
    };
    Ok(Json(serde_json::json!({ "events": events })))
}

/// `GET /local/metrics`: the counters the functions send to CloudWatch (EMF) on AWS, totalled
/// since this stack started.
async fn list_metrics(State(state): State<LocalState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "namespace": format!("{}/local", zoom_connector::metrics::NAMESPACE_PREFIX),
        "metrics": state.connector.metrics.snapshot(),
    }))
}

/// `GET /local/demo`: the connect helper's demo page with a fresh connect session.
async fn connect_demo_page(State(connector): State<Connector>) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let session = match connector.create_session(Default::default()).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let (html, csp) = zoom_connector::http::pages::connect_demo_page(
        &connector.config.public(""),
        &session.connect_url,
    );
    let mut response = axum::response::Html(html).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /local/demo.js`: the demo page's script.
async fn connect_demo_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        zoom_connector::http::pages::CONNECT_DEMO_JS,
    )
}

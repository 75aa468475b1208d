//! A running connector for tests: every router on a loopback port, the Zoom simulator, and
//! either the embedded local store or the AWS adapters on moto.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use zoom_connector::adapters::aws::{
    AwsSecretStore, DynamoConnectionStore, EventBridgeBus, NEXT_REFRESH_INDEX,
};
use zoom_connector::adapters::local::LocalStore;
use zoom_connector::adapters::zoom_http::{HttpZoomApi, HttpZoomOAuth, http_client};
use zoom_connector::config::Config;
use zoom_connector::ports::{ConnectionStore, EventBus, SecretStore, SystemClock};
use zoom_connector::secret::SecretString;
use zoom_connector::services::{Connector, Ports, ZOOM_OAUTH_TIMEOUT};
use zoom_sim::{RunningSim, ZoomSim};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Aws,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub backend: Backend,
    /// Extra configuration variables (e.g. `CONNECTOR_UI_ORIGINS`, `REFRESH_TPS`).
    pub env: Vec<(&'static str, String)>,
    /// On `Backend::Aws`: the SDK configuration the stack's connector uses instead of moto's
    /// (e.g. one through `faultproxy::FaultProxy`). Resources are still created on moto.
    pub aws_sdk: Option<aws_config::SdkConfig>,
}

impl StackOptions {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            env: Vec::new(),
            aws_sdk: None,
        }
    }

    /// See [`StackOptions::aws_sdk`].
    pub fn with_aws_sdk(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.aws_sdk = Some(sdk);
        self
    }

    pub fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }
}

/// Names of a stack's AWS resources on moto (unique per stack).
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub sdk: aws_config::SdkConfig,
    pub table: String,
    pub bus: String,
    pub prefix: String,
    pub capture_queue_url: String,
}

pub struct TestStack {
    pub base_url: String,
    pub api_key: String,
    pub webhook_secret: String,
    pub sim: ZoomSim,
    pub running_sim: RunningSim,
    pub connector: Connector,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    pub backend: Backend,
    pub aws: Option<AwsResources>,
    pub local_store: Option<LocalStore>,
    pub data_dir: Arc<tempfile::TempDir>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestStack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates the connections table as template.yaml defines it.
pub async fn create_table(sdk: &aws_config::SdkConfig, table: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::S))
        .attribute_definitions(attr("refresh_shard", ScalarAttributeType::S))
        .attribute_definitions(attr("next_refresh_at", ScalarAttributeType::N))
        .attribute_definitions(attr("id", ScalarAttributeType::S))
        .attribute_definitions(attr("list_shard", ScalarAttributeType::S))
        .attribute_definitions(attr("list_status", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .set_global_secondary_indexes(Some(
            [
                (NEXT_REFRESH_INDEX, "refresh_shard", "next_refresh_at"),
                (
                    zoom_connector::adapters::aws::LIST_INDEX,
                    "list_shard",
                    "id",
                ),
                (
                    zoom_connector::adapters::aws::LIST_STATUS_INDEX,
                    "list_status",
                    "id",
                ),
            ]
            .into_iter()
            .map(|(name, hash, range)| {
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(hash, KeyType::Hash))
                    .key_schema(key(range, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap()
            })
            .collect(),
        ))
        .send()
        .await
        .expect("create table on moto");
}

/// A bus whose events are copied into an SQS queue, so tests can read what was published.
pub async fn create_bus_with_capture(sdk: &aws_config::SdkConfig, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    events
        .create_event_bus()
        .name(bus)
        .send()
        .await
        .expect("create bus");
    let queue = sqs
        .create_queue()
        .queue_name(format!("{bus}-capture"))
        .send()
        .await
        .expect("create queue");
    let queue_url = queue.queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes.unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    events
        .put_rule()
        .name("capture-all")
        .event_bus_name(bus)
        .event_pattern(r#"{"source":["zoom-connector"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("capture-all")
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("capture")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    queue_url
}

impl TestStack {
    pub async fn start(options: StackOptions) -> Self {
        let sim = ZoomSim::with_defaults();
        sim.set_auto_approve(true);
        let running_sim = sim.start().await.expect("start simulator");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let data_dir = Arc::new(tempfile::tempdir().unwrap());

        let mut env: HashMap<&str, String> = HashMap::from([
            ("CONNECTOR_PUBLIC_URL", base_url.clone()),
            ("ZOOM_OAUTH_URL", running_sim.oauth_url()),
            ("ZOOM_API_URL", running_sim.api_url()),
        ]);
        let aws = match options.backend {
            Backend::Local => None,
            Backend::Aws => {
                let sdk = crate::moto::moto().sdk_config().await;
                let table = unique("connections");
                let bus = unique("bus");
                create_table(&sdk, &table).await;
                let capture_queue_url = create_bus_with_capture(&sdk, &bus).await;
                Some(AwsResources {
                    sdk: options.aws_sdk.clone().unwrap_or(sdk),
                    table,
                    bus,
                    prefix: unique("zc"),
                    capture_queue_url,
                })
            }
        };
        if let Some(a) = &aws {
            env.insert("CONNECTIONS_TABLE", a.table.clone());
            env.insert("EVENT_BUS_NAME", a.bus.clone());
            env.insert("SECRETS_PREFIX", a.prefix.clone());
        }
        for (k, v) in &options.env {
            env.insert(k, v.clone());
        }
        let config = Config::from_lookup(|k| env.get(k).cloned(), None).expect("test config");
        let (ports, local_store) = ports_for(&config, aws.as_ref(), data_dir.path());
        let connector = Connector::new(config, ports);

        let api_key = zoom_connector::secret::random_token(24);
        let webhook_secret = zoom_connector::secret::random_token(24);
        seed_secrets(&connector, &api_key, &webhook_secret).await;

        let router = zoom_connector::http::common::finish(
            zoom_connector::http::all_routes(connector.clone()),
            connector.clone(),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        Self {
            base_url,
            api_key,
            webhook_secret,
            sim,
            running_sim,
            connector,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            backend: options.backend,
            aws,
            local_store,
            data_dir,
            server,
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

    /// Events published so far, oldest first: `(detail_type, detail)`.
    pub async fn events(&self) -> Vec<(String, serde_json::Value)> {
        match (&self.local_store, &self.aws) {
            (Some(store), _) => store
                .events()
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.detail_type, e.detail))
                .collect(),
            (None, Some(aws)) => {
                let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
                let mut out = Vec::new();
                loop {
                    let got = sqs
                        .receive_message()
                        .queue_url(&aws.capture_queue_url)
                        .max_number_of_messages(10)
                        .visibility_timeout(3600)
                        .send()
                        .await
                        .unwrap();
                    let msgs = got.messages.unwrap_or_default();
                    if msgs.is_empty() {
                        break;
                    }
                    for m in msgs {
                        let v: serde_json::Value =
                            serde_json::from_str(m.body.as_deref().unwrap_or("{}")).unwrap();
                        out.push((
                            v["detail-type"].as_str().unwrap_or_default().to_owned(),
                            v["detail"].clone(),
                        ));
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

/// The ports of a connector in this test process for the given backend (a second connector
/// on the same backend stands for a second Lambda container).
pub fn ports_for(
    config: &Config,
    aws: Option<&AwsResources>,
    data_dir: &std::path::Path,
) -> (Ports, Option<LocalStore>) {
    let http = http_client();
    let oauth = Arc::new(HttpZoomOAuth::new(
        http.clone(),
        &config.zoom_oauth_url,
        ZOOM_OAUTH_TIMEOUT,
    ));
    let zoom = Arc::new(HttpZoomApi::new(http));
    match aws {
        None => {
            let store = LocalStore::open(data_dir).unwrap();
            let ports = Ports {
                secrets: Arc::new(store.clone()) as Arc<dyn SecretStore>,
                store: Arc::new(store.clone()) as Arc<dyn ConnectionStore>,
                bus: Arc::new(store.clone()) as Arc<dyn EventBus>,
                oauth,
                zoom,
                clock: Arc::new(SystemClock),
            };
            (ports, Some(store))
        }
        Some(a) => (
            Ports {
                secrets: Arc::new(AwsSecretStore::new(&a.sdk)),
                store: Arc::new(DynamoConnectionStore::new(&a.sdk, a.table.clone())),
                bus: Arc::new(EventBridgeBus::new(&a.sdk, a.bus.clone())),
                oauth,
                zoom,
                clock: Arc::new(SystemClock),
            },
            None,
        ),
    }
}

/// Puts the platform app and the connector's keys where the functions read them.
pub async fn seed_secrets(connector: &Connector, api_key: &str, webhook_secret: &str) {
    let names = &connector.config.aws;
    let platform = serde_json::json!({ "client_id": zoom_sim::DEFAULT_CLIENT_ID, "client_secret": zoom_sim::DEFAULT_CLIENT_SECRET });
    let keys = serde_json::json!({ "api_key": api_key, "webhook_secret_token": webhook_secret });
    connector
        .secrets
        .put_secret(
            &names.platform_app_secret_id,
            &SecretString::new(platform.to_string()),
            "seed-platform",
        )
        .await
        .unwrap();
    connector
        .secrets
        .put_secret(
            &names.connector_secret_id,
            &SecretString::new(keys.to_string()),
            "seed-keys",
        )
        .await
        .unwrap();
}

/// A finished connect flow through the real routers (simulator on auto-approve).
#[derive(Debug)]
pub struct FlowResult {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
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

fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `name=value` part of a `Set-Cookie`.
pub fn cookie_pair(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("zc_bind_"))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

impl TestStack {
    pub async fn create_session(&self, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .backend(reqwest::Method::POST, "/connect/sessions")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "create session: {}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.unwrap()
    }

    /// Follows a connect URL to Zoom and back; `form` is posted when the choice page shows.
    pub async fn run_flow(&self, connect_url: &str, form: Option<&[(&str, &str)]>) -> FlowResult {
        let mut r = self.http.get(connect_url).send().await.unwrap();
        if r.status() == 200 {
            let form = form.expect("the choice page was shown but no form was given");
            let session = url::Url::parse(connect_url)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "session")
                .unwrap()
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
                .unwrap();
        }
        if r.status() != 302 {
            return FlowResult {
                status: r.status().as_u16(),
                location: location(&r),
                body: r.text().await.unwrap_or_default(),
            };
        }
        let cookie = cookie_pair(&r);
        let authorize = location(&r).unwrap();
        let z = self.http.get(&authorize).send().await.unwrap();
        assert_eq!(
            z.status(),
            302,
            "simulator authorize: {}",
            z.text().await.unwrap_or_default()
        );
        let callback = location(&z).unwrap();
        self.callback(&callback, cookie.as_deref()).await
    }

    pub async fn callback(&self, callback_url: &str, cookie: Option<&str>) -> FlowResult {
        let mut req = self.http.get(callback_url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        FlowResult {
            status: r.status().as_u16(),
            location: location(&r),
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// Connects the simulator's current user with the platform app; returns the connection id.
    pub async fn connect_platform(&self) -> String {
        let s = self
            .create_session(serde_json::json!({ "auth_type": "platform_app" }))
            .await;
        let result = self
            .run_flow(s["connect_url"].as_str().unwrap(), None)
            .await;
        assert_eq!(result.status, 200, "{}", result.body);
        result
            .connection_id()
            .expect("connection id on the success page")
    }
}

/// A router served on its own loopback port (e.g. a second "container"'s function); the
/// server stops when this is dropped.
pub struct Served {
    pub base_url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub async fn serve(router: axum::Router) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
    Served { base_url, handle }
}

impl TestStack {
    /// Another "Lambda container" on the same backend: same stores, its own token and key
    /// caches (so it reads the connector secret afresh).
    pub fn another_container(&self) -> Connector {
        let (ports, _) = ports_for(
            &self.connector.config,
            self.aws.as_ref(),
            self.data_dir.path(),
        );
        Connector::new((*self.connector.config).clone(), ports)
    }
}

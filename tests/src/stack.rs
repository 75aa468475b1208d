//! A running connector for tests: every router on a loopback port, the Zoom simulator, and
//! either the embedded local store or the AWS adapters on moto.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use zoom_connector::adapters::aws::dynamo_items::NEXT_REFRESH_INDEX;
use zoom_connector::adapters::local::LocalStore;
use zoom_connector::app::{Connector, Ports};
use zoom_connector::config::Config;
use zoom_connector::wiring;
use zoom_sim::{RunningSim, ZoomSim};

pub use crate::front::{FlowResult, cookie_pair};
use crate::front::{Front, captured_events};

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
    /// The simulator's configuration (e.g. a short `access_token_ttl_secs`).
    pub sim_config: Option<zoom_sim::SimConfig>,
}

impl StackOptions {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            env: Vec::new(),
            aws_sdk: None,
            sim_config: None,
        }
    }

    /// See [`StackOptions::sim_config`].
    pub fn with_sim_config(mut self, config: zoom_sim::SimConfig) -> Self {
        self.sim_config = Some(config);
        self
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
    /// The KMS key sealing pending token copies (`PENDING_TOKENS_KEY_ID`).
    pub pending_tokens_key: String,
}

/// A KMS key on moto, as template.yaml's `PendingTokensKey` (its ARN).
pub async fn create_kms_key(sdk: &aws_config::SdkConfig) -> String {
    aws_sdk_kms::Client::new(sdk)
        .create_key()
        .description("zoom-connector tests: pending token copies")
        .send()
        .await
        .expect("create a KMS key on moto")
        .key_metadata
        .and_then(|m| m.arn)
        .expect("the key's ARN")
}

pub struct TestStack {
    /// The routers' URL, the API key and a client (`stack.connect_platform()` and the other
    /// flow helpers come from it).
    pub front: Front,
    pub webhook_secret: String,
    pub sim: ZoomSim,
    pub running_sim: RunningSim,
    pub connector: Connector,
    pub backend: Backend,
    pub aws: Option<AwsResources>,
    pub local_store: Option<LocalStore>,
    pub data_dir: Arc<tempfile::TempDir>,
    server: tokio::task::JoinHandle<()>,
}

impl std::ops::Deref for TestStack {
    type Target = Front;

    fn deref(&self) -> &Front {
        &self.front
    }
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
        .attribute_definitions(attr("list_end_user", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .set_global_secondary_indexes(Some(
            [
                (NEXT_REFRESH_INDEX, "refresh_shard", "next_refresh_at"),
                (
                    zoom_connector::adapters::aws::dynamo_items::LIST_INDEX,
                    "list_shard",
                    "id",
                ),
                (
                    zoom_connector::adapters::aws::dynamo_items::LIST_STATUS_INDEX,
                    "list_status",
                    "id",
                ),
                (
                    zoom_connector::adapters::aws::dynamo_items::LIST_END_USER_INDEX,
                    "list_end_user",
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
        let sim = match options.sim_config.clone() {
            Some(config) => ZoomSim::with_defaults_and_config(config),
            None => ZoomSim::with_defaults(),
        };
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
                let pending_tokens_key = create_kms_key(&sdk).await;
                Some(AwsResources {
                    sdk: options.aws_sdk.clone().unwrap_or(sdk),
                    table,
                    bus,
                    prefix: unique("zc"),
                    capture_queue_url,
                    pending_tokens_key,
                })
            }
        };
        if let Some(a) = &aws {
            env.insert("CONNECTIONS_TABLE", a.table.clone());
            env.insert("EVENT_BUS_NAME", a.bus.clone());
            env.insert("SECRETS_PREFIX", a.prefix.clone());
            env.insert("PENDING_TOKENS_KEY_ID", a.pending_tokens_key.clone());
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
            front: Front::new(base_url, api_key),
            webhook_secret,
            sim,
            running_sim,
            connector,
            backend: options.backend,
            aws,
            local_store,
            data_dir,
            server,
        }
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
            (None, Some(aws)) => captured_events(&aws.sdk, &aws.capture_queue_url).await,
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
    match aws {
        None => {
            let store = LocalStore::open(data_dir).unwrap();
            (wiring::local_ports(config, store.clone()), Some(store))
        }
        Some(a) => {
            let mut config = config.clone();
            config.aws.connections_table = a.table.clone();
            config.aws.event_bus_name = a.bus.clone();
            config.aws.pending_tokens_key_id = Some(a.pending_tokens_key.clone());
            (wiring::aws_ports(&config, &a.sdk), None)
        }
    }
}

/// Puts the platform app and the connector's keys where the functions read them.
pub async fn seed_secrets(connector: &Connector, api_key: &str, webhook_secret: &str) {
    let seed = wiring::SeedSecrets {
        platform_client_id: zoom_sim::DEFAULT_CLIENT_ID,
        platform_client_secret: zoom_sim::DEFAULT_CLIENT_SECRET,
        api_key,
        webhook_secret_token: webhook_secret,
    };
    wiring::seed_secrets(connector, &seed).await.unwrap();
}

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
        self.container_with(|_| {})
    }

    /// Another container whose ports `adjust` changes first (a fake bus, a slow Zoom, a
    /// clock ahead, see `crate::fakes`): the one builder of extra containers.
    pub fn container_with(&self, adjust: impl FnOnce(&mut Ports)) -> Connector {
        let config = (*self.connector.config).clone();
        let (mut ports, _) = ports_for(&config, self.aws.as_ref(), self.data_dir.path());
        adjust(&mut ports);
        Connector::new(config, ports)
    }
}

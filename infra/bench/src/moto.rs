//! moto for the AWS-backed parts, started like the end-to-end harness does (tests/src/moto.rs):
//! from the project's Python environment, stopped when this process closes its stdin. Plus
//! the resources template.yaml would create: the table, the bus, the two secrets.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use zoom_connector::adapters::aws::AwsSecretStore;
use zoom_connector::adapters::aws::dynamo_items::NEXT_REFRESH_INDEX;
use zoom_connector::ports::SecretStore;
use zoom_connector::secret::SecretString;

use crate::BenchError;

const SERVER: &str = r#"
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
"#;

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";

/// A running moto server; it stops when this is dropped (its stdin closes).
pub struct Moto {
    pub endpoint: String,
    child: Child,
    _stdin: ChildStdin,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.venv/bin/python"
    ))
}

pub fn free_port() -> Result<u16, BenchError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Moto {
    pub fn start() -> Result<Self, BenchError> {
        let python = python();
        let port = free_port()?;
        let mut child = Command::new(&python)
            .args(["-c", SERVER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                BenchError::new(format!(
                    "moto could not be started with {} ({e}); create it with `make test` or \
                     `python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt`",
                    python.display()
                ))
            })?;
        let stdout = child.stdout.take().ok_or("moto stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            return Err(BenchError::new(format!(
                "moto did not start from {}",
                python.display()
            )));
        }
        let stdin = child.stdin.take().ok_or("moto stdin")?;
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            _stdin: stdin,
        })
    }
}

/// SDK configuration for `endpoint` (moto, or the counting proxy in front of it).
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "moto",
        ))
        .load()
        .await
}

/// Names of one deployment's resources on moto.
#[derive(Debug, Clone)]
pub struct Resources {
    pub table: String,
    pub bus: String,
    pub prefix: String,
    pub api_key: String,
    pub webhook_secret: String,
}

impl Resources {
    /// The variables template.yaml gives every function for these resources.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CONNECTIONS_TABLE", self.table.clone()),
            ("EVENT_BUS_NAME", self.bus.clone()),
            ("SECRETS_PREFIX", self.prefix.clone()),
        ]
    }
}

/// Creates the table (as template.yaml defines it), the bus and the two secrets.
pub async fn create_resources(sdk: &aws_config::SdkConfig) -> Result<Resources, BenchError> {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let resources = Resources {
        table: format!("bench-connections-{id}"),
        bus: format!("bench-bus-{id}"),
        prefix: format!("bench-{id}"),
        api_key: zoom_connector::secret::random_token(24),
        webhook_secret: zoom_connector::secret::random_token(24),
    };
    create_table(sdk, &resources.table).await?;
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(&resources.bus)
        .send()
        .await
        .map_err(|e| BenchError::new(format!("create bus: {e:?}")))?;
    let secrets = AwsSecretStore::new(sdk);
    let platform = serde_json::json!({ "client_id": zoom_sim::DEFAULT_CLIENT_ID, "client_secret": zoom_sim::DEFAULT_CLIENT_SECRET });
    let keys = serde_json::json!({ "api_key": resources.api_key, "webhook_secret_token": resources.webhook_secret });
    secrets
        .put_secret(
            &format!("{}/platform-app", resources.prefix),
            &SecretString::new(platform.to_string()),
            "bench-seed-platform",
        )
        .await
        .map_err(|e| BenchError::new(format!("seed platform secret: {e}")))?;
    secrets
        .put_secret(
            &format!("{}/connector", resources.prefix),
            &SecretString::new(keys.to_string()),
            "bench-seed-keys",
        )
        .await
        .map_err(|e| BenchError::new(format!("seed connector secret: {e}")))?;
    Ok(resources)
}

async fn create_table(sdk: &aws_config::SdkConfig, table: &str) -> Result<(), BenchError> {
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
    };
    let built = |e: aws_sdk_dynamodb::error::BuildError| BenchError::new(e.to_string());
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S).map_err(built)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S).map_err(built)?)
        .attribute_definitions(attr("refresh_shard", ScalarAttributeType::S).map_err(built)?)
        .attribute_definitions(attr("next_refresh_at", ScalarAttributeType::N).map_err(built)?)
        .key_schema(key("pk", KeyType::Hash).map_err(built)?)
        .key_schema(key("sk", KeyType::Range).map_err(built)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(NEXT_REFRESH_INDEX)
                .key_schema(key("refresh_shard", KeyType::Hash).map_err(built)?)
                .key_schema(key("next_refresh_at", KeyType::Range).map_err(built)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(built)?,
        )
        .send()
        .await
        .map_err(|e| BenchError::new(format!("create table: {e:?}")))?;
    Ok(())
}

//! The one wiring of ports to adapters, used by the Lambda functions, the local stack and the
//! test harness: AWS (Secrets Manager, DynamoDB, EventBridge) or the embedded local store,
//! with Zoom over HTTP either way, and the seeding of the secrets the functions read.

pub mod lambda;

use std::sync::Arc;

use crate::adapters::aws::{AwsSecretStore, DynamoConnectionStore, EventBridgeBus, KmsDataKeys};
use crate::adapters::local::{LocalDataKeys, LocalStore};
use crate::adapters::zoom_http::{HttpZoomApi, HttpZoomOAuth, http_client};
use crate::app::{Connector, Ports, ZOOM_OAUTH_TIMEOUT};
use crate::config::Config;
use crate::domain::error::StoreError;
use crate::ports::{SystemClock, ZoomApi, ZoomOAuth};
use crate::secret::{SecretString, random_token};

/// Zoom over HTTP: OAuth and the REST API sharing one client and its connection pool.
fn zoom_over_http(config: &Config) -> (Arc<dyn ZoomOAuth>, Arc<dyn ZoomApi>) {
    let http = http_client();
    let oauth = HttpZoomOAuth::new(http.clone(), &config.zoom_oauth_url, ZOOM_OAUTH_TIMEOUT);
    (Arc::new(oauth), Arc::new(HttpZoomApi::new(http)))
}

/// The AWS ports on an SDK configuration (Lambda's own, or one pointed at moto by tests).
pub fn aws_ports(config: &Config, sdk: &aws_config::SdkConfig) -> Ports {
    let (oauth, zoom) = zoom_over_http(config);
    Ports {
        secrets: Arc::new(AwsSecretStore::new(sdk)),
        store: Arc::new(DynamoConnectionStore::new(
            sdk,
            config.aws.connections_table.clone(),
        )),
        bus: Arc::new(EventBridgeBus::new(sdk, config.aws.event_bus_name.clone())),
        oauth,
        zoom,
        clock: Arc::new(SystemClock),
        data_keys: Arc::new(KmsDataKeys::new(
            sdk,
            config.aws.pending_tokens_key_id.clone(),
        )),
    }
}

/// The embedded local store for secrets, records and events, and the data dir's master key
/// for the pending-token copy.
pub fn local_ports(config: &Config, store: LocalStore) -> Ports {
    let (oauth, zoom) = zoom_over_http(config);
    let data_keys: Arc<dyn crate::ports::DataKeys> = match store
        .path()
        .parent()
        .map(LocalDataKeys::open)
    {
        Some(Ok(keys)) => Arc::new(keys),
        other => {
            tracing::error!(error = ?other.map(|r| r.err()), "no master key for the pending-token copy; using one in memory");
            Arc::new(LocalDataKeys::in_memory())
        }
    };
    let store = Arc::new(store);
    Ports {
        secrets: store.clone(),
        store: store.clone(),
        bus: store,
        oauth,
        zoom,
        clock: Arc::new(SystemClock),
        data_keys,
    }
}

/// What a Lambda container builds once at init: the AWS ports on the standard SDK
/// environment.
pub async fn aws_connector(config: Config) -> Connector {
    let sdk = crate::adapters::aws::load_sdk_config().await;
    let ports = aws_ports(&config, &sdk);
    Connector::new(config, ports)
}

pub fn local_connector(config: Config, store: LocalStore) -> Connector {
    let ports = local_ports(&config, store);
    Connector::new(config, ports)
}

/// The secrets the functions read, as an operator stores them on AWS (docs/operations.md):
/// the platform app's client credentials and the connector's own keys.
pub struct SeedSecrets<'a> {
    pub platform_client_id: &'a str,
    pub platform_client_secret: &'a str,
    pub api_key: &'a str,
    pub webhook_secret_token: &'a str,
}

/// Stores [`SeedSecrets`] where the configuration names them (the local stack at start, the
/// test harness for every stack).
pub async fn seed_secrets(connector: &Connector, seed: &SeedSecrets<'_>) -> Result<(), StoreError> {
    let names = &connector.config.aws;
    let platform = serde_json::json!({
        "client_id": seed.platform_client_id,
        "client_secret": seed.platform_client_secret,
    });
    let keys = serde_json::json!({
        "api_key": seed.api_key,
        "webhook_secret_token": seed.webhook_secret_token,
    });
    for (name, value) in [
        (&names.platform_app_secret_id, platform),
        (&names.connector_secret_id, keys),
    ] {
        connector
            .secrets
            .put_secret(
                name,
                &SecretString::new(value.to_string()),
                &random_token(16),
            )
            .await?;
    }
    Ok(())
}

/// A connector on a fresh local store in a temporary directory, for unit tests; `env` sets
/// configuration variables (the public URL defaults to the local stack's).
#[cfg(test)]
pub fn test_connector(env: &[(&str, &str)]) -> (Connector, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let lookup = |k: &str| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    };
    let config = Config::from_lookup(lookup, Some("http://127.0.0.1:3000")).expect("test config");
    let store = LocalStore::open(dir.path()).expect("a local store");
    (local_connector(config, store), dir)
}

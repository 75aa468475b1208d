//! The one wiring of ports to adapters, used by the Lambda functions, the local stack and the
//! test harness: AWS (Secrets Manager, DynamoDB, EventBridge) or the embedded local store,
//! with Zoom over HTTP either way.

use std::sync::Arc;

use crate::adapters::aws::{AwsSecretStore, DynamoConnectionStore, EventBridgeBus};
use crate::adapters::local::LocalStore;
use crate::adapters::zoom_http::{HttpZoomApi, HttpZoomOAuth, http_client};
use crate::app::{Connector, Ports, ZOOM_OAUTH_TIMEOUT};
use crate::config::Config;
use crate::ports::{SystemClock, ZoomApi, ZoomOAuth};

pub mod lambda;

/// Zoom over HTTP: OAuth and the REST API sharing one client and its connection pool.
fn zoom_over_http(config: &Config) -> (Arc<dyn ZoomOAuth>, Arc<dyn ZoomApi>) {
    let http = http_client();
    let oauth = HttpZoomOAuth::new(http.clone(), &config.zoom_oauth_url, ZOOM_OAUTH_TIMEOUT);
    (Arc::new(oauth), Arc::new(HttpZoomApi::new(http)))
}

/// The AWS adapters and Zoom over HTTP, as a Lambda container builds them once at init.
pub async fn aws_connector(config: Config) -> Connector {
    let sdk = crate::adapters::aws::load_sdk_config().await;
    aws_connector_with(config, &sdk)
}

/// [`aws_connector`] on a given SDK configuration (the tests point it at moto).
pub fn aws_connector_with(config: Config, sdk: &aws_config::SdkConfig) -> Connector {
    let (oauth, zoom) = zoom_over_http(&config);
    let ports = Ports {
        secrets: Arc::new(AwsSecretStore::new(sdk)),
        store: Arc::new(DynamoConnectionStore::new(
            sdk,
            config.aws.connections_table.clone(),
        )),
        bus: Arc::new(EventBridgeBus::new(sdk, config.aws.event_bus_name.clone())),
        oauth,
        zoom,
        clock: Arc::new(SystemClock),
    };
    Connector::new(config, ports)
}

/// The embedded local store for secrets, records and events, and Zoom over HTTP.
pub fn local_connector(config: Config, store: LocalStore) -> Connector {
    let (oauth, zoom) = zoom_over_http(&config);
    let store = Arc::new(store);
    let ports = Ports {
        secrets: store.clone(),
        store: store.clone(),
        bus: store,
        oauth,
        zoom,
        clock: Arc::new(SystemClock),
    };
    Connector::new(config, ports)
}

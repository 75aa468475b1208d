//! `zoom-bench init-probe`: the steps of a function's init (`zoom_connector::wiring::lambda::init`
//! and the actions router) timed one by one in a fresh process, printed as one JSON line,
//! then (unless `--no-request`) the first AWS request of the process, timed on its own.
//!
//! Variants, for the report's comparison (only `product` is the connector's code):
//! - `product`: the steps as `lambda::init` takes them;
//! - `system`: the same with the SDK configuration as it was before issue 18: `aws_config`'s
//!   default HTTPS client, which reads and parses the system CA certificates (the bundle and
//!   every file of /etc/ssl/certs), and its default region and credentials chains;
//! - `mozilla`: `product` with the SDK's client trusting the whole Mozilla root set
//!   (`webpki-root-certs`, 118 roots, as PEM: the SDK takes nothing else) instead of the five
//!   Amazon roots: what trusting the full set would cost, at init and on the first request.
//!
//! The SDK clients are built one per step, so the report can say what a function saves by
//! building only the clients it uses.

use std::sync::Arc;
use std::time::Instant;

use zoom_connector::adapters::aws::https;
use zoom_connector::adapters::aws::sdk::bounded;
use zoom_connector::adapters::aws::{AwsSecretStore, DynamoConnectionStore, EventBridgeBus};
use zoom_connector::adapters::zoom_http::{HttpZoomApi, HttpZoomOAuth, http_client};
use zoom_connector::app::{Connector, Ports, ZOOM_OAUTH_TIMEOUT};
use zoom_connector::ports::SystemClock;

use crate::BenchError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    Product,
    System,
    Mozilla,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Self::Product, Self::System, Self::Mozilla];

    pub fn name(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::System => "system",
            Self::Mozilla => "mozilla",
        }
    }
}

/// `load_sdk_config` as it was before issue 18: the SDK's default client and trust store.
async fn system_sdk_config() -> aws_config::SdkConfig {
    bounded(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .load()
        .await
}

/// The Mozilla set as one PEM bundle (a product would compile this text in).
fn mozilla_pem() -> Vec<u8> {
    use base64::Engine;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

/// `load_sdk_config` with the SDK's client on the Mozilla set instead of the Amazon roots.
async fn mozilla_sdk_config(pem: &[u8]) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::TrustStore;
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    let loader = zoom_connector::adapters::aws::env::from_environment(aws_config::defaults(
        aws_config::BehaviorVersion::latest(),
    ))
    .http_client(https::https_client(trust));
    bounded(loader).load().await
}

pub async fn run(variant: Variant, request: bool) -> Result<(), BenchError> {
    let pem = (variant == Variant::Mozilla).then(mozilla_pem);
    let mut steps = Vec::new();
    let mut lap = Instant::now();
    let mut step = |name: &str| {
        steps.push(serde_json::json!({ "step": name, "ms": lap.elapsed().as_secs_f64() * 1000.0 }));
        lap = Instant::now();
    };
    zoom_connector::telemetry::init_lambda();
    step("JSON log subscriber (telemetry::init_lambda)");
    let config =
        zoom_connector::config::Config::from_env().map_err(|e| BenchError::new(e.to_string()))?;
    step("Config::from_env");
    if variant != Variant::System {
        https::ca_bundle_from_env().map_err(|e| BenchError::new(e.to_string()))?;
    }
    step("AWS_CA_BUNDLE check (unset here)");
    let sdk = match (variant, &pem) {
        (Variant::System, _) => system_sdk_config().await,
        (Variant::Mozilla, Some(pem)) => mozilla_sdk_config(pem).await,
        _ => zoom_connector::adapters::aws::load_sdk_config().await,
    };
    step("SDK configuration (aws_config load)");
    let secrets = Arc::new(AwsSecretStore::new(&sdk));
    step("SDK client: Secrets Manager");
    let store = Arc::new(DynamoConnectionStore::new(
        &sdk,
        config.aws.connections_table.clone(),
    ));
    step("SDK client: DynamoDB");
    let bus = Arc::new(EventBridgeBus::new(&sdk, config.aws.event_bus_name.clone()));
    step("SDK client: EventBridge");
    let http = http_client();
    step("Zoom HTTP client (reqwest + rustls, webpki-roots)");
    let ports = Ports {
        secrets,
        store,
        bus,
        oauth: Arc::new(HttpZoomOAuth::new(
            http.clone(),
            &config.zoom_oauth_url,
            ZOOM_OAUTH_TIMEOUT,
        )),
        zoom: Arc::new(HttpZoomApi::new(http)),
        clock: Arc::new(SystemClock),
        data_keys: Arc::new(zoom_connector::adapters::aws::KmsDataKeys::new(
            &sdk,
            config.aws.pending_tokens_key_id.clone(),
        )),
    };
    let table = config.aws.connections_table.clone();
    let mut connector = Connector::new(config, ports);
    step("Zoom adapters + Connector::new");
    connector.metrics = Arc::new(zoom_connector::metrics::EmfMetrics::from_lambda_env());
    step("EMF metrics");
    let router = zoom_connector::http::actions_router(connector);
    step("actions_router");
    drop(router);
    // The first AWS request of the process: the SDK builds its TLS connector (and parses the
    // roots it trusts) here, then connects. Over HTTP to moto, like the cold-start runs.
    let mut first_request_ms = None;
    if request {
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let started = Instant::now();
        dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| BenchError::new(format!("DescribeTable: {e:?}")))?;
        first_request_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "{}",
        serde_json::json!({
            "variant": variant.name(),
            "steps": steps,
            "first_request_ms": first_request_ms,
        })
    );
    Ok(())
}

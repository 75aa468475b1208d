//! `zoom-bench init-probe`: the steps of a function's init (`zoom_connector::wiring::lambda::init`
//! and the actions router) timed one by one in a fresh process, printed as one JSON line.
//!
//! Both HTTP clients of a function (the AWS SDK's and reqwest for Zoom) load the system's CA
//! certificates at init, each on its own: read the bundle (and, on Debian, every file of
//! /etc/ssl/certs) and parse each certificate. The `lean` variant takes the same steps with
//! the changes this bench measures for the report (it does not change product code): the SDK
//! gets an HTTPS client that trusts only the Amazon Trust Services roots AWS endpoints chain
//! to, plus the region and environment credentials Lambda always sets; the Zoom client trusts
//! compiled-in roots (webpki-roots, already parsed) instead of the system bundle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use zoom_connector::adapters::aws::{AwsSecretStore, DynamoConnectionStore, EventBridgeBus};
use zoom_connector::adapters::zoom_http::{HttpZoomApi, HttpZoomOAuth, http_client};
use zoom_connector::app::{Connector, Ports, ZOOM_OAUTH_TIMEOUT};
use zoom_connector::ports::SystemClock;

use crate::BenchError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    Product,
    Lean,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Lean => "lean",
        }
    }
}

/// The roots AWS service endpoints chain to (a product would embed these PEM files).
const AMAZON_ROOTS: [&str; 5] = [
    "Amazon_Root_CA_1.pem",
    "Amazon_Root_CA_2.pem",
    "Amazon_Root_CA_3.pem",
    "Amazon_Root_CA_4.pem",
    "Starfield_Services_Root_Certificate_Authority_-_G2.pem",
];

/// `load_sdk_config` with the region and credentials given instead of resolved by chains,
/// and the SDK's default HTTPS client (rustls, aws-lc) trusting only the Amazon roots.
async fn lean_sdk_config() -> Result<aws_config::SdkConfig, BenchError> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let mut trust = TrustStore::empty().with_native_roots(false);
    for name in AMAZON_ROOTS {
        trust = trust.with_pem_certificate(std::fs::read(format!("/etc/ssl/certs/{name}"))?);
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| BenchError::new(e.to_string()))?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        );
    if let Ok(region) = std::env::var("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    Ok(loader.load().await)
}

/// `http_client` with the Mozilla roots compiled in (no CA bundle to read and parse).
fn lean_http_client() -> Result<reqwest::Client, BenchError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| BenchError::new(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("zoom-connector/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

pub async fn run(variant: Variant) -> Result<(), BenchError> {
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
    let sdk = match variant {
        Variant::Product => zoom_connector::adapters::aws::load_sdk_config().await,
        Variant::Lean => lean_sdk_config().await?,
    };
    step("SDK configuration (aws_config load)");
    let secrets = Arc::new(AwsSecretStore::new(&sdk));
    step("first SDK client (Secrets Manager)");
    let store = Arc::new(DynamoConnectionStore::new(
        &sdk,
        config.aws.connections_table.clone(),
    ));
    let bus = Arc::new(EventBridgeBus::new(&sdk, config.aws.event_bus_name.clone()));
    step("two more SDK clients (DynamoDB, EventBridge)");
    let http = match variant {
        Variant::Product => http_client(),
        Variant::Lean => lean_http_client()?,
    };
    step("Zoom HTTP client (reqwest + rustls)");
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
    let connector = Connector::new(config, ports);
    step("Zoom adapters + Connector::new");
    let router = zoom_connector::http::actions_router(connector);
    step("actions_router");
    drop(router);
    println!(
        "{}",
        serde_json::json!({ "variant": variant.name(), "steps": steps })
    );
    Ok(())
}

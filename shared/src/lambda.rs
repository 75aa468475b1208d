//! Running on Lambda: the HTTP functions serve their axum router through `lambda_http`.

use crate::config::Config;
use crate::services::Connector;

/// Reads the configuration, builds the AWS adapters once per container, and logs in JSON.
pub async fn init() -> Result<Connector, lambda_http::Error> {
    crate::telemetry::init_lambda();
    let config = Config::from_env()?;
    Ok(Connector::aws(config).await)
}

/// Serves an HTTP function's router (API Gateway HTTP API, payload 2.0).
pub async fn serve(router: axum::Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}

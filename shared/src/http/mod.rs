//! One axum router per HTTP function, used by Lambda (`lambda_http::run`) and merged by the
//! local stack. No route exists twice.

pub mod callback;
pub mod common;
pub mod connect;
pub mod connections;
pub mod limits;
pub mod meta;
pub mod openapi;
pub mod openapi_catalogue;
pub mod pages;
pub mod problem;
pub mod proxy;
pub mod webhooks;
pub mod zoom_actions;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{any, get, post};

use common::require_api_key;
use connections::{delete_connection, get_connection, list_connections, refresh_connection};
use proxy::{proxy, proxy_without_path};

use crate::app::Connector;

/// authorize-redirect function: `/connect/sessions`, `/connect`.
pub fn connect_router(connector: Connector) -> Router {
    common::finish(connect::routes(connector.clone()), connector)
}

/// callback function: `/oauth/callback`.
pub fn callback_router(connector: Connector) -> Router {
    common::finish(callback::routes(), connector)
}

/// actions function: `/connections/**`, plus `/healthz` and `/openapi.json`.
pub fn actions_router(connector: Connector) -> Router {
    common::finish(
        actions_routes(connector.clone()).merge(description_routes()),
        connector,
    )
}

/// webhooks function: `/webhooks/zoom`.
pub fn webhooks_router(connector: Connector) -> Router {
    common::finish(webhooks::routes(), connector)
}

/// Every function's routes on one router (the local stack), without the shared layers, so a
/// caller can add its own routes before [`common::finish`].
pub fn all_routes(connector: Connector) -> Router<Connector> {
    connect::routes(connector.clone())
        .merge(callback::routes())
        .merge(webhooks::routes())
        .merge(actions_routes(connector))
        .merge(description_routes())
}

/// The actions function's routes: connections, Zoom actions, the proxy (API key, timed).
fn actions_routes(connector: Connector) -> Router<Connector> {
    Router::new()
        .route("/connections", get(list_connections))
        .route(
            "/connections/{id}",
            get(get_connection).delete(delete_connection),
        )
        .route("/connections/{id}/refresh", post(refresh_connection))
        .merge(zoom_actions::routes())
        .route("/connections/{id}/proxy/{*path}", any(proxy))
        .route("/connections/{id}/proxy", any(proxy_without_path))
        .route("/connections/{id}/proxy/", any(proxy_without_path))
        .route_layer(axum::middleware::from_fn_with_state(
            connector.clone(),
            time_action,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            connector,
            require_api_key,
        ))
}

/// `ActionLatency`: the Zoom actions and the proxy, from the authorized request to the answer.
async fn time_action(
    State(connector): State<Connector>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let is_action = path.contains("/zoom/") || path.contains("/proxy");
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if is_action {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        connector
            .metrics
            .record(crate::metrics::Metric::ActionLatency, None, ms);
    }
    response
}

/// `/healthz` and `/openapi.json` (served by the actions function).
pub fn description_routes() -> Router<Connector> {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/openapi.json", get(openapi::openapi_json))
}

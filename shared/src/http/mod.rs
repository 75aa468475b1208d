//! One axum router per HTTP function, used by Lambda (`lambda_http::run`) and merged by the
//! local stack. No route exists twice.

pub mod actions;
pub mod browser;
pub mod common;
pub mod openapi;
pub mod pages;

use axum::Router;

use crate::services::Connector;

/// authorize-redirect function: `/connect/sessions`, `/connect`.
pub fn connect_router(connector: Connector) -> Router {
    common::finish(browser::connect_routes(connector.clone()), connector)
}

/// callback function: `/oauth/callback`.
pub fn callback_router(connector: Connector) -> Router {
    common::finish(browser::callback_routes(), connector)
}

/// actions function: `/connections/**`, plus `/healthz` and `/openapi.json`.
pub fn actions_router(connector: Connector) -> Router {
    common::finish(
        actions::routes(connector.clone()).merge(common::description_routes()),
        connector,
    )
}

/// webhooks function: `/webhooks/zoom`.
pub fn webhooks_router(connector: Connector) -> Router {
    common::finish(browser::webhook_routes(), connector)
}

/// Every function's routes on one router (the local stack), without the shared layers, so a
/// caller can add its own routes before [`common::finish`].
pub fn all_routes(connector: Connector) -> Router<Connector> {
    browser::connect_routes(connector.clone())
        .merge(browser::callback_routes())
        .merge(browser::webhook_routes())
        .merge(actions::routes(connector))
        .merge(common::description_routes())
}

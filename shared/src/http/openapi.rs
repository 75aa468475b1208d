//! The OpenAPI 3.1 document of every route (`GET /openapi.json`), generated from the handlers.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{actions, browser, common};

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Zoom connector", description = "Connect Zoom accounts and act on them (see docs/api.md)."),
    modifiers(&ApiKeyScheme),
    paths(
        common::healthz, common::openapi_json,
        browser::create_session, browser::connect_page, browser::connect_submit, browser::oauth_callback, browser::zoom_webhook,
        actions::list_connections, actions::get_connection, actions::delete_connection, actions::refresh_connection,
        actions::zoom_me, actions::create_meeting, actions::get_meeting, actions::update_meeting, actions::delete_meeting,
        actions::update_livestream, actions::meeting_recordings, actions::list_recordings, actions::proxy,
    ),
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

pub fn document_json() -> String {
    DOCUMENT.clone()
}

//! The OpenAPI 3.1 document of every route (`GET /openapi.json`), generated from the handlers.

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{callback, connect, connections, meta, proxy, webhooks};

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
        meta::healthz, openapi_json,
        connect::create_session, connect::connect_page, connect::connect_js, connect::session_status, connect::connect_submit, callback::oauth_callback, webhooks::zoom_webhook, webhooks::zoom_app_webhook,
        connections::list_connections, connections::get_connection, connections::delete_connection, connections::refresh_connection,
        proxy::proxy,
    ),
    // Not a route: the detail of the `Zoom Webhook Event` triggers on the bus, to code against.
    components(schemas(crate::domain::WebhookEventDetail)),
)]
pub struct ApiDoc;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    super::openapi_catalogue::add_catalogue(&mut document);
    document.to_string()
});

pub fn document_json() -> String {
    DOCUMENT.clone()
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// `METHOD /path` of every `### \`METHOD /path\`` heading of docs/api.md (local-only
    /// routes excepted: they are not part of the deployed API).
    fn documented() -> BTreeSet<String> {
        include_str!("../../../docs/api.md")
            .lines()
            .filter_map(|l| l.strip_prefix("### `"))
            .filter_map(|l| l.split('`').next())
            .filter(|r| !r.contains("/local/"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_trigger_event_is_a_schema_of_the_document() {
        let doc: serde_json::Value = serde_json::from_str(&super::document_json()).unwrap();
        let schema = &doc["components"]["schemas"]["ZoomWebhookEvent"];
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for field in [
            "connection_id",
            "event",
            "event_ts",
            "account_id",
            "zoom_user_id",
            "delivery_id",
        ] {
            assert!(required.contains(field), "{field}: {schema}");
        }
        assert!(schema["properties"]["payload"].is_object(), "{schema}");
    }

    #[test]
    fn docs_api_md_lists_exactly_the_routes_of_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(&super::document_json()).unwrap();
        let mut served = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                served.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        let documented = documented();
        // The proxy takes any method; the docs list it once.
        let normalise = |set: &BTreeSet<String>| -> BTreeSet<String> {
            set.iter()
                .map(|r| {
                    if r.contains("/proxy/") {
                        "ANY /connections/{id}/proxy/{path}".to_owned()
                    } else {
                        r.clone()
                    }
                })
                .collect()
        };
        let documented: BTreeSet<String> = normalise(
            &documented
                .into_iter()
                .map(|r| r.replace(" (any method)", ""))
                .collect(),
        );
        assert_eq!(normalise(&served), documented);
    }
}

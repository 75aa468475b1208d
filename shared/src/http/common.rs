//! What every router shares: API-key authentication, body limits, problem+json for every
//! error the framework itself produces, request logging, health and description.

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::error::ApiError;
use crate::services::Connector;

/// Request bodies above this are refused with 413 `payload_too_large`.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Adds the shared layers and the state.
pub fn finish(routes: Router<Connector>, connector: Connector) -> Router {
    routes
        .fallback(not_found)
        .layer(axum::middleware::map_response(problem_for_framework_errors))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(connector)
}

async fn not_found() -> ApiError {
    ApiError::not_found("No such route.")
}

/// axum answers some errors itself in plain text (405, 413, ...): give them our shape.
async fn problem_for_framework_errors(response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if is_problem || response.status().is_success() || response.status().is_redirection() {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(BODY_LIMIT).into_response(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This route does not take that method.",
        )
        .into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send `Content-Type: application/json`.",
        )
        .into_response(),
        _ => response,
    }
}

/// Backend routes: `Authorization: Bearer <api key>`, compared in constant time.
pub async fn require_api_key(
    State(connector): State<Connector>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(presented) = presented.filter(|p| !p.is_empty()) else {
        return ApiError::unauthorized().into_response();
    };
    match connector.connector_keys().await {
        Ok(keys) if keys.api_key.ct_eq(presented) => next.run(request).await,
        Ok(_) => ApiError::unauthorized().into_response(),
        Err(e) => e.into_response(),
    }
}

/// JSON body extractor whose rejections are problem+json `validation_failed` (or 413).
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(ApiError::payload_too_large(BODY_LIMIT));
                }
                if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        "Send `Content-Type: application/json`.",
                    ));
                }
                Err(ApiError::validation(format!(
                    "The JSON body is invalid: {}",
                    rejection.body_text()
                )))
            }
        }
    }
}

/// `/healthz` and `/openapi.json`.
pub fn description_routes() -> Router<Connector> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json))
}

#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "The service is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::document_json(),
    )
        .into_response()
}

/// Parses one cookie of a `Cookie` header.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = axum::http::HeaderMap::new();
        h.append(header::COOKIE, "a=1; zc_bind_abc=xyz; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, "zc_bind_abc").as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&h, "zc_bind"), None);
    }

    proptest! {
        #[test]
        fn cookie_parser_never_panics(raw in "[ -~]{0,200}", name in "[a-z_]{1,12}") {
            let mut h = axum::http::HeaderMap::new();
            if let Ok(v) = raw.parse() {
                h.append(header::COOKIE, v);
            }
            let _ = cookie_value(&h, &name);
        }
    }
}

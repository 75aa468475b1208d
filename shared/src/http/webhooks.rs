//! `/webhooks/zoom` and `/webhooks/zoom/apps/{client_id}` (webhooks function).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};

use crate::app::Connector;
use crate::app::webhooks::{WebhookApp, WebhookHeaders};
use crate::domain::error::ApiError;
use crate::zoom::profile;

pub fn routes() -> Router<Connector> {
    Router::new()
        .route("/webhooks/zoom", post(zoom_webhook))
        .route("/webhooks/zoom/apps/{client_id}", post(zoom_app_webhook))
}

/// Refused before the signature check above this, like every JSON route's body. Most Zoom
/// deliveries are a few KB, but a `recording.completed` lists every file and must not be
/// refused on every retry (and lost); a detail too large for EventBridge goes without payload.
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

fn webhook_headers(headers: &HeaderMap) -> WebhookHeaders<'_> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    WebhookHeaders {
        timestamp: header(profile::TIMESTAMP_HEADER),
        signature: header(profile::SIGNATURE_HEADER),
        tracking_id: header(profile::TRACKING_HEADER),
    }
}

#[utoipa::path(post, path = "/webhooks/zoom", tag = "webhooks", request_body = Object,
    responses((status = 200, description = "Acknowledged (a trigger event is published once as `Zoom Webhook Event`, see docs/api.md); for endpoint.url_validation: { plainToken, encryptedToken }"),
        (status = 401, description = "Bad or missing signature, or stale timestamp"),
        (status = 413, description = "payload_too_large (over 1 MB)"),
        (status = 503, description = "webhook_publish_failed: the bus did not take the event; Zoom delivers it again")))]
pub async fn zoom_webhook(
    State(connector): State<Connector>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.len() > WEBHOOK_BODY_LIMIT {
        return Err(ApiError::payload_too_large(WEBHOOK_BODY_LIMIT));
    }
    let answer = connector
        .handle_app_webhook(WebhookApp::Platform, webhook_headers(&headers), &body)
        .await?;
    Ok(Json(answer))
}

#[utoipa::path(post, path = "/webhooks/zoom/apps/{client_id}", tag = "webhooks", request_body = Object,
    params(("client_id" = String, Path, description = "The bring-your-own app's client ID")),
    responses((status = 200, description = "As POST /webhooks/zoom, verified with the app's own webhook secret token"),
        (status = 401, description = "Bad or missing signature, stale timestamp, or no webhook secret token stored for the app"),
        (status = 413, description = "payload_too_large (over 1 MB)"),
        (status = 503, description = "webhook_publish_failed: the bus did not take the event; Zoom delivers it again")))]
pub async fn zoom_app_webhook(
    State(connector): State<Connector>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.len() > WEBHOOK_BODY_LIMIT {
        return Err(ApiError::payload_too_large(WEBHOOK_BODY_LIMIT));
    }
    let answer = connector
        .handle_app_webhook(
            WebhookApp::Byo(&client_id),
            webhook_headers(&headers),
            &body,
        )
        .await?;
    Ok(Json(answer))
}

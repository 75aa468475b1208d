//! `GET /healthz`.

use axum::Json;

#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "The service is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

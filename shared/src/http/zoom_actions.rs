//! `/connections/{id}/zoom/**` (actions function): the Zoom actions, and the routes of the actions function.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::common::{JsonBody, no_content, pass};
use crate::app::Connector;
use crate::app::actions::ZoomCall;
use crate::domain::error::ApiError;
use crate::zoom::paths::meeting_path_segment;
use crate::zoom::recordings::{RecordingsPage, RecordingsQuery};
use crate::zoom::schema::{validate_livestream, validate_meeting};

#[utoipa::path(get, path = "/connections/{id}/zoom/me", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "Zoom's GET /users/me"), (status = 409, description = "connection_needs_reauth / connection_revoked")))]
pub async fn zoom_me(
    State(c): State<Connector>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(pass(c.zoom_pass(&id, &ZoomCall::get("/users/me")).await?))
}

#[utoipa::path(post, path = "/connections/{id}/zoom/meetings", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the first answer (24 h)")),
    request_body(content = Object, description = "Zoom's create-meeting body"),
    responses((status = 201, description = "Zoom's meeting; `warning` when start_time ends in Z and a timezone is given"), (status = 400, description = "validation_failed"), (status = 429, description = "zoom_rate_limited")))]
pub async fn create_meeting(
    State(c): State<Connector>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    Ok(pass(c.create_meeting(&id, &body, key).await?))
}

#[utoipa::path(get, path = "/connections/{id}/zoom/meetings/{meetingId}", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("meetingId" = String, Path)), responses((status = 200, description = "Zoom's meeting"), (status = 404, description = "zoom_not_found (zoom.code 3001)")))]
pub async fn get_meeting(
    State(c): State<Connector>,
    Path((id, meeting_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let path = format!("/meetings/{}", meeting_path_segment(&meeting_id)?);
    Ok(pass(c.zoom_pass(&id, &ZoomCall::get(path)).await?))
}

#[utoipa::path(patch, path = "/connections/{id}/zoom/meetings/{meetingId}", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("meetingId" = String, Path)), request_body(content = Object, description = "Zoom's update-meeting body"),
    responses((status = 204, description = "Updated"), (status = 400, description = "validation_failed")))]
pub async fn update_meeting(
    State(c): State<Connector>,
    Path((id, meeting_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    validate_meeting(&body, false)?;
    let path = format!("/meetings/{}", meeting_path_segment(&meeting_id)?);
    Ok(no_content(
        c.zoom_pass(&id, &ZoomCall::json(Method::PATCH, path, &body))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/connections/{id}/zoom/meetings/{meetingId}", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("meetingId" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, description = "zoom_not_found")))]
pub async fn delete_meeting(
    State(c): State<Connector>,
    Path((id, meeting_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let path = format!("/meetings/{}", meeting_path_segment(&meeting_id)?);
    let call = ZoomCall {
        method: Method::DELETE,
        ..ZoomCall::get(path)
    };
    Ok(no_content(c.zoom_pass(&id, &call).await?))
}

#[utoipa::path(patch, path = "/connections/{id}/zoom/meetings/{meetingId}/livestream", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("meetingId" = String, Path)), request_body(content = Object, description = "stream_url, stream_key, page_url"),
    responses((status = 204, description = "Updated"), (status = 400, description = "validation_failed")))]
pub async fn update_livestream(
    State(c): State<Connector>,
    Path((id, meeting_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    validate_livestream(&body)?;
    let path = format!(
        "/meetings/{}/livestream",
        meeting_path_segment(&meeting_id)?
    );
    Ok(no_content(
        c.zoom_pass(&id, &ZoomCall::json(Method::PATCH, path, &body))
            .await?,
    ))
}

#[utoipa::path(get, path = "/connections/{id}/zoom/meetings/{meetingId}/recordings", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("meetingId" = String, Path, description = "Numeric id or UUID (double-encoded toward Zoom when needed)")),
    responses((status = 200, description = "Zoom's meeting recordings"), (status = 404, description = "zoom_not_found")))]
pub async fn meeting_recordings(
    State(c): State<Connector>,
    Path((id, meeting_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let path = format!(
        "/meetings/{}/recordings",
        meeting_path_segment(&meeting_id)?
    );
    Ok(pass(c.zoom_pass(&id, &ZoomCall::get(path)).await?))
}

#[utoipa::path(get, path = "/connections/{id}/zoom/recordings", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), RecordingsQuery), responses((status = 200, body = RecordingsPage), (status = 400, description = "validation_failed")))]
pub async fn list_recordings(
    State(c): State<Connector>,
    Path(id): Path<String>,
    query: Result<Query<RecordingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RecordingsPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::validation(e.body_text()))?;
    Ok(Json(c.list_recordings(&id, query).await?))
}

//! `/connections`, `/connections/{id}`, `/connections/{id}/refresh` (actions function).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use crate::app::Connector;
use crate::app::connections::{ConnectionList, ListQuery};
use crate::domain::Connection;
use crate::domain::error::ApiError;

#[utoipa::path(get, path = "/connections", tag = "connections", security(("api_key" = [])),
    params(("status" = Option<String>, Query, description = "pending|active|refresh_failing|needs_reauth|revoked"), ("end_user_id" = Option<String>, Query, description = "only the connections made for this end user (`end_user.id` of the connect session); combines with `status`"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = ConnectionList), (status = 401, description = "unauthorized")))]
pub async fn list_connections(
    State(c): State<Connector>,
    Query(q): Query<ListQuery>,
) -> Result<Json<ConnectionList>, ApiError> {
    Ok(Json(c.list_connections(q).await?))
}

#[utoipa::path(get, path = "/connections/{id}", tag = "connections", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Connection), (status = 404, description = "connection_not_found")))]
pub async fn get_connection(
    State(c): State<Connector>,
    Path(id): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(c.get_connection(&id).await?))
}

#[utoipa::path(delete, path = "/connections/{id}", tag = "connections", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 204, description = "Deleted; revoked at Zoom (best effort)"), (status = 404, description = "connection_not_found")))]
pub async fn delete_connection(
    State(c): State<Connector>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.delete_connection(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/connections/{id}/refresh", tag = "connections", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Connection), (status = 409, description = "connection_needs_reauth / connection_revoked"), (status = 502, description = "zoom_unavailable")))]
pub async fn refresh_connection(
    State(c): State<Connector>,
    Path(id): Path<String>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(c.force_refresh(&id).await?))
}

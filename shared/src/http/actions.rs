//! Routes of the actions function: connection management, Zoom actions, the raw proxy.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post};
use axum::{Json, Router};

use super::common::{BODY_LIMIT, JsonBody, require_api_key};
use crate::domain::Connection;
use crate::error::ApiError;
use crate::services::Connector;
use crate::services::actions::{
    PassThrough, RecordingsPage, RecordingsQuery, ZoomCall, checked_proxy_path, map_zoom_error,
    meeting_path_segment, rate_limit_retry_after, validate_livestream, validate_meeting,
};
use crate::services::connections::{ConnectionList, ListQuery};

pub fn routes(connector: Connector) -> Router<Connector> {
    Router::new()
        .route("/connections", get(list_connections))
        .route(
            "/connections/{id}",
            get(get_connection).delete(delete_connection),
        )
        .route("/connections/{id}/refresh", post(refresh_connection))
        .route("/connections/{id}/zoom/me", get(zoom_me))
        .route("/connections/{id}/zoom/meetings", post(create_meeting))
        .route(
            "/connections/{id}/zoom/meetings/{meeting_id}",
            get(get_meeting)
                .patch(update_meeting)
                .delete(delete_meeting),
        )
        .route(
            "/connections/{id}/zoom/meetings/{meeting_id}/livestream",
            patch(update_livestream),
        )
        .route(
            "/connections/{id}/zoom/meetings/{meeting_id}/recordings",
            get(meeting_recordings),
        )
        .route("/connections/{id}/zoom/recordings", get(list_recordings))
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

/// Zoom's answer as ours: status, body and the headers worth passing on.
fn pass(answer: PassThrough) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn no_content(answer: PassThrough) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    for (name, value) in answer
        .headers
        .into_iter()
        .filter(|(n, _)| n.starts_with("x-ratelimit"))
    {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

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

/// `/connections/{id}/proxy` with nothing below it: a caller mistake, not a missing route.
async fn proxy_without_path() -> ApiError {
    ApiError::validation("Give the Zoom API path below /proxy/, e.g. /proxy/users/me.")
}

#[utoipa::path(method(get, post, put, patch, delete), path = "/connections/{id}/proxy/{path}", tag = "zoom", security(("api_key" = [])),
    params(("id" = String, Path), ("path" = String, Path, description = "Path below ZOOM_API_URL; any method")),
    responses((status = 200, description = "Zoom's status, body, Content-Type, Retry-After and X-RateLimit-* headers"), (status = 400, description = "validation_failed: the path climbs out of the API base")))]
pub async fn proxy(
    State(c): State<Connector>,
    Path((id, _)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let method = request.method().clone();
    let query = request.uri().query().map(str::to_owned);
    // Only the content type travels with the body: the caller's own `Authorization` (the API
    // key), cookies and hop-by-hop headers are never forwarded; Zoom gets the connection's
    // bearer token.
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The raw (still percent-encoded) path below `.../connections/{id}/proxy/`: Zoom must get
    // it byte for byte (double-encoded UUIDs), and escapes are judged on the raw form.
    let raw_path = request.uri().path();
    let below = raw_path
        .find("/connections/")
        .and_then(|start| {
            let rest = &raw_path[start + "/connections/".len()..];
            rest.find("/proxy/").map(|at| &rest[at + "/proxy/".len()..])
        })
        .ok_or_else(|| ApiError::validation("Missing proxy path."))?;
    let path = checked_proxy_path(below)?;
    let body: Bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| ApiError::payload_too_large(BODY_LIMIT))?;
    let call = ZoomCall {
        method,
        path,
        query,
        body: (!body.is_empty()).then_some(body),
        content_type,
    };
    let response = c.call_zoom(&id, &call).await?;
    // A 401 that survived the refresh is about the connection, not the caller's API key: a
    // pass-through 401 would read as "your API key is wrong".
    if response.status == 401 {
        return Err(map_zoom_error(&response, c.now()));
    }
    // Every 429 carries Retry-After, also when Zoom left it out (daily limits may).
    let retry_after = (response.status == 429 && response.header("retry-after").is_none())
        .then(|| rate_limit_retry_after(&response, c.now()));
    let mut answer: PassThrough = response.into();
    if let Some(secs) = retry_after {
        answer
            .headers
            .push(("retry-after".to_owned(), secs.to_string()));
    }
    Ok(pass(answer))
}

//! `/connections/{id}/proxy/{*path}`: any Zoom API call with the connection's token (actions function).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::Response;

use super::common::pass;
use super::limits::BODY_LIMIT;
use crate::app::Connector;
use crate::app::actions::{PassThrough, ZoomCall};
use crate::domain::error::ApiError;
use crate::zoom::errors::{map_zoom_error, rate_limit_retry_after};
use crate::zoom::paths::checked_proxy_path;

/// `/connections/{id}/proxy` with nothing below it: a caller mistake, not a missing route.
pub async fn proxy_without_path() -> ApiError {
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

//! Middleware that records every Zoom-facing request and its answer.

use std::collections::BTreeMap;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;

use crate::ZoomSim;
use crate::faults::ConnectionReset;
use crate::types::RecordedRequest;
use crate::util::zoom_error;

/// Request bodies above this are refused (Zoom's own limits are far lower for these routes).
const MAX_BODY: usize = 4 * 1024 * 1024;

pub(crate) async fn record_requests(
    State(sim): State<ZoomSim>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return zoom_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            "Request body too large.",
        );
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    // Recorded before handling, so hanging requests show up too (with status 0).
    let id = sim.lock().begin_request(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
        at: OffsetDateTime::now_utc(),
        status: 0,
        response_body: Vec::new(),
    });

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if response.extensions().get::<ConnectionReset>().is_some() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    sim.lock()
        .finish_request(id, parts.status.as_u16(), bytes.to_vec());
    Response::from_parts(parts, Body::from(bytes))
}

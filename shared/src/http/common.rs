//! What every router shares: API-key authentication, request limits, request logging, the
//! JSON body extractor and cookies.

use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use super::limits::{BODY_LIMIT, limit_request_head};
use super::problem::{not_found, problem_for_framework_errors};
use crate::app::Connector;
use crate::app::actions::PassThrough;
use crate::domain::error::{ApiError, ErrorCode};

/// Adds the shared layers and the state.
pub fn finish(routes: Router<Connector>, connector: Connector) -> Router {
    routes
        .fallback(not_found)
        .layer(axum::middleware::map_response(problem_for_framework_errors))
        .layer(axum::middleware::from_fn(limit_request_head))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                // The path only: query strings carry one-time tokens (connect sessions,
                // OAuth codes and states) that have no place in logs.
                |request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                },
            ),
        )
        .with_state(connector)
}

/// Backend routes: `Authorization: Bearer <api key>` (the current or the previous key),
/// compared in constant time.
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
    // The current or the previous key (rotation); see `services::keys` for when a change
    // reaches this container.
    match connector.check_api_key(presented).await {
        Ok(true) => next.run(request).await,
        Ok(false) => ApiError::unauthorized().into_response(),
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
        match Json::<serde_json::Value>::from_request(req, state).await {
            // Every body of this API is a JSON object (serde would also fill a struct from
            // an array).
            Ok(Json(value)) if !value.is_object() => {
                Err(ApiError::validation("The body must be a JSON object."))
            }
            Ok(Json(value)) => serde_json::from_value(value)
                .map(Self)
                .map_err(|e| ApiError::validation(format!("The JSON body is invalid: {e}"))),
            Err(rejection) => {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(ApiError::payload_too_large(BODY_LIMIT));
                }
                if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    return Err(ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        ErrorCode::UnsupportedMediaType,
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

/// Zoom's answer as ours: status, body and the headers worth passing on.
pub fn pass(answer: PassThrough) -> Response {
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

pub fn no_content(answer: PassThrough) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::limits::{HEADERS_LIMIT, URI_LIMIT};
    use axum::routing::get;
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

        /// Header values need not be UTF-8 (obs-text): such a `Cookie` header is skipped,
        /// never a panic, and the other `Cookie` headers still count.
        #[test]
        fn cookie_parser_skips_non_utf8_headers(
            raw in proptest::collection::vec(any::<u8>(), 0..200),
            value in "[A-Za-z0-9_-]{1,40}",
        ) {
            let mut h = axum::http::HeaderMap::new();
            if let Ok(v) = axum::http::HeaderValue::from_bytes(&raw) {
                h.append(header::COOKIE, v);
            }
            h.append(header::COOKIE, format!("zc_bind_x={value}").parse().unwrap());
            let found = cookie_value(&h, "zc_bind_x");
            // A garbage header that happens to carry the same name may come first; otherwise
            // the real one is found.
            if !String::from_utf8_lossy(&raw).contains("zc_bind_x") {
                prop_assert_eq!(found, Some(value));
            }
        }

        /// A cookie is found by its exact name among arbitrary other cookies, and its value
        /// never carries a separator of the header.
        #[test]
        fn cookie_found_among_noise(
            others in proptest::collection::vec(("[a-y]{1,8}", "[!#-+--:<-~]{0,20}"), 0..8),
            value in "[!#-+--:<-~]{0,40}",
            at in 0usize..8,
        ) {
            let mut pairs: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.insert(at.min(pairs.len()), format!("zc_bind_z={value}"));
            let mut h = axum::http::HeaderMap::new();
            h.append(header::COOKIE, pairs.join("; ").parse().unwrap());
            let found = cookie_value(&h, "zc_bind_z").expect("the cookie");
            prop_assert_eq!(&found, value.trim().trim_matches('"'));
            prop_assert!(!found.contains(';'));
            prop_assert_eq!(cookie_value(&h, "zc_bind"), None);
        }
    }

    // ---- request limits and framework rejections, through `finish` ----

    use axum::body::Body;
    use tower::ServiceExt;

    fn router() -> (Router, tempfile::TempDir) {
        let (connector, dir) = crate::wiring::test_connector(&[]);
        #[derive(serde::Deserialize)]
        struct Q {
            #[allow(dead_code)]
            n: Option<u32>,
        }
        let routes = Router::new()
            .route(
                "/q",
                get(|axum::extract::Query(_): axum::extract::Query<Q>| async { "ok" }),
            )
            .route(
                "/p/{n}",
                get(|axum::extract::Path(_): axum::extract::Path<u32>| async { "ok" }),
            )
            .merge(crate::http::description_routes());
        (finish(routes, connector), dir)
    }

    async fn call(
        router: &Router,
        request: axum::http::Request<Body>,
    ) -> (StatusCode, String, serde_json::Value) {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            content_type,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    fn get_with_header(uri: &str, size: usize) -> axum::http::Request<Body> {
        axum::http::Request::get(uri)
            .header("x-big", "a".repeat(size))
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn oversized_request_heads_are_refused_with_problems() {
        let (router, _dir) = router();
        let (status, _, _) = call(&router, get_with_header("/healthz", 16 * 1024)).await;
        assert_eq!(status, StatusCode::OK, "a large cookie still fits");
        let (status, content_type, body) =
            call(&router, get_with_header("/healthz", 100 * 1024)).await;
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "headers_too_large");
        // Also on a route that does not exist (the fallback).
        let (status, _, body) = call(&router, get_with_header("/nowhere", 100 * 1024)).await;
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(body["code"], "headers_too_large");

        let long = format!("/healthz?x={}", "a".repeat(URI_LIMIT));
        let request = axum::http::Request::get(long).body(Body::empty()).unwrap();
        let (status, content_type, body) = call(&router, request).await;
        assert_eq!(status, StatusCode::URI_TOO_LONG);
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "uri_too_long");
    }

    #[tokio::test]
    async fn extractor_rejections_are_problems() {
        let (router, _dir) = router();
        for uri in [
            "/q?n=abc",
            "/q?n=1&n=2",
            "/q?n=99999999999",
            "/p/abc",
            "/p/%ff",
        ] {
            let request = axum::http::Request::get(uri).body(Body::empty()).unwrap();
            let (status, content_type, body) = call(&router, request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(content_type, "application/problem+json", "{uri}");
            assert_eq!(body["code"], "validation_failed", "{uri}");
        }
        let request = axum::http::Request::get("/q?n=7")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&router, request).await.0, StatusCode::OK);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the header sizes, the answer is 200 below the limit and 431 above it.
        #[test]
        fn header_limit_holds_for_any_split(sizes in proptest::collection::vec(1usize..12_000, 1..8)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (router, _dir) = router();
            let mut request = axum::http::Request::get("/healthz");
            let mut total = 0;
            for (n, size) in sizes.iter().enumerate() {
                let name = format!("x-h{n}");
                total += name.len() + size;
                request = request.header(name, "b".repeat(*size));
            }
            let (status, _, _) = rt.block_on(call(&router, request.body(Body::empty()).unwrap()));
            if total > HEADERS_LIMIT {
                prop_assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            } else {
                prop_assert_eq!(status, StatusCode::OK);
            }
        }
    }
}

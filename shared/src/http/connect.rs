//! `/connect/sessions`, `/connect`, `/connect.js`, `/connect/status` (connect function).

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::common::{JsonBody, require_api_key};
use super::pages;
use crate::app::Connector;
use crate::app::connect::{
    AuthorizationStart, ConnectError, ConnectForm, CreateSessionRequest, CreateSessionResponse,
    SessionStatus,
};
use crate::domain::error::{ApiError, ErrorCode};
use crate::secret::random_token;

pub fn routes(connector: Connector) -> Router<Connector> {
    let backend = Router::new()
        .route("/connect/sessions", post(create_session))
        .route_layer(axum::middleware::from_fn_with_state(
            connector,
            require_api_key,
        ));
    Router::new()
        .route("/connect", get(connect_page).post(connect_submit))
        .route("/connect.js", get(connect_js))
        .route("/connect/status", get(session_status))
        .merge(backend)
}

#[utoipa::path(post, path = "/connect/sessions", tag = "connect", request_body = CreateSessionRequest,
    security(("api_key" = [])),
    responses((status = 201, body = CreateSessionResponse), (status = 400, description = "validation_failed (e.g. return_url not on an allowed origin)"), (status = 401, description = "unauthorized"), (status = 404, description = "connection_not_found")))]
pub async fn create_session(
    State(connector): State<Connector>,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> Result<(StatusCode, Json<CreateSessionResponse>), ApiError> {
    let session = connector.create_session(request).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// The browser connect helper (packages/zoom-connect), served as it is in the repository.
pub const CONNECT_JS: &str = include_str!("../../../packages/zoom-connect/index.js");

/// How long browsers and CDNs keep `/connect.js` before revalidating it with its ETag.
pub const CONNECT_JS_MAX_AGE_SECS: u64 = 3600;

/// The strong ETag of `/connect.js`: its content's hash, so a new helper is a new tag.
pub fn connect_js_etag() -> &'static str {
    static ETAG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("\"{}\"", &crate::secret::sha256_hex(CONNECT_JS)[..20])
    });
    &ETAG
}

/// CORS for the integration UI: the request's `Origin` echoed when it is one of
/// `CONNECTOR_UI_ORIGINS` (no credentials); `Vary: Origin` either way.
fn allow_ui_origin(connector: &Connector, request: &HeaderMap, response: &mut Response) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = request
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| {
            connector
                .config
                .ui_origins
                .iter()
                .any(|allowed| allowed == o)
        })
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
}

#[utoipa::path(get, path = "/connect.js", tag = "connect",
    responses((status = 200, description = "The browser connect helper, an ES module (`text/javascript`); `ETag`, `Cache-Control: public`; CORS for the allowed UI origins", content_type = "text/javascript"),
        (status = 304, description = "Not modified (`If-None-Match` had the current ETag)")))]
pub async fn connect_js(State(connector): State<Connector>, headers: HeaderMap) -> Response {
    let etag = connect_js_etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = CONNECT_JS.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        );
        r
    };
    let out = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={CONNECT_JS_MAX_AGE_SECS}")) {
        out.insert(header::CACHE_CONTROL, v);
    }
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    allow_ui_origin(&connector, &headers, &mut response);
    response
}

#[utoipa::path(get, path = "/connect/status", tag = "connect", params(ConnectQuery),
    responses((status = 200, body = SessionStatus, description = "Where the session stands: `pending` (unused, or the person is at Zoom), `success` with `connection_id`, `error` with the result page's code. CORS for the allowed UI origins"),
        (status = 404, description = "session_not_found: unknown session, or its outcome has expired")))]
pub async fn session_status(
    State(connector): State<Connector>,
    headers: HeaderMap,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let token = query.session.unwrap_or_default();
    let mut response = match connector.session_status(&token).await {
        Ok(Some(status)) => Json(status).into_response(),
        Ok(None) => ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
            "No connect session with this token, or its outcome has expired.",
        )
        .into_response(),
        Err(e) => e.into_response(),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    allow_ui_origin(&connector, &headers, &mut response);
    response
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ConnectQuery {
    /// The session token of the connect URL.
    session: Option<String>,
}

/// Security headers of every page: no framing, no referrer (URLs carry one-time tokens).
pub(super) fn page(
    status: StatusCode,
    html: String,
    nonce: Option<&str>,
    form_target: Option<&str>,
) -> Response {
    let script = nonce
        .map(|n| format!(" script-src 'nonce-{n}';"))
        .unwrap_or_default();
    let form = form_target.map(|t| format!(" {t}")).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline';{script} form-action 'self'{form}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn cookie_path(connector: &Connector) -> String {
    format!(
        "{}/oauth/callback",
        connector.config.public_url.path().trim_end_matches('/')
    )
}

/// The 302 to Zoom with the cookie that binds the state to this browser.
fn redirect_to_zoom(connector: &Connector, start: AuthorizationStart) -> Response {
    let secure = if connector.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        start.cookie_name,
        start.cookie_value.expose(),
        cookie_path(connector),
        crate::app::connect::STATE_TTL_SECS
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(&start.authorize_url),
        HeaderValue::from_str(&cookie),
    ) {
        headers.insert(header::LOCATION, location);
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn connect_error(connector: &Connector, token: &str, error: ConnectError) -> Response {
    let zoom_origin = crate::config::origin_of(&connector.config.zoom_oauth_url);
    match error {
        ConnectError::SessionInvalid => {
            page(StatusCode::GONE, pages::session_invalid_page(), None, None)
        }
        ConnectError::Form { session, message } => {
            let status = if message.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            page(
                status,
                pages::choice_page(
                    token,
                    &session,
                    &message,
                    &connector.config.public("/webhooks/zoom/apps/"),
                ),
                None,
                Some(&zoom_origin),
            )
        }
        ConnectError::Api(e) => {
            tracing::error!(error = %e, "connect failed");
            let code = crate::app::callback::CallbackErrorCode::for_own_failure(&e);
            let nonce = random_token(16);
            let html = pages::result_page(Err(code), &connector.config.ui_origins, &nonce);
            let status =
                StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            page(status, html, Some(&nonce), None)
        }
    }
}

#[utoipa::path(get, path = "/connect", tag = "connect", params(ConnectQuery),
    responses((status = 302, description = "To Zoom's authorize URL, when the session fixes the app"), (status = 200, description = "The choice page (HTML)"), (status = 410, description = "Unknown, expired or used session (HTML)")))]
pub async fn connect_page(
    State(connector): State<Connector>,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let token = query.session.unwrap_or_default();
    let session = match connector.session(&token).await {
        Ok(Some(s)) => s,
        Ok(None) => return connect_error(&connector, &token, ConnectError::SessionInvalid),
        Err(e) => return connect_error(&connector, &token, ConnectError::Api(e)),
    };
    if !session.is_complete() {
        return connect_error(
            &connector,
            &token,
            ConnectError::Form {
                session: Box::new(session),
                message: String::new(),
            },
        );
    }
    match connector.start_authorization(&token, None).await {
        Ok(start) => redirect_to_zoom(&connector, start),
        Err(e) => connect_error(&connector, &token, e),
    }
}

#[utoipa::path(post, path = "/connect", tag = "connect",
    request_body(content_type = "application/x-www-form-urlencoded", description = "session, auth_type (platform_app|byo_app), client_id, client_secret"),
    responses((status = 302, description = "To Zoom's authorize URL"), (status = 400, description = "The choice page again, with what is missing (HTML)"), (status = 403, description = "Sent from another site (HTML, cross_site_request)"), (status = 410, description = "Unknown, expired or used session (HTML)")))]
pub async fn connect_submit(
    State(connector): State<Connector>,
    headers: HeaderMap,
    form: Result<Form<ConnectForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if is_cross_site(&headers, &connector) {
        tracing::warn!("connect form sent from another site; refused");
        return page(StatusCode::FORBIDDEN, pages::cross_site_page(), None, None);
    }
    let Ok(Form(form)) = form else {
        return connect_error(&connector, "", ConnectError::SessionInvalid);
    };
    let token = form.session.clone();
    match connector.start_authorization(&token, Some(form)).await {
        Ok(start) => redirect_to_zoom(&connector, start),
        Err(e) => connect_error(&connector, &token, e),
    }
}

/// The choice page posts to its own origin. A form sent from another site (which could carry a
/// session token it obtained, to tie someone's Zoom account to it) is refused before the
/// session is read. Browsers say where a request comes from in `Sec-Fetch-Site`; only
/// `same-origin` passes. Without it (older browsers), an `Origin` other than the connector's
/// is refused; `Origin: null` is what a page with `Referrer-Policy: no-referrer` (ours) sends,
/// so it decides nothing. Requests with neither (not a browser's form post) are judged by the
/// session alone, as before.
fn is_cross_site(headers: &HeaderMap, connector: &Connector) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    header("origin").is_some_and(|origin| {
        origin != "null" && origin != crate::config::origin_of(&connector.config.public_url)
    })
}

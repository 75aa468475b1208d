//! `/oauth/callback` (callback function): the end of the connect flow, answered with a page.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use url::Url;

use super::common::cookie_value;
use super::connect::{cookie_path, page};
use super::pages;
use crate::app::Connector;
use crate::app::callback::CallbackParams;
use crate::secret::random_token;

pub fn routes() -> Router<Connector> {
    Router::new().route("/oauth/callback", get(oauth_callback))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[allow(dead_code)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[utoipa::path(get, path = "/oauth/callback", tag = "connect", params(CallbackQuery),
    responses((status = 200, description = "Success page: body data-status=success data-connection-id"), (status = 303, description = "To the session's return_url with status and connection_id or error"), (status = 400, description = "Error page: data-status=error data-error-code")))]
pub async fn oauth_callback(
    State(connector): State<Connector>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    // The cookie did its job (or failed it): clear it either way.
    let clear_cookie = params.state.as_deref().map(|state| {
        format!(
            "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Lax",
            crate::app::connect::binding_cookie_name(state),
            cookie_path(&connector)
        )
    });
    let outcome = connector
        .complete_authorization(params, |name| cookie_value(&headers, name))
        .await;
    let mut response = match outcome
        .return_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
    {
        Some(mut url) if connector.config.is_allowed_origin(&url) => {
            {
                let mut query = url.query_pairs_mut();
                match &outcome.result {
                    Ok(info) => query
                        .append_pair("status", "success")
                        .append_pair("connection_id", &info.connection_id),
                    Err(code) => query
                        .append_pair("status", "error")
                        .append_pair("error", code.as_str()),
                };
            }
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        _ => {
            let nonce = random_token(16);
            let status = match &outcome.result {
                Ok(_) => StatusCode::OK,
                Err(code) => StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST),
            };
            let html = pages::result_page(
                outcome
                    .result
                    .as_ref()
                    .map(|i| (i.connection_id.as_str(), i.missing_actions.as_slice()))
                    .map_err(|c| *c),
                &connector.config.ui_origins,
                &nonce,
            );
            page(status, html, Some(&nonce), None)
        }
    };
    if let Some(cookie) = clear_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

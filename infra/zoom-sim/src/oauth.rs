//! Zoom's OAuth surface: authorize (consent page), token, revoke.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;

use crate::ZoomSim;
use crate::faults;
use crate::state::{AuthCode, ChallengeMethod, IssuedTokens, TokenError};
use crate::types::{Fault, FaultTarget};
use crate::util::{html_escape, json_response, oauth_error, random_secret};

/// Authorization codes live five minutes, like Zoom's.
const CODE_TTL: Duration = Duration::from_secs(300);

/// The parameters of `GET /oauth/authorize`, carried through the consent form unchanged.
#[derive(Clone, Debug, Default)]
struct AuthorizeParams {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
}

impl AuthorizeParams {
    fn from_pairs(pairs: &HashMap<String, String>) -> Self {
        let get = |k: &str| pairs.get(k).cloned();
        Self {
            response_type: get("response_type").unwrap_or_default(),
            client_id: get("client_id").unwrap_or_default(),
            redirect_uri: get("redirect_uri").unwrap_or_default(),
            state: get("state"),
            code_challenge: get("code_challenge").filter(|c| !c.is_empty()),
            code_challenge_method: get("code_challenge_method").filter(|m| !m.is_empty()),
            scope: get("scope").filter(|s| !s.is_empty()),
        }
    }

    fn hidden_inputs(&self) -> String {
        let mut fields = vec![
            ("response_type", Some(self.response_type.as_str())),
            ("client_id", Some(self.client_id.as_str())),
            ("redirect_uri", Some(self.redirect_uri.as_str())),
            ("state", self.state.as_deref()),
            ("code_challenge", self.code_challenge.as_deref()),
            (
                "code_challenge_method",
                self.code_challenge_method.as_deref(),
            ),
            ("scope", self.scope.as_deref()),
        ];
        fields.retain(|(_, v)| v.is_some());
        fields
            .into_iter()
            .map(|(name, value)| {
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                    html_escape(value.unwrap_or_default())
                )
            })
            .collect::<Vec<_>>()
            .join("\n      ")
    }
}

fn parse_pairs(raw: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Zoom's numbered OAuth error page (no redirect: the redirect URI is not trusted).
fn error_page(code: u32, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Zoom - Error</title></head>\n\
         <body data-error-code=\"{code}\">\n  <h1>Sorry, something went wrong</h1>\n  \
         <p id=\"error-message\">{}</p>\n  <p>Error code: <span id=\"error-code\">{code}</span></p>\n</body>\n</html>\n",
        html_escape(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// Checks everything that must hold before the user may be asked (or the answer redirected).
fn validate(sim: &ZoomSim, params: &AuthorizeParams) -> Result<Vec<String>, Response> {
    let inner = sim.lock();
    let Some(app) = inner.apps.get(&params.client_id) else {
        return Err(error_page(
            4700,
            &format!("Invalid client_id: {}", params.client_id),
        ));
    };
    if params.redirect_uri.is_empty() || !app.allows_redirect(&params.redirect_uri) {
        return Err(error_page(4709, "Redirect URI mismatch."));
    }
    if params.response_type != "code" {
        return Err(error_page(
            4700,
            "Unsupported response_type; only \"code\" is supported.",
        ));
    }
    if let Some(method) = &params.code_challenge_method
        && method != "S256"
        && method != "plain"
    {
        return Err(error_page(4700, "Invalid code_challenge_method."));
    }
    let signed_in = inner
        .current_user
        .as_deref()
        .is_some_and(|id| inner.user(id).is_some());
    if !signed_in {
        return Err(error_page(
            4700,
            "No Zoom user is signed in to the simulator.",
        ));
    }
    Ok(app.scopes.clone())
}

pub(crate) async fn authorize(State(sim): State<ZoomSim>, RawQuery(query): RawQuery) -> Response {
    let params = AuthorizeParams::from_pairs(&parse_pairs(query.unwrap_or_default().as_bytes()));
    let scopes = match validate(&sim, &params) {
        Ok(scopes) => scopes,
        Err(page) => return page,
    };
    let (auto_approve, email) = {
        let inner = sim.lock();
        let email = inner
            .current_user
            .as_deref()
            .and_then(|id| inner.user(id))
            .map(|u| u.email.clone())
            .unwrap_or_default();
        (inner.auto_approve, email)
    };
    if auto_approve {
        return decide(&sim, &params, true);
    }
    consent_page(&params, &email, &scopes)
}

fn consent_page(params: &AuthorizeParams, email: &str, scopes: &[String]) -> Response {
    let app = html_escape(&params.client_id);
    let scope_items = scopes
        .iter()
        .map(|s| format!("<li>{}</li>", html_escape(s)))
        .collect::<Vec<_>>()
        .join("\n      ");
    let hidden = params.hidden_inputs();
    // Two forms, so each button is plain `<button type="submit" id=...>` without JS.
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Zoom - Authorize {app}</title></head>
<body>
  <h1>{app} would like to access your Zoom account</h1>
  <p>Signed in as <strong id="user-email">{email}</strong></p>
  <p>It is asking for these permissions:</p>
  <ul id="scopes">
      {scope_items}
  </ul>
  <form method="post" action="/oauth/authorize/decision">
      {hidden}
      <input type="hidden" name="decision" value="allow">
      <button type="submit" id="allow">Allow</button>
  </form>
  <form method="post" action="/oauth/authorize/decision">
      {hidden}
      <input type="hidden" name="decision" value="decline">
      <button type="submit" id="decline">Decline</button>
  </form>
</body>
</html>
"#,
        email = html_escape(email),
    );
    Html(body).into_response()
}

pub(crate) async fn decision(State(sim): State<ZoomSim>, body: Bytes) -> Response {
    let pairs = parse_pairs(&body);
    let params = AuthorizeParams::from_pairs(&pairs);
    // The form comes from the browser: check it as strictly as the authorize request.
    if let Err(page) = validate(&sim, &params) {
        return page;
    }
    let allow = pairs.get("decision").is_some_and(|d| d == "allow");
    decide(&sim, &params, allow)
}

/// Redirects back to the client with a code, or with `error=access_denied`.
fn decide(sim: &ZoomSim, params: &AuthorizeParams, allow: bool) -> Response {
    if !allow {
        return redirect_back(
            params,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied the request"),
            ],
        );
    }
    let mut inner = sim.lock();
    let Some(user) = inner
        .current_user
        .as_deref()
        .and_then(|id| inner.user(id))
        .cloned()
    else {
        return error_page(4700, "No Zoom user is signed in to the simulator.");
    };
    if inner.preapproval_accounts.contains(&user.account_id) {
        drop(inner);
        return redirect_back(
            params,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "This app requires admin pre-approval. Ask your Zoom account admin to pre-approve it.",
                ),
            ],
        );
    }
    let scopes = inner
        .apps
        .get(&params.client_id)
        .map(|a| a.scopes.clone())
        .unwrap_or_default();
    // Like Zoom: a challenge without a method is `plain`.
    let challenge = params.code_challenge.clone().map(|c| {
        let method = match params.code_challenge_method.as_deref() {
            Some("S256") => ChallengeMethod::S256,
            _ => ChallengeMethod::Plain,
        };
        (c, method)
    });
    let code = random_secret();
    let expires_at = inner.now() + CODE_TTL;
    inner.codes.insert(
        code.clone(),
        AuthCode {
            client_id: params.client_id.clone(),
            redirect_uri: params.redirect_uri.clone(),
            user_id: user.id,
            challenge,
            scopes,
            expires_at,
        },
    );
    drop(inner);
    redirect_back(params, &[("code", code.as_str())])
}

fn redirect_back(params: &AuthorizeParams, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(&params.redirect_uri) else {
        return error_page(4709, "Redirect URI mismatch.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(state) = &params.state {
            query.append_pair("state", state);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `Authorization: Basic base64(client_id:client_secret)` -> (id, secret).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let encoded = encoded.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Invalid client_id or client_secret",
    )
}

/// Client authentication for token and revoke: HTTP Basic only, and never a secret in the body.
fn authenticate_client(
    sim: &ZoomSim,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, Response> {
    if form.contains_key("client_secret") {
        return Err(invalid_client());
    }
    let Some((client_id, secret)) = basic_credentials(headers) else {
        return Err(invalid_client());
    };
    sim.lock()
        .authenticate_client(&client_id, &secret)
        .ok_or_else(invalid_client)
}

/// Runs the surface's latency and takes a transport fault answer, if one is injected.
async fn transport_fault(sim: &ZoomSim, target: FaultTarget) -> Option<Response> {
    let latency = sim.lock().latency.get(&target).copied();
    faults::apply_latency(latency).await;
    let fault = sim.lock().take_transport_fault(target)?;
    Some(faults::respond(&fault, &Method::POST).await)
}

fn token_answer(sim: &ZoomSim, tokens: IssuedTokens) -> Response {
    let (ttl, api_url) = {
        let inner = sim.lock();
        (
            inner.config.access_token_ttl_secs,
            inner.config.api_url_in_token.clone(),
        )
    };
    let mut body = serde_json::json!({
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "refresh_token": tokens.refresh_token,
        "expires_in": ttl,
        "scope": tokens.scopes.join(" "),
    });
    if let (Some(api_url), Some(map)) = (api_url, body.as_object_mut()) {
        map.insert("api_url".to_owned(), serde_json::Value::String(api_url));
    }
    no_store(json_response(StatusCode::OK, body))
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn token_error(error: TokenError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    oauth_error(status, error.error, &error.reason)
}

pub(crate) async fn token(State(sim): State<ZoomSim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = transport_fault(&sim, FaultTarget::Token).await {
        return response;
    }
    // Only the form body counts: parameters in the query string are ignored, like a strict server.
    let form = parse_pairs(&body);
    let client_id = match authenticate_client(&sim, &headers, &form) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = form.get("code").map(String::as_str).unwrap_or_default();
            let result = sim.lock().authorization_code_grant(
                &client_id,
                code,
                form.get("redirect_uri").map(String::as_str),
                form.get("code_verifier").map(String::as_str),
            );
            match result {
                Ok(tokens) => token_answer(&sim, tokens),
                Err(error) => token_error(error),
            }
        }
        Some("refresh_token") => {
            let refresh_token = form
                .get("refresh_token")
                .map(String::as_str)
                .unwrap_or_default();
            let mut inner = sim.lock();
            match inner.refresh_token_grant(&client_id, refresh_token) {
                Ok(tokens) => {
                    // The tokens are rotated and stored either way; this fault loses the answer.
                    if inner
                        .take_fault(|f| matches!(f, Fault::RotateThenFail { .. }))
                        .is_some()
                    {
                        return oauth_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "server_error",
                            "Internal Error",
                        );
                    }
                    let now = time::OffsetDateTime::now_utc();
                    inner.refresh_grant_times.push(now);
                    drop(inner);
                    token_answer(&sim, tokens)
                }
                Err(error) => token_error(error),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        ),
    }
}

pub(crate) async fn revoke(
    State(sim): State<ZoomSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = transport_fault(&sim, FaultTarget::Revoke).await {
        return response;
    }
    let form = parse_pairs(&body);
    let client_id = match authenticate_client(&sim, &headers, &form) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid token");
    };
    let mut inner = sim.lock();
    inner.revoke_token(&client_id, token);
    inner.counters.revocations += 1;
    drop(inner);
    json_response(StatusCode::OK, serde_json::json!({ "status": "success" }))
}

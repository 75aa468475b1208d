//! Zoom over HTTP: the OAuth client on the `oauth2` crate (HTTP Basic client auth, PKCE S256)
//! and the REST client, sharing one `reqwest` client (rustls) and its connection pool.

use std::time::Duration;

use async_trait::async_trait;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ErrorResponse, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{ClientCredentials, TokenSet};
use crate::ports::{OAuthError, ZoomApi, ZoomOAuth, ZoomRequest, ZoomResponse, ZoomTransportError};
use crate::secret::SecretString;

/// Headers of Zoom's answers that callers need (content type, rate limits).
const PASSED_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    "x-ratelimit-category",
    "x-ratelimit-type",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
];

/// Builds the one HTTP client of a process: rustls, bounded connect time, pooled.
///
/// It trusts the Mozilla roots compiled into the binary (`webpki-roots`) rather than the
/// system bundle: reading and parsing `/etc/ssl/certs` cost about 2 ms of every cold start
/// (docs/benchmarks.md), and Zoom's certificates chain to a public root either way.
pub fn http_client() -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("zoom-connector/", env!("CARGO_PKG_VERSION")));
    let builder = match compiled_in_roots() {
        Some(tls) => builder.tls_backend_preconfigured(tls),
        None => builder,
    };
    builder.build().unwrap_or_else(|_| reqwest::Client::new())
}

fn compiled_in_roots() -> Option<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Some(tls)
}

/// Zoom's extra token field: the user's regional API host.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ZoomTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

impl ExtraTokenFields for ZoomTokenFields {}

/// Zoom's token-endpoint error: `{"reason": "...", "error": "invalid_grant"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZoomOAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl std::fmt::Display for ZoomOAuthErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.reason_text())
    }
}

impl ZoomOAuthErrorBody {
    fn reason_text(&self) -> &str {
        self.reason
            .as_deref()
            .or(self.error_description.as_deref())
            .unwrap_or("")
    }
}

impl ErrorResponse for ZoomOAuthErrorBody {}

type ZoomTokenResponse = StandardTokenResponse<ZoomTokenFields, BasicTokenType>;
type ZoomClient = oauth2::Client<
    ZoomOAuthErrorBody,
    ZoomTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why an OAuth HTTP exchange did not produce an answer oauth2 should parse.
#[derive(Debug, thiserror::Error)]
enum OAuthHttpFailure {
    #[error("timed out")]
    Timeout,
    #[error("transport: {0}")]
    Transport(String),
    /// 5xx or 429: Zoom is unavailable; the body is not an OAuth error.
    #[error("zoom answered {0}")]
    Unavailable(u16),
}

/// Zoom's OAuth endpoints over HTTP.
#[derive(Clone, Debug)]
pub struct HttpZoomOAuth {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl HttpZoomOAuth {
    /// `base` is `ZOOM_OAUTH_URL` (authorize, token and revoke hang off it).
    pub fn new(http: reqwest::Client, base: &url::Url, timeout: Duration) -> Self {
        Self {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    fn client(
        &self,
        client_id: &str,
        secret: Option<&SecretString>,
    ) -> Result<ZoomClient, OAuthError> {
        let bad = |e: url::ParseError| OAuthError::Unavailable(format!("bad Zoom OAuth URL: {e}"));
        let mut client = oauth2::Client::new(ClientId::new(client_id.to_owned()))
            .set_auth_uri(AuthUrl::new(format!("{}/oauth/authorize", self.base)).map_err(bad)?)
            .set_token_uri(TokenUrl::new(format!("{}/oauth/token", self.base)).map_err(bad)?)
            .set_auth_type(oauth2::AuthType::BasicAuth);
        if let Some(secret) = secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(client)
    }

    fn transport(&self) -> OAuthTransport {
        OAuthTransport {
            http: self.http.clone(),
            timeout: self.timeout,
        }
    }
}

/// The HTTP client handed to oauth2: our pooled client, a timeout, and 5xx/429 turned into
/// transport failures so they are never mistaken for OAuth errors.
struct OAuthTransport {
    http: reqwest::Client,
    timeout: Duration,
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthTransport {
    type Error = OAuthHttpFailure;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, OAuthHttpFailure>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

impl OAuthTransport {
    async fn execute(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, OAuthHttpFailure> {
        let (parts, body) = request.into_parts();
        let response = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    OAuthHttpFailure::Timeout
                } else {
                    OAuthHttpFailure::Transport(e.without_url().to_string())
                }
            })?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(OAuthHttpFailure::Unavailable(status.as_u16()));
        }
        let mut builder = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                OAuthHttpFailure::Timeout
            } else {
                OAuthHttpFailure::Transport(e.without_url().to_string())
            }
        })?;
        builder
            .body(body.to_vec())
            .map_err(|e| OAuthHttpFailure::Transport(e.to_string()))
    }
}

fn token_set(response: &ZoomTokenResponse) -> Result<TokenSet, OAuthError> {
    let refresh = response
        .refresh_token()
        .ok_or_else(|| OAuthError::Unavailable("token answer without refresh_token".into()))?;
    let expires_in = response.expires_in().unwrap_or(Duration::from_secs(3600));
    Ok(TokenSet {
        access_token: SecretString::new(response.access_token().secret().clone()),
        refresh_token: SecretString::new(refresh.secret().clone()),
        expires_at: OffsetDateTime::now_utc() + expires_in,
        scopes: response
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        api_url: response.extra_fields().api_url.clone(),
    })
}

fn map_token_error(err: RequestTokenError<OAuthHttpFailure, ZoomOAuthErrorBody>) -> OAuthError {
    match err {
        RequestTokenError::ServerResponse(body) => OAuthError::Rejected {
            status: 400,
            reason: body.reason_text().to_owned(),
            error: body.error,
        },
        RequestTokenError::Request(failure) => OAuthError::Unavailable(failure.to_string()),
        RequestTokenError::Parse(e, _) => {
            OAuthError::Unavailable(format!("unreadable token answer: {e}"))
        }
        RequestTokenError::Other(e) => OAuthError::Unavailable(e),
    }
}

#[async_trait]
impl ZoomOAuth for HttpZoomOAuth {
    fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        code_verifier: &SecretString,
    ) -> String {
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            code_verifier.expose().to_owned(),
        ));
        let Ok(client) = self.client(client_id, None) else {
            return String::new();
        };
        let Ok(redirect) = RedirectUrl::new(redirect_uri.to_owned()) else {
            return String::new();
        };
        let state = state.to_owned();
        let (url, _) = client
            .set_redirect_uri(redirect)
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(challenge)
            .url();
        url.to_string()
    }

    async fn exchange_code(
        &self,
        client: &ClientCredentials,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, OAuthError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| OAuthError::Unavailable(format!("bad redirect URI: {e}")))?;
        let oauth = self
            .client(&client.client_id, Some(&client.client_secret))?
            .set_redirect_uri(redirect);
        let http = self.transport();
        let response = oauth
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(code_verifier.to_owned()))
            .request_async(&http)
            .await
            .map_err(map_token_error)?;
        token_set(&response)
    }

    async fn refresh(
        &self,
        client: &ClientCredentials,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, OAuthError> {
        let oauth = self.client(&client.client_id, Some(&client.client_secret))?;
        let http = self.transport();
        let token = RefreshToken::new(refresh_token.expose().to_owned());
        let response = oauth
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map_err(map_token_error)?;
        token_set(&response)
    }

    /// Zoom's revoke endpoint (Basic auth, form `token=`). Sent directly rather than through
    /// `oauth2`, which refuses non-https revocation URLs (the local simulator is plain http).
    async fn revoke(
        &self,
        client: &ClientCredentials,
        token: &SecretString,
    ) -> Result<(), OAuthError> {
        let response = self
            .http
            .post(format!("{}/oauth/revoke", self.base))
            .basic_auth(&client.client_id, Some(client.client_secret.expose()))
            .form(&[("token", token.expose())])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| OAuthError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(OAuthError::Unavailable(format!("zoom answered {status}")));
        }
        let body: Option<ZoomOAuthErrorBody> = response.json().await.ok();
        Err(OAuthError::Rejected {
            status: status.as_u16(),
            error: body
                .as_ref()
                .map_or_else(|| "revoke_failed".to_owned(), |b| b.error.clone()),
            reason: body.map(|b| b.reason_text().to_owned()).unwrap_or_default(),
        })
    }
}

/// Zoom's REST API over HTTP.
#[derive(Clone, Debug)]
pub struct HttpZoomApi {
    http: reqwest::Client,
}

impl HttpZoomApi {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

#[async_trait]
impl ZoomApi for HttpZoomApi {
    async fn send(&self, request: ZoomRequest) -> Result<ZoomResponse, ZoomTransportError> {
        let mut url = format!("{}{}", request.base.trim_end_matches('/'), request.path);
        if let Some(q) = request.query.as_deref().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        let mut builder = self
            .http
            .request(request.method, url)
            .bearer_auth(request.access_token.expose())
            .timeout(request.timeout);
        if let Some(ct) = request.content_type {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                ZoomTransportError::Timeout
            } else {
                ZoomTransportError::Connect(e.without_url().to_string())
            }
        };
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| PASSED_HEADERS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let body = response.bytes().await.map_err(transport)?;
        Ok(ZoomResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tls_tests {
    #[test]
    fn the_client_trusts_the_compiled_in_roots() {
        let tls = super::compiled_in_roots().expect("a TLS configuration");
        assert_eq!(
            tls.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let _client = super::http_client();
    }
}

//! `GET /oauth/callback`: check the state, exchange the code, find out who connected, apply
//! the one-connection-per-Zoom-user rule, store the tokens, answer with a result page.
//! Nothing is stored on any failure.

use std::time::Duration;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::connect::{SessionState, SessionStatus, StoredState, binding_cookie_name};
use super::{Connector, ZOOM_OAUTH_TIMEOUT};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::{AuthType, ClientCredentials, ConnectionSecret, ZoomIdentity};
use crate::ports::{ItemKind, OAuthError};
use crate::secret::sha256_hex;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The error codes of the result page (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackErrorCode {
    StateInvalid,
    AccessDenied,
    AdminPreapprovalRequired,
    InvalidClient,
    InvalidGrant,
    RedirectUriMismatch,
    /// A reconnect came back as another Zoom user or account than the connection's.
    ReconnectUserMismatch,
    /// Zoom revoked this sign-in's tokens before we could use them: the same Zoom user signed
    /// in again meanwhile (another tab, a double click), and the newer sign-in is the one that
    /// counts (Zoom keeps only the newest grant of a user and app).
    AuthorizationSuperseded,
    /// A BYO reconnect found the connection's stored client secret gone: the connection is
    /// marked so (`credentials_missing`), and the next reconnect asks for the secret.
    CredentialsMissing,
    ZoomUnavailable,
    ZoomError,
    /// Our storage was briefly unavailable (throttling, 5xx); retrying helps.
    TemporarilyUnavailable,
    InternalError,
}

impl CallbackErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StateInvalid => "state_invalid",
            Self::AccessDenied => "access_denied",
            Self::AdminPreapprovalRequired => "admin_preapproval_required",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::RedirectUriMismatch => "redirect_uri_mismatch",
            Self::ReconnectUserMismatch => "reconnect_user_mismatch",
            Self::AuthorizationSuperseded => "authorization_superseded",
            Self::CredentialsMissing => "credentials_missing",
            Self::ZoomUnavailable => "zoom_unavailable",
            Self::ZoomError => "zoom_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InternalError => "internal_error",
        }
    }

    /// The page code for an error of our own storage or configuration (Zoom's errors are
    /// mapped where they happen).
    pub fn for_own_failure(e: &ApiError) -> Self {
        match e.code {
            ErrorCode::StoreUnavailable => Self::TemporarilyUnavailable,
            ErrorCode::ReconnectUserMismatch => Self::ReconnectUserMismatch,
            _ => Self::InternalError,
        }
    }

    /// HTTP status of the result page.
    pub fn status(self) -> u16 {
        match self {
            Self::StateInvalid | Self::InvalidGrant | Self::RedirectUriMismatch => 400,
            Self::InvalidClient => 401,
            Self::AccessDenied | Self::AdminPreapprovalRequired => 403,
            Self::ReconnectUserMismatch
            | Self::AuthorizationSuperseded
            | Self::CredentialsMissing => 409,
            // A 4xx like every failure page: the request failed because a request it depends
            // on (Zoom's, or our storage's) failed. The page says to retry.
            Self::ZoomUnavailable | Self::ZoomError | Self::TemporarilyUnavailable => 424,
            Self::InternalError => 500,
        }
    }
}

/// Logs a failure of our own storage or configuration and names its page code.
fn own_failure(e: ApiError) -> CallbackErrorCode {
    tracing::error!(error = %e, "callback failed");
    CallbackErrorCode::for_own_failure(&e)
}

/// What the result page (or the `return_url` redirect) reports.
#[derive(Debug, Clone)]
pub struct CallbackOutcome {
    pub result: Result<ConnectedInfo, CallbackErrorCode>,
    /// `return_url` of the session, when the state was valid and had one.
    pub return_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConnectedInfo {
    pub connection_id: String,
    /// The Zoom user already had a connection for this app: the tokens went into it.
    pub existing: bool,
    /// Default actions the granted scopes do not allow (a bring-your-own app set up with
    /// too few scopes), each with the scopes to add.
    pub missing_actions: Vec<crate::zoom::catalogue::MissingAction>,
}

/// Maps Zoom's redirect `error` to a page code: pre-approval gets its own page.
pub fn classify_authorize_error(error: &str, description: Option<&str>) -> CallbackErrorCode {
    let text = format!("{error} {}", description.unwrap_or_default()).to_ascii_lowercase();
    if text.contains("pre-approv") || text.contains("preapprov") || text.contains("pre approv") {
        CallbackErrorCode::AdminPreapprovalRequired
    } else if error == "access_denied" {
        CallbackErrorCode::AccessDenied
    } else if error == "invalid_client" || error == "unauthorized_client" {
        CallbackErrorCode::InvalidClient
    } else if text.contains("redirect") {
        CallbackErrorCode::RedirectUriMismatch
    } else {
        CallbackErrorCode::AccessDenied
    }
}

/// `/users/me` right after the exchange: one light call.
const USERS_ME_TIMEOUT: Duration = Duration::from_secs(5);

/// Storing a new authorization (identity claim, secret, record, event): a handful of AWS
/// operations, each bounded by the SDK's own timeouts, and all of them by this.
pub const STORE_BUDGET: Duration = Duration::from_secs(12);

/// The authorization code is single-use: it is only spent when the exchange, `/users/me` and
/// storing the result all fit before the invocation's deadline. Otherwise the person gets
/// `temporarily_unavailable` and can start again with the code unspent.
pub const CODE_EXCHANGE_BUDGET: Duration = Duration::from_secs(
    ZOOM_OAUTH_TIMEOUT.as_secs() + USERS_ME_TIMEOUT.as_secs() + STORE_BUDGET.as_secs(),
);

/// Maps an error of Zoom's token endpoint on the code exchange.
pub fn classify_token_error(err: &OAuthError) -> CallbackErrorCode {
    match err {
        OAuthError::Unavailable(_) => CallbackErrorCode::ZoomUnavailable,
        OAuthError::Rejected { error, reason, .. } => {
            let reason = reason.to_ascii_lowercase();
            if reason.contains("redirect") {
                CallbackErrorCode::RedirectUriMismatch
            } else if error == "invalid_client" || error == "unauthorized_client" {
                CallbackErrorCode::InvalidClient
            } else if error == "invalid_grant" {
                CallbackErrorCode::InvalidGrant
            } else if reason.contains("pre-approv") || reason.contains("preapprov") {
                CallbackErrorCode::AdminPreapprovalRequired
            } else {
                CallbackErrorCode::ZoomError
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ZoomMe {
    id: String,
    account_id: String,
    #[serde(default)]
    email: Option<String>,
}

impl Connector {
    /// Runs the callback. `cookie` looks a cookie of the request up by name.
    pub async fn complete_authorization(
        &self,
        params: CallbackParams,
        cookie: impl Fn(&str) -> Option<String>,
    ) -> CallbackOutcome {
        let fail = |code| CallbackOutcome {
            result: Err(code),
            return_url: None,
        };
        let Some(state) = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 128)
        else {
            return fail(CallbackErrorCode::StateInvalid);
        };
        let state_key = sha256_hex(state);
        let now = self.now_unix();
        // Check the browser binding before consuming the state, so a forged request carrying
        // a stolen state cannot burn the real one.
        let stored: StoredState = match self
            .store
            .get_item(ItemKind::OAuthState, &state_key, now)
            .await
        {
            Ok(Some(item)) => match serde_json::from_value(item.value) {
                Ok(s) => s,
                Err(_) => return fail(CallbackErrorCode::StateInvalid),
            },
            Ok(None) => return fail(CallbackErrorCode::StateInvalid),
            Err(e) => {
                tracing::error!(error = %e, "state lookup failed");
                return fail(CallbackErrorCode::InternalError);
            }
        };
        let bound = cookie(&binding_cookie_name(state))
            .map(|v| sha256_hex(&v))
            .is_some_and(|h| bool::from(h.as_bytes().ct_eq(stored.binding_hash.as_bytes())));
        if !bound {
            tracing::warn!("callback without the browser-binding cookie of its state");
            return fail(CallbackErrorCode::StateInvalid);
        }
        match self
            .store
            .take_item(ItemKind::OAuthState, &state_key, now)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => return fail(CallbackErrorCode::StateInvalid),
            Err(e) => {
                tracing::error!(error = %e, "state consumption failed");
                return fail(CallbackErrorCode::InternalError);
            }
        }

        let return_url = stored.return_url.clone();
        let result = self.finish(&stored, &params).await;
        // A BYO app's webhook token is kept once per app, for its webhook route.
        if let Some(name) = &stored.pending_webhook_secret {
            if let Ok(info) = &result
                && stored.auth_type == AuthType::ByoApp
            {
                self.keep_app_webhook_token(name, &stored.client_id, &info.connection_id)
                    .await;
            }
            self.drop_parked_secret(name).await;
        }
        // The pending BYO secret has done its job (or the attempt failed): remove it either way.
        if let Some(name) = &stored.pending_secret {
            self.drop_parked_secret(name).await;
        }
        if let Some(key) = &stored.session_key {
            let status = match &result {
                Ok(info) => SessionStatus {
                    status: SessionState::Success,
                    started: true,
                    connection_id: Some(info.connection_id.clone()),
                    error: None,
                },
                Err(code) => SessionStatus {
                    status: SessionState::Error,
                    started: true,
                    connection_id: None,
                    error: Some(code.as_str().to_owned()),
                },
            };
            self.record_session_outcome(key, &status).await;
        }
        match &result {
            Ok(info) => {
                tracing::info!(connection_id = %info.connection_id, existing = info.existing, "connection authorized")
            }
            Err(code) => tracing::info!(code = code.as_str(), "authorization failed"),
        }
        CallbackOutcome { result, return_url }
    }

    async fn finish(
        &self,
        stored: &StoredState,
        params: &CallbackParams,
    ) -> Result<ConnectedInfo, CallbackErrorCode> {
        if let Some(error) = params.error.as_deref() {
            return Err(classify_authorize_error(
                error,
                params.error_description.as_deref(),
            ));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or(CallbackErrorCode::StateInvalid)?;
        let client = self.state_client(stored).await?;
        if !crate::deadline::leaves(CODE_EXCHANGE_BUDGET) {
            tracing::error!(
                remaining_ms = crate::deadline::remaining().map(|d| d.as_millis() as u64),
                event = "callback_out_of_time",
                "not enough time left to exchange the code and store the result; code left unspent"
            );
            return Err(CallbackErrorCode::TemporarilyUnavailable);
        }
        // Before Zoom issues the grant: a stored authorization older than this is older than ours.
        let exchange_started = self.now();
        let tokens = self
            .oauth
            .exchange_code(
                &client,
                code,
                stored.code_verifier.expose(),
                &self.config.redirect_uri(),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "code exchange failed");
                classify_token_error(&e)
            })?;
        let api_base = self.api_base(tokens.api_url.as_deref());
        let me = self
            .zoom_json::<ZoomMe>(
                &api_base,
                "/users/me",
                &tokens.access_token,
                USERS_ME_TIMEOUT,
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "reading the Zoom user failed");
                if e.code == ErrorCode::ZoomUnauthorized {
                    // A token Zoom issued a moment ago and already refuses: revoked by a newer
                    // authorization of the same user and app (Zoom error 4741).
                    CallbackErrorCode::AuthorizationSuperseded
                } else if e.status.is_server_error() || e.status.as_u16() == 429 {
                    CallbackErrorCode::ZoomUnavailable
                } else {
                    CallbackErrorCode::ZoomError
                }
            })?;
        let zoom = ZoomIdentity {
            user_id: me.id,
            account_id: me.account_id,
            email: me.email,
        };
        let secret = ConnectionSecret {
            auth_type: stored.auth_type,
            client_id: client.client_id.clone(),
            client_secret: (stored.auth_type == AuthType::ByoApp)
                .then(|| client.client_secret.clone()),
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: tokens.expires_at,
            scopes: tokens.scopes.clone(),
            api_url: tokens.api_url.clone(),
        };
        let stored_in_time = tokio::time::timeout(
            STORE_BUDGET,
            self.store_authorization(stored, zoom, secret, exchange_started),
        )
        .await;
        let Ok(info) = stored_in_time else {
            tracing::error!(
                event = "callback_store_timeout",
                "storing the new authorization took too long"
            );
            return Err(CallbackErrorCode::TemporarilyUnavailable);
        };
        info.map_err(own_failure)
    }

    /// Moves the pending webhook token of a successful BYO connection to the app's secret. A
    /// failure is logged: the connection stands, and the app's webhooks answer 401 until a
    /// later connection stores the token.
    async fn keep_app_webhook_token(&self, pending: &str, client_id: &str, connection_id: &str) {
        let stored = async {
            let Some(token) = self.secrets.get_secret(pending).await? else {
                return Ok(false);
            };
            self.store_app_webhook_token(client_id, &token).await
        }
        .await;
        match stored {
            Ok(true) => tracing::info!(connection_id, "the app's webhook token is stored"),
            Ok(false) => tracing::warn!(connection_id, "no webhook token was stored for the app"),
            Err(e) => {
                tracing::error!(connection_id, error = %e, "could not store the app's webhook token")
            }
        }
    }

    /// The OAuth client named by the state.
    async fn state_client(
        &self,
        stored: &StoredState,
    ) -> Result<ClientCredentials, CallbackErrorCode> {
        match stored.auth_type {
            AuthType::PlatformApp => Ok((*self.platform_app().await.map_err(own_failure)?).clone()),
            AuthType::ByoApp => match &stored.pending_secret {
                Some(name) => {
                    let secret = self
                        .secrets
                        .get_secret(name)
                        .await
                        .map_err(|e| own_failure(e.into()))?
                        .ok_or_else(|| {
                            own_failure(ApiError::internal(
                                "the BYO client secret of this attempt is gone",
                            ))
                        })?;
                    Ok(ClientCredentials {
                        client_id: stored.client_id.clone(),
                        client_secret: secret,
                    })
                }
                None => {
                    let id = stored.connection_id.as_deref().unwrap_or_default();
                    match self.connection_client(id).await {
                        // A BYO reconnect of a connection whose stored app credentials went
                        // away unnoticed (its record still said they were fine): say so on
                        // the record, so the next reconnect asks for the secret.
                        Err(e) if e.code == ErrorCode::ConnectionRevoked => {
                            let record = self.store.get_connection(id).await;
                            if let Ok(Some(record)) = record {
                                self.credentials_missing(&record).await;
                            }
                            Err(CallbackErrorCode::CredentialsMissing)
                        }
                        other => other.map_err(own_failure),
                    }
                }
            },
        }
    }
}

pub(crate) fn serde_secret(
    secret: &ConnectionSecret,
) -> Result<crate::secret::SecretString, ApiError> {
    serde_json::to_string(secret)
        .map(crate::secret::SecretString::new)
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_errors_are_classified() {
        assert_eq!(
            classify_authorize_error("access_denied", Some("The user denied the request")),
            CallbackErrorCode::AccessDenied
        );
        assert_eq!(
            classify_authorize_error(
                "access_denied",
                Some("This app requires admin pre-approval")
            ),
            CallbackErrorCode::AdminPreapprovalRequired
        );
        assert_eq!(
            classify_authorize_error("invalid_client", None),
            CallbackErrorCode::InvalidClient
        );
    }

    #[test]
    fn token_errors_are_classified() {
        let rejected = |error: &str, reason: &str| OAuthError::Rejected {
            status: 400,
            error: error.into(),
            reason: reason.into(),
        };
        assert_eq!(
            classify_token_error(&rejected(
                "invalid_client",
                "Invalid client_id or client_secret"
            )),
            CallbackErrorCode::InvalidClient
        );
        assert_eq!(
            classify_token_error(&rejected("invalid_request", "Redirect URI mismatch.")),
            CallbackErrorCode::RedirectUriMismatch
        );
        assert_eq!(
            classify_token_error(&rejected("invalid_grant", "Invalid authorization code")),
            CallbackErrorCode::InvalidGrant
        );
        assert_eq!(
            classify_token_error(&OAuthError::Unavailable("timeout".into())),
            CallbackErrorCode::ZoomUnavailable
        );
    }
}

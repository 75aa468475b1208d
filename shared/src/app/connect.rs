//! Connect sessions and the start of the authorization-code flow.
//!
//! A backend creates a session (`POST /connect/sessions`); the person's browser opens its
//! `connect_url`. When the session fixes the app to use, `GET /connect` sends the browser
//! straight to Zoom; otherwise it shows the choice page, whose form comes back as
//! `POST /connect`. Starting the flow consumes the session (single use) and creates an OAuth
//! state: random, stored server-side by its hash, single use, bound to the browser by a cookie,
//! carrying the PKCE verifier.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;
use utoipa::ToSchema;

use super::Connector;
pub use super::connect_session::{
    SessionState, SessionStatus, StoredSession, needs_new_client_secret,
};
pub use crate::domain::EndUser;
use crate::domain::error::ApiError;
use crate::domain::{AuthType, ClientCredentials};
use crate::ports::ItemKind;
use crate::secret::{SecretString, random_token, sha256_hex};

pub const SESSION_TTL_SECS: i64 = 30 * 60;

pub const STATE_TTL_SECS: i64 = 10 * 60;

/// How long a secret parked by a connect flow can still be used: the session's lifetime, then
/// the state's (a session secret waits for the callback of a flow started at the session's last
/// minute), and a margin. After that the sweep deletes it (`pending_secrets`).
pub const PENDING_SECRET_LIFETIME_SECS: i64 = SESSION_TTL_SECS + STATE_TTL_SECS + 5 * 60;

/// How long a session's outcome stays readable: the state's lifetime, then a few minutes for
/// the helper to read the result.
pub const OUTCOME_TTL_SECS: i64 = STATE_TTL_SECS + 5 * 60;

const MAX_FIELD: usize = 512;

/// Body of `POST /connect/sessions`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    #[serde(default)]
    pub auth_type: Option<AuthType>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    /// The BYO app's webhook secret token (its Feature page): kept once per app, it verifies
    /// `POST /webhooks/zoom/apps/{client_id}`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub webhook_secret_token: Option<SecretString>,
    /// Reconnect into this existing connection.
    #[serde(default)]
    pub connection_id: Option<String>,
    /// Where the browser goes after the callback (must be on an allowed origin).
    #[serde(default)]
    pub return_url: Option<String>,
    #[serde(default)]
    pub end_user: Option<EndUser>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateSessionResponse {
    pub session_token: String,
    pub connect_url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// The stored OAuth state (by the hash of the state value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredState {
    pub code_verifier: SecretString,
    /// SHA-256 of the browser-binding cookie's value.
    pub binding_hash: String,
    pub auth_type: AuthType,
    pub client_id: String,
    /// Where the BYO client secret waits until the callback.
    pub pending_secret: Option<String>,
    /// Where the BYO app's webhook secret token waits until the callback.
    #[serde(default)]
    pub pending_webhook_secret: Option<String>,
    pub connection_id: Option<String>,
    pub return_url: Option<String>,
    pub end_user: Option<EndUser>,
    /// SHA-256 of the connect session's token: where the callback records the outcome for
    /// `GET /connect/status`.
    #[serde(default)]
    pub session_key: Option<String>,
}

/// What the person chose on the choice page.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectForm {
    pub session: String,
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub webhook_secret_token: Option<SecretString>,
}

/// The redirect to Zoom and the cookie that binds the state to this browser.
#[derive(Debug)]
pub struct AuthorizationStart {
    pub authorize_url: String,
    pub cookie_name: String,
    pub cookie_value: SecretString,
}

/// Why the flow could not start; the browser routes render these as pages.
#[derive(Debug)]
pub enum ConnectError {
    /// Unknown, expired or already used session.
    SessionInvalid,
    /// The form is incomplete: show the choice page again with this message.
    Form {
        session: Box<StoredSession>,
        message: String,
    },
    Api(ApiError),
}

impl From<ApiError> for ConnectError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<crate::domain::error::StoreError> for ConnectError {
    fn from(e: crate::domain::error::StoreError) -> Self {
        Self::Api(e.into())
    }
}

/// Name of the cookie binding a state to the browser. It carries a piece of the state's hash
/// so that two connect attempts in two tabs do not overwrite each other's cookie.
pub fn binding_cookie_name(state: &str) -> String {
    format!("zc_bind_{}", &sha256_hex(state)[..12])
}

/// Where a BYO client secret waits between the session (or form) and the callback.
pub fn pending_secret_name(prefix: &str, key_hash: &str) -> String {
    format!("{prefix}/connect-sessions/{key_hash}")
}

/// Where a BYO app's webhook secret token waits between the session (or form) and the callback.
pub fn pending_webhook_secret_name(prefix: &str, key_hash: &str) -> String {
    format!("{prefix}/connect-sessions/{key_hash}.webhook")
}

fn check_len(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > MAX_FIELD || value.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "`{field}` must be 1 to {MAX_FIELD} printable characters."
        ))
        .with_extra(serde_json::json!({ "errors": [{ "field": field, "message": "invalid length or characters" }] })));
    }
    Ok(())
}

/// Bytes of `end_user.id`: it becomes a DynamoDB index key (at most 2048 bytes) and a query
/// parameter, so keep it to what platform user ids need.
pub const MAX_END_USER_ID: usize = 256;

/// Bytes of `end_user.email` (RFC 5321's path limit, rounded).
pub const MAX_END_USER_EMAIL: usize = 320;

fn check_end_user(user: &EndUser) -> Result<(), ApiError> {
    for (field, value, max) in [
        ("end_user.id", &user.id, MAX_END_USER_ID),
        ("end_user.email", &user.email, MAX_END_USER_EMAIL),
    ] {
        let Some(v) = value else { continue };
        check_len(field, v)?;
        if v.len() > max {
            return Err(
                ApiError::validation(format!("`{field}` must be at most {max} bytes.")).with_extra(
                    serde_json::json!({ "errors": [{ "field": field, "message": "too long" }] }),
                ),
            );
        }
    }
    Ok(())
}

impl Connector {
    /// `POST /connect/sessions`.
    pub async fn create_session(
        &self,
        req: CreateSessionRequest,
    ) -> Result<CreateSessionResponse, ApiError> {
        let mut auth_type = req.auth_type;
        let mut reconnect_client_id = None;
        let mut repair_credentials = false;
        if let Some(id) = &req.client_id {
            check_len("client_id", id)?;
        }
        if let Some(secret) = &req.client_secret {
            check_len("client_secret", secret.expose())?;
        }
        if let Some(token) = &req.webhook_secret_token {
            check_len("webhook_secret_token", token.expose())?;
            if req.auth_type == Some(AuthType::PlatformApp) {
                return Err(ApiError::validation(
                    "`webhook_secret_token` belongs to a BYO app; the platform app's is the connector's own.",
                ));
            }
            if let Some(id) = &req.client_id
                && super::keys::app_webhook_secret_name("", id).is_none()
            {
                return Err(ApiError::validation(
                    "`client_id` must be letters, digits, `_`, `-` or `.` to keep a webhook token for it.",
                ));
            }
        }
        match auth_type {
            Some(AuthType::PlatformApp)
                if req.client_id.is_some() || req.client_secret.is_some() =>
            {
                return Err(ApiError::validation(
                    "`client_id` and `client_secret` belong to `auth_type: \"byo_app\"`; the platform app has its own.",
                ));
            }
            None if req.client_id.is_some() && req.client_secret.is_some() => {
                auth_type = Some(AuthType::ByoApp)
            }
            _ => {}
        }
        if auth_type == Some(AuthType::ByoApp)
            && req.client_id.is_some() != req.client_secret.is_some()
        {
            return Err(ApiError::validation(
                "Give both `client_id` and `client_secret` for a BYO app, or neither to let the person type them.",
            ));
        }
        if let Some(return_url) = &req.return_url {
            self.check_return_url(return_url)?;
        }
        if let Some(id) = &req.connection_id {
            let existing = self
                .store
                .get_connection(id)
                .await?
                .ok_or_else(|| ApiError::connection_not_found(id))?;
            // Reconnecting keeps the connection's app unless the caller says otherwise; a BYO
            // app's credentials are already stored with the connection.
            if auth_type.is_none() {
                auth_type = Some(existing.auth_type);
            }
            if auth_type == Some(AuthType::ByoApp) && req.client_id.is_none() {
                repair_credentials = needs_new_client_secret(&existing);
                reconnect_client_id = Some(existing.client_id);
            }
        }
        if let Some(user) = &req.end_user {
            check_end_user(user)?;
        }

        let token = random_token(32);
        let key = sha256_hex(&token);
        let now = self.now();
        let expires_at = now + time::Duration::seconds(SESSION_TTL_SECS);
        if let Some(secret) = &req.client_secret {
            let name = pending_secret_name(&self.config.aws.secrets_prefix, &key);
            self.park_secret(&name, secret, &key).await?;
        }
        if let Some(token) = &req.webhook_secret_token {
            let name = pending_webhook_secret_name(&self.config.aws.secrets_prefix, &key);
            self.park_secret(&name, token, &key).await?;
        }
        let session = StoredSession {
            auth_type,
            client_id: req.client_id.or(reconnect_client_id),
            has_client_secret: req.client_secret.is_some(),
            has_webhook_secret: req.webhook_secret_token.is_some(),
            connection_id: req.connection_id,
            return_url: req.return_url,
            end_user: req.end_user.and_then(EndUser::non_empty),
            repair_credentials,
        };
        let value =
            serde_json::to_value(&session).map_err(|e| ApiError::internal(e.to_string()))?;
        let created = self
            .store
            .create_item(
                ItemKind::Session,
                &key,
                &value,
                Some(expires_at.unix_timestamp()),
                now.unix_timestamp(),
            )
            .await?;
        if !created {
            return Err(ApiError::internal("session token collision"));
        }
        Ok(CreateSessionResponse {
            connect_url: format!("{}?session={}", self.config.public("/connect"), token),
            session_token: token,
            expires_at,
        })
    }

    fn check_return_url(&self, value: &str) -> Result<Url, ApiError> {
        let url = Url::parse(value)
            .map_err(|_| ApiError::validation("`return_url` must be an absolute URL."))?;
        if !matches!(url.scheme(), "http" | "https") || !self.config.is_allowed_origin(&url) {
            return Err(ApiError::validation(
                "`return_url` is not on an allowed origin (CONNECTOR_UI_ORIGINS).",
            ));
        }
        Ok(url)
    }

    /// The live session of a connect URL, without consuming it.
    pub async fn session(&self, token: &str) -> Result<Option<StoredSession>, ApiError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let item = self
            .store
            .get_item(ItemKind::Session, &sha256_hex(token), self.now_unix())
            .await?;
        Ok(item.and_then(|i| serde_json::from_value(i.value).ok()))
    }

    /// `GET /connect/status`: the outcome of a session (by its token), `None` when the token
    /// names no live session and no recorded outcome.
    pub async fn session_status(&self, token: &str) -> Result<Option<SessionStatus>, ApiError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let key = sha256_hex(token);
        let now = self.now_unix();
        if let Some(item) = self
            .store
            .get_item(ItemKind::SessionOutcome, &key, now)
            .await?
            && let Ok(status) = serde_json::from_value::<SessionStatus>(item.value)
        {
            return Ok(Some(status));
        }
        let unused = self
            .store
            .get_item(ItemKind::Session, &key, now)
            .await?
            .is_some();
        Ok(unused.then_some(SessionStatus {
            status: SessionState::Pending,
            started: false,
            connection_id: None,
            error: None,
        }))
    }

    /// Records (or replaces) a session's outcome. Best effort: the result page and the
    /// `return_url` still carry the outcome when this write fails.
    pub async fn record_session_outcome(&self, session_key: &str, status: &SessionStatus) {
        let Ok(value) = serde_json::to_value(status) else {
            return;
        };
        let now = self.now_unix();
        let written = async {
            self.store
                .delete_item(ItemKind::SessionOutcome, session_key, None)
                .await?;
            self.store
                .create_item(
                    ItemKind::SessionOutcome,
                    session_key,
                    &value,
                    Some(now + OUTCOME_TTL_SECS),
                    now,
                )
                .await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record the connect session's outcome");
        }
    }

    /// `GET /connect` for a complete session, and `POST /connect`: consume the session and
    /// start the authorization at Zoom.
    pub async fn start_authorization(
        &self,
        token: &str,
        form: Option<ConnectForm>,
    ) -> Result<AuthorizationStart, ConnectError> {
        let session = self
            .session(token)
            .await?
            .ok_or(ConnectError::SessionInvalid)?;
        let session_key = sha256_hex(token);
        let prefix = &self.config.aws.secrets_prefix;

        // Decide the app: the session's choice wins; the form fills in what it left open.
        let mut typed_webhook_token = None;
        // A BYO reconnect's form with a secret typed in repairs the stored one.
        let repairs = session.auth_type == Some(AuthType::ByoApp)
            && session.connection_id.is_some()
            && form.as_ref().is_some_and(|f| {
                f.client_secret
                    .as_ref()
                    .is_some_and(|s| !s.expose().trim().is_empty())
            });
        let (auth_type, client_id, typed_secret) = if session.is_complete() && !repairs {
            (
                session.auth_type.unwrap_or_default(),
                session.client_id.clone(),
                None,
            )
        } else {
            let form = form.ok_or_else(|| ConnectError::Form {
                session: Box::new(session.clone()),
                message: String::new(),
            })?;
            let form_error = |message: &str| ConnectError::Form {
                session: Box::new(session.clone()),
                message: message.to_owned(),
            };
            let chosen = match (session.auth_type, form.auth_type.as_deref()) {
                (Some(fixed), _) => fixed,
                (None, Some("platform_app")) => AuthType::PlatformApp,
                (None, Some("byo_app")) => AuthType::ByoApp,
                _ => return Err(form_error("Choose how to connect.")),
            };
            match chosen {
                AuthType::PlatformApp => (AuthType::PlatformApp, None, None),
                AuthType::ByoApp => {
                    let id = form
                        .client_id
                        .as_deref()
                        .map(str::trim)
                        .unwrap_or_default()
                        .to_owned();
                    let secret = form
                        .client_secret
                        .filter(|s| !s.expose().trim().is_empty())
                        .map(|s| SecretString::new(s.expose().trim()));
                    if id.is_empty() || secret.is_none() {
                        return Err(form_error(
                            "Enter the client ID and the client secret of your Zoom app.",
                        ));
                    }
                    if id.len() > MAX_FIELD
                        || secret
                            .as_ref()
                            .is_some_and(|s| s.expose().len() > MAX_FIELD)
                    {
                        return Err(form_error("The client ID or client secret is too long."));
                    }
                    typed_webhook_token = form
                        .webhook_secret_token
                        .filter(|s| !s.expose().trim().is_empty())
                        .map(|s| SecretString::new(s.expose().trim()));
                    if let Some(t) = &typed_webhook_token
                        && (t.expose().len() > MAX_FIELD
                            || super::keys::app_webhook_secret_name("", &id).is_none())
                    {
                        return Err(form_error(
                            "The webhook secret token is too long, or the client ID has characters a Zoom client ID does not have.",
                        ));
                    }
                    (AuthType::ByoApp, Some(id), secret)
                }
            }
        };

        // A BYO reconnect without a new secret uses the connection's own app, unless its
        // stored secret needs repairing (broken since the session was made): then the form asks
        // for it, and the session stays usable for the form.
        let reconnect_record = match (auth_type, &typed_secret, &session.connection_id) {
            (AuthType::ByoApp, None, Some(id)) if !session.has_client_secret => Some(
                self.store
                    .get_connection(id)
                    .await?
                    .ok_or_else(|| ApiError::connection_not_found(id))?,
            ),
            _ => None,
        };
        if let Some(record) = &reconnect_record
            && needs_new_client_secret(record)
        {
            return Err(ConnectError::Form {
                session: Box::new(StoredSession {
                    repair_credentials: true,
                    client_id: Some(record.client_id.clone()),
                    ..session
                }),
                message: String::new(),
            });
        }

        // Single use: whoever takes the session starts the flow; a second tab gets "invalid".
        if self
            .store
            .take_item(ItemKind::Session, &session_key, self.now_unix())
            .await?
            .is_none()
        {
            return Err(ConnectError::SessionInvalid);
        }

        let state = random_token(32);
        let state_key = sha256_hex(&state);
        let (client_id, pending_secret) = match auth_type {
            AuthType::PlatformApp => (self.platform_app().await?.client_id.clone(), None),
            AuthType::ByoApp => {
                let session_secret = pending_secret_name(prefix, &session_key);
                match (typed_secret, client_id) {
                    (Some(secret), Some(id)) => {
                        let name = pending_secret_name(prefix, &state_key);
                        self.park_secret(&name, &secret, &state_key).await?;
                        (id, Some(name))
                    }
                    (None, Some(id)) if session.has_client_secret => (id, Some(session_secret)),
                    // Reconnect of a BYO connection: the record names its app; the callback
                    // reads the app's secret from the connection's own secret.
                    (None, _) if reconnect_record.is_some() => (
                        reconnect_record.map(|r| r.client_id).unwrap_or_default(),
                        None,
                    ),
                    _ => {
                        return Err(ConnectError::Form {
                            session: Box::new(session),
                            message: "Enter the client ID and the client secret of your Zoom app."
                                .into(),
                        });
                    }
                }
            }
        };

        // The app's webhook token: typed on the form, else given with the session.
        let session_webhook = pending_webhook_secret_name(prefix, &session_key);
        let pending_webhook_secret = match (auth_type, typed_webhook_token) {
            (AuthType::ByoApp, Some(token)) => {
                let name = pending_webhook_secret_name(prefix, &state_key);
                self.park_secret(&name, &token, &state_key).await?;
                Some(name)
            }
            (AuthType::ByoApp, None) if session.has_webhook_secret => Some(session_webhook.clone()),
            _ => None,
        };
        if session.has_webhook_secret
            && pending_webhook_secret.as_deref() != Some(session_webhook.as_str())
        {
            self.drop_parked_secret(&session_webhook).await;
        }

        let verifier = SecretString::new(random_token(48));
        let binding = SecretString::new(random_token(32));
        let stored = StoredState {
            code_verifier: verifier.clone(),
            binding_hash: sha256_hex(binding.expose()),
            auth_type,
            client_id: client_id.clone(),
            pending_secret,
            pending_webhook_secret,
            connection_id: session.connection_id.clone(),
            return_url: session.return_url.clone(),
            end_user: session.end_user.clone(),
            session_key: Some(session_key.clone()),
        };
        let value = serde_json::to_value(&stored).map_err(|e| ApiError::internal(e.to_string()))?;
        let now = self.now_unix();
        self.record_session_outcome(
            &session_key,
            &SessionStatus {
                status: SessionState::Pending,
                started: true,
                connection_id: None,
                error: None,
            },
        )
        .await;
        self.store
            .create_item(
                ItemKind::OAuthState,
                &state_key,
                &value,
                Some(now + STATE_TTL_SECS),
                now,
            )
            .await?;
        let authorize_url =
            self.oauth
                .authorize_url(&client_id, &self.config.redirect_uri(), &state, &verifier);
        tracing::info!(
            auth_type = auth_type.as_str(),
            reconnect = stored.connection_id.is_some(),
            "authorization started"
        );
        Ok(AuthorizationStart {
            authorize_url,
            cookie_name: binding_cookie_name(&state),
            cookie_value: binding,
        })
    }

    /// The OAuth client of an existing connection (platform app or its BYO app).
    pub async fn connection_client(
        &self,
        connection_id: &str,
    ) -> Result<ClientCredentials, ApiError> {
        let secret = self.read_connection_secret(connection_id).await?;
        self.client_for(&secret).await
    }
}

#[cfg(test)]
mod hostile_input_tests {
    //! Arbitrary session tokens, OAuth states, codes, cookies and return URLs: never a panic,
    //! never accepted unless they are the real thing.
    use crate::domain::error::ErrorCode;

    use proptest::prelude::*;

    use super::*;

    use crate::app::callback::{CallbackErrorCode, CallbackParams};

    const UI: &str = "https://ui.example.test";

    struct Fixture {
        connector: Connector,
        rt: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let (connector, dir) = crate::wiring::test_connector(&[
            ("CONNECTOR_PUBLIC_URL", "https://connector.example.test"),
            ("CONNECTOR_UI_ORIGINS", UI),
            // Never reached: nothing here may get as far as Zoom.
            ("ZOOM_OAUTH_URL", "http://127.0.0.1:9"),
        ]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture {
            connector,
            rt,
            _dir: dir,
        }
    }

    /// Strings a hostile caller would try, plus arbitrary ones.
    fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{40,50}",
            "[ -~]{0,300}",
            Just(String::new()),
            Just("x".repeat(10_000)),
            Just("%00%0d%0aSet-Cookie: a=b".to_owned()),
            Just("../../../etc/passwd".to_owned()),
            Just("' OR '1'='1".to_owned()),
        ]
    }

    #[test]
    fn arbitrary_session_tokens_are_never_accepted() {
        let f = fixture();
        // A real session exists; no other token may reach it.
        let real =
            f.rt.block_on(f.connector.create_session(CreateSessionRequest {
                auth_type: Some(AuthType::PlatformApp),
                ..Default::default()
            }))
            .unwrap();
        proptest!(ProptestConfig::with_cases(128), |(token in hostile_string())| {
            prop_assume!(token != real.session_token);
            f.rt.block_on(async {
                assert!(f.connector.session(&token).await.unwrap().is_none());
                let form = ConnectForm {
                    session: token.clone(),
                    auth_type: Some("platform_app".into()),
                    client_id: None,
                    client_secret: None,
                    webhook_secret_token: None,
                };
                assert!(matches!(
                    f.connector.start_authorization(&token, Some(form)).await,
                    Err(ConnectError::SessionInvalid)
                ));
            });
        });
        // The barrage did not consume the real session.
        assert!(
            f.rt.block_on(f.connector.session(&real.session_token))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn arbitrary_callbacks_are_state_invalid_and_store_nothing() {
        let f = fixture();
        // A real state exists (its flow started); forged callbacks must not complete it.
        let real =
            f.rt.block_on(f.connector.create_session(CreateSessionRequest {
                auth_type: Some(AuthType::PlatformApp),
                ..Default::default()
            }))
            .unwrap();
        let platform = serde_json::json!({ "client_id": "c", "client_secret": "s" });
        f.rt.block_on(f.connector.secrets.put_secret(
            &f.connector.config.aws.platform_app_secret_id,
            &SecretString::new(platform.to_string()),
            "seed",
        ))
        .unwrap();
        let start =
            f.rt.block_on(f.connector.start_authorization(&real.session_token, None))
                .unwrap();
        proptest!(ProptestConfig::with_cases(128), |(
            state in proptest::option::of(hostile_string()),
            code in proptest::option::of(hostile_string()),
            error in proptest::option::of(prop_oneof![Just("access_denied".to_owned()), hostile_string()]),
            cookie in proptest::option::of(hostile_string()),
        )| {
            let params = CallbackParams { code, state, error, error_description: None };
            let outcome = f.rt.block_on(f.connector.complete_authorization(params, |_| cookie.clone()));
            prop_assert_eq!(outcome.result.err(), Some(CallbackErrorCode::StateInvalid));
            prop_assert!(outcome.return_url.is_none());
        });
        let listed =
            f.rt.block_on(f.connector.store.list_connections(None, None, 10))
                .unwrap();
        assert!(listed.is_empty(), "nothing stored");
        // The real state survived: it still carries its binding.
        let state_of = url::Url::parse(&start.authorize_url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let item =
            f.rt.block_on(f.connector.store.get_item(
                ItemKind::OAuthState,
                &sha256_hex(&state_of),
                f.connector.now_unix(),
            ))
            .unwrap();
        assert!(
            item.is_some(),
            "forged callbacks did not burn the real state"
        );
    }

    fn url_like() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            Just("https:"),
            Just("http:"),
            Just("HTTPS:"),
            Just("javascript:"),
            Just("data:"),
            Just(""),
        ];
        let slashes = prop_oneof![Just("//"), Just("/"), Just(""), Just("\\\\"), Just("/\\")];
        let host = prop_oneof![
            Just("ui.example.test".to_owned()),
            Just("evil.com".to_owned()),
            Just("ui.example.test.evil.com".to_owned()),
            Just("ui.example.test@evil.com".to_owned()),
            Just("evil.com@ui.example.test".to_owned()),
            Just("ui.example.test:8443".to_owned()),
            Just("ui.example.test:443".to_owned()),
            Just("ui.exаmple.test".to_owned()),
            "[a-z.@:%0-9]{0,20}",
        ];
        let rest = prop_oneof![Just(String::new()), "[ -~]{0,30}", any::<String>()];
        (scheme, slashes, host, rest).prop_map(|(s, sl, h, r)| format!("{s}{sl}{h}{r}"))
    }

    #[test]
    fn return_urls_are_accepted_only_on_the_allowed_origin() {
        let f = fixture();
        proptest!(ProptestConfig::with_cases(512), |(raw in prop_oneof![url_like(), any::<String>()])| {
            match f.connector.check_return_url(&raw) {
                Ok(url) => {
                    prop_assert_eq!(crate::config::origin_of(&url), UI, "{:?}", raw);
                    // What later goes into a Location header: no whitespace, no controls.
                    prop_assert!(!url.as_str().chars().any(|c| c.is_whitespace() || c.is_control()));
                }
                Err(e) => prop_assert_eq!(e.code, ErrorCode::ValidationFailed),
            }
        });
        for evil in [
            "//evil.com/x",
            "https://ui.example.test.evil.com/",
            "javascript:alert(1)",
            "https://ui.example.test@evil.com/",
            "https://evil.com#https://ui.example.test",
            "http://ui.example.test/",
            "https://ui.example.test:8443/",
            "data:text/html,hi",
            "/relative",
            "https:/\\evil.com",
            "https://ui.exаmple.test/",
        ] {
            assert!(f.connector.check_return_url(evil).is_err(), "{evil}");
        }
    }

    #[test]
    fn session_fields_with_control_characters_are_refused() {
        let f = fixture();
        for bad in ["a\r\nSet-Cookie: x=1", "a\0b", "tab\there", ""] {
            let request = CreateSessionRequest {
                client_id: Some(bad.into()),
                client_secret: Some(SecretString::new("secret")),
                ..Default::default()
            };
            let e =
                f.rt.block_on(f.connector.create_session(request))
                    .unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationFailed, "{bad:?}");
            let request = CreateSessionRequest {
                end_user: Some(EndUser {
                    id: None,
                    email: Some(bad.into()),
                }),
                ..Default::default()
            };
            let e =
                f.rt.block_on(f.connector.create_session(request))
                    .unwrap_err();
            assert_eq!(e.code, ErrorCode::ValidationFailed, "{bad:?}");
        }
    }
}

//! The connector's own credentials, read from the secret store and cached for a few minutes
//! so a rotation reaches warm containers without a redeploy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::RwLock;

use super::Connector;
use crate::domain::ClientCredentials;
use crate::error::ApiError;
use crate::secret::SecretString;

const KEY_CACHE_TTL: Duration = Duration::from_secs(300);
/// After a delivery the cached token did not verify (none stored, or another one), the secret
/// is read again, but at most this often per app: a connection in another container may just
/// have stored or replaced it, and a flood of bad signatures must not cost a read each.
const APP_TOKEN_RECHECK: Duration = Duration::from_secs(1);
/// Bound on the per-app cache: beyond it, the oldest half is dropped.
const APP_TOKEN_CACHE_MAX: usize = 1024;

/// Name of the secret holding a bring-your-own app's webhook secret token, once per app.
/// `None` for a client ID that cannot name a secret (Zoom's are letters, digits, `_` and `-`).
pub fn app_webhook_secret_name(prefix: &str, client_id: &str) -> Option<String> {
    let valid = !client_id.is_empty()
        && client_id.len() <= 128
        && client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    valid.then(|| format!("{prefix}/apps/{client_id}/webhook"))
}

/// Contents of an app's webhook secret.
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
pub struct AppWebhookSecret {
    pub webhook_secret_token: SecretString,
}

/// Contents of the `connector` secret.
#[derive(Clone, Debug, Deserialize)]
pub struct ConnectorKeys {
    pub api_key: SecretString,
    #[serde(default)]
    pub webhook_secret_token: Option<SecretString>,
    /// The old webhook token, accepted too during a rotation window.
    #[serde(default)]
    pub previous_webhook_secret_token: Option<SecretString>,
}

impl ConnectorKeys {
    pub fn webhook_tokens(&self) -> impl Iterator<Item = &SecretString> {
        self.webhook_secret_token
            .iter()
            .chain(self.previous_webhook_secret_token.iter())
            .filter(|t| !t.expose().is_empty())
    }
}

#[derive(Default)]
pub struct KeyCache {
    connector: RwLock<Option<(Instant, Arc<ConnectorKeys>)>>,
    platform: RwLock<Option<(Instant, Arc<ClientCredentials>)>>,
    /// Bring-your-own apps' webhook tokens by client ID (`None`: the app has none).
    apps: RwLock<HashMap<String, (Instant, Option<SecretString>)>>,
}

async fn cached<T: Clone>(slot: &RwLock<Option<(Instant, T)>>) -> Option<T> {
    slot.read()
        .await
        .as_ref()
        .filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL)
        .map(|(_, v)| v.clone())
}

impl Connector {
    async fn read_json_secret<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        let Some(raw) = self.secrets.get_secret(name).await? else {
            return Ok(None);
        };
        serde_json::from_str(raw.expose()).map(Some).map_err(|e| {
            ApiError::internal(format!(
                "secret {name} is not valid JSON of the expected shape: {}",
                e.classify_name()
            ))
        })
    }

    /// The API key and webhook tokens.
    pub async fn connector_keys(&self) -> Result<Arc<ConnectorKeys>, ApiError> {
        if let Some(keys) = cached(&self.keys.connector).await {
            return Ok(keys);
        }
        let name = &self.config.aws.connector_secret_id;
        let keys: ConnectorKeys = self.read_json_secret(name).await?.ok_or_else(|| {
            ApiError::unavailable(
                "not_configured",
                format!("The connector secret {name} does not exist."),
            )
        })?;
        let keys = Arc::new(keys);
        *self.keys.connector.write().await = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// The platform's own Zoom app.
    pub async fn platform_app(&self) -> Result<Arc<ClientCredentials>, ApiError> {
        if let Some(app) = cached(&self.keys.platform).await {
            return Ok(app);
        }
        let name = &self.config.aws.platform_app_secret_id;
        let app: ClientCredentials = self
            .read_json_secret(name)
            .await?
            .filter(|a: &ClientCredentials| !a.client_id.is_empty() && !a.client_secret.expose().is_empty())
            .ok_or_else(|| {
                ApiError::unavailable(
                    "platform_app_not_configured",
                    format!("The platform Zoom app is not configured: put its client_id and client_secret into {name}."),
                )
            })?;
        let app = Arc::new(app);
        *self.keys.platform.write().await = Some((Instant::now(), app.clone()));
        Ok(app)
    }
}

impl Connector {
    /// The webhook secret token of a bring-your-own app, cached like the connector's keys;
    /// `None` when the app has none stored (or the client ID cannot name one).
    ///
    /// With `recheck`, a cached answer older than [`APP_TOKEN_RECHECK`] is read again (the
    /// cached one did not verify a delivery).
    pub async fn app_webhook_token(
        &self,
        client_id: &str,
        recheck: bool,
    ) -> Result<Option<SecretString>, ApiError> {
        let Some(name) = app_webhook_secret_name(&self.config.aws.secrets_prefix, client_id) else {
            return Ok(None);
        };
        if let Some((at, token)) = self.keys.apps.read().await.get(client_id) {
            let ttl = if recheck {
                APP_TOKEN_RECHECK
            } else {
                KEY_CACHE_TTL
            };
            if at.elapsed() < ttl {
                return Ok(token.clone());
            }
        }
        let token = self
            .read_json_secret::<AppWebhookSecret>(&name)
            .await?
            .map(|s| s.webhook_secret_token)
            .filter(|t| !t.expose().is_empty());
        let mut apps = self.keys.apps.write().await;
        if apps.len() >= APP_TOKEN_CACHE_MAX {
            let mut ages: Vec<(String, Instant)> =
                apps.iter().map(|(k, (at, _))| (k.clone(), *at)).collect();
            ages.sort_by_key(|(_, at)| *at);
            for (k, _) in ages.into_iter().take(APP_TOKEN_CACHE_MAX / 2) {
                apps.remove(&k);
            }
        }
        apps.insert(client_id.to_owned(), (Instant::now(), token.clone()));
        Ok(token)
    }

    /// Stores a bring-your-own app's webhook token (the callback, after a successful
    /// connection); a later connection of the same app with another token replaces it.
    pub async fn store_app_webhook_token(
        &self,
        client_id: &str,
        token: &SecretString,
    ) -> Result<bool, ApiError> {
        let Some(name) = app_webhook_secret_name(&self.config.aws.secrets_prefix, client_id) else {
            return Ok(false);
        };
        let value = serde_json::to_string(&AppWebhookSecret {
            webhook_secret_token: token.clone(),
        })
        .map_err(|e| ApiError::internal(e.to_string()))?;
        // Idempotent per (app, token): a retried write cannot fork versions.
        let request_token = crate::secret::sha256_hex(&format!("{client_id}:{}", token.expose()));
        self.secrets
            .put_secret(&name, &SecretString::new(value), &request_token[..32])
            .await?;
        self.keys.apps.write().await.remove(client_id);
        Ok(true)
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The error's category only: a serde message could quote part of the secret.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "missing or wrongly typed field",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

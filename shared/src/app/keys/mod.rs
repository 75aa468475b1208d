//! The connector's own credentials, read from the secret store and cached per container.
//!
//! How long a change takes to reach every container (the rotation runbook relies on this):
//! - a container re-reads the connector secret once its copy is `CONNECTOR_KEYS_MAX_AGE_SECS`
//!   old (default 60 s), on the next request that needs it: so a removed key stops working
//!   everywhere within that time;
//! - a request with a key the copy does not know re-reads the secret at once, but at most once
//!   per [`UNKNOWN_KEY_RECHECK`] per container: so a new key works everywhere within about
//!   10 s, and someone spraying wrong keys causes at most one `GetSecretValue` per container
//!   every 10 s, however many requests they send (the re-reads are single-flight too);
//! - when a re-read fails (Secrets Manager unavailable) the last copy keeps serving for up to
//!   [`MAX_STALE`], retried every [`FAILED_READ_BACKOFF`], rather than failing every request.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub mod cache;

use super::Connector;
use crate::domain::ClientCredentials;
use crate::domain::error::{ApiError, ErrorCode};
use crate::secret::SecretString;
use cache::*;

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

/// How often an unknown API key may make a container re-read the connector secret.
pub const UNKNOWN_KEY_RECHECK: Duration = Duration::from_secs(10);

/// The platform app changes rarely and is not an authorization: a longer cache.
const PLATFORM_MAX_AGE: Duration = Duration::from_secs(300);

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

    async fn read_connector_keys(&self) -> Result<ConnectorKeys, ApiError> {
        let name = &self.config.aws.connector_secret_id;
        self.read_json_secret(name).await?.ok_or_else(|| {
            ApiError::unavailable(
                ErrorCode::NotConfigured,
                format!("The connector secret {name} does not exist."),
            )
        })
    }

    /// The API keys and webhook tokens.
    pub async fn connector_keys(&self) -> Result<Arc<ConnectorKeys>, ApiError> {
        self.keys
            .connector
            .get(Need::Fresh, self.config.keys_max_age, || {
                self.read_connector_keys()
            })
            .await
    }

    /// Whether `presented` is a valid API key (the current or the previous one). An unknown
    /// key re-reads the secret at most once per [`UNKNOWN_KEY_RECHECK`] (see the module docs).
    pub async fn check_api_key(&self, presented: &str) -> Result<bool, ApiError> {
        let keys = self.connector_keys().await?;
        if keys.accepts_api_key(presented) {
            return Ok(true);
        }
        let slot = &self.keys.connector;
        let Some(read_at) = slot.read_at().await else {
            return Ok(false);
        };
        if read_at.elapsed() < UNKNOWN_KEY_RECHECK {
            return Ok(false);
        }
        let keys = slot
            .get(Need::ReadAfter(read_at), self.config.keys_max_age, || {
                self.read_connector_keys()
            })
            .await?;
        Ok(keys.accepts_api_key(presented))
    }

    /// The platform's own Zoom app.
    pub async fn platform_app(&self) -> Result<Arc<ClientCredentials>, ApiError> {
        self.keys
            .platform
            .get(Need::Fresh, PLATFORM_MAX_AGE, || async {
                let name = &self.config.aws.platform_app_secret_id;
                self.read_json_secret(name)
                    .await?
                    .filter(|a: &ClientCredentials| !a.client_id.is_empty() && !a.client_secret.expose().is_empty())
                    .ok_or_else(|| {
                        ApiError::unavailable(
                            ErrorCode::PlatformAppNotConfigured,
                            format!("The platform Zoom app is not configured: put its client_id and client_secret into {name}."),
                        )
                    })
            })
            .await
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
            // Cached like the connector's own keys (`CONNECTOR_KEYS_MAX_AGE_SECS`).
            let ttl = if recheck {
                APP_TOKEN_RECHECK
            } else {
                self.config.keys_max_age
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

#[cfg(test)]
mod tests;

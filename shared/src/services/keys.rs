//! The connector's own credentials, read from the secret store and cached for a few minutes
//! so a rotation reaches warm containers without a redeploy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::RwLock;

use super::Connector;
use crate::domain::ClientCredentials;
use crate::error::ApiError;
use crate::secret::SecretString;

const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

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

//! The in-memory cache of the connector's secrets in one process (API keys, webhook secret
//! tokens, the platform app): each read at most once per max age, one read at a time, and a
//! failed read served from the last value for a while.

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

use crate::domain::ClientCredentials;
use crate::domain::error::ApiError;
use crate::secret::{SecretString, sha256_hex};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use subtle::{Choice, ConstantTimeEq};
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// Contents of an app's webhook secret.
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
pub struct AppWebhookSecret {
    pub webhook_secret_token: SecretString,
}

/// How long a copy keeps serving while the secret store cannot be read.
pub const MAX_STALE: Duration = Duration::from_secs(15 * 60);

/// Between failed re-reads: requests meanwhile use the last copy without an AWS call.
pub const FAILED_READ_BACKOFF: Duration = Duration::from_secs(5);

/// Contents of the `connector` secret.
#[derive(Clone, Debug, Deserialize)]
pub struct ConnectorKeys {
    pub api_key: SecretString,
    /// The old API key, accepted too while backends move to the new one; remove it to end
    /// the rotation.
    #[serde(default)]
    pub previous_api_key: Option<SecretString>,
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

    /// Whether `presented` is the API key or the previous one. Both are always compared,
    /// as fixed-length hashes, so the time taken tells neither which one matched nor how
    /// much of a key or its length was right.
    pub fn accepts_api_key(&self, presented: &str) -> bool {
        let presented = sha256_hex(presented);
        let mut matched = Choice::from(0);
        for key in [Some(&self.api_key), self.previous_api_key.as_ref()]
            .into_iter()
            .flatten()
            .filter(|k| !k.expose().is_empty())
        {
            matched |= sha256_hex(key.expose())
                .as_bytes()
                .ct_eq(presented.as_bytes());
        }
        matched.into()
    }
}

/// One cached secret: the value, when it was read, and when a failed re-read may be retried.
pub(super) struct Cached<T> {
    value: Arc<T>,
    read_at: Instant,
    retry_at: Option<Instant>,
}

pub(super) struct Slot<T> {
    current: RwLock<Option<Cached<T>>>,
    /// Single flight: one re-read at a time per container.
    reading: Mutex<()>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            current: RwLock::new(None),
            reading: Mutex::new(()),
        }
    }
}

/// Why a slot is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// A copy younger than the maximum age.
    Fresh,
    /// A copy read after this instant (an unknown key asks for a newer one).
    ReadAfter(Instant),
}

impl<T> Slot<T> {
    /// The cached value if it serves `need` without a read (or may not be re-read yet).
    pub(super) async fn usable(&self, need: Need, max_age: Duration) -> Option<Arc<T>> {
        let guard = self.current.read().await;
        let c = guard.as_ref()?;
        let now = Instant::now();
        let serves = match need {
            Need::Fresh => now.duration_since(c.read_at) < max_age,
            Need::ReadAfter(at) => c.read_at > at,
        };
        let backing_off =
            c.retry_at.is_some_and(|r| now < r) && now.duration_since(c.read_at) < MAX_STALE;
        (serves || backing_off).then(|| c.value.clone())
    }

    pub(super) async fn get<F, Fut>(
        &self,
        need: Need,
        max_age: Duration,
        read: F,
    ) -> Result<Arc<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        if let Some(v) = self.usable(need, max_age).await {
            return Ok(v);
        }
        let _reading = self.reading.lock().await;
        // Whoever held the lock before us may just have read it.
        if let Some(v) = self.usable(need, max_age).await {
            return Ok(v);
        }
        match read().await {
            Ok(value) => {
                let value = Arc::new(value);
                *self.current.write().await = Some(Cached {
                    value: value.clone(),
                    read_at: Instant::now(),
                    retry_at: None,
                });
                Ok(value)
            }
            Err(e) => {
                let mut guard = self.current.write().await;
                match guard.as_mut() {
                    Some(c) if c.read_at.elapsed() < MAX_STALE => {
                        tracing::warn!(error = %e, "re-reading a connector secret failed; using the last copy");
                        c.retry_at = Some(Instant::now() + FAILED_READ_BACKOFF);
                        Ok(c.value.clone())
                    }
                    _ => Err(e),
                }
            }
        }
    }

    pub(super) async fn read_at(&self) -> Option<Instant> {
        self.current.read().await.as_ref().map(|c| c.read_at)
    }
}

#[derive(Default)]
pub struct KeyCache {
    pub(super) connector: Slot<ConnectorKeys>,
    pub(super) platform: Slot<ClientCredentials>,
    /// Bring-your-own apps' webhook tokens by client ID (`None`: the app has none).
    pub(super) apps: RwLock<HashMap<String, (Instant, Option<SecretString>)>>,
}

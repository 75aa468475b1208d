//! Fakes the end-to-end tests put into a container's ports (with
//! `TestStack::container_with`): a clock ahead of the others, Zoom clients with short
//! timeouts, a secret store whose writes pass a test's hook first.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use zoom_connector::adapters::zoom_http::{HttpZoomOAuth, http_client};
use zoom_connector::config::Config;
use zoom_connector::ports::{
    Clock, SecretStore, StoreResult, ZoomApi, ZoomOAuth, ZoomRequest, ZoomResponse,
    ZoomTransportError,
};
use zoom_connector::secret::SecretString;

/// The clock of a container whose view of time is ahead of the others' (it sees their
/// leases as expired).
pub struct AheadClock(pub time::Duration);

impl Clock for AheadClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

/// Zoom's REST client with a shorter per-call timeout, so a hanging Zoom is seen quickly.
pub struct ShortApiTimeout {
    pub inner: Arc<dyn ZoomApi>,
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl ZoomApi for ShortApiTimeout {
    async fn send(&self, mut request: ZoomRequest) -> Result<ZoomResponse, ZoomTransportError> {
        request.timeout = request.timeout.min(self.timeout);
        self.inner.send(request).await
    }
}

/// Zoom's OAuth client with its own per-call timeout.
pub fn oauth_with_timeout(config: &Config, timeout: Duration) -> Arc<dyn ZoomOAuth> {
    Arc::new(HttpZoomOAuth::new(
        http_client(),
        &config.zoom_oauth_url,
        timeout,
    ))
}

/// Which secret write a [`BeforeSecretWrite`] hook sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretWrite {
    Put,
    Update,
}

/// What a test does before a secret write reaches the store: refuse it, record it, hold it.
#[async_trait::async_trait]
pub trait BeforeSecretWrite: Send + Sync {
    async fn before(&self, name: &str, write: SecretWrite) -> StoreResult<()>;
}

/// A secret store whose writes pass `hook` first (an error from it is the write's answer);
/// reads and deletes go straight through.
pub struct HookedSecrets<H> {
    pub inner: Arc<dyn SecretStore>,
    pub hook: H,
}

#[async_trait::async_trait]
impl<H: BeforeSecretWrite> SecretStore for HookedSecrets<H> {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretString>> {
        self.inner.get_secret(name).await
    }
    async fn put_secret(&self, name: &str, value: &SecretString, token: &str) -> StoreResult<()> {
        self.hook.before(name, SecretWrite::Put).await?;
        self.inner.put_secret(name, value, token).await
    }
    async fn update_secret(
        &self,
        name: &str,
        value: &SecretString,
        token: &str,
    ) -> StoreResult<bool> {
        self.hook.before(name, SecretWrite::Update).await?;
        self.inner.update_secret(name, value, token).await
    }
    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        self.inner.delete_secret(name).await
    }
}

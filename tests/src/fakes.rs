//! Fakes the end-to-end tests put into a container's ports (with
//! `TestStack::container_with`): a clock ahead of the others, Zoom clients with short
//! timeouts.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use zoom_connector::adapters::zoom_http::{HttpZoomOAuth, http_client};
use zoom_connector::config::Config;
use zoom_connector::ports::{
    Clock, ZoomApi, ZoomOAuth, ZoomRequest, ZoomResponse, ZoomTransportError,
};

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

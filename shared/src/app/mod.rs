//! Business rules. Every service works on [`Connector`], which holds the ports; nothing here
//! knows whether it runs on Lambda or in the local stack.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::config::Config;
use crate::ports::{Clock, ConnectionStore, DataKeys, EventBus, SecretStore, ZoomApi, ZoomOAuth};

pub mod actions;

mod authorization;

pub mod callback;

pub mod connect;

pub mod connect_session;

pub mod connections;

mod identity;

pub mod idempotency;

pub mod keys;

pub mod meeting_events;

mod pending_secrets;

mod refresh_lease;

pub mod sweep;

pub mod tokens;

pub mod webhooks;

/// Event detail types published on the bus (source `zoom-connector`).
pub mod events {
    pub const CONNECTION_CREATED: &str = "Zoom Connection Created";
    pub const CONNECTION_REFRESH_FAILED: &str = "Zoom Connection Refresh Failed";
    pub const CONNECTION_NEEDS_REAUTH: &str = "Zoom Connection Needs Reauth";
    pub const CONNECTION_REVOKED: &str = "Zoom Connection Revoked";
    pub const CONNECTION_DELETED: &str = "Zoom Connection Deleted";
    pub const MEETING_CREATED: &str = "Zoom Meeting Created";
    pub const MEETING_CREATION_FAILED: &str = "Zoom Meeting Creation Failed";
    pub const WEBHOOK_EVENT: &str = "Zoom Webhook Event";
}

/// The ports and shared in-memory state of one process (one Lambda container, or the local
/// stack). Built once at start, cloned cheaply into every handler.
#[derive(Clone)]
pub struct Connector {
    pub config: Arc<Config>,
    pub secrets: Arc<dyn SecretStore>,
    pub store: Arc<dyn ConnectionStore>,
    pub bus: Arc<dyn EventBus>,
    pub oauth: Arc<dyn ZoomOAuth>,
    pub zoom: Arc<dyn ZoomApi>,
    pub clock: Arc<dyn Clock>,
    /// The master key sealing the pending-token copy (KMS, or the local key file).
    pub data_keys: Arc<dyn DataKeys>,
    pub keys: Arc<keys::cache::KeyCache>,
    /// This process's data key and the ones it has unwrapped (pending-token copies).
    pub sealing: Arc<tokens::sealing::SealingKeys>,
    pub tokens: Arc<tokens::cache::TokenCache>,
    /// In memory by default; EMF on Lambda (see `lambda::init`).
    pub metrics: Arc<dyn crate::metrics::MetricsSink>,
    /// Identifies this process as a lease owner.
    pub instance_id: Arc<str>,
}

/// The ports a [`Connector`] is built from.
pub struct Ports {
    pub secrets: Arc<dyn SecretStore>,
    pub store: Arc<dyn ConnectionStore>,
    pub bus: Arc<dyn EventBus>,
    pub oauth: Arc<dyn ZoomOAuth>,
    pub zoom: Arc<dyn ZoomApi>,
    pub clock: Arc<dyn Clock>,
    pub data_keys: Arc<dyn DataKeys>,
}

impl Connector {
    pub fn new(config: Config, ports: Ports) -> Self {
        Self {
            config: Arc::new(config),
            secrets: ports.secrets,
            store: ports.store,
            bus: ports.bus,
            oauth: ports.oauth,
            zoom: ports.zoom,
            clock: ports.clock,
            data_keys: ports.data_keys,
            keys: Arc::new(keys::cache::KeyCache::default()),
            sealing: Arc::new(tokens::sealing::SealingKeys::default()),
            tokens: Arc::new(tokens::cache::TokenCache::default()),
            metrics: Arc::new(crate::metrics::MemoryMetrics::default()),
            instance_id: format!("inst_{}", uuid::Uuid::new_v4().simple()).into(),
        }
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub fn now_unix(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Publishes an event; a failure is logged, not fatal (the state change already happened).
    pub async fn publish(&self, detail_type: &str, detail: serde_json::Value) {
        let _ = self.publish_counted(detail_type, &detail).await;
    }

    /// Publishes and counts the outcome (`EventsPublished`); the caller decides what a
    /// failure means.
    pub async fn publish_counted(
        &self,
        detail_type: &str,
        detail: &serde_json::Value,
    ) -> Result<(), crate::domain::error::StoreError> {
        let result = self.bus.publish(detail_type, detail).await;
        let outcome = if result.is_ok() {
            "published"
        } else {
            "failed"
        };
        self.count(crate::metrics::Metric::EventsPublished, Some(outcome));
        if let Err(e) = &result {
            tracing::error!(error = %e, detail_type, "could not publish event");
        }
        result
    }

    /// Adds one to a counter of the metrics catalogue.
    pub fn count(&self, metric: crate::metrics::Metric, dimension: Option<&'static str>) {
        self.metrics.record(metric, dimension, 1.0);
    }
}

/// Zoom's token endpoint gets this long per call (also bounds the refresh lease).
pub const ZOOM_OAUTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Zoom's REST API gets this long per call.
pub const ZOOM_API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `base` ± 50 %.
pub fn jittered(base: Duration) -> Duration {
    let factor = rand::rng().random_range(0.5..1.5);
    base.mul_f64(factor)
}

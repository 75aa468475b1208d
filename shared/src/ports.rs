//! The small traits the services depend on. Adapters: AWS, the embedded local store, Zoom
//! over HTTP; tests swap in fakes or moto.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::error::StoreError;
use crate::domain::{ClientCredentials, ConnectionRecord, ConnectionStatus, TokenSet};
use crate::secret::SecretString;
pub use crate::zoom::exchange::{ZoomRequest, ZoomResponse, ZoomTransportError};

pub type StoreResult<T> = Result<T, StoreError>;

/// Secrets: per-connection credentials, the platform app, the connector's own keys.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The current version (`AWSCURRENT`) of a secret, or `None` when it does not exist.
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretString>>;
    /// Creates the secret or writes a new current version. `request_token` is idempotent:
    /// retrying a write with the same token cannot create a second version.
    async fn put_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<()>;
    /// Writes a new current version of an existing secret and never creates one: `Ok(false)`
    /// when there is none (a connection deleted or deauthorized meanwhile stays gone, and the
    /// refresh needs no right to create or delete secrets). Idempotent like `put_secret`.
    async fn update_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<bool>;
    /// Deletes at once (no recovery window); absent is fine.
    async fn delete_secret(&self, name: &str) -> StoreResult<()>;
}

/// Namespaces of the small TTL'd records kept beside the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// Connect sessions (30 minutes, single use).
    Session,
    /// OAuth states (10 minutes, single use).
    OAuthState,
    /// Refresh leases (owner + expiry).
    Lease,
    /// Idempotency records of meeting creation (24 hours).
    Idempotency,
    /// "client ID + Zoom account + Zoom user → connection id" (no expiry).
    Identity,
    /// Deduplication of Zoom webhook deliveries: a short claim while one process publishes,
    /// then a 24-hour "published" marker (outlives Zoom's retries at ~5, 20 and 60 minutes).
    WebhookDelivery,
    /// What became of a used connect session (`GET /connect/status`), by the session token's
    /// hash: "at Zoom" once the flow starts, then the callback's result (minutes).
    SessionOutcome,
    /// A secret a connect flow parked in the secret store (a BYO client secret or webhook
    /// token, by the secret's name), written before the secret: it expires when no flow can use
    /// the secret any more, and the sweep then deletes the secret ([`ItemKind::is_swept`]).
    PendingSecret,
    /// Rotated tokens that Secrets Manager refused, sealed under a data key (no expiry; cleared
    /// once Secrets Manager has them). See `app::tokens::pending`.
    PendingTokens,
}

impl ItemKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Session => "SESSION",
            Self::OAuthState => "STATE",
            Self::Lease => "LEASE",
            Self::Idempotency => "IDEM",
            Self::Identity => "IDENTITY",
            Self::WebhookDelivery => "DELIVERY",
            Self::SessionOutcome => "OUTCOME",
            Self::PendingSecret => "PENDING",
            Self::PendingTokens => "SEALED",
        }
    }

    /// Whether expired items of this kind are found by [`ConnectionStore::expired_items`]
    /// (stores index them by expiry, and keep them [`SWEPT_ITEM_GRACE_SECS`] past it, so the
    /// sweep finds each one before the store's TTL removes it).
    pub fn is_swept(self) -> bool {
        matches!(self, Self::PendingSecret)
    }
}

/// How long a swept kind's item stays stored after it expired (DynamoDB's TTL attribute is
/// set this much later than `expires_at`): days of sweeps to find it.
pub const SWEPT_ITEM_GRACE_SECS: i64 = 2 * 24 * 3600;

/// A record with a version for compare-and-set and an absolute expiry (unix seconds,
/// `None` = never). Expired items read as absent even before the store's TTL removes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub value: serde_json::Value,
    pub version: u64,
    pub expires_at: Option<i64>,
}

/// Connection records and the small records around them, with the conditional writes that
/// leases, uniqueness and idempotency rely on.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn get_connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>>;
    /// Writes `record` with version `expected + 1` if the stored version is `expected`
    /// (`None`: only if no record exists). Returns `false` on a conflict.
    async fn put_connection(
        &self,
        record: &ConnectionRecord,
        expected: Option<u64>,
    ) -> StoreResult<bool>;
    async fn delete_connection(&self, id: &str) -> StoreResult<()>;
    /// A page of connections ordered by id, optionally of one status.
    async fn list_connections(
        &self,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>>;
    /// A page of one end user's connections (`end_user.id`), ordered by id, optionally of one
    /// status. Served by its own index: the cost is one end user's connections, not the table.
    async fn list_end_user_connections(
        &self,
        end_user_id: &str,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>>;
    /// Connections whose `next_refresh_at` is at or before `due_by`, earliest first (index).
    async fn due_connections(
        &self,
        due_by: i64,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>>;

    async fn get_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>>;
    /// Creates the item unless a live (unexpired) one exists. Returns whether it was created.
    async fn create_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Replaces the item if its version is still `expected`. Returns whether it was replaced.
    async fn replace_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        expected: u64,
    ) -> StoreResult<bool>;
    /// Deletes and returns the live item atomically: at most one caller gets it (single use).
    async fn take_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>>;
    /// Deletes the item if its version is `expected` (or unconditionally with `None`).
    async fn delete_item(
        &self,
        kind: ItemKind,
        key: &str,
        expected: Option<u64>,
    ) -> StoreResult<bool>;
    /// Items of a swept kind ([`ItemKind::is_swept`]) that expired at or before `expired_by` and
    /// are still stored, earliest expiry first, with their keys (an index: the cost is the
    /// expired items, not the table). Other kinds, and stores without that index, give none.
    async fn expired_items(
        &self,
        kind: ItemKind,
        expired_by: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, Item)>> {
        let _ = (kind, expired_by, limit);
        Ok(Vec::new())
    }
}

pub use crate::sealed::KeyBytes;

/// A 256-bit data key for envelope encryption: the key itself (kept in memory only) and the
/// same key wrapped under the master key (stored beside what it encrypts).
pub struct DataKey {
    pub plaintext: KeyBytes,
    pub wrapped: Vec<u8>,
}

/// The operator's master key for envelope encryption: KMS on AWS (`GenerateDataKey`,
/// `Decrypt` on the key `PENDING_TOKENS_KEY_ID` names), a local key file in the local stack.
/// `context` is bound to the wrapped key (KMS encryption context): unwrapping needs the same.
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// Whether a master key is configured at all (without one nothing can be sealed).
    fn configured(&self) -> bool;
    async fn generate(&self, context: &str) -> StoreResult<DataKey>;
    async fn unwrap_key(&self, wrapped: &[u8], context: &str) -> StoreResult<KeyBytes>;
}

/// Where the connector publishes its events (EventBridge, source `zoom-connector`).
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> StoreResult<()>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// An error of Zoom's OAuth endpoints.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// Zoom answered with an OAuth error (`error`, `reason`/`error_description`).
    #[error("zoom oauth error {error} ({status}): {reason}")]
    Rejected {
        status: u16,
        error: String,
        reason: String,
    },
    /// 5xx, timeout, connection failure, unreadable answer: the tokens may or may not have
    /// been issued.
    #[error("zoom oauth unavailable: {0}")]
    Unavailable(String),
}

/// Zoom's OAuth endpoints.
#[async_trait]
pub trait ZoomOAuth: Send + Sync {
    /// The authorize URL for a code flow with PKCE S256 (the challenge is derived from
    /// `code_verifier`).
    fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        code_verifier: &SecretString,
    ) -> String;
    async fn exchange_code(
        &self,
        client: &ClientCredentials,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, OAuthError>;
    async fn refresh(
        &self,
        client: &ClientCredentials,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, OAuthError>;
    async fn revoke(
        &self,
        client: &ClientCredentials,
        token: &SecretString,
    ) -> Result<(), OAuthError>;
}

/// Zoom's REST API.
#[async_trait]
pub trait ZoomApi: Send + Sync {
    async fn send(&self, request: ZoomRequest) -> Result<ZoomResponse, ZoomTransportError>;
}

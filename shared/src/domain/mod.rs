//! The connector's data: connections, their stored credentials, and the answers about them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::secret::SecretString;

pub mod error;
pub mod idempotency;
pub mod lease;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Pending,
    Active,
    RefreshFailing,
    NeedsReauth,
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::RefreshFailing => "refresh_failing",
            Self::NeedsReauth => "needs_reauth",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Active,
            Self::RefreshFailing,
            Self::NeedsReauth,
            Self::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// Whether the connection can still be used and refreshed.
    pub fn is_usable(self) -> bool {
        matches!(self, Self::Active | Self::RefreshFailing)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// The platform's own Zoom app.
    #[default]
    PlatformApp,
    /// The user's own Zoom app ("bring your own"), with its client ID and secret.
    ByoApp,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PlatformApp => "platform_app",
            Self::ByoApp => "byo_app",
        }
    }
}

/// Who the connection belongs to at Zoom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZoomIdentity {
    pub user_id: String,
    pub account_id: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// The platform's own user the connection was made for (`end_user` of the connect session):
/// the platform's handle to find its user's connections (`GET /connections?end_user_id=`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl EndUser {
    /// `None` when neither field is set, so an empty `{}` is not stored.
    pub fn non_empty(self) -> Option<Self> {
        (self.id.is_some() || self.email.is_some()).then_some(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastError {
    pub code: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// The stored connection record (DynamoDB item / local row). No secret lives here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub id: String,
    pub status: ConnectionStatus,
    pub auth_type: AuthType,
    pub client_id: String,
    /// Who at the platform this connection belongs to; indexed by `end_user.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<EndUser>,
    pub zoom: ZoomIdentity,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub access_token_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_refreshed_at: Option<OffsetDateTime>,
    pub last_error: Option<LastError>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the Zoom user last authorized (the callback): an `app_deauthorized` older than this
    /// belongs to an earlier authorization and does not revoke this one. `None` on records
    /// written before the field existed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub authorized_at: Option<OffsetDateTime>,
    /// Refresh failures in a row (5xx/timeouts); drives back-off and `refresh_failing`.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// When the sweep should next look at it (unix seconds); `None` takes it out of the index.
    pub next_refresh_at: Option<i64>,
    /// Optimistic-concurrency version, maintained by the store.
    #[serde(default)]
    pub version: u64,
}

/// A connection as answered to callers (`Connection` of API.md): never a token or secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Connection {
    pub id: String,
    pub status: ConnectionStatus,
    pub auth_type: AuthType,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<EndUser>,
    pub zoom: ZoomIdentity,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub access_token_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_refreshed_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The catalogue actions (`operationId`s) the granted scopes allow.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl From<&ConnectionRecord> for Connection {
    fn from(r: &ConnectionRecord) -> Self {
        Self {
            id: r.id.clone(),
            status: r.status,
            auth_type: r.auth_type,
            client_id: r.client_id.clone(),
            end_user: r.end_user.clone(),
            zoom: r.zoom.clone(),
            scopes: r.scopes.clone(),
            access_token_expires_at: r.access_token_expires_at,
            last_refreshed_at: r.last_refreshed_at,
            last_error: r.last_error.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            capabilities: Vec::new(),
        }
    }
}

/// OAuth client credentials of a Zoom app.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// Tokens as Zoom returned them.
#[derive(Clone, Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub expires_at: OffsetDateTime,
    pub scopes: Vec<String>,
    pub api_url: Option<String>,
}

/// The secret stored per connection (`${prefix}/connections/${id}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectionSecret {
    pub auth_type: AuthType,
    pub client_id: String,
    /// Only for `byo_app`; platform connections read the platform app's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

impl ConnectionSecret {
    pub fn with_tokens(mut self, tokens: TokenSet) -> Self {
        self.access_token = tokens.access_token;
        self.refresh_token = tokens.refresh_token;
        self.expires_at = tokens.expires_at;
        if !tokens.scopes.is_empty() {
            self.scopes = tokens.scopes;
        }
        if tokens.api_url.is_some() {
            self.api_url = tokens.api_url;
        }
        self
    }
}

/// Name of a connection's secret.
pub fn connection_secret_name(prefix: &str, connection_id: &str) -> String {
    format!("{prefix}/connections/{connection_id}")
}

/// The uniqueness key: one connection per client ID + Zoom account + Zoom user.
pub fn identity_key(client_id: &str, zoom: &ZoomIdentity) -> String {
    format!("{client_id}|{}|{}", zoom.account_id, zoom.user_id)
}

pub fn new_connection_id() -> String {
    format!("conn_{}", uuid::Uuid::new_v4().simple())
}

/// Whether `id` can be a connection id. Ids are `conn_` + hex today; any short id of the
/// characters ids use passes. Checked where an id comes in (paths, queued events, cursors),
/// so a 5 KB or control-character id is a plain "no such connection", never a store error
/// or an echo.
pub fn is_connection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The detail of a `Zoom Webhook Event` on the bus (a trigger): what a platform's rule and
/// automation receive. Also a schema of `/openapi.json` (`ZoomWebhookEvent`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = ZoomWebhookEvent)]
pub struct WebhookEventDetail {
    /// The connection of the Zoom user the event is about, for the app that received it.
    pub connection_id: String,
    /// Zoom's event name, e.g. `meeting.started`.
    pub event: String,
    /// Zoom's `event_ts` (milliseconds).
    pub event_ts: i64,
    /// `payload.account_id`.
    pub account_id: String,
    /// The Zoom user the event is about (the host for meetings, webinars and recordings).
    pub zoom_user_id: String,
    /// `x-zm-trackingid`, else the SHA-256 (hex) of event, `event_ts` and payload.
    pub delivery_id: String,
    /// Zoom's `payload` without credentials; `null` when `payload_truncated`.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// Present (`true`) only when the payload was left out to fit EventBridge's 256 KB.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_redacts_tokens() {
        let s = ConnectionSecret {
            auth_type: AuthType::ByoApp,
            client_id: "cid".into(),
            client_secret: Some("byo-secret-value".into()),
            access_token: "at-value".into(),
            refresh_token: "rt-value".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            scopes: vec![],
            api_url: None,
        };
        let dbg = format!("{s:?}");
        for leaked in ["byo-secret-value", "at-value", "rt-value"] {
            assert!(!dbg.contains(leaked), "{dbg}");
        }
    }

    #[test]
    fn status_round_trip() {
        for s in [
            "pending",
            "active",
            "refresh_failing",
            "needs_reauth",
            "revoked",
        ] {
            assert_eq!(ConnectionStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(ConnectionStatus::parse("dead").is_none());
    }
}

//! The stored connect session and what becomes of it (`GET /connect/status`), and when a BYO
//! reconnect must ask for the app's client secret again.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{AuthType, ConnectionRecord, ConnectionStatus, EndUser};

/// The stored session (by the hash of its token). The BYO client secret is not here: it
/// lives in the secret store (`connect::pending_secret_name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    pub auth_type: Option<AuthType>,
    pub client_id: Option<String>,
    pub has_client_secret: bool,
    /// A BYO webhook secret token waits under [`pending_webhook_secret_name`](super::connect::pending_webhook_secret_name).
    #[serde(default)]
    pub has_webhook_secret: bool,
    pub connection_id: Option<String>,
    pub return_url: Option<String>,
    pub end_user: Option<EndUser>,
    /// A BYO reconnect whose stored client secret no longer works or is gone: the choice page
    /// asks for the app's current secret (see [`needs_new_client_secret`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repair_credentials: bool,
}

impl StoredSession {
    /// Whether `GET /connect` can go to Zoom without asking the person anything.
    pub fn is_complete(&self) -> bool {
        match self.auth_type {
            Some(AuthType::PlatformApp) => true,
            // A BYO reconnect uses the credentials stored with the connection, unless they
            // need repairing.
            Some(AuthType::ByoApp) => {
                self.client_id.is_some()
                    && (self.has_client_secret
                        || (self.connection_id.is_some() && !self.repair_credentials))
            }
            None => false,
        }
    }
}

/// Whether a BYO connection's stored client secret cannot be used for a reconnect, decided
/// from its record (its secret is not read): Zoom refused the app's credentials
/// (`needs_reauth` with `invalid_client`: the secret was rotated), or the stored credentials
/// are gone (`revoked`: a deauthorization deletes them, and a connection found without them
/// is marked so, with `credentials_missing`).
pub fn needs_new_client_secret(record: &ConnectionRecord) -> bool {
    let code = record.last_error.as_ref().map(|e| e.code.as_str());
    record.auth_type == AuthType::ByoApp
        && (record.status == ConnectionStatus::Revoked
            || matches!(code, Some("invalid_client" | "credentials_missing")))
}

/// Where a connect session stands (`GET /connect/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Pending,
    Success,
    Error,
}

/// Answer of `GET /connect/status`: what the result page posted, for a helper whose popup
/// lost `window.opener`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionStatus {
    pub status: SessionState,
    /// Whether the flow started (the person went on to Zoom); `false` while the session is unused.
    pub started: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// The result page's error code (`access_denied`, `admin_preapproval_required`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

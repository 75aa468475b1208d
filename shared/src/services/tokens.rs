//! Access tokens for actions, and the one refresh routine (DESIGN.md "Token refresh: single
//! flight, no lost tokens") used by actions, forced refresh and the sweep.
//!
//! - In process: a warm container keeps each connection's access token in memory until it is
//!   near expiry (a warm action makes no AWS call), and callers for one connection queue on
//!   one async mutex, so only the first refreshes and the rest find its result.
//! - Across processes: a lease item created by conditional write (owner + expiry); whoever
//!   holds it re-reads the secret (someone may just have refreshed), calls Zoom, writes the new
//!   tokens at once with a deterministic request token, and releases the lease only if still
//!   the owner. Waiters poll the secret and take the new tokens when they appear.
//! - `invalid_grant` is answered by re-reading before declaring the connection dead; 5xx and
//!   timeouts keep the old tokens, count the failure and back off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;

use super::callback::serde_secret;
use super::{Connector, ZOOM_OAUTH_TIMEOUT, events};
use crate::config::RefreshMode;
use crate::domain::{
    AuthType, ClientCredentials, ConnectionRecord, ConnectionSecret, ConnectionStatus, LastError,
    connection_secret_name,
};
use crate::error::{ApiError, StoreError};
use crate::ports::{ItemKind, OAuthError};
use crate::secret::{SecretString, sha256_hex};

/// A lease outlives one Zoom token call plus the secret write that follows it.
pub const LEASE_SECS: i64 = 30;
/// How long a caller waits for another process's refresh before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(25);
/// Failures in a row before a connection shows `refresh_failing`.
const FAILING_AFTER: u32 = 3;
/// Ceiling of the back-off between refresh attempts of a failing connection.
const MAX_BACKOFF_SECS: i64 = 3600;

/// A token an action can use, and the API base it belongs to.
#[derive(Clone, Debug)]
pub struct UsableToken {
    pub access_token: SecretString,
    pub expires_at: OffsetDateTime,
    pub api_base: String,
}

/// What a caller needs from [`Connector::obtain_token`].
#[derive(Clone, Debug)]
pub enum TokenNeed {
    /// Any token valid beyond `REFRESH_AHEAD_SECS` (actions).
    Usable,
    /// A token other than this one, which Zoom just refused with 401.
    ReplaceRejected(SecretString),
    /// A refresh if the connection is still due (the sweep).
    IfDue,
    /// A refresh, whatever the token's age (`POST /connections/{id}/refresh`).
    Always,
}

#[derive(Clone, Debug)]
pub struct Obtained {
    pub token: UsableToken,
    /// This call performed a refresh at Zoom.
    pub refreshed: bool,
}

/// Warm-container state: cached access tokens and per-connection single-flight locks.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, UsableToken>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl TokenCache {
    fn get(&self, id: &str) -> Option<UsableToken> {
        self.tokens.lock().ok()?.get(id).cloned()
    }

    fn put(&self, id: &str, token: UsableToken) {
        if let Ok(mut map) = self.tokens.lock() {
            map.insert(id.to_owned(), token);
        }
    }

    /// Drops a cached token (401 from Zoom, revocation, deletion, new authorization).
    pub fn forget(&self, id: &str) {
        if let Ok(mut map) = self.tokens.lock() {
            map.remove(id);
        }
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Keep the map from growing without bound in a long-lived process.
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(id.to_owned()).or_default().clone()
    }
}

fn conflict(status: ConnectionStatus) -> ApiError {
    match status {
        ConnectionStatus::Revoked => ApiError::new(
            http::StatusCode::CONFLICT,
            "connection_revoked",
            "The Zoom user removed the app or the connection was revoked; connect again.",
        ),
        _ => ApiError::new(
            http::StatusCode::CONFLICT,
            "connection_needs_reauth",
            "Zoom no longer accepts this connection's tokens; the user must connect again (reconnect with this connection_id).",
        ),
    }
}

fn zoom_unavailable(detail: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_GATEWAY,
        "zoom_unavailable",
        format!("Zoom's token endpoint is unavailable ({detail}); retry shortly."),
    )
    .with_retry_after(5)
}

impl Connector {
    /// The API base for a token: the token's `api_url` when it is a Zoom API host and
    /// `ZOOM_API_URL` was not set explicitly, else `ZOOM_API_URL`.
    pub fn api_base(&self, api_url: Option<&str>) -> String {
        let configured = self
            .config
            .zoom_api_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        if self.config.zoom_api_url_explicit {
            return configured;
        }
        match api_url.and_then(|u| url::Url::parse(u).ok()) {
            Some(u)
                if u.scheme() == "https" && is_zoom_api_host(u.host_str().unwrap_or_default()) =>
            {
                format!("https://{}/v2", u.host_str().unwrap_or_default())
            }
            _ => configured,
        }
    }

    /// When the sweep should next look at a connection refreshed `now`.
    pub fn next_refresh_at(&self, now: OffsetDateTime, expires_at: OffsetDateTime) -> i64 {
        let keepalive = now + self.config.keepalive;
        let at = match self.config.refresh_mode {
            RefreshMode::Lazy => keepalive,
            RefreshMode::Eager => (expires_at - self.config.refresh_ahead).min(keepalive),
        };
        at.unix_timestamp().max(now.unix_timestamp() + 60)
    }

    pub async fn read_connection_secret(&self, id: &str) -> Result<ConnectionSecret, ApiError> {
        let name = connection_secret_name(&self.config.aws.secrets_prefix, id);
        let raw = self
            .secrets
            .get_secret(&name)
            .await?
            .ok_or_else(|| conflict(ConnectionStatus::Revoked))?;
        serde_json::from_str(raw.expose())
            .map_err(|_| ApiError::internal("a connection secret is corrupt"))
    }

    async fn try_read_connection_secret(
        &self,
        id: &str,
    ) -> Result<Option<ConnectionSecret>, ApiError> {
        match self.read_connection_secret(id).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.code == "connection_revoked" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The OAuth client a connection refreshes with.
    pub async fn client_for(
        &self,
        secret: &ConnectionSecret,
    ) -> Result<ClientCredentials, ApiError> {
        match (secret.auth_type, &secret.client_secret) {
            (AuthType::ByoApp, Some(client_secret)) => Ok(ClientCredentials {
                client_id: secret.client_id.clone(),
                client_secret: client_secret.clone(),
            }),
            (AuthType::ByoApp, None) => Err(ApiError::internal(
                "a BYO connection lacks its client secret",
            )),
            (AuthType::PlatformApp, _) => Ok((*self.platform_app().await?).clone()),
        }
    }

    /// Writes new tokens at once. The request token derives from the new refresh token, so a
    /// retried write cannot create a second version. Throttling is retried by the SDK and
    /// again here: losing this write would lose the connection.
    async fn write_tokens(&self, id: &str, secret: &ConnectionSecret) -> Result<(), StoreError> {
        let name = connection_secret_name(&self.config.aws.secrets_prefix, id);
        let value = serde_secret(secret).map_err(|e| StoreError::Other(e.detail))?;
        let request_token = sha256_hex(secret.refresh_token.expose());
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            match self.secrets.put_secret(&name, &value, &request_token).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && attempt < 8 => {
                    tracing::warn!(connection_id = id, attempt, error = %e, "token write failed; retrying");
                    tokio::time::sleep(jittered(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// Applies `change` to the stored record with optimistic concurrency.
    pub async fn update_record(
        &self,
        id: &str,
        change: impl Fn(&mut ConnectionRecord),
    ) -> Result<Option<ConnectionRecord>, ApiError> {
        for _ in 0..8 {
            let Some(mut record) = self.store.get_connection(id).await? else {
                return Ok(None);
            };
            let expected = record.version;
            change(&mut record);
            record.updated_at = self.now();
            if self.store.put_connection(&record, Some(expected)).await? {
                record.version = expected + 1;
                return Ok(Some(record));
            }
        }
        Err(ApiError::unavailable(
            "store_conflict",
            "The connection kept changing; retry.",
        ))
    }

    fn usable(&self, secret: &ConnectionSecret) -> UsableToken {
        UsableToken {
            access_token: secret.access_token.clone(),
            expires_at: secret.expires_at,
            api_base: self.api_base(secret.api_url.as_deref()),
        }
    }

    fn is_fresh(&self, expires_at: OffsetDateTime) -> bool {
        expires_at - self.now() > self.config.refresh_ahead
    }

    /// A token for connection `id` as `need` asks; see the module documentation.
    pub async fn obtain_token(&self, id: &str, need: TokenNeed) -> Result<Obtained, ApiError> {
        let cached_ok = |t: &UsableToken| match &need {
            TokenNeed::Usable => self.is_fresh(t.expires_at),
            TokenNeed::ReplaceRejected(bad) => {
                t.access_token != *bad && self.is_fresh(t.expires_at)
            }
            TokenNeed::IfDue | TokenNeed::Always => false,
        };
        if let Some(token) = self.tokens.get(id).filter(|t| cached_ok(t)) {
            return Ok(Obtained {
                token,
                refreshed: false,
            });
        }
        let lock = self.tokens.lock_for(id);
        let _guard = lock.lock().await;
        if let Some(token) = self.tokens.get(id).filter(|t| cached_ok(t)) {
            return Ok(Obtained {
                token,
                refreshed: false,
            });
        }

        let record = self
            .store
            .get_connection(id)
            .await?
            .ok_or_else(|| ApiError::connection_not_found(id))?;
        if !record.status.is_usable() {
            self.tokens.forget(id);
            return Err(conflict(record.status));
        }
        let Some(secret) = self.try_read_connection_secret(id).await? else {
            return Err(conflict(ConnectionStatus::Revoked));
        };
        let current_ok = match &need {
            TokenNeed::Usable => self.is_fresh(secret.expires_at),
            TokenNeed::ReplaceRejected(bad) => {
                secret.access_token != *bad && self.is_fresh(secret.expires_at)
            }
            TokenNeed::IfDue => record.next_refresh_at.is_none_or(|at| at > self.now_unix()),
            TokenNeed::Always => false,
        };
        if current_ok {
            let token = self.usable(&secret);
            self.tokens.put(id, token.clone());
            return Ok(Obtained {
                token,
                refreshed: false,
            });
        }
        let obtained = self.refresh_with_lease(&record, secret, &need).await?;
        self.tokens.put(id, obtained.token.clone());
        Ok(obtained)
    }

    async fn take_lease(&self, id: &str) -> Result<Option<u64>, ApiError> {
        let now = self.now_unix();
        let value = serde_json::json!({ "owner": &*self.instance_id, "at": now });
        if !self
            .store
            .create_item(ItemKind::Lease, id, &value, Some(now + LEASE_SECS), now)
            .await?
        {
            return Ok(None);
        }
        // Our own write: its version identifies our lease for the conditional release.
        let item = self.store.get_item(ItemKind::Lease, id, now).await?;
        Ok(item
            .filter(|i| i.value["owner"].as_str() == Some(&*self.instance_id))
            .map(|i| i.version))
    }

    async fn release_lease(&self, id: &str, version: u64) {
        if let Err(e) = self
            .store
            .delete_item(ItemKind::Lease, id, Some(version))
            .await
        {
            // It expires on its own after LEASE_SECS.
            tracing::warn!(connection_id = id, error = %e, "could not release the refresh lease");
        }
    }

    async fn refresh_with_lease(
        &self,
        record: &ConnectionRecord,
        seen: ConnectionSecret,
        need: &TokenNeed,
    ) -> Result<Obtained, ApiError> {
        let id = record.id.as_str();
        let started = tokio::time::Instant::now();
        let lease = loop {
            if let Some(version) = self.take_lease(id).await? {
                break version;
            }
            // Someone else is refreshing: wait for their tokens to appear.
            tokio::time::sleep(jittered(Duration::from_millis(150))).await;
            match self.try_read_connection_secret(id).await? {
                Some(s) if s.refresh_token != seen.refresh_token => {
                    return Ok(Obtained {
                        token: self.usable(&s),
                        refreshed: false,
                    });
                }
                Some(_) => {}
                None => return Err(conflict(ConnectionStatus::Revoked)),
            }
            if started.elapsed() > LEASE_WAIT {
                return Err(ApiError::unavailable(
                    "refresh_in_progress",
                    "Another refresh of this connection is taking long; retry shortly.",
                )
                .with_retry_after(5));
            }
        };
        let result = self.refresh_holding_lease(record, &seen, need).await;
        self.release_lease(id, lease).await;
        result
    }

    async fn refresh_holding_lease(
        &self,
        record: &ConnectionRecord,
        seen: &ConnectionSecret,
        need: &TokenNeed,
    ) -> Result<Obtained, ApiError> {
        let id = record.id.as_str();
        // Re-read under the lease: a refresh that finished just before we took it counts.
        let Some(secret) = self.try_read_connection_secret(id).await? else {
            return Err(conflict(ConnectionStatus::Revoked));
        };
        if secret.refresh_token != seen.refresh_token && !matches!(need, TokenNeed::Always) {
            return Ok(Obtained {
                token: self.usable(&secret),
                refreshed: false,
            });
        }
        let record = self
            .store
            .get_connection(id)
            .await?
            .ok_or_else(|| ApiError::connection_not_found(id))?;
        if !record.status.is_usable() {
            return Err(conflict(record.status));
        }
        if matches!(need, TokenNeed::IfDue)
            && record.next_refresh_at.is_none_or(|at| at > self.now_unix())
        {
            return Ok(Obtained {
                token: self.usable(&secret),
                refreshed: false,
            });
        }
        let client = self.client_for(&secret).await?;
        let outcome = tokio::time::timeout(
            ZOOM_OAUTH_TIMEOUT + Duration::from_secs(1),
            self.oauth.refresh(&client, &secret.refresh_token),
        )
        .await
        .unwrap_or_else(|_| Err(OAuthError::Unavailable("timed out".into())));
        match outcome {
            Ok(tokens) => {
                let updated = secret.with_tokens(tokens);
                if let Err(e) = self.write_tokens(id, &updated).await {
                    // The new tokens exist only in this process now. Keep using them here
                    // (cached by the caller) and report loudly; see docs/architecture.md.
                    tracing::error!(connection_id = id, error = %e, event = "refresh_write_failed", "new tokens could not be stored");
                    return Ok(Obtained {
                        token: self.usable(&updated),
                        refreshed: true,
                    });
                }
                let now = self.now();
                let next = self.next_refresh_at(now, updated.expires_at);
                let scopes = updated.scopes.clone();
                self.update_record(id, |r| {
                    r.status = ConnectionStatus::Active;
                    r.access_token_expires_at = Some(updated.expires_at);
                    r.last_refreshed_at = Some(now);
                    r.last_error = None;
                    r.consecutive_failures = 0;
                    r.next_refresh_at = Some(next);
                    if !scopes.is_empty() {
                        r.scopes = scopes.clone();
                    }
                })
                .await?;
                tracing::info!(connection_id = id, event = "refreshed", "tokens refreshed");
                Ok(Obtained {
                    token: self.usable(&updated),
                    refreshed: true,
                })
            }
            Err(OAuthError::Rejected { error, reason, .. }) => {
                // Someone may have refreshed between our read and Zoom's answer.
                if let Some(again) = self.try_read_connection_secret(id).await?
                    && again.refresh_token != secret.refresh_token
                {
                    return Ok(Obtained {
                        token: self.usable(&again),
                        refreshed: false,
                    });
                }
                tracing::warn!(connection_id = id, error = %error, reason = %reason, event = "needs_reauth", "Zoom refused the refresh token");
                let now = self.now();
                self.update_record(id, |r| {
                    r.status = ConnectionStatus::NeedsReauth;
                    r.next_refresh_at = None;
                    r.last_error = Some(LastError {
                        code: error.clone(),
                        message: format!("Zoom refused the refresh token: {reason}"),
                        at: now,
                    });
                })
                .await?;
                self.tokens.forget(id);
                self.publish(
                    events::CONNECTION_NEEDS_REAUTH,
                    serde_json::json!({ "connection_id": id, "reason": error }),
                )
                .await;
                Err(conflict(ConnectionStatus::NeedsReauth))
            }
            Err(OAuthError::Unavailable(detail)) => {
                let now = self.now();
                let updated = self
                    .update_record(id, |r| {
                        r.consecutive_failures += 1;
                        if r.consecutive_failures >= FAILING_AFTER {
                            r.status = ConnectionStatus::RefreshFailing;
                        }
                        let backoff =
                            (60i64 << r.consecutive_failures.min(6)).min(MAX_BACKOFF_SECS);
                        r.next_refresh_at = Some(now.unix_timestamp() + backoff);
                        r.last_error = Some(LastError {
                            code: "zoom_unavailable".into(),
                            message: format!("Refreshing failed: {detail}"),
                            at: now,
                        });
                    })
                    .await?;
                let failures = updated.as_ref().map_or(0, |r| r.consecutive_failures);
                tracing::warn!(connection_id = id, failures, event = "refresh_failed", detail = %detail, "refresh failed; old tokens kept");
                self.publish(
                    events::CONNECTION_REFRESH_FAILED,
                    serde_json::json!({ "connection_id": id, "consecutive_failures": failures, "error": { "code": "zoom_unavailable", "message": detail } }),
                )
                .await;
                // The old access token may still have some life: an action can go on with it.
                if secret.expires_at - now > time::Duration::seconds(30)
                    && matches!(need, TokenNeed::Usable | TokenNeed::ReplaceRejected(_))
                {
                    return Ok(Obtained {
                        token: self.usable(&secret),
                        refreshed: false,
                    });
                }
                Err(zoom_unavailable(&detail))
            }
        }
    }
}

/// `api.zoom.us` or a regional `api-<region>.zoom.us`.
pub fn is_zoom_api_host(host: &str) -> bool {
    host == "api.zoom.us"
        || host
            .strip_prefix("api-")
            .and_then(|rest| rest.strip_suffix(".zoom.us"))
            .is_some_and(|region| {
                !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase())
            })
}

/// `base` ± 50 %.
pub fn jittered(base: Duration) -> Duration {
    let factor = rand::rng().random_range(0.5..1.5);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_api_hosts() {
        assert!(is_zoom_api_host("api.zoom.us"));
        assert!(is_zoom_api_host("api-eu.zoom.us"));
        assert!(!is_zoom_api_host("api-.zoom.us"));
        assert!(!is_zoom_api_host("api-eu.zoom.us.evil.com"));
        assert!(!is_zoom_api_host("evil.com"));
    }
}

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
//! - `invalid_grant` is answered by re-reading (twice, a moment apart) before declaring the
//!   connection dead; 5xx and timeouts keep the old tokens, count the failure and back off.
//!   While a failing connection is backing off, actions keep using its old access token as
//!   long as it is valid instead of asking a failing Zoom again on every call.
//!
//! What cannot be recovered: Zoom rotates the refresh token when it answers a refresh, and the
//! old one dies at once. If that answer is lost (5xx or timeout after Zoom rotated), the new
//! tokens exist only at Zoom. The next attempt then gets `invalid_grant` for the old token and
//! the connection goes to `needs_reauth` (event `Zoom Connection Needs Reauth`); nothing but
//! the tokens Zoom handed to us is ever stored.

use std::time::Duration;

use time::OffsetDateTime;

use crate::app::callback::serde_secret;
use crate::app::sweep::{SWEEP_PERIOD, SweepPace};
use crate::app::{Connector, ZOOM_OAUTH_TIMEOUT, events};
pub mod cache;
pub mod pending;
pub mod refresh;
pub mod sealing;

use crate::app::jittered;
use crate::config::RefreshMode;
use crate::domain::error::{ApiError, ErrorCode, StoreError};
use crate::domain::{
    AuthType, ClientCredentials, ConnectionRecord, ConnectionSecret, ConnectionStatus, LastError,
    connection_secret_name,
};
use crate::secret::{SecretString, sha256_hex};
use crate::zoom::paths::is_zoom_api_host;
use cache::CacheHit;
pub use cache::UsableToken;

/// An old access token is still handed out while it lives at least this long.
const STILL_VALID_SECS: i64 = 30;

/// Before declaring a connection dead on `invalid_grant`, look again after this pause: a
/// refresh whose answer was still in flight elsewhere is written right after it arrives.
const REAUTH_RECHECK: Duration = Duration::from_millis(400);

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

fn conflict(status: ConnectionStatus) -> ApiError {
    match status {
        ConnectionStatus::Revoked => ApiError::new(
            http::StatusCode::CONFLICT,
            ErrorCode::ConnectionRevoked,
            "The Zoom user removed the app or the connection was revoked; connect again.",
        ),
        _ => ApiError::new(
            http::StatusCode::CONFLICT,
            ErrorCode::ConnectionNeedsReauth,
            "Zoom no longer accepts this connection's tokens; the user must connect again (reconnect with this connection_id).",
        ),
    }
}

fn zoom_unavailable(detail: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_GATEWAY,
        ErrorCode::ZoomUnavailable,
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

    /// When the sweep should next look at a connection refreshed `now`. Lazy: the keep-alive.
    /// Eager: early enough that the sweep run before the token nears expiry refreshes it (the
    /// sweep runs every [`SWEEP_PERIOD`]), and the keep-alive at the latest.
    pub fn next_refresh_at(&self, now: OffsetDateTime, expires_at: OffsetDateTime) -> i64 {
        let keepalive = now + self.config.keepalive;
        let at = match self.config.refresh_mode {
            RefreshMode::Lazy => keepalive,
            RefreshMode::Eager => {
                (expires_at - self.config.refresh_ahead - SWEEP_PERIOD).min(keepalive)
            }
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
            Err(e) if e.code == ErrorCode::ConnectionRevoked => Ok(None),
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
    /// again here for up to `budget`; after that the caller keeps them in the pending copy
    /// (see [`pending`]). `Ok(false)`: the secret is gone (the connection was deleted or
    /// deauthorized meanwhile) and is not re-created.
    async fn write_tokens(
        &self,
        id: &str,
        secret: &ConnectionSecret,
        lease: &mut u64,
        budget: Duration,
    ) -> Result<bool, StoreError> {
        let name = connection_secret_name(&self.config.aws.secrets_prefix, id);
        let value = serde_secret(secret).map_err(|e| StoreError::Other(e.detail))?;
        let request_token = sha256_hex(secret.refresh_token.expose());
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            match self
                .secrets
                .update_secret(&name, &value, &request_token)
                .await
            {
                Ok(written) => return Ok(written),
                // Another attempt only when it can finish within the budget (which ends before
                // the invocation's deadline).
                Err(e)
                    if e.is_transient()
                        && attempt < 8
                        && started.elapsed()
                            + delay.mul_f64(1.5)
                            + crate::deadline::AWS_OPERATION_TIMEOUT
                            <= budget =>
                {
                    tracing::warn!(connection_id = id, attempt, error = %e, "token write failed; retrying");
                    // Retries may outlast the lease: keep it, so no other process refreshes
                    // with the refresh token Zoom has already replaced.
                    self.renew_lease(id, lease).await;
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
            let was_revoked = record.status == ConnectionStatus::Revoked;
            change(&mut record);
            // Only a new authorization (the callback) brings a revoked connection back; a
            // refresh that raced with the revocation must not.
            if was_revoked {
                record.status = ConnectionStatus::Revoked;
                record.next_refresh_at = None;
            }
            record.updated_at = self.now();
            if self.store.put_connection(&record, Some(expected)).await? {
                record.version = expected + 1;
                if !record.status.is_usable() {
                    self.tokens.forget(id);
                }
                return Ok(Some(record));
            }
        }
        Err(ApiError::unavailable(
            ErrorCode::StoreConflict,
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

    fn is_due(&self, record: &ConnectionRecord) -> bool {
        record
            .next_refresh_at
            .is_some_and(|at| at <= self.now_unix())
    }

    /// A failing connection waits out its back-off while its old access token still works.
    fn backing_off_with_valid_token(
        &self,
        record: &ConnectionRecord,
        secret: &ConnectionSecret,
    ) -> bool {
        record.consecutive_failures > 0
            && !self.is_due(record)
            && secret.expires_at - self.now() > time::Duration::seconds(STILL_VALID_SECS)
    }

    /// Whether the stored token already answers `need`, so no refresh is due.
    fn stored_token_will_do(
        &self,
        record: &ConnectionRecord,
        secret: &ConnectionSecret,
        need: &TokenNeed,
    ) -> bool {
        match need {
            TokenNeed::Usable => {
                self.is_fresh(secret.expires_at)
                    || self.backing_off_with_valid_token(record, secret)
            }
            TokenNeed::ReplaceRejected(bad) => {
                secret.access_token != *bad && self.is_fresh(secret.expires_at)
            }
            TokenNeed::IfDue => !self.is_due(record),
            TokenNeed::Always => false,
        }
    }

    /// A token for connection `id` as `need` asks; see the module documentation.
    pub async fn obtain_token(&self, id: &str, need: TokenNeed) -> Result<Obtained, ApiError> {
        if !crate::domain::is_connection_id(id) {
            return Err(ApiError::connection_not_found(id));
        }
        self.obtain(id, need, None).await
    }

    /// The sweep's refresh of one connection: only if still due, with the sweep's pacing of
    /// Zoom calls and token writes, and not started when its deadline is too close.
    pub async fn refresh_if_due(&self, id: &str, pace: &SweepPace) -> Result<Obtained, ApiError> {
        self.obtain(id, TokenNeed::IfDue, Some(pace)).await
    }

    async fn obtain(
        &self,
        id: &str,
        need: TokenNeed,
        pace: Option<&SweepPace>,
    ) -> Result<Obtained, ApiError> {
        let cached_ok = |t: &UsableToken| self.cached_token_will_do(t, &need);
        match self.tokens.hit(id, self.now()) {
            Some(CacheHit::Fresh(token)) if cached_ok(&token) => {
                return Ok(Obtained {
                    token,
                    refreshed: false,
                });
            }
            Some(CacheHit::RecheckSoon(token)) if cached_ok(&token) => {
                let this = self.clone();
                let id = id.to_owned();
                tokio::spawn(async move { this.recheck_record(&id).await });
                return Ok(Obtained {
                    token,
                    refreshed: false,
                });
            }
            Some(CacheHit::RecheckFirst(token)) if cached_ok(&token) => {
                if self.recheck_record(id).await
                    && let Some(token) = self.tokens.get(id)
                {
                    return Ok(Obtained {
                        token,
                        refreshed: false,
                    });
                }
            }
            _ => {}
        }
        if pace.is_some() {
            return self.obtain_from_store(id, &need, pace).await;
        }
        // The rest runs in a task of its own: a refresh whose caller goes away (a client
        // disconnecting drops the request's future) still stores what Zoom answered.
        let this = self.clone();
        let owned_id = id.to_owned();
        let task = tokio::spawn(crate::deadline::within(
            crate::deadline::current(),
            async move { this.obtain_from_store(&owned_id, &need, None).await },
        ));
        task.await
            .unwrap_or_else(|_| Err(ApiError::internal("the token task failed")))
    }

    /// Whether a cached token answers `need`.
    fn cached_token_will_do(&self, token: &UsableToken, need: &TokenNeed) -> bool {
        match need {
            TokenNeed::Usable => self.is_fresh(token.expires_at),
            TokenNeed::ReplaceRejected(bad) => {
                token.access_token != *bad && self.is_fresh(token.expires_at)
            }
            TokenNeed::IfDue | TokenNeed::Always => false,
        }
    }

    /// The slow path of [`Self::obtain`]: one caller per connection and process at a time,
    /// the record and the tokens read, a refresh when they do not answer `need`.
    async fn obtain_from_store(
        &self,
        id: &str,
        need: &TokenNeed,
        pace: Option<&SweepPace>,
    ) -> Result<Obtained, ApiError> {
        let lock = self.tokens.lock_for(id);
        let _guard = lock.lock().await;
        if let Some(token) = self
            .tokens
            .get(id)
            .filter(|t| self.cached_token_will_do(t, need))
        {
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
        let Some(tokens) = self.read_tokens(id).await? else {
            return Err(self.credentials_missing(&record).await);
        };
        if tokens.pending_version.is_some() && pace.is_none() {
            self.spawn_flush(id);
        }
        let secret = tokens.current;
        if self.stored_token_will_do(&record, &secret, need) {
            let token = self.usable(&secret);
            self.tokens
                .put(id, token.clone(), self.now(), record.authorized_at);
            return Ok(Obtained {
                token,
                refreshed: false,
            });
        }
        let obtained = self.refresh_with_lease(&record, secret, need, pace).await?;
        self.tokens
            .put(id, obtained.token.clone(), self.now(), record.authorized_at);
        Ok(obtained)
    }

    /// Looks at a cached connection's record: `true` when the cached token may still be used
    /// (the record still backs it, or the store could not be read and the copy serves on).
    async fn recheck_record(&self, id: &str) -> bool {
        match self.store.get_connection(id).await {
            Ok(record) => {
                self.tokens.checked(id, self.now(), record.as_ref());
                self.tokens.get(id).is_some()
            }
            Err(e) => {
                tracing::warn!(connection_id = id, error = %e, "could not re-check a cached connection; serving the cached token");
                self.tokens.check_failed(id, self.now());
                true
            }
        }
    }

    /// Zoom rotated the tokens but the connection's secret is gone: a deauthorization or a
    /// deletion ran meanwhile. Its new tokens are dropped (the secret is not re-created) and the
    /// caller learns what the record says now.
    async fn gone_while_refreshing(&self, id: &str) -> ApiError {
        self.tokens.forget(id);
        tracing::info!(
            connection_id = id,
            "the connection was deauthorized or deleted during its refresh; new tokens dropped"
        );
        match self.store.get_connection(id).await {
            // Still usable on record: a deletion or deauthorization is half-way (it deletes
            // the secret first) and finishes the record itself.
            Ok(Some(_)) => conflict(ConnectionStatus::Revoked),
            Ok(None) => ApiError::connection_not_found(id),
            Err(e) => e.into(),
        }
    }

    /// A usable record whose secret is gone: nothing can refresh or act for it any more.
    /// Marked `revoked` (out of the sweep's index) unless the record changed meanwhile, which
    /// means a reconnect, deauthorization or deletion is under way and decides instead.
    pub(crate) async fn credentials_missing(&self, seen: &ConnectionRecord) -> ApiError {
        let id = seen.id.as_str();
        self.tokens.forget(id);
        let now = self.now();
        let mut record = seen.clone();
        record.status = ConnectionStatus::Revoked;
        record.next_refresh_at = None;
        record.access_token_expires_at = None;
        record.updated_at = now;
        record.last_error = Some(LastError {
            code: "credentials_missing".into(),
            message: "The stored Zoom credentials of this connection are gone; connect again."
                .into(),
            at: now,
        });
        match self.store.put_connection(&record, Some(seen.version)).await {
            Ok(true) => {
                tracing::error!(
                    connection_id = id,
                    event = "credentials_missing",
                    "the connection's stored credentials are missing; marked revoked"
                );
                self.publish(
                    events::CONNECTION_REVOKED,
                    serde_json::json!({ "connection_id": id, "reason": "credentials_missing" }),
                )
                .await;
            }
            Ok(false) => {}
            Err(e) => return e.into(),
        }
        conflict(ConnectionStatus::Revoked)
    }
}

#[cfg(test)]
mod tests;

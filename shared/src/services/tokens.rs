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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;

use super::callback::serde_secret;
use super::sweep::{SWEEP_PERIOD, SweepPace};
use super::{Connector, ZOOM_OAUTH_TIMEOUT, events};
use crate::config::RefreshMode;
use crate::domain::{
    AuthType, ClientCredentials, ConnectionRecord, ConnectionSecret, ConnectionStatus, LastError,
    TokenSet, connection_secret_name,
};
use crate::error::{ApiError, StoreError};
use crate::metrics::Metric;
use crate::ports::{ItemKind, OAuthError};
use crate::secret::{SecretString, sha256_hex};

/// A lease outlives one Zoom token call plus the secret write that follows it.
pub const LEASE_SECS: i64 = 30;
/// How long a caller waits for another process's refresh before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(15);
/// Part of the lease kept for writing the new tokens after Zoom answered.
const LEASE_WRITE_RESERVE: Duration = Duration::from_secs(10);
/// A refresh is started only with this much of the invocation left: Zoom's answer (the
/// token call, plus a second of slack) and two AWS writes (tokens, record).
pub const REFRESH_BUDGET: Duration = Duration::from_secs(
    super::ZOOM_OAUTH_TIMEOUT.as_secs() + 1 + 2 * crate::deadline::AWS_OPERATION_TIMEOUT.as_secs(),
);
/// Failures in a row before a connection shows `refresh_failing`.
const FAILING_AFTER: u32 = 3;
/// Ceiling of the back-off between refresh attempts of a failing connection.
const MAX_BACKOFF_SECS: i64 = 3600;
/// An old access token is still handed out while it lives at least this long.
const STILL_VALID_SECS: i64 = 30;
/// Before declaring a connection dead on `invalid_grant`, look again after this pause: a
/// refresh whose answer was still in flight elsewhere is written right after it arrives.
const REAUTH_RECHECK: Duration = Duration::from_millis(400);

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
    tokens: Mutex<HashMap<String, Cached>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A cached token and what the record said when it was last looked at.
#[derive(Clone)]
struct Cached {
    token: UsableToken,
    /// When the connection's record was last read (or the token stored) in this container.
    checked_at: OffsetDateTime,
    /// The record's `authorized_at` then: a reconnect elsewhere changes it.
    authorized_at: Option<OffsetDateTime>,
    /// A background re-check is under way.
    rechecking: bool,
}

/// A warm container looks at a cached connection's record again after this long, in the
/// background while it keeps serving (one read per connection per this much)...
pub const RECORD_RECHECK_AHEAD: Duration = Duration::from_secs(45);
/// ...and before serving once the copy is this old: a connection deleted, deauthorized or
/// reconnected in another container stops being used here within a minute.
pub const RECORD_RECHECK_MAX: Duration = Duration::from_secs(60);

/// What the cache says about a connection's token.
enum CacheHit {
    /// Use it; the record was looked at recently enough.
    Fresh(UsableToken),
    /// Use it, and look at the record in the background.
    RecheckSoon(UsableToken),
    /// Look at the record before using it.
    RecheckFirst(UsableToken),
}

impl TokenCache {
    fn get(&self, id: &str) -> Option<UsableToken> {
        self.tokens.lock().ok()?.get(id).map(|c| c.token.clone())
    }

    /// The cached token and whether its record is due a look, claiming the background
    /// re-check for the caller when one is due.
    fn hit(&self, id: &str, now: OffsetDateTime) -> Option<CacheHit> {
        let mut map = self.tokens.lock().ok()?;
        let cached = map.get_mut(id)?;
        let age = now - cached.checked_at;
        Some(if age >= RECORD_RECHECK_MAX {
            CacheHit::RecheckFirst(cached.token.clone())
        } else if age >= RECORD_RECHECK_AHEAD && !cached.rechecking {
            cached.rechecking = true;
            CacheHit::RecheckSoon(cached.token.clone())
        } else {
            CacheHit::Fresh(cached.token.clone())
        })
    }

    fn put(
        &self,
        id: &str,
        token: UsableToken,
        now: OffsetDateTime,
        authorized_at: Option<OffsetDateTime>,
    ) {
        if let Ok(mut map) = self.tokens.lock() {
            map.insert(
                id.to_owned(),
                Cached {
                    token,
                    checked_at: now,
                    authorized_at,
                    rechecking: false,
                },
            );
        }
    }

    /// After a look at the record: keep the token (the record still backs it) or drop it.
    fn checked(&self, id: &str, now: OffsetDateTime, record: Option<&ConnectionRecord>) {
        let Ok(mut map) = self.tokens.lock() else {
            return;
        };
        let keep = match (map.get(id), record) {
            (Some(cached), Some(r)) => {
                r.status.is_usable() && r.authorized_at == cached.authorized_at
            }
            _ => false,
        };
        if keep {
            if let Some(cached) = map.get_mut(id) {
                cached.checked_at = now;
                cached.rechecking = false;
            }
        } else {
            map.remove(id);
        }
    }

    /// A look at the record failed (the store is down): keep serving, try again shortly.
    fn check_failed(&self, id: &str, now: OffsetDateTime) {
        if let Ok(mut map) = self.tokens.lock()
            && let Some(cached) = map.get_mut(id)
        {
            cached.checked_at = now - RECORD_RECHECK_AHEAD;
            cached.rechecking = false;
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
    /// again here: losing this write would lose the connection. `Ok(false)`: the secret is
    /// gone (the connection was deleted or deauthorized meanwhile) and is not re-created.
    async fn write_tokens(
        &self,
        id: &str,
        secret: &ConnectionSecret,
        lease: &mut u64,
    ) -> Result<bool, StoreError> {
        let name = connection_secret_name(&self.config.aws.secrets_prefix, id);
        let value = serde_secret(secret).map_err(|e| StoreError::Other(e.detail))?;
        let request_token = sha256_hex(secret.refresh_token.expose());
        let mut delay = Duration::from_millis(200);
        for attempt in 1.. {
            match self
                .secrets
                .update_secret(&name, &value, &request_token)
                .await
            {
                Ok(written) => return Ok(written),
                // Another attempt only when it can finish before the invocation's deadline.
                Err(e)
                    if e.is_transient()
                        && attempt < 8
                        && crate::deadline::leaves(
                            delay.mul_f64(1.5) + crate::deadline::AWS_OPERATION_TIMEOUT,
                        ) =>
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
        let cached_ok = |t: &UsableToken| match &need {
            TokenNeed::Usable => self.is_fresh(t.expires_at),
            TokenNeed::ReplaceRejected(bad) => {
                t.access_token != *bad && self.is_fresh(t.expires_at)
            }
            TokenNeed::IfDue | TokenNeed::Always => false,
        };
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
            return Err(self.credentials_missing(&record).await);
        };
        if self.stored_token_will_do(&record, &secret, &need) {
            let token = self.usable(&secret);
            self.tokens
                .put(id, token.clone(), self.now(), record.authorized_at);
            return Ok(Obtained {
                token,
                refreshed: false,
            });
        }
        let obtained = self
            .refresh_with_lease(&record, secret, &need, pace)
            .await?;
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
    async fn credentials_missing(&self, seen: &ConnectionRecord) -> ApiError {
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

    /// Extends our lease by another `LEASE_SECS` if we still hold it (`lease` is its version).
    async fn renew_lease(&self, id: &str, lease: &mut u64) {
        let now = self.now_unix();
        let value = serde_json::json!({ "owner": &*self.instance_id, "at": now });
        match self
            .store
            .replace_item(ItemKind::Lease, id, &value, Some(now + LEASE_SECS), *lease)
            .await
        {
            Ok(true) => *lease += 1,
            Ok(false) => tracing::warn!(
                connection_id = id,
                "refresh lease lost during the token write"
            ),
            Err(e) => {
                tracing::warn!(connection_id = id, error = %e, "could not renew the refresh lease")
            }
        }
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
        pace: Option<&SweepPace>,
    ) -> Result<Obtained, ApiError> {
        let id = record.id.as_str();
        let started = tokio::time::Instant::now();
        let mut lease = loop {
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
                None => return Err(self.credentials_missing(record).await),
            }
            // Give up in time to answer: at the wait's end or the invocation's deadline.
            if started.elapsed() > LEASE_WAIT || !crate::deadline::leaves(Duration::from_secs(1)) {
                return Err(ApiError::unavailable(
                    "refresh_in_progress",
                    "Another refresh of this connection is taking long; retry shortly.",
                )
                .with_retry_after(5));
            }
        };
        let lease_until =
            tokio::time::Instant::now() + Duration::from_secs(LEASE_SECS.unsigned_abs());
        let result = self
            .refresh_holding_lease(id, &seen, need, pace, lease_until, &mut lease)
            .await;
        self.release_lease(id, lease).await;
        result
    }

    async fn refresh_holding_lease(
        &self,
        id: &str,
        seen: &ConnectionSecret,
        need: &TokenNeed,
        pace: Option<&SweepPace>,
        lease_until: tokio::time::Instant,
        lease: &mut u64,
    ) -> Result<Obtained, ApiError> {
        // Re-read under the lease: a refresh that finished just before we took it counts.
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
            return Err(self.credentials_missing(&record).await);
        };
        let not_refreshed = |secret: &ConnectionSecret| {
            Ok(Obtained {
                token: self.usable(secret),
                refreshed: false,
            })
        };
        if secret.refresh_token != seen.refresh_token && !matches!(need, TokenNeed::Always) {
            return not_refreshed(&secret);
        }
        if matches!(need, TokenNeed::IfDue | TokenNeed::Usable)
            && self.stored_token_will_do(&record, &secret, need)
        {
            // No longer due, or another process failed just now and its back-off applies.
            return not_refreshed(&secret);
        }
        if let Some(pace) = pace
            && !pace.before_zoom_call().await
        {
            tracing::debug!(
                connection_id = id,
                "sweep deadline near; refresh left for the next run"
            );
            return not_refreshed(&secret);
        }
        // Zoom rotates the refresh token as it answers: ask only when the answer can be stored
        // before this invocation ends (a process stopped in between loses the connection).
        if !crate::deadline::leaves(REFRESH_BUDGET) {
            self.count(Metric::Refreshes, Some("deferred"));
            tracing::warn!(
                connection_id = id,
                event = "refresh_deferred",
                "too little time left in this invocation to refresh and store; not started"
            );
            if secret.expires_at > self.now() {
                return not_refreshed(&secret);
            }
            return Err(ApiError::unavailable(
                "refresh_deferred",
                "The access token needs a refresh that could not finish in time; retry.",
            )
            .with_retry_after(1));
        }
        let client = self.client_for(&secret).await?;
        // The call must end while the lease is ours, with time left to store its answer:
        // past that, another process could take the lease and spend the same refresh token.
        let budget = lease_until
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(LEASE_WRITE_RESERVE)
            .min(ZOOM_OAUTH_TIMEOUT + Duration::from_secs(1));
        let outcome =
            tokio::time::timeout(budget, self.oauth.refresh(&client, &secret.refresh_token))
                .await
                .unwrap_or_else(|_| Err(OAuthError::Unavailable("timed out".into())));
        match outcome {
            Ok(tokens) => self.store_refreshed(id, secret, tokens, pace, lease).await,
            Err(OAuthError::Rejected { error, reason, .. })
                if refresh_token_is_dead(&error, secret.auth_type) =>
            {
                self.refresh_rejected(id, &secret, &error, &reason).await
            }
            Err(OAuthError::Rejected {
                status,
                error,
                reason,
            }) => {
                // Not about this connection's grant (e.g. the platform app's own credentials
                // were refused): a failure to fix, not a reason to drop every connection.
                tracing::error!(connection_id = id, status, error = %error, reason = %reason, event = "refresh_refused", "Zoom refused the refresh request");
                let failure = RefreshFailure {
                    code: "zoom_error",
                    detail: format!("Zoom refused the refresh request ({error}): {reason}"),
                };
                self.refresh_failed(id, &secret, need, failure).await
            }
            Err(OAuthError::Unavailable(detail)) => {
                let failure = RefreshFailure {
                    code: "zoom_unavailable",
                    detail,
                };
                self.refresh_failed(id, &secret, need, failure).await
            }
        }
    }

    /// Zoom rotated the tokens: store them at once, then the record.
    async fn store_refreshed(
        &self,
        id: &str,
        secret: ConnectionSecret,
        tokens: TokenSet,
        pace: Option<&SweepPace>,
        lease: &mut u64,
    ) -> Result<Obtained, ApiError> {
        let updated = secret.with_tokens(tokens);
        if let Some(pace) = pace {
            pace.before_write().await;
        }
        let written = self.write_tokens(id, &updated, lease).await;
        if let Ok(false) = written {
            return Err(self.gone_while_refreshing(id).await);
        }
        self.count(
            Metric::TokenWrites,
            Some(if written.is_ok() { "stored" } else { "failed" }),
        );
        if let Err(e) = written {
            // The new tokens exist only in this process now. Keep using them here (cached by
            // the caller) and report loudly; see docs/architecture.md.
            tracing::error!(connection_id = id, error = %e, event = "refresh_write_failed", "new tokens could not be stored");
            return Ok(Obtained {
                token: self.usable(&updated),
                refreshed: true,
            });
        }
        let now = self.now();
        let next = self.next_refresh_at(now, updated.expires_at);
        let scopes = updated.scopes.clone();
        let recorded = self
            .update_record(id, |r| {
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
            .await;
        // A deauthorization or deletion deletes the secret before it changes the record, and
        // our write only updates an existing secret: if the record changed under us, their
        // delete came after our write, so no credentials are left behind.
        match recorded {
            Ok(Some(r)) if r.status == ConnectionStatus::Revoked => {
                return Err(conflict(ConnectionStatus::Revoked));
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                self.tokens.forget(id);
                return Err(ApiError::connection_not_found(id));
            }
            // The tokens are stored, which is what counts; the record catches up next time.
            Err(e) => {
                tracing::warn!(connection_id = id, error = %e, "refreshed tokens stored but the record was not updated")
            }
        }
        self.count(Metric::Refreshes, Some("refreshed"));
        tracing::info!(connection_id = id, event = "refreshed", "tokens refreshed");
        Ok(Obtained {
            token: self.usable(&updated),
            refreshed: true,
        })
    }

    /// `invalid_grant`: dead tokens, unless someone else refreshed meanwhile.
    async fn refresh_rejected(
        &self,
        id: &str,
        secret: &ConnectionSecret,
        error: &str,
        reason: &str,
    ) -> Result<Obtained, ApiError> {
        // Someone may have refreshed between our read and Zoom's answer; a process whose
        // answer was still in flight writes right after it arrives, hence a second look.
        for pause in [Duration::ZERO, REAUTH_RECHECK] {
            tokio::time::sleep(pause).await;
            if let Some(again) = self.try_read_connection_secret(id).await?
                && again.refresh_token != secret.refresh_token
            {
                return Ok(Obtained {
                    token: self.usable(&again),
                    refreshed: false,
                });
            }
        }
        self.count(Metric::Refreshes, Some("needs_reauth"));
        tracing::warn!(connection_id = id, error = %error, reason = %reason, event = "needs_reauth", "Zoom refused the refresh token");
        let now = self.now();
        self.update_record(id, |r| {
            r.status = ConnectionStatus::NeedsReauth;
            r.next_refresh_at = None;
            r.last_error = Some(LastError {
                code: error.to_owned(),
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

    /// 5xx, timeouts, refusals not about the grant: keep the old tokens, count, back off.
    async fn refresh_failed(
        &self,
        id: &str,
        secret: &ConnectionSecret,
        need: &TokenNeed,
        failure: RefreshFailure,
    ) -> Result<Obtained, ApiError> {
        let now = self.now();
        let updated = self
            .update_record(id, |r| {
                r.consecutive_failures += 1;
                if r.consecutive_failures >= FAILING_AFTER {
                    r.status = ConnectionStatus::RefreshFailing;
                }
                r.next_refresh_at =
                    Some(now.unix_timestamp() + backoff_secs(r.consecutive_failures));
                r.last_error = Some(LastError {
                    code: failure.code.into(),
                    message: format!("Refreshing failed: {}", failure.detail),
                    at: now,
                });
            })
            .await?;
        let failures = updated.as_ref().map_or(0, |r| r.consecutive_failures);
        self.count(Metric::Refreshes, Some("failed"));
        tracing::warn!(connection_id = id, failures, event = "refresh_failed", code = failure.code, detail = %failure.detail, "refresh failed; old tokens kept");
        self.publish(
            events::CONNECTION_REFRESH_FAILED,
            serde_json::json!({ "connection_id": id, "consecutive_failures": failures, "error": { "code": failure.code, "message": failure.detail } }),
        )
        .await;
        // The old access token may still have some life: an action can go on with it (not a
        // caller whose token Zoom just refused, nor a forced refresh or the sweep).
        if matches!(need, TokenNeed::Usable)
            && secret.expires_at - now > time::Duration::seconds(STILL_VALID_SECS)
        {
            return Ok(Obtained {
                token: self.usable(secret),
                refreshed: false,
            });
        }
        Err(match failure.code {
            "zoom_unavailable" => zoom_unavailable(&failure.detail),
            _ => ApiError::new(http::StatusCode::BAD_GATEWAY, failure.code, failure.detail),
        })
    }
}

/// Why a refresh failed without killing the connection.
struct RefreshFailure {
    code: &'static str,
    detail: String,
}

/// Whether a token-endpoint refusal means this connection's grant is gone for good:
/// `invalid_grant` (rotated, revoked, expired), or a BYO app whose credentials no longer work
/// (only the user can fix that, by reconnecting with the new ones).
fn refresh_token_is_dead(error: &str, auth_type: AuthType) -> bool {
    error == "invalid_grant" || (error == "invalid_client" && auth_type == AuthType::ByoApp)
}

/// Seconds to wait before refreshing again after `failures` failures in a row.
fn backoff_secs(failures: u32) -> i64 {
    (60i64 << failures.min(6)).min(MAX_BACKOFF_SECS)
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
#[path = "tokens_tests.rs"]
mod state_machine_tests;

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

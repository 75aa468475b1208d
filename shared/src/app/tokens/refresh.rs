//! The refresh routine (DESIGN.md "Token refresh: single flight, no lost tokens"): a lease
//! across processes, the secret re-read under it, one call to Zoom, the new tokens written
//! before the lease goes, and failures classified (dead refresh token, back-off).

use std::time::Duration;

use super::*;
use crate::app::sweep::SweepPace;
use crate::app::{Connector, ZOOM_OAUTH_TIMEOUT, events};
use crate::domain::error::ApiError;
use crate::domain::lease::Lease;
use crate::domain::{
    AuthType, ConnectionRecord, ConnectionSecret, ConnectionStatus, LastError, TokenSet,
};
use crate::metrics::Metric;
use crate::ports::{ItemKind, OAuthError};

/// A lease outlives one Zoom token call plus the secret write that follows it.
pub const LEASE_SECS: i64 = 30;

/// How long a caller waits for another process's refresh before giving up.
const LEASE_WAIT: Duration = Duration::from_secs(15);

/// Part of the lease kept for writing the new tokens after Zoom answered.
const LEASE_WRITE_RESERVE: Duration = Duration::from_secs(10);

/// A refresh is started only with this much of the invocation left: Zoom's answer (the
/// token call, plus a second of slack), one attempt to write the tokens to Secrets Manager,
/// and, should it refuse them, the pending copy and the record.
pub const REFRESH_BUDGET: Duration = Duration::from_secs(
    super::ZOOM_OAUTH_TIMEOUT.as_secs()
        + 1
        + crate::deadline::AWS_OPERATION_TIMEOUT.as_secs()
        + pending::PENDING_RESERVE.as_secs(),
);

/// Failures in a row before a connection shows `refresh_failing`.
const FAILING_AFTER: u32 = 3;

/// Ceiling of the back-off between refresh attempts of a failing connection.
const MAX_BACKOFF_SECS: i64 = 3600;

/// Why a refresh failed without killing the connection.
struct RefreshFailure {
    code: ErrorCode,
    detail: String,
}

/// Whether a token-endpoint refusal means this connection's grant is gone for good:
/// `invalid_grant` (rotated, revoked, expired), or a BYO app whose credentials no longer work
/// (only the user can fix that, by reconnecting with the new ones).
fn refresh_token_is_dead(error: &str, auth_type: AuthType) -> bool {
    crate::zoom::profile::grant_is_dead(error, auth_type == AuthType::ByoApp)
}

/// Seconds to wait before refreshing again after `failures` failures in a row.
pub(super) fn backoff_secs(failures: u32) -> i64 {
    (60i64 << failures.min(6)).min(MAX_BACKOFF_SECS)
}

impl Connector {
    pub(super) async fn take_lease(&self, id: &str) -> Result<Option<u64>, ApiError> {
        let now = self.now_unix();
        let value = Lease {
            owner: self.instance_id.to_string(),
            at: now,
            purpose: None,
        }
        .to_value();
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
            .filter(|i| Lease::is_held_by(&i.value, &self.instance_id))
            .map(|i| i.version))
    }

    /// Extends our lease by another `LEASE_SECS` if we still hold it (`lease` is its version).
    pub(super) async fn renew_lease(&self, id: &str, lease: &mut u64) {
        let now = self.now_unix();
        let value = Lease {
            owner: self.instance_id.to_string(),
            at: now,
            purpose: None,
        }
        .to_value();
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

    pub(super) async fn release_lease(&self, id: &str, version: u64) {
        if let Err(e) = self
            .store
            .delete_item(ItemKind::Lease, id, Some(version))
            .await
        {
            // It expires on its own after LEASE_SECS.
            tracing::warn!(connection_id = id, error = %e, "could not release the refresh lease");
        }
    }

    pub(super) async fn refresh_with_lease(
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
            match self.read_tokens(id).await? {
                Some(t) if t.current.refresh_token != seen.refresh_token => {
                    return Ok(Obtained {
                        token: self.usable(&t.current),
                        refreshed: false,
                    });
                }
                Some(_) => {}
                None => return Err(self.credentials_missing(record).await),
            }
            // Give up in time to answer: at the wait's end or the invocation's deadline. An
            // action whose old token still works is served with it.
            if started.elapsed() > LEASE_WAIT || !crate::deadline::leaves(Duration::from_secs(1)) {
                if matches!(need, TokenNeed::Usable)
                    && seen.expires_at - self.now() > time::Duration::seconds(STILL_VALID_SECS)
                {
                    return Ok(Obtained {
                        token: self.usable(&seen),
                        refreshed: false,
                    });
                }
                return Err(ApiError::unavailable(
                    ErrorCode::RefreshInProgress,
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
        let Some(tokens) = self.read_tokens(id).await? else {
            return Err(self.credentials_missing(&record).await);
        };
        // A pending copy: into Secrets Manager first, while we hold the lease.
        let had_pending = tokens.from_pending;
        let tokens = self.flush_holding_lease(id, tokens, lease).await?;
        let secret = tokens.current.clone();
        let not_refreshed = |secret: &ConnectionSecret| {
            Ok(Obtained {
                token: self.usable(secret),
                refreshed: false,
            })
        };
        if secret.refresh_token != seen.refresh_token && !matches!(need, TokenNeed::Always) {
            return not_refreshed(&secret);
        }
        // The sweep came for a pending copy (its record is due again soon after one is
        // written): a fresh token needs no refresh, only the copy moved (done above, or left
        // for its next visit).
        if had_pending && matches!(need, TokenNeed::IfDue) && self.is_fresh(secret.expires_at) {
            if tokens.from_pending {
                let at = self.now_unix() + pending::PENDING_RECHECK_SECS;
                let _ = self
                    .update_record(id, |r| r.next_refresh_at = Some(at))
                    .await;
            }
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
                ErrorCode::RefreshDeferred,
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
            Ok(issued) => self.store_refreshed(id, &tokens, issued, pace, lease).await,
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
                    code: ErrorCode::ZoomError,
                    detail: format!("Zoom refused the refresh request ({error}): {reason}"),
                };
                self.refresh_failed(id, &secret, need, failure).await
            }
            Err(OAuthError::Unavailable(detail)) => {
                let failure = RefreshFailure {
                    code: ErrorCode::ZoomUnavailable,
                    detail,
                };
                self.refresh_failed(id, &secret, need, failure).await
            }
        }
    }

    /// Zoom rotated the tokens: make them durable at once (Secrets Manager, else the pending
    /// copy), then the record.
    async fn store_refreshed(
        &self,
        id: &str,
        before: &pending::Tokens,
        issued: TokenSet,
        pace: Option<&SweepPace>,
        lease: &mut u64,
    ) -> Result<Obtained, ApiError> {
        let updated = before.current.clone().with_tokens(issued);
        if let Some(pace) = pace {
            pace.before_write().await;
        }
        let now = self.now();
        let next = match self.keep_rotated(id, before, &updated, lease).await {
            pending::Kept::Gone => return Err(self.gone_while_refreshing(id).await),
            pending::Kept::Memory(e) => {
                self.count(Metric::TokenWrites, Some("failed"));
                // The new tokens exist only in this process now. Keep using them here (cached
                // by the caller) and report loudly; see docs/architecture.md.
                tracing::error!(connection_id = id, error = %e, event = "refresh_write_failed", "new tokens could not be stored");
                return Ok(Obtained {
                    token: self.usable(&updated),
                    refreshed: true,
                });
            }
            pending::Kept::Pending => {
                self.count(Metric::TokenWrites, Some("pending"));
                now.unix_timestamp() + pending::PENDING_RECHECK_SECS
            }
            pending::Kept::Secret => {
                self.count(Metric::TokenWrites, Some("stored"));
                self.next_refresh_at(now, updated.expires_at)
            }
        };
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
            if let Some(again) = self.read_tokens(id).await?
                && again.current.refresh_token != secret.refresh_token
            {
                return Ok(Obtained {
                    token: self.usable(&again.current),
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
                    code: failure.code.to_string(),
                    message: format!("Refreshing failed: {}", failure.detail),
                    at: now,
                });
            })
            .await?;
        let failures = updated.as_ref().map_or(0, |r| r.consecutive_failures);
        self.count(Metric::Refreshes, Some("failed"));
        tracing::warn!(connection_id = id, failures, event = "refresh_failed", code = failure.code.as_str(), detail = %failure.detail, "refresh failed; old tokens kept");
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
            ErrorCode::ZoomUnavailable => zoom_unavailable(&failure.detail),
            _ => ApiError::new(http::StatusCode::BAD_GATEWAY, failure.code, failure.detail),
        })
    }
}

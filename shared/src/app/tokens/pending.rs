//! The second durable place for rotated tokens (DESIGN.md "Token refresh", point 6).
//!
//! Zoom rotates the refresh token when it answers a refresh; the old one dies at once. When
//! Secrets Manager then refuses the new pair (throttling above 50 writes/s, an outage), the
//! pair is written, sealed, to a small item beside the connection record (`SEALED#{id}` in
//! the table, a row among the local store's items) before the refresh lease is released:
//! - sealed with AES-256-GCM ([`crate::sealed`]) under a data key that the operator's master
//!   key wraps (KMS `GenerateDataKey`/`Decrypt` on `PENDING_TOKENS_KEY_ID`, the local key file
//!   in the local stack): one `GenerateDataKey` per process and hour it seals in (a new data key
//!   after [`DATA_KEY_LIFETIME`] or 2^20 copies), one `Decrypt` per wrapped key a
//!   process meets. The connection id and `base` are the associated data, so a copy does not
//!   open on another record. Only principals allowed `kms:Decrypt` on that key can read it,
//!   whatever they may read in the table;
//! - `base` is the SHA-256 of the refresh token Secrets Manager held when the copy was written:
//!   the copy counts only while the secret still holds that token. Once the secret moves on (the
//!   copy reached it, a write that seemed to fail landed after all, a reconnect wrote new
//!   tokens) the copy is stale, ignored, and deleted by the next lease holder;
//! - every reader of tokens ([`Connector::read_tokens`]: actions, the refresh under its lease,
//!   waiters on another process's lease, the sweep, `invalid_grant`'s re-check) prefers a copy
//!   that follows the secret;
//! - whoever holds the lease moves it to Secrets Manager and deletes it: the next refresh (its
//!   new tokens go to the secret and the copy is deleted), a reader that meets a copy (in the
//!   background, at most every [`FLUSH_EVERY`] per connection and process), and the sweep (a
//!   record with a copy is due again [`PENDING_RECHECK_SECS`] later).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{conflict, sealing};
use crate::app::Connector;
use crate::domain::error::{ApiError, StoreError};
use crate::domain::{ConnectionSecret, ConnectionStatus};
use crate::metrics::Metric;
use crate::ports::{ItemKind, KeyBytes};
use crate::secret::sha256_hex;

/// The KMS encryption context (`purpose`) of the data keys that seal pending copies.
pub const DATA_KEY_CONTEXT: &str = "zoom-connector/pending-tokens";

/// A process seals with one data key for at most this long...
pub const DATA_KEY_LIFETIME: Duration = Duration::from_secs(3600);

/// ...and for at most this many copies (AES-GCM with random 96-bit nonces stays far inside
/// its safety margin of 2^32 messages per key).
const DATA_KEY_MAX_SEALS: u64 = 1 << 20;

/// A process tries to move a connection's pending copy to Secrets Manager at most this often.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// A record whose tokens wait in a pending copy is due for the sweep again after this long.
pub const PENDING_RECHECK_SECS: i64 = 60;

/// How long the token write tries Secrets Manager before the pending copy is written...
pub const SECRET_WRITE_BUDGET: Duration = Duration::from_secs(10);

/// ...and how long once a write of this process failed recently (one SDK operation).
const SECRET_WRITE_BUDGET_FAILING: Duration = crate::deadline::AWS_OPERATION_TIMEOUT;

/// A failed token write counts as recent this long.
const FAILING_FOR: Duration = Duration::from_secs(30);

/// Kept back from the invocation's deadline for the pending copy and the record after a
/// refused token write.
pub const PENDING_RESERVE: Duration =
    Duration::from_secs(2 * crate::deadline::AWS_OPERATION_TIMEOUT.as_secs());

/// The stored item.
#[derive(Serialize, Deserialize)]
struct PendingItem {
    /// SHA-256 (hex) of the refresh token the secret held when the copy was written.
    base: String,
    /// The data key, wrapped by the master key (base64).
    key: String,
    /// Nonce, ciphertext and tag of the connection secret's JSON (base64).
    sealed: String,
    /// When the copy was written (unix seconds).
    at: i64,
}

fn associated_data(id: &str, base: &str) -> String {
    format!("{id}|{base}")
}

/// A connection's tokens as the connector knows them.
#[derive(Clone)]
pub(super) struct Tokens {
    /// The newest: the pending copy when it follows the secret, else the secret.
    pub current: ConnectionSecret,
    /// SHA-256 of the refresh token in Secrets Manager: the `base` of a new pending copy.
    pub stored_base: String,
    /// The pending item's version, whether it applies or is stale.
    pub pending_version: Option<u64>,
    /// `current` is the pending copy.
    pub from_pending: bool,
}

/// Where rotated tokens were kept.
pub(super) enum Kept {
    /// In Secrets Manager.
    Secret,
    /// In the pending copy (Secrets Manager refused them).
    Pending,
    /// The secret is gone: the connection was deleted or deauthorized meanwhile.
    Gone,
    /// Nowhere durable (Secrets Manager and the pending copy both failed): only in memory.
    Memory(String),
}

impl Connector {
    /// The connection's newest tokens: its secret, or the pending copy that follows it.
    /// `None` when the secret is gone. A pending copy that cannot be opened (KMS unavailable)
    /// is an error: the secret's refresh token may already be spent.
    pub(super) async fn read_tokens(&self, id: &str) -> Result<Option<Tokens>, ApiError> {
        let now = self.now_unix();
        let (secret, item) = tokio::join!(
            self.try_read_connection_secret(id),
            self.store.get_item(ItemKind::PendingTokens, id, now)
        );
        let Some(secret) = secret? else {
            return Ok(None);
        };
        let stored_base = sha256_hex(secret.refresh_token.expose());
        let mut tokens = Tokens {
            current: secret,
            stored_base,
            pending_version: None,
            from_pending: false,
        };
        let Some(item) = item? else {
            return Ok(Some(tokens));
        };
        tokens.pending_version = Some(item.version);
        let pending: PendingItem = serde_json::from_value(item.value)
            .map_err(|_| ApiError::internal("a pending token copy is corrupt"))?;
        if pending.base == tokens.stored_base {
            tokens.current = self.open_pending(id, &pending).await?;
            tokens.from_pending = true;
        }
        Ok(Some(tokens))
    }

    async fn open_pending(
        &self,
        id: &str,
        pending: &PendingItem,
    ) -> Result<ConnectionSecret, ApiError> {
        let corrupt = |what: &str| {
            tracing::error!(
                connection_id = id,
                event = "pending_copy_unreadable",
                "the pending token copy {what}"
            );
            ApiError::internal("a pending token copy cannot be read")
        };
        let sealed = B64
            .decode(&pending.sealed)
            .map_err(|_| corrupt("is corrupt"))?;
        let key = self.unwrapped_key(&pending.key).await?;
        let plain =
            crate::sealed::open(&key, associated_data(id, &pending.base).as_bytes(), &sealed)
                .ok_or_else(|| corrupt("does not open"))?;
        serde_json::from_slice(&plain).map_err(|_| corrupt("holds no tokens"))
    }

    async fn unwrapped_key(&self, wrapped_b64: &str) -> Result<Arc<KeyBytes>, StoreError> {
        if let Some(key) = self
            .sealing
            .opened
            .lock()
            .ok()
            .and_then(|m| m.get(wrapped_b64).cloned())
        {
            return Ok(key);
        }
        let wrapped = B64
            .decode(wrapped_b64)
            .map_err(|_| StoreError::Other("a wrapped data key is corrupt".into()))?;
        let key = Arc::new(
            self.data_keys
                .unwrap_key(&wrapped, DATA_KEY_CONTEXT)
                .await?,
        );
        if let Ok(mut opened) = self.sealing.opened.lock() {
            if opened.len() > 1000 {
                opened.clear();
            }
            opened.insert(wrapped_b64.to_owned(), key.clone());
        }
        Ok(key)
    }

    /// The data key to seal the next copy with: this process's current one, or a new one
    /// when there is none yet or it is past its lifetime or seal count. Keys it retired stay
    /// among the opened ones, so its older copies open without KMS.
    async fn own_data_key(&self) -> Result<Arc<(KeyBytes, String)>, StoreError> {
        let mut own = self.sealing.own.lock().await;
        if let Some(current) = own.as_mut()
            && current.made_at.elapsed() < DATA_KEY_LIFETIME
            && current.seals < DATA_KEY_MAX_SEALS
        {
            current.seals += 1;
            return Ok(current.key.clone());
        }
        let generated = self.data_keys.generate(DATA_KEY_CONTEXT).await?;
        let wrapped = B64.encode(&generated.wrapped);
        if let Ok(mut opened) = self.sealing.opened.lock() {
            opened.insert(wrapped.clone(), Arc::new(generated.plaintext.clone()));
        }
        let key = Arc::new((generated.plaintext, wrapped));
        *own = Some(sealing::OwnKey {
            key: key.clone(),
            made_at: Instant::now(),
            seals: 1,
        });
        Ok(key)
    }

    async fn seal_pending(
        &self,
        id: &str,
        base: &str,
        secret: &ConnectionSecret,
    ) -> Result<serde_json::Value, StoreError> {
        let key = self.own_data_key().await?;
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(secret).map_err(|e| StoreError::Other(e.to_string()))?,
        );
        let sealed = crate::sealed::seal(&key.0, associated_data(id, base).as_bytes(), &plain);
        serde_json::to_value(PendingItem {
            base: base.to_owned(),
            key: key.1.clone(),
            sealed: B64.encode(sealed),
            at: self.now_unix(),
        })
        .map_err(|e| StoreError::Other(e.to_string()))
    }

    /// Stores the sealed copy under our lease: replaces the item at `known`, else creates it,
    /// else replaces whatever is there (a stale copy). Transient failures are retried while
    /// the invocation has time, renewing the lease.
    async fn write_pending(
        &self,
        id: &str,
        base: &str,
        secret: &ConnectionSecret,
        mut known: Option<u64>,
        lease: &mut u64,
    ) -> Result<(), StoreError> {
        let mut delay = Duration::from_millis(100);
        let mut value = None;
        for attempt in 1u32.. {
            let result = match &value {
                None => self.seal_pending(id, base, secret).await.map(|v| {
                    value = Some(v);
                    false
                }),
                Some(v) => match known {
                    Some(version) => {
                        self.store
                            .replace_item(ItemKind::PendingTokens, id, v, None, version)
                            .await
                    }
                    None => {
                        self.store
                            .create_item(ItemKind::PendingTokens, id, v, None, self.now_unix())
                            .await
                    }
                },
            };
            match result {
                Ok(true) => return Ok(()),
                // Sealed: now the write. Or the item changed: learn its version.
                Ok(false) if attempt < 8 => {
                    if value.is_some() && attempt > 1 {
                        known = self
                            .store
                            .get_item(ItemKind::PendingTokens, id, self.now_unix())
                            .await?
                            .map(|i| i.version);
                    }
                }
                Ok(false) => {
                    return Err(StoreError::Other(
                        "the pending token copy kept changing".into(),
                    ));
                }
                Err(e)
                    if e.is_transient()
                        && attempt < 10
                        && crate::deadline::leaves(
                            delay.mul_f64(1.5) + crate::deadline::AWS_OPERATION_TIMEOUT,
                        ) =>
                {
                    tracing::warn!(connection_id = id, attempt, error = %e, "pending token copy not written; retrying");
                    self.renew_lease(id, lease).await;
                    tokio::time::sleep(crate::app::jittered(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    async fn clear_pending(&self, id: &str, version: u64) {
        match self
            .store
            .delete_item(ItemKind::PendingTokens, id, Some(version))
            .await
        {
            Ok(_) => {}
            // Harmless: once the secret moved on, the copy is stale and ignored.
            Err(e) => {
                tracing::warn!(connection_id = id, error = %e, "could not delete a pending token copy")
            }
        }
    }

    /// How long Secrets Manager gets before the pending copy is written instead.
    fn secret_write_budget(&self) -> Duration {
        let failing = self
            .sealing
            .secret_failed_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < FAILING_FOR);
        let budget = if failing && self.data_keys.configured() {
            SECRET_WRITE_BUDGET_FAILING
        } else {
            SECRET_WRITE_BUDGET
        };
        crate::deadline::remaining().map_or(budget, |left| {
            left.saturating_sub(PENDING_RESERVE).min(budget)
        })
    }

    fn note_secret_write(&self, ok: bool) {
        if let Ok(mut at) = self.sealing.secret_failed_at.lock() {
            *at = if ok { None } else { Some(Instant::now()) };
        }
    }

    /// Rotated tokens, durable before the lease goes: Secrets Manager within its budget, else
    /// the pending copy. `before` is what was read under the lease.
    pub(super) async fn keep_rotated(
        &self,
        id: &str,
        before: &Tokens,
        updated: &ConnectionSecret,
        lease: &mut u64,
    ) -> Kept {
        let budget = self.secret_write_budget();
        match self.write_tokens(id, updated, lease, budget).await {
            Ok(written) => {
                self.note_secret_write(true);
                if let Some(version) = before.pending_version {
                    self.clear_pending(id, version).await;
                }
                if written { Kept::Secret } else { Kept::Gone }
            }
            Err(e) => {
                self.note_secret_write(false);
                if !self.data_keys.configured() {
                    return Kept::Memory(format!(
                        "{e} (no PENDING_TOKENS_KEY_ID for a pending copy)"
                    ));
                }
                tracing::warn!(connection_id = id, error = %e, event = "token_write_pending", "Secrets Manager refused the new tokens; writing the pending copy");
                match self
                    .write_pending(
                        id,
                        &before.stored_base,
                        updated,
                        before.pending_version,
                        lease,
                    )
                    .await
                {
                    Ok(()) => Kept::Pending,
                    Err(e2) => Kept::Memory(format!("{e}; pending copy: {e2}")),
                }
            }
        }
    }

    /// Under our lease: moves a pending copy that follows the secret into Secrets Manager and
    /// deletes it, or deletes a stale one. Returns the tokens as they now are.
    pub(super) async fn flush_holding_lease(
        &self,
        id: &str,
        tokens: Tokens,
        lease: &mut u64,
    ) -> Result<Tokens, ApiError> {
        let Some(version) = tokens.pending_version else {
            return Ok(tokens);
        };
        if !tokens.from_pending {
            self.clear_pending(id, version).await;
            return Ok(Tokens {
                pending_version: None,
                ..tokens
            });
        }
        let budget = self.secret_write_budget();
        match self.write_tokens(id, &tokens.current, lease, budget).await {
            Ok(true) => {
                self.note_secret_write(true);
                self.clear_pending(id, version).await;
                self.count(Metric::TokenWrites, Some("moved"));
                tracing::info!(
                    connection_id = id,
                    event = "pending_copy_moved",
                    "the pending token copy reached Secrets Manager"
                );
                let now = self.now();
                let expires_at = tokens.current.expires_at;
                let _ = self
                    .update_record(id, |r| {
                        let at =
                            self.next_refresh_at(r.last_refreshed_at.unwrap_or(now), expires_at);
                        if r.status.is_usable() && r.next_refresh_at.is_some_and(|n| n < at) {
                            r.next_refresh_at = Some(at);
                        }
                    })
                    .await;
                Ok(Tokens {
                    stored_base: sha256_hex(tokens.current.refresh_token.expose()),
                    pending_version: None,
                    from_pending: false,
                    ..tokens
                })
            }
            Ok(false) => {
                self.clear_pending(id, version).await;
                Err(self.gone_while_refreshing(id).await)
            }
            Err(e) => {
                self.note_secret_write(false);
                tracing::warn!(connection_id = id, error = %e, "the pending token copy could not reach Secrets Manager yet");
                Ok(tokens)
            }
        }
    }

    /// Moves a connection's pending copy to Secrets Manager in the background (the task owns
    /// the work; the caller does not wait), at most every [`FLUSH_EVERY`] per process.
    pub(super) fn spawn_flush(&self, id: &str) {
        if let Ok(mut flushes) = self.sealing.flushes.lock() {
            if flushes.get(id).is_some_and(|at| at.elapsed() < FLUSH_EVERY) {
                return;
            }
            if flushes.len() > 10_000 {
                flushes.retain(|_, at| at.elapsed() < FLUSH_EVERY);
            }
            flushes.insert(id.to_owned(), Instant::now());
        }
        let this = self.clone();
        let id = id.to_owned();
        let deadline = crate::deadline::current();
        tokio::spawn(crate::deadline::within(deadline, async move {
            if let Err(e) = this.flush_pending(&id).await {
                tracing::warn!(connection_id = %id, error = %e.detail, "moving the pending token copy failed");
            }
        }));
    }

    /// Takes the lease (or leaves the work to its holder) and flushes.
    async fn flush_pending(&self, id: &str) -> Result<(), ApiError> {
        let Some(mut lease) = self.take_lease(id).await? else {
            return Ok(());
        };
        let result = async {
            let record = self.store.get_connection(id).await?;
            if !record.as_ref().is_some_and(|r| r.status.is_usable()) {
                return Err(conflict(ConnectionStatus::Revoked));
            }
            match self.read_tokens(id).await? {
                Some(tokens) => self
                    .flush_holding_lease(id, tokens, &mut lease)
                    .await
                    .map(|_| ()),
                None => Ok(()),
            }
        }
        .await;
        self.release_lease(id, lease).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ConnectionSecret {
        serde_json::from_value(serde_json::json!({
            "access_token": "a", "refresh_token": "r", "expires_at": "2026-12-07T00:00:00Z",
            "auth_type": "platform_app", "client_id": "c"
        }))
        .expect("a connection secret")
    }

    /// A long-lived process does not seal with one data key forever: after its lifetime a new
    /// key is made, and copies sealed under the old one still open.
    #[tokio::test(start_paused = true)]
    async fn the_sealing_data_key_is_replaced_after_its_lifetime() {
        let (connector, _dir) = crate::wiring::test_connector(&[]);
        let first = connector
            .seal_pending("c1", "base", &secret())
            .await
            .unwrap();
        let again = connector
            .seal_pending("c2", "base", &secret())
            .await
            .unwrap();
        assert_eq!(first["key"], again["key"], "one key within its lifetime");
        tokio::time::advance(DATA_KEY_LIFETIME + Duration::from_secs(1)).await;
        let later = connector
            .seal_pending("c1", "base", &secret())
            .await
            .unwrap();
        assert_ne!(first["key"], later["key"], "a new key after its lifetime");
        let opened = connector.sealing.opened.lock().unwrap();
        assert!(opened.contains_key(first["key"].as_str().unwrap()));
        assert!(opened.contains_key(later["key"].as_str().unwrap()));
    }
}

//! The warm token cache of one process: each connection's access token until near expiry,
//! its record re-checked in the background so a change elsewhere reaches this container.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::ConnectionRecord;
use crate::secret::SecretString;

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
/// background while it keeps serving: about one read per connection per minute when it is
/// busy (67 an hour at one action every 5 s, measured in the unit tests)...
pub const RECORD_RECHECK_AHEAD: Duration = Duration::from_secs(55);

/// ...and before serving once the copy is this old: a connection deleted, deauthorized or
/// reconnected in another container stops being used here within a minute.
pub const RECORD_RECHECK_MAX: Duration = Duration::from_secs(60);

/// What the cache says about a connection's token.
pub(super) enum CacheHit {
    /// Use it; the record was looked at recently enough.
    Fresh(UsableToken),
    /// Use it, and look at the record in the background.
    RecheckSoon(UsableToken),
    /// Look at the record before using it.
    RecheckFirst(UsableToken),
}

impl TokenCache {
    pub(super) fn get(&self, id: &str) -> Option<UsableToken> {
        self.tokens.lock().ok()?.get(id).map(|c| c.token.clone())
    }

    /// The cached token and whether its record is due a look, claiming the background
    /// re-check for the caller when one is due.
    pub(super) fn hit(&self, id: &str, now: OffsetDateTime) -> Option<CacheHit> {
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

    pub(super) fn put(
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

    /// Whether a background re-check of `id` is under way (tests wait for it to end).
    #[cfg(test)]
    pub(super) fn rechecking(&self, id: &str) -> bool {
        self.tokens
            .lock()
            .map(|map| map.get(id).is_some_and(|c| c.rechecking))
            .unwrap_or(false)
    }

    /// After a look at the record: keep the token (the record still backs it) or drop it.
    pub(super) fn checked(&self, id: &str, now: OffsetDateTime, record: Option<&ConnectionRecord>) {
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
    pub(super) fn check_failed(&self, id: &str, now: OffsetDateTime) {
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

    pub(super) fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Keep the map from growing without bound in a long-lived process.
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(id.to_owned()).or_default().clone()
    }
}

/// A token an action can use, and the API base it belongs to.
#[derive(Clone, Debug)]
pub struct UsableToken {
    pub access_token: SecretString,
    pub expires_at: OffsetDateTime,
    pub api_base: String,
}

//! Idempotency records: what a key's first request left for its retries.

use serde::{Deserialize, Serialize};

/// How long an `Idempotency-Key` answer is kept.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

/// An in-progress idempotency record older than this is taken over (its worker died).
pub const IDEMPOTENCY_STALE_SECS: i64 = 60;

/// The value of an idempotency record whose work started at `started_at` (unix seconds).
pub(crate) fn in_progress_record(started_at: i64, fingerprint: &str) -> serde_json::Value {
    serde_json::json!({ "state": "in_progress", "started_at": started_at, "fingerprint": fingerprint })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotentAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    pub fingerprint: String,
}

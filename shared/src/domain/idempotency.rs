//! Idempotency records: what a key's first request left for its retries, and the claims that
//! tie one created meeting to one key.

use serde::{Deserialize, Serialize};

/// How long an `Idempotency-Key` answer is kept.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;

/// An in-progress idempotency record older than this is taken over (its worker died).
pub const IDEMPOTENCY_STALE_SECS: i64 = 60;

/// The first answer of a key, returned to every retry with the same body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotentAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    pub fingerprint: String,
}

/// The value of an `ItemKind::Idempotency` record (stored as JSON, `state` the tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IdempotencyRecord {
    /// A worker is on it since `started_at` (unix seconds). `outcome_unknown`: it gave up not
    /// knowing whether Zoom acted (timeout, 5xx), so the next claimant takes over at once and
    /// looks at Zoom first.
    InProgress {
        started_at: i64,
        fingerprint: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        outcome_unknown: bool,
    },
    /// Finished: the answer every retry gets.
    Done {
        answer: IdempotentAnswer,
        fingerprint: String,
    },
}

impl IdempotencyRecord {
    pub fn in_progress(started_at: i64, fingerprint: &str) -> Self {
        Self::InProgress {
            started_at,
            fingerprint: fingerprint.to_owned(),
            outcome_unknown: false,
        }
    }

    pub fn done(answer: IdempotentAnswer) -> Self {
        let fingerprint = answer.fingerprint.clone();
        Self::Done {
            answer,
            fingerprint,
        }
    }

    /// May a new claimant take this record over at `now`? Only an in-progress record whose
    /// worker died (stale) or gave up with an unknown outcome.
    pub fn takeable(&self, now: i64) -> bool {
        match self {
            Self::InProgress {
                started_at,
                outcome_unknown,
                ..
            } => *outcome_unknown || now - started_at > IDEMPOTENCY_STALE_SECS,
            Self::Done { .. } => false,
        }
    }

    pub fn started_at(&self) -> Option<i64> {
        match self {
            Self::InProgress { started_at, .. } => Some(*started_at),
            Self::Done { .. } => None,
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// `None` for a value that is not a record (corrupt, or written by something else).
    pub fn from_value(value: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }
}

/// The claim that ties a created meeting to the one event key it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetingClaim {
    pub event_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records already stored keep reading the same (the JSON shape is the contract with
    /// what is in the tables).
    #[test]
    fn stored_shapes_round_trip() {
        let in_progress =
            serde_json::json!({ "state": "in_progress", "started_at": 5, "fingerprint": "f" });
        let record = IdempotencyRecord::from_value(&in_progress).unwrap();
        assert_eq!(record, IdempotencyRecord::in_progress(5, "f"));
        assert_eq!(record.to_value(), in_progress);
        let unknown = serde_json::json!({ "state": "in_progress", "started_at": 5, "fingerprint": "f", "outcome_unknown": true });
        assert!(IdempotencyRecord::from_value(&unknown).unwrap().takeable(6));
        let done = serde_json::json!({ "state": "done", "fingerprint": "f", "answer": { "status": 201, "body": { "id": 1 }, "fingerprint": "f" } });
        let record = IdempotencyRecord::from_value(&done).unwrap();
        assert!(matches!(&record, IdempotencyRecord::Done { answer, .. } if answer.status == 201));
        assert_eq!(record.to_value(), done);
        assert_eq!(
            IdempotencyRecord::from_value(&serde_json::json!({ "state": "odd" })),
            None
        );
    }

    #[test]
    fn only_stale_or_unknown_in_progress_records_are_takeable() {
        let r = IdempotencyRecord::in_progress(100, "f");
        assert!(!r.takeable(100 + IDEMPOTENCY_STALE_SECS));
        assert!(r.takeable(101 + IDEMPOTENCY_STALE_SECS));
        let answer = IdempotentAnswer {
            status: 201,
            body: serde_json::Value::Null,
            fingerprint: "f".into(),
        };
        assert!(!IdempotencyRecord::done(answer).takeable(i64::MAX));
    }
}

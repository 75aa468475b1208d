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
    /// looks at Zoom first. `since`: an earlier attempt of this key may have created the
    /// meeting from then on (kept across takeovers, so a lookup never starts later than the
    /// first attempt whose outcome is unknown).
    InProgress {
        started_at: i64,
        fingerprint: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        outcome_unknown: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
    },
    /// Finished: the answer every retry gets. A remembered failure after an attempt whose
    /// outcome is unknown keeps that: `unknown_since` (Zoom may have created the meeting from
    /// then on) and `until`, after which the record is taken over like an unknown outcome, so
    /// the next claimant looks at Zoom before creating.
    Done {
        answer: IdempotentAnswer,
        fingerprint: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unknown_since: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
    },
}

impl IdempotencyRecord {
    pub fn in_progress(started_at: i64, fingerprint: &str) -> Self {
        Self::InProgress {
            started_at,
            fingerprint: fingerprint.to_owned(),
            outcome_unknown: false,
            since: None,
        }
    }

    /// A record taken over at `now` from an attempt that may have created the meeting since
    /// `since`.
    pub fn resumed(now: i64, fingerprint: &str, since: i64) -> Self {
        Self::InProgress {
            started_at: now,
            fingerprint: fingerprint.to_owned(),
            outcome_unknown: false,
            since: Some(since),
        }
    }

    /// Left by an attempt that does not know whether Zoom created the meeting (since
    /// `since`): taken over at once.
    pub fn outcome_unknown(now: i64, fingerprint: &str, since: i64) -> Self {
        Self::InProgress {
            started_at: now,
            fingerprint: fingerprint.to_owned(),
            outcome_unknown: true,
            since: Some(since),
        }
    }

    pub fn done(answer: IdempotentAnswer) -> Self {
        let fingerprint = answer.fingerprint.clone();
        Self::Done {
            answer,
            fingerprint,
            unknown_since: None,
            until: None,
        }
    }

    /// A failure remembered until `until`, after an attempt whose outcome is unknown since
    /// `unknown_since`.
    pub fn failed_maybe_created(answer: IdempotentAnswer, unknown_since: i64, until: i64) -> Self {
        let fingerprint = answer.fingerprint.clone();
        Self::Done {
            answer,
            fingerprint,
            unknown_since: Some(unknown_since),
            until: Some(until),
        }
    }

    /// May a new claimant take this record over at `now`? An in-progress record whose
    /// worker died (stale) or gave up with an unknown outcome, or a remembered failure after
    /// an unknown outcome whose memory has run out.
    pub fn takeable(&self, now: i64) -> bool {
        match self {
            Self::InProgress {
                started_at,
                outcome_unknown,
                ..
            } => *outcome_unknown || now - started_at > IDEMPOTENCY_STALE_SECS,
            Self::Done {
                unknown_since,
                until,
                ..
            } => unknown_since.is_some() && until.is_some_and(|u| now > u),
        }
    }

    /// From when Zoom may have created this key's meeting without the record saying so: the
    /// start of the lookup a claimant taking it over makes. `None` for a finished record
    /// whose outcome is known.
    pub fn maybe_created_since(&self) -> Option<i64> {
        match self {
            Self::InProgress {
                started_at, since, ..
            } => Some(since.map_or(*started_at, |s| s.min(*started_at))),
            Self::Done { unknown_since, .. } => *unknown_since,
        }
    }

    /// What identifies the request the record is for.
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::InProgress { fingerprint, .. } | Self::Done { fingerprint, .. } => fingerprint,
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
        assert!(!IdempotencyRecord::done(answer.clone()).takeable(i64::MAX));
        // A remembered failure after an unknown outcome: kept, then taken over to look.
        let failed = IdempotencyRecord::failed_maybe_created(answer, 40, 160);
        assert!(!failed.takeable(160));
        assert!(failed.takeable(161));
        assert_eq!(failed.maybe_created_since(), Some(40));
    }

    #[test]
    fn takeovers_keep_the_earliest_unknown_start() {
        let resumed = IdempotencyRecord::resumed(500, "f", 100);
        assert!(!resumed.takeable(500 + IDEMPOTENCY_STALE_SECS));
        assert_eq!(resumed.maybe_created_since(), Some(100));
        let left = IdempotencyRecord::outcome_unknown(500, "f", 100);
        assert!(left.takeable(500));
        assert_eq!(left.maybe_created_since(), Some(100));
        assert_eq!(
            IdempotencyRecord::in_progress(7, "f").maybe_created_since(),
            Some(7)
        );
        let value = left.to_value();
        assert_eq!(value["since"], 100);
        assert_eq!(IdempotencyRecord::from_value(&value), Some(left));
    }
}

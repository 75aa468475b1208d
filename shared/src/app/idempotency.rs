//! Idempotency (`Idempotency-Key` and queued events): a key's record is claimed, finished
//! with the first answer, or left for takeover when the outcome is unknown. Only a request
//! with the record's fingerprint may take it over; another one is refused
//! (`idempotency_key_reused`).

use std::time::Duration;

use http::StatusCode;

use bytes::Bytes;

use crate::app::Connector;
use crate::app::actions::PassThrough;
use crate::app::jittered;
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::idempotency::{IDEMPOTENCY_TTL_SECS, IdempotencyRecord, IdempotentAnswer};
use crate::ports::ItemKind;
use crate::secret::sha256_hex;

/// The same key came with a different request (body, or connection for events).
pub fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::IdempotencyKeyReused,
        "This idempotency key was already used with a different request.",
    )
}

pub enum IdempotencyStart {
    /// We own the record (its version) and must finish it. `resumed_from` (on a takeover):
    /// from when an earlier attempt may have created the thing already (unix seconds; the
    /// start of the earliest attempt whose outcome is unknown, or of a worker that died).
    Started {
        version: u64,
        resumed_from: Option<i64>,
    },
    Done(IdempotentAnswer),
}

impl Connector {
    /// Claims an idempotency record, or waits for / returns the first answer.
    pub async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        wait: Duration,
    ) -> Result<IdempotencyStart, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = self.now_unix();
            let value = IdempotencyRecord::in_progress(now, fingerprint).to_value();
            if self
                .store
                .create_item(
                    ItemKind::Idempotency,
                    key,
                    &value,
                    Some(now + IDEMPOTENCY_TTL_SECS),
                    now,
                )
                .await?
            {
                let item = self.store.get_item(ItemKind::Idempotency, key, now).await?;
                if let Some(item) = item.filter(|i| i.value == value) {
                    return Ok(IdempotencyStart::Started {
                        version: item.version,
                        resumed_from: None,
                    });
                }
                continue;
            }
            let Some(item) = self.store.get_item(ItemKind::Idempotency, key, now).await? else {
                continue;
            };
            let Some(record) = IdempotencyRecord::from_value(&item.value) else {
                return Err(ApiError::internal("corrupt idempotency record"));
            };
            // Another request holds (or held) this key: never wait for it, never take it
            // over (that would create something else under the key). A finished record goes
            // back to the caller, which compares the fingerprints itself.
            if record.fingerprint() != fingerprint {
                return match record {
                    IdempotencyRecord::Done { answer, .. } => Ok(IdempotencyStart::Done(answer)),
                    IdempotencyRecord::InProgress { .. } => Err(key_reused()),
                };
            }
            if record.takeable(now) {
                // Its worker died mid-way, or gave up not knowing whether Zoom created the
                // meeting, or failed for good after that and the memory ran out: take over
                // (the caller looks at Zoom first, from the earliest attempt whose outcome is
                // unknown).
                let since = record.maybe_created_since().unwrap_or(now);
                let value = IdempotencyRecord::resumed(now, fingerprint, since).to_value();
                if self.replace_idempotency(key, &value, item.version).await? {
                    return Ok(IdempotencyStart::Started {
                        version: item.version + 1,
                        resumed_from: Some(since),
                    });
                }
            } else if let IdempotencyRecord::Done { answer, .. } = record {
                return Ok(IdempotencyStart::Done(answer));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::RequestInProgress,
                    "A request with this Idempotency-Key is still in progress; retry shortly.",
                )
                .with_retry_after(2));
            }
            tokio::time::sleep(jittered(Duration::from_millis(100))).await;
        }
    }

    pub async fn finish_idempotent(
        &self,
        key: &str,
        version: u64,
        answer: &IdempotentAnswer,
    ) -> Result<(), ApiError> {
        let value = IdempotencyRecord::done(answer.clone()).to_value();
        if !self.replace_idempotency(key, &value, version).await? {
            tracing::warn!("idempotency record changed while the request ran");
        }
        Ok(())
    }
}

impl Connector {
    /// Makes the record immediately takeable by the next delivery, which then looks for the
    /// meeting at Zoom before creating one (Zoom may have created it since `since`).
    pub(crate) async fn leave_for_takeover(
        &self,
        key: &str,
        version: u64,
        fingerprint: &str,
        since: i64,
    ) {
        let now = self.now_unix();
        let value = IdempotencyRecord::outcome_unknown(now, fingerprint, since).to_value();
        if let Err(e) = self.replace_idempotency(key, &value, version).await {
            // It stays in progress and is taken over once stale.
            tracing::warn!(error = %e, "could not mark the meeting event for takeover");
        }
    }

    /// Nothing was created: let the next delivery start afresh.
    pub(crate) async fn release_record(&self, key: &str, version: u64) {
        if let Err(e) = self
            .store
            .delete_item(ItemKind::Idempotency, key, Some(version))
            .await
        {
            tracing::warn!(error = %e, "could not release the meeting event record");
        }
    }
}

/// Where an HTTP `Idempotency-Key` stands for this request.
pub enum HttpClaim {
    /// The key's first answer (as stored: without secrets), to replay.
    Replay(IdempotentAnswer),
    /// This request does the work and must finish or release `record_key`.
    Started {
        record_key: String,
        version: u64,
        resumed_from: Option<i64>,
    },
}

impl Connector {
    /// Claims an HTTP `Idempotency-Key` of connection `id` for a request whose body has
    /// `fingerprint`: the first answer when the key is done (422 when it was done with another
    /// body), else the claim.
    pub async fn claim_http_key(
        &self,
        id: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<HttpClaim, ApiError> {
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::validation(
                "`Idempotency-Key` must be 1 to 255 characters.",
            ));
        }
        let record_key = format!("http|{id}|{}", sha256_hex(key));
        match self
            .begin_idempotent(&record_key, fingerprint, Duration::from_secs(20))
            .await?
        {
            IdempotencyStart::Done(answer) if answer.fingerprint != fingerprint => {
                Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::IdempotencyKeyReused,
                    "This Idempotency-Key was used with a different body.",
                ))
            }
            IdempotencyStart::Done(answer) => Ok(HttpClaim::Replay(answer)),
            IdempotencyStart::Started {
                version,
                resumed_from,
            } => Ok(HttpClaim::Started {
                record_key,
                version,
                resumed_from,
            }),
        }
    }
}

/// A replayed first answer (`Idempotent-Replayed: true`).
pub fn replay(status: u16, body: &serde_json::Value) -> PassThrough {
    PassThrough {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("idempotent-replayed".into(), "true".into()),
        ],
        body: Bytes::from(body.to_string()),
    }
}

impl Connector {
    /// Replaces an idempotency record if it is still at `version`; it lives another
    /// `IDEMPOTENCY_TTL_SECS`.
    async fn replace_idempotency(
        &self,
        key: &str,
        value: &serde_json::Value,
        version: u64,
    ) -> Result<bool, crate::domain::error::StoreError> {
        let expires_at = self.now_unix() + IDEMPOTENCY_TTL_SECS;
        self.store
            .replace_item(ItemKind::Idempotency, key, value, Some(expires_at), version)
            .await
    }
}

//! The uniqueness claim "client ID + Zoom account + Zoom user → connection id" (one
//! connection per Zoom user per app), taken by the callback before it writes a connection.
//!
//! A claim whose connection record does not exist has two possible stories: the callback that
//! made it is still writing the connection (secret, then record), or it died or gave up on the
//! way. The rule that tells them apart:
//! - a claim carries `claimed_at`; while its record is missing it counts as *in progress* for
//!   [`CLAIM_STALE_SECS`], longer than the whole storing phase of the callback that made it
//!   (`callback::STORE_BUDGET`, after which that callback no longer writes anything);
//! - another callback of the same Zoom user and app meanwhile waits for the record (short
//!   polls) and then joins that connection: its tokens go into it, its page names it. If the
//!   record does not appear within its own wait, it answers `temporarily_unavailable` (retry);
//! - only a claim older than that without a record is stale and is taken over; a claim written
//!   before `claimed_at` existed counts as made at 0;
//! - a claim is released only by its own connection, conditionally (`release_identity`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Connector;
use crate::domain::error::{ApiError, ErrorCode};
use crate::ports::ItemKind;

/// A claim without a record is stale only after this long (well past the 12 s storing budget of
/// the callback that made it, and a minute of clock skew between containers).
pub const CLAIM_STALE_SECS: i64 = 90;

/// Between two looks at a claim in progress.
const POLL: Duration = Duration::from_millis(100);

/// The value of an `ItemKind::Identity` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaim {
    pub connection_id: String,
    /// When the claim was made (unix seconds); 0 on claims older than the field.
    #[serde(default)]
    pub claimed_at: i64,
}

impl Connector {
    /// Claims the identity `key` for `candidate`, or returns the connection that owns it: one
    /// whose record exists, or one still being written by another callback (waited for until
    /// `wait_until`). See the module docs for the rule.
    pub(crate) async fn claim_identity(
        &self,
        key: &str,
        candidate: &str,
        wait_until: Instant,
    ) -> Result<String, ApiError> {
        loop {
            let now = self.now_unix();
            let claim = serde_json::to_value(IdentityClaim {
                connection_id: candidate.to_owned(),
                claimed_at: now,
            })
            .map_err(|e| ApiError::internal(e.to_string()))?;
            if self
                .store
                .create_item(ItemKind::Identity, key, &claim, None, now)
                .await?
            {
                return Ok(candidate.to_owned());
            }
            if let Some(item) = self.store.get_item(ItemKind::Identity, key, now).await? {
                let held: IdentityClaim =
                    serde_json::from_value(item.value).unwrap_or_else(|_| IdentityClaim {
                        connection_id: String::new(),
                        claimed_at: 0,
                    });
                let owner = held.connection_id;
                if owner == candidate
                    || (!owner.is_empty() && self.store.get_connection(&owner).await?.is_some())
                {
                    return Ok(owner);
                }
                if now - held.claimed_at >= CLAIM_STALE_SECS {
                    // Nobody is writing that connection any more: take the claim over.
                    if self
                        .store
                        .replace_item(ItemKind::Identity, key, &claim, None, item.version)
                        .await?
                    {
                        tracing::info!(stale = %owner, "took over a stale identity claim");
                        return Ok(candidate.to_owned());
                    }
                    continue;
                }
            }
            // Another callback of this Zoom user is storing its connection: wait for it.
            if Instant::now() + POLL >= wait_until {
                tracing::warn!(
                    event = "identity_claim_wait_exceeded",
                    "another callback of this Zoom user did not finish storing in time"
                );
                return Err(ApiError::unavailable(
                    ErrorCode::StoreUnavailable,
                    "Another sign-in of this Zoom user is still being stored; retry.",
                ));
            }
            tokio::time::sleep(super::jittered(POLL)).await;
        }
    }
}

//! The refresh lease held by writers other than the refresh routine: a deauthorization that
//! deletes a connection's tokens, a callback that writes new ones into an existing connection.
//! They take the same lease the refresh takes (`tokens::refresh`), so none of them races a
//! refresh in flight: a refresh that holds it finishes (writes its tokens, lets go) first, and
//! a refresh that starts meanwhile waits and then re-reads the secret.

use std::time::Duration;

use super::Connector;
use super::tokens::refresh::LEASE_SECS;
use crate::domain::error::ApiError;
use crate::domain::lease::Lease;
use crate::ports::ItemKind;

/// Between two attempts to take a lease held elsewhere.
const POLL: Duration = Duration::from_millis(100);

impl Connector {
    /// Takes the connection's refresh lease for `purpose`, waiting up to `wait` for a holder to
    /// let go. `Ok(Some(version))` once held (release it with [`Self::release_held_lease`]),
    /// `Ok(None)` when someone else still holds it after `wait`.
    pub(crate) async fn hold_refresh_lease(
        &self,
        id: &str,
        purpose: &str,
        wait: Duration,
    ) -> Result<Option<u64>, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = self.now_unix();
            let value = Lease {
                owner: self.instance_id.to_string(),
                at: now,
                purpose: Some(purpose.to_owned()),
            }
            .to_value();
            if self
                .store
                .create_item(ItemKind::Lease, id, &value, Some(now + LEASE_SECS), now)
                .await?
            {
                // Our own write: its version identifies our lease for the conditional release.
                let held = self.store.get_item(ItemKind::Lease, id, now).await?;
                return Ok(held.filter(|i| i.value == value).map(|i| i.version));
            }
            if tokio::time::Instant::now() + POLL >= deadline {
                tracing::info!(
                    connection_id = id,
                    purpose,
                    "the refresh lease stayed taken"
                );
                return Ok(None);
            }
            tokio::time::sleep(super::jittered(POLL)).await;
        }
    }

    /// Lets go of a lease taken with [`Self::hold_refresh_lease`] (only if it is still ours).
    pub(crate) async fn release_held_lease(&self, id: &str, version: u64) {
        if let Err(e) = self
            .store
            .delete_item(ItemKind::Lease, id, Some(version))
            .await
        {
            // It expires on its own after LEASE_SECS.
            tracing::warn!(connection_id = id, error = %e, "could not release the refresh lease");
        }
    }
}

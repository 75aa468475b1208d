//! Secrets a connect flow parks in the secret store between its steps (a BYO client secret or
//! webhook token given with the session or typed on the choice page, waiting for the
//! callback), and how none of them outlives its flow.
//!
//! Each one is tracked by an `ItemKind::PendingSecret` item, written before the secret, that
//! expires when no flow can use the secret any more ([`PENDING_SECRET_LIFETIME_SECS`]). The
//! flow deletes the secret and its tracking when it uses or drops it; the scheduled sweep
//! deletes the secrets whose tracking expired (an abandoned flow), found by the stores' expiry
//! index, never by listing secrets (`secretsmanager:ListSecrets` cannot be scoped to a prefix).

use std::time::Duration;

use tokio::time::Instant;

use super::Connector;
use super::connect::PENDING_SECRET_LIFETIME_SECS;
use super::sweep::SweepPace;
use crate::domain::error::ApiError;
use crate::ports::ItemKind;
use crate::secret::SecretString;

/// Left of the sweep's invocation when a delete may start (two AWS operations, 3 s each at most).
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Expired trackings read per page, and pages per sweep at most.
const PAGE: usize = 100;
const MAX_PAGES: usize = 10;

impl Connector {
    /// Where parked secrets live: only names under it are ever deleted by the sweep.
    fn parked_prefix(&self) -> String {
        format!("{}/connect-sessions/", self.config.aws.secrets_prefix)
    }

    /// Parks `value` under `name`: tracked first, so no secret exists untracked.
    pub(crate) async fn park_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> Result<(), ApiError> {
        let now = self.now_unix();
        self.store
            .create_item(
                ItemKind::PendingSecret,
                name,
                &serde_json::json!({ "secret": name }),
                Some(now + PENDING_SECRET_LIFETIME_SECS),
                now,
            )
            .await?;
        self.secrets.put_secret(name, value, request_token).await?;
        Ok(())
    }

    /// Deletes a parked secret the flow is done with, then its tracking. Best effort: what
    /// fails here is logged, and the sweep deletes the secret when its tracking expires.
    pub(crate) async fn drop_parked_secret(&self, name: &str) {
        if let Err(e) = self.secrets.delete_secret(name).await {
            tracing::warn!(error = %e, "could not delete a parked connect secret; the sweep will");
            return;
        }
        if let Err(e) = self
            .store
            .delete_item(ItemKind::PendingSecret, name, None)
            .await
        {
            tracing::warn!(error = %e, "could not delete the tracking of a parked connect secret");
        }
    }

    /// Deletes the parked secrets of flows abandoned before `now` (their tracking expired) and
    /// their tracking; returns how many. The sweep passes its pace, so these deletes share its
    /// secret-write rate, and its deadline: nothing is started with less than
    /// [`DEADLINE_MARGIN`] left.
    pub async fn delete_orphaned_pending_secrets(
        &self,
        now: i64,
        pace: Option<&SweepPace>,
        deadline: Option<Instant>,
    ) -> u64 {
        let time_left = || {
            deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) >= DEADLINE_MARGIN)
        };
        let prefix = self.parked_prefix();
        let mut deleted = 0;
        for _ in 0..MAX_PAGES {
            if !time_left() {
                break;
            }
            let expired = match self
                .store
                .expired_items(ItemKind::PendingSecret, now, PAGE)
                .await
            {
                Ok(expired) => expired,
                Err(e) => {
                    tracing::error!(error = %e, "could not query the expired connect secrets");
                    break;
                }
            };
            let full = expired.len() == PAGE;
            let mut progressed = false;
            for (key, item) in expired {
                if !time_left() {
                    break;
                }
                let name = item.value["secret"].as_str().unwrap_or(&key);
                if name.starts_with(&prefix) {
                    if let Some(pace) = pace {
                        pace.before_write().await;
                    }
                    if let Err(e) = self.secrets.delete_secret(name).await {
                        tracing::warn!(error = %e, "could not delete an abandoned connect secret");
                        continue;
                    }
                    deleted += 1;
                } else {
                    tracing::error!(
                        event = "pending_secret_foreign",
                        "a parked-secret tracking names a secret outside the connect sessions; not deleted"
                    );
                }
                match self
                    .store
                    .delete_item(ItemKind::PendingSecret, &key, Some(item.version))
                    .await
                {
                    Ok(_) => progressed = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not delete a parked-secret tracking")
                    }
                }
            }
            if !full || !progressed {
                break;
            }
        }
        if deleted > 0 {
            tracing::info!(
                deleted,
                event = "pending_secrets_deleted",
                "deleted the secrets of abandoned connect flows"
            );
        }
        deleted
    }
}

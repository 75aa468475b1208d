//! The callback's storing half: the one-connection-per-Zoom-user rule (`identity`), the
//! writes of a new authorization, and the reconnect that came back as someone else. Tokens go
//! into an existing connection under its refresh lease (`refresh_lease`), and only when no
//! newer authorization of the user is stored there.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::callback::{ConnectedInfo, ZoomMe, serde_secret};
use super::connect::StoredState;
use super::{Connector, events};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::{
    ConnectionRecord, ConnectionSecret, ConnectionStatus, ZoomIdentity, connection_secret_name,
    identity_key, new_connection_id,
};
use crate::ports::ItemKind;
use crate::secret::sha256_hex;

/// Of the storing budget: how long a callback waits for another callback of the same Zoom user
/// to finish writing the connection it claimed (`identity`), counted from the start of storing.
const CLAIM_WAIT: Duration = Duration::from_secs(6);

/// Of the storing budget: until when a callback waits for the refresh lease of an existing
/// connection (a refresh in flight, or other callbacks of the same user writing before it),
/// counted from the start of storing. The rest is for the writes themselves.
const LEASE_WAIT: Duration = Duration::from_secs(8);

/// How much later another container's clock may be: a stored authorization this close to the
/// start of our code exchange may be newer than ours, and Zoom is asked which one stands.
const AUTHORIZED_AT_SKEW: time::Duration = time::Duration::seconds(2);

/// Asking Zoom whether this grant still stands (a light `/users/me`).
const SUPERSEDED_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl Connector {
    /// The uniqueness rule and the writes: tokens into the connection that already belongs to
    /// this Zoom user and app, else into the reconnected one, else into a new one. Tokens go
    /// into an existing connection under its refresh lease (never racing a refresh in flight),
    /// and only when no newer authorization of the user is stored there.
    pub(crate) async fn store_authorization(
        &self,
        stored: &StoredState,
        zoom: ZoomIdentity,
        secret: ConnectionSecret,
        exchange_started: OffsetDateTime,
    ) -> Result<ConnectedInfo, ApiError> {
        let started = Instant::now();
        let key = identity_key(&secret.client_id, &zoom);
        if let Some(target) = &stored.connection_id
            && let Some(record) = self.store.get_connection(target).await?
            && (record.zoom.user_id != zoom.user_id || record.zoom.account_id != zoom.account_id)
        {
            return Err(self
                .reconnected_as_someone_else(&record, &zoom, &key, secret)
                .await);
        }
        let candidate = stored
            .connection_id
            .clone()
            .unwrap_or_else(new_connection_id);
        let owner = self
            .claim_identity(&key, &candidate, started + CLAIM_WAIT)
            .await?;
        let existing_record = self.store.get_connection(&owner).await?;
        let Some(existing_record) = existing_record else {
            return self
                .write_authorization(stored, &zoom, secret, &owner, false)
                .await;
        };
        let wait = (started + LEASE_WAIT).saturating_duration_since(Instant::now());
        let Some(lease) = self.hold_refresh_lease(&owner, "authorize", wait).await? else {
            return Err(ApiError::unavailable(
                ErrorCode::StoreUnavailable,
                "A refresh of this connection is taking long; retry.",
            ));
        };
        let result = async {
            if self.superseded(&owner, &secret, exchange_started).await? {
                tracing::info!(connection_id = %owner, event = "authorization_superseded", "a newer authorization of this Zoom user is stored; this one's tokens are not");
                return Ok(ConnectedInfo {
                    connection_id: owner.clone(),
                    existing: true,
                    missing_actions: Vec::new(),
                });
            }
            // A reconnect through another app (same Zoom user; another user was refused above)
            // frees the old app's uniqueness item.
            if existing_record.zoom != zoom || existing_record.client_id != secret.client_id {
                let old_key = identity_key(&existing_record.client_id, &existing_record.zoom);
                if old_key != key {
                    self.release_identity(&old_key, &existing_record.id).await?;
                }
            }
            self.write_authorization(stored, &zoom, secret, &owner, true)
                .await
        }
        .await;
        self.release_held_lease(&owner, lease).await;
        result
    }

    /// Whether the connection already holds a newer authorization of this Zoom user than the
    /// one in `secret` (a concurrent callback stored it). Only asked when the stored one is
    /// about as recent as ours; then Zoom tells: it refuses a superseded grant's token.
    async fn superseded(
        &self,
        owner: &str,
        secret: &ConnectionSecret,
        exchange_started: OffsetDateTime,
    ) -> Result<bool, ApiError> {
        let Some(record) = self.store.get_connection(owner).await? else {
            return Ok(false);
        };
        let concurrent = record
            .authorized_at
            .is_some_and(|at| at > exchange_started - AUTHORIZED_AT_SKEW);
        if !concurrent {
            return Ok(false);
        }
        let api_base = self.api_base(secret.api_url.as_deref());
        let check = self
            .zoom_json::<ZoomMe>(
                &api_base,
                "/users/me",
                &secret.access_token,
                SUPERSEDED_CHECK_TIMEOUT,
            )
            .await;
        // Only a refusal says "superseded"; when Zoom cannot tell, the tokens that just worked
        // for `/users/me` are written.
        Ok(matches!(check, Err(e) if e.code == ErrorCode::ZoomUnauthorized))
    }

    /// Writes the tokens and the record of `owner` (`existing`: it had a record before).
    async fn write_authorization(
        &self,
        stored: &StoredState,
        zoom: &ZoomIdentity,
        secret: ConnectionSecret,
        owner: &str,
        existing: bool,
    ) -> Result<ConnectedInfo, ApiError> {
        let now = self.now();
        let key = identity_key(&secret.client_id, zoom);
        let owner = owner.to_owned();
        let name = connection_secret_name(&self.config.aws.secrets_prefix, &owner);
        let written: Result<(), ApiError> = async {
            self.secrets
                .put_secret(
                    &name,
                    &serde_secret(&secret)?,
                    &sha256_hex(secret.refresh_token.expose()),
                )
                .await?;
            self.tokens.forget(&owner);

            let mut attempts = 0;
            loop {
                attempts += 1;
                let current = self.store.get_connection(&owner).await?;
                let record = ConnectionRecord {
                    id: owner.clone(),
                    status: ConnectionStatus::Active,
                    auth_type: secret.auth_type,
                    client_id: secret.client_id.clone(),
                    // A session that names an end user (re)assigns the connection to them; one
                    // that does not (a reconnect from an operator tool) keeps the stored one.
                    end_user: stored
                        .end_user
                        .clone()
                        .or_else(|| current.as_ref().and_then(|c| c.end_user.clone())),
                    zoom: zoom.clone(),
                    scopes: secret.scopes.clone(),
                    access_token_expires_at: Some(secret.expires_at),
                    last_refreshed_at: Some(now),
                    last_error: None,
                    created_at: current.as_ref().map_or(now, |c| c.created_at),
                    updated_at: now,
                    authorized_at: Some(now),
                    consecutive_failures: 0,
                    next_refresh_at: Some(self.next_refresh_at(now, secret.expires_at)),
                    version: 0,
                };
                if self
                    .store
                    .put_connection(&record, current.as_ref().map(|c| c.version))
                    .await?
                {
                    break;
                }
                if attempts >= 5 {
                    return Err(ApiError::internal("the connection record kept changing"));
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = written {
            // Nothing stays behind for a connection that did not exist before.
            if !existing {
                let _ = self.secrets.delete_secret(&name).await;
                let _ = self.release_identity(&key, &owner).await;
            }
            return Err(e);
        }

        let missing_actions = crate::zoom::catalogue::missing_defaults(&secret.scopes);
        let mut detail = serde_json::json!({
            "connection_id": owner,
            "auth_type": secret.auth_type.as_str(),
            "client_id": secret.client_id,
            "zoom": { "user_id": zoom.user_id, "account_id": zoom.account_id },
            "existing": existing,
            "end_user": stored.end_user,
        });
        if !missing_actions.is_empty() {
            detail["missing_actions"] = missing_actions
                .iter()
                .map(|(action, scopes)| serde_json::json!({ "action": action, "add_scopes": scopes }))
                .collect();
        }
        self.publish(events::CONNECTION_CREATED, detail).await;
        Ok(ConnectedInfo {
            connection_id: owner,
            existing,
            missing_actions,
        })
    }

    /// A reconnect of `record` came back as another Zoom user or account: the connection is left
    /// as it was. The new grant is not thrown away when that user already has a connection of
    /// this app (Zoom has just revoked its older tokens: they go into it, as any authorization
    /// of that user would); otherwise it is revoked at Zoom.
    async fn reconnected_as_someone_else(
        &self,
        record: &ConnectionRecord,
        zoom: &ZoomIdentity,
        key: &str,
        secret: ConnectionSecret,
    ) -> ApiError {
        tracing::warn!(
            connection_id = %record.id,
            event = "reconnect_user_mismatch",
            "a reconnect signed in as another Zoom user or account; the connection is unchanged"
        );
        let owner = self
            .store
            .get_item(ItemKind::Identity, key, self.now_unix())
            .await
            .ok()
            .flatten()
            .and_then(|item| item.value["connection_id"].as_str().map(str::to_owned));
        let kept = match owner {
            Some(owner) if owner != record.id => {
                // Under that connection's refresh lease, like every write of its tokens.
                let name = connection_secret_name(&self.config.aws.secrets_prefix, &owner);
                match (
                    serde_secret(&secret),
                    self.hold_refresh_lease(&owner, "authorize", LEASE_WAIT)
                        .await,
                ) {
                    (Ok(value), Ok(Some(lease))) => {
                        let request_token = sha256_hex(secret.refresh_token.expose());
                        let kept = self.secrets.update_secret(&name, &value, &request_token);
                        let kept = kept.await.unwrap_or(false);
                        self.tokens.forget(&owner);
                        self.release_held_lease(&owner, lease).await;
                        kept
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if kept {
            tracing::info!(zoom_user_id = %zoom.user_id, "the new grant went to that user's own connection");
        } else {
            if let Ok(client) = self.client_for(&secret).await
                && let Err(e) = self.oauth.revoke(&client, &secret.refresh_token).await
            {
                tracing::warn!(error = %e, "could not revoke the mismatched grant at Zoom");
            }
        }
        ApiError::new(
            http::StatusCode::CONFLICT,
            ErrorCode::ReconnectUserMismatch,
            "The reconnect signed in as another Zoom user.",
        )
    }
}

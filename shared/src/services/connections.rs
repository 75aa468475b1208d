//! Connection management: list, read, delete (revoke at Zoom), forced refresh.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tokens::TokenNeed;
use super::{Connector, events};
use crate::domain::{Connection, ConnectionStatus, connection_secret_name, identity_key};
use crate::error::ApiError;
use crate::ports::ItemKind;

pub const PAGE_SIZE: usize = 50;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<Connection>,
    pub next_cursor: Option<String>,
}

fn encode_cursor(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::validation("`cursor` is not a cursor this API returned."))
}

impl Connector {
    pub async fn list_connections(&self, query: ListQuery) -> Result<ConnectionList, ApiError> {
        let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(ConnectionStatus::parse(s).ok_or_else(|| {
                ApiError::validation("`status` must be one of pending, active, refresh_failing, needs_reauth, revoked.")
            })?),
        };
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, 200);
        let mut records = self
            .store
            .list_connections(status, after.as_deref(), limit + 1)
            .await?;
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|r| encode_cursor(&r.id))
        } else {
            None
        };
        Ok(ConnectionList {
            connections: records.iter().map(Connection::from).collect(),
            next_cursor,
        })
    }

    pub async fn get_connection(&self, id: &str) -> Result<Connection, ApiError> {
        self.store
            .get_connection(id)
            .await?
            .map(|r| Connection::from(&r))
            .ok_or_else(|| ApiError::connection_not_found(id))
    }

    /// Revokes at Zoom (best effort), deletes the credentials and the record.
    pub async fn delete_connection(&self, id: &str) -> Result<(), ApiError> {
        let record = self
            .store
            .get_connection(id)
            .await?
            .ok_or_else(|| ApiError::connection_not_found(id))?;
        if let Ok(secret) = self.read_connection_secret(id).await {
            match self.client_for(&secret).await {
                Ok(client) => {
                    if let Err(e) = self.oauth.revoke(&client, &secret.refresh_token).await {
                        tracing::warn!(connection_id = id, error = %e, "revoking at Zoom failed; deleting anyway");
                    }
                }
                Err(e) => {
                    tracing::warn!(connection_id = id, error = %e, "no client to revoke with")
                }
            }
        }
        self.tokens.forget(id);
        // Secret first: if we stop half-way, the record stays and shows the connection as
        // revoked (credentials missing), and deleting again finishes the job.
        let secret_name = connection_secret_name(&self.config.aws.secrets_prefix, id);
        self.secrets.delete_secret(&secret_name).await?;
        self.store
            .delete_item(
                ItemKind::Identity,
                &identity_key(&record.client_id, &record.zoom),
                None,
            )
            .await?;
        self.store.delete_connection(id).await?;
        // A refresh that was in flight may have written its tokens after our first delete
        // while the record still existed; one finishing later finds no record and removes
        // its own write (see `store_refreshed`).
        self.secrets.delete_secret(&secret_name).await?;
        self.tokens.forget(id);
        self.publish(
            events::CONNECTION_DELETED,
            serde_json::json!({ "connection_id": id }),
        )
        .await;
        tracing::info!(connection_id = id, "connection deleted");
        Ok(())
    }

    /// `POST /connections/{id}/refresh`.
    pub async fn force_refresh(&self, id: &str) -> Result<Connection, ApiError> {
        self.obtain_token(id, TokenNeed::Always).await?;
        self.get_connection(id).await
    }
}

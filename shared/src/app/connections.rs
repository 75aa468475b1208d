//! Connection management: list, read, delete (revoke at Zoom), forced refresh.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tokens::TokenNeed;
use super::{Connector, events};
use crate::domain::error::ApiError;
use crate::domain::{
    Connection, ConnectionRecord, ConnectionStatus, connection_secret_name, identity_key,
};
use crate::ports::ItemKind;
use crate::zoom::catalogue::capabilities;

pub const PAGE_SIZE: usize = 50;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: Option<String>,
    /// Only this end user's connections (`end_user.id` of the connect session).
    #[serde(default)]
    pub end_user_id: Option<String>,
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

/// The opaque `cursor` of `GET /connections`: base64url (no padding) of
/// `{"v":1,"after":"<last id of the page>","status":<the filter or null>,"eu":"<hash>"?}`.
/// The stores resume after that id (every backend lists in id order; DynamoDB seeks each
/// listing shard with it, see `adapters::aws`). `eu` is a short hash of the `end_user_id`
/// filter (the id itself may be personal data and cursors end up in URLs and logs). A cursor
/// that does not decode to that shape, names something that is not a connection id, or was
/// issued for another `status` or `end_user_id` answers 400 `validation_failed`.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ListCursor {
    v: u8,
    after: String,
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eu: Option<String>,
}

const CURSOR_VERSION: u8 = 1;

/// The filters a cursor belongs to.
#[derive(Debug, Clone, Copy, Default)]
struct Filter<'a> {
    status: Option<ConnectionStatus>,
    end_user_id: Option<&'a str>,
}

impl Filter<'_> {
    fn end_user_hash(&self) -> Option<String> {
        self.end_user_id
            .map(|id| crate::secret::sha256_hex(id)[..16].to_owned())
    }
}

fn encode_cursor(after: &str, filter: Filter<'_>) -> String {
    let cursor = ListCursor {
        v: CURSOR_VERSION,
        after: after.to_owned(),
        status: filter.status.map(|s| s.as_str().to_owned()),
        eu: filter.end_user_hash(),
    };
    let json = serde_json::to_vec(&cursor).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(cursor: &str, filter: Filter<'_>) -> Result<String, ApiError> {
    let status = filter.status;
    let bad = || ApiError::validation("`cursor` is not a cursor this API returned.");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let decoded: ListCursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if decoded.v != CURSOR_VERSION || !crate::domain::is_connection_id(&decoded.after) {
        return Err(bad());
    }
    if decoded.status.as_deref() != status.map(ConnectionStatus::as_str) {
        return Err(ApiError::validation(
            "`cursor` belongs to a listing with another `status`; repeat the same query.",
        ));
    }
    if decoded.eu != filter.end_user_hash() {
        return Err(ApiError::validation(
            "`cursor` belongs to a listing with another `end_user_id`; repeat the same query.",
        ));
    }
    Ok(decoded.after)
}

/// A connection as callers see it: the record's fields, and the actions its scopes allow.
pub fn connection_view(record: &ConnectionRecord) -> Connection {
    let mut connection = Connection::from(record);
    connection.capabilities = capabilities(&record.scopes)
        .into_iter()
        .map(str::to_owned)
        .collect();
    connection
}

impl Connector {
    pub async fn list_connections(&self, query: ListQuery) -> Result<ConnectionList, ApiError> {
        let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(ConnectionStatus::parse(s).ok_or_else(|| {
                ApiError::validation("`status` must be one of pending, active, refresh_failing, needs_reauth, revoked.")
            })?),
        };
        let end_user_id = query.end_user_id.as_deref().filter(|s| !s.is_empty());
        if end_user_id.is_some_and(|id| id.len() > super::connect::MAX_END_USER_ID) {
            return Err(ApiError::validation(format!(
                "`end_user_id` must be at most {} bytes.",
                super::connect::MAX_END_USER_ID
            )));
        }
        let filter = Filter {
            status,
            end_user_id,
        };
        let after = query
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| decode_cursor(c, filter))
            .transpose()?;
        let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, 200);
        let mut records = match end_user_id {
            Some(eu) => {
                self.store
                    .list_end_user_connections(eu, status, after.as_deref(), limit + 1)
                    .await?
            }
            None => {
                self.store
                    .list_connections(status, after.as_deref(), limit + 1)
                    .await?
            }
        };
        let next_cursor = if records.len() > limit {
            records.truncate(limit);
            records.last().map(|r| encode_cursor(&r.id, filter))
        } else {
            None
        };
        Ok(ConnectionList {
            connections: records.iter().map(connection_view).collect(),
            next_cursor,
        })
    }

    pub async fn get_connection(&self, id: &str) -> Result<Connection, ApiError> {
        if !crate::domain::is_connection_id(id) {
            return Err(ApiError::connection_not_found(id));
        }
        self.store
            .get_connection(id)
            .await?
            .map(|r| connection_view(&r))
            .ok_or_else(|| ApiError::connection_not_found(id))
    }

    /// Revokes at Zoom (best effort), deletes the credentials and the record.
    pub async fn delete_connection(&self, id: &str) -> Result<(), ApiError> {
        if !crate::domain::is_connection_id(id) {
            return Err(ApiError::connection_not_found(id));
        }
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
        self.release_identity(&identity_key(&record.client_id, &record.zoom), id)
            .await?;
        self.store.delete_connection(id).await?;
        // A refresh in flight only updates an existing secret: one that wrote between our
        // two deletes is undone by this one, one that writes later finds no secret and stops
        // (see `store_refreshed`).
        self.secrets.delete_secret(&secret_name).await?;
        self.tokens.forget(id);
        self.forget_sealed_tokens(id).await;
        self.publish(
            events::CONNECTION_DELETED,
            serde_json::json!({ "connection_id": id }),
        )
        .await;
        tracing::info!(connection_id = id, "connection deleted");
        Ok(())
    }

    /// Deletes a sealed copy of rotated tokens (`ItemKind::PendingTokens`) a refresh may have
    /// left: without the secret it no longer counts, but it holds a refresh token. Best
    /// effort: a copy that stays is encrypted and ignored.
    pub(crate) async fn forget_sealed_tokens(&self, id: &str) {
        if let Err(e) = self
            .store
            .delete_item(ItemKind::PendingTokens, id, None)
            .await
        {
            tracing::warn!(connection_id = id, error = %e, "could not delete the sealed token copy");
        }
    }

    /// `POST /connections/{id}/refresh`.
    pub async fn force_refresh(&self, id: &str) -> Result<Connection, ApiError> {
        self.obtain_token(id, TokenNeed::Always).await?;
        self.get_connection(id).await
    }

    /// Frees the uniqueness claim "client + account + user → connection" if `owner` still
    /// holds it: a claim another connection won meanwhile (a concurrent callback of the same
    /// user) stays with it.
    pub(crate) async fn release_identity(&self, key: &str, owner: &str) -> Result<(), ApiError> {
        let Some(item) = self
            .store
            .get_item(ItemKind::Identity, key, self.now_unix())
            .await?
        else {
            return Ok(());
        };
        if item.value["connection_id"].as_str() == Some(owner) {
            // Conditional on the version read: a claim taken over in between is not ours.
            self.store
                .delete_item(ItemKind::Identity, key, Some(item.version))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorCode;

    fn status(s: ConnectionStatus) -> Filter<'static> {
        Filter {
            status: Some(s),
            end_user_id: None,
        }
    }

    const NONE: Filter<'static> = Filter {
        status: None,
        end_user_id: None,
    };

    #[test]
    fn a_cursor_round_trips_with_its_status() {
        let c = encode_cursor("conn_0123abcd", status(ConnectionStatus::Active));
        assert_eq!(
            decode_cursor(&c, status(ConnectionStatus::Active)).unwrap(),
            "conn_0123abcd"
        );
        let c = encode_cursor("conn_b", NONE);
        assert_eq!(decode_cursor(&c, NONE).unwrap(), "conn_b");
    }

    #[test]
    fn a_cursor_belongs_to_its_end_user() {
        let alice = Filter {
            status: None,
            end_user_id: Some("alice@example.com"),
        };
        let bob = Filter {
            end_user_id: Some("bob"),
            ..alice
        };
        let c = encode_cursor("conn_a", alice);
        assert_eq!(decode_cursor(&c, alice).unwrap(), "conn_a");
        // The end user id itself is not in the cursor.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&c)
            .unwrap();
        assert!(!String::from_utf8(raw).unwrap().contains("alice"));
        for other in [bob, NONE] {
            let err = decode_cursor(&c, other).unwrap_err();
            assert_eq!(err.code, ErrorCode::ValidationFailed);
        }
        assert!(decode_cursor(&encode_cursor("conn_a", NONE), alice).is_err());
    }

    #[test]
    fn a_tampered_cursor_is_a_validation_error() {
        let good = encode_cursor("conn_0123abcd", NONE);
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let mut flipped = good.clone().into_bytes();
        flipped[3] ^= 0x01;
        let flipped = String::from_utf8(flipped).unwrap();
        let cases = [
            "not*a*cursor".to_owned(),
            format!("{good}="),
            flipped,
            b64("conn_0123abcd"),
            b64(r#"{"v":1,"after":"","status":null}"#),
            b64(r#"{"v":1,"after":"conn_a\u0000","status":null}"#),
            b64(r#"{"v":2,"after":"conn_a","status":null}"#),
            b64(r#"{"v":1,"after":"conn_a","status":null,"x":1}"#),
            b64(r#"{"v":1,"after":"conn_a","status":"active"}"#),
        ];
        for cursor in cases {
            let err = decode_cursor(&cursor, NONE).expect_err(&cursor);
            assert_eq!(err.status.as_u16(), 400, "{cursor}");
            assert_eq!(err.code, ErrorCode::ValidationFailed, "{cursor}");
        }
        // A cursor of an unfiltered listing does not continue a filtered one.
        assert!(decode_cursor(&good, status(ConnectionStatus::Active)).is_err());
    }
}

//! Secrets Manager: one secret per connection (tokens and, for BYO apps, client credentials),
//! plus the connector's own secret.

//! AWS adapters: Secrets Manager for credentials, DynamoDB for connection records and the
//! small conditional records, EventBridge for events. They honour the standard SDK
//! environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials), which is how tests point them
//! at moto.
//!
//! DynamoDB layout (one table, `pk`/`sk` strings):
//! - connection: `pk = CONN#{id}`, `sk = CONN`, `kind`, `id`, `status`, `version`, `body`
//!   (JSON), and while it is due for refreshes `refresh_shard = "due"` + `next_refresh_at`, the
//!   keys of the sparse `next-refresh-index`; always `list_shard` and `list_status`, the keys of
//!   the listing indexes below; `list_end_user` when the connection has an `end_user.id`;
//! - small records: `pk = {KIND}#{key}`, `sk = ITEM`, `value` (JSON), `version`, `expires_at`,
//!   and `ttl` (same as `expires_at`, the table's TTL attribute).
//!
//! Listing (`GET /connections`), ordered by connection id (byte order, the same as the local
//! store's `ORDER BY id`), served by two sparse GSIs that only connection records carry keys
//! for (small records never appear in them):
//! - `list-index`: hash `list_shard` (`"0"`..`"7"`, from a hash of the id, so writes spread over
//!   [`LIST_SHARDS`] partitions and none is hot), range `id`;
//! - `list-status-index`: hash `list_status = "{status}#{shard}"`, range `id`: `?status=active`
//!   is a key condition on 8 partitions of that status only, never a read of the others.
//!
//! A page queries every shard with `id > :after` (a key condition: a seek, no matter how deep
//! the page is) and a small `Limit`, merges the shards' pages in id order, and fetches more
//! from a shard (with DynamoDB's `LastEvaluatedKey` as `ExclusiveStartKey`) only when its
//! buffer runs out before the merge is done. The cost of a page is about `LIST_SHARDS` queries
//! and 1.5 × `limit` items read, flat in the table's size and in the page's depth. The
//! position between pages is the last id returned (the service wraps it in its opaque cursor):
//! since every shard is ordered by id, that one id is each shard's resume point.
//!
//! `?end_user_id=`: a third sparse GSI, `list-end-user-index`, hash `list_end_user` (the end
//! user id; one end user's connections are few, so no shards), range `id`, written only for
//! records with an `end_user.id`. A page is one query (`id > :after`) in that partition; with
//! `?status=` too, the status is a filter within the partition (DynamoDB reads, and bills, the
//! end user's other connections as well, a handful), and the query continues until the page is
//! full or the partition ends.
//!
//! Records written before these indexes existed get `list_shard`/`list_status` on their next
//! write; until then they are not listed (a one-off backfill rewrites them, see the report).

use super::sdk::{classify, own_retry_partition};
use crate::ports::{SecretStore, StoreResult};
use crate::secret::SecretString;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;

// ---------------------------------------------------------------------------------------------
// Secrets Manager

#[derive(Clone, Debug)]
pub struct AwsSecretStore {
    client: aws_sdk_secretsmanager::Client,
}

impl AwsSecretStore {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(sdk)
                    .retry_partition(own_retry_partition("secretsmanager"))
                    .build(),
            ),
        }
    }

    /// A new current version of an existing secret.
    async fn put_version(
        &self,
        name: &str,
        value: &SecretString,
        token: &str,
    ) -> Result<(), SdkError<PutSecretValueError, HttpResponse>> {
        self.client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose())
            .client_request_token(token)
            .send()
            .await
            .map(|_| ())
    }
}

/// Secrets Manager wants a 32–64 character `ClientRequestToken`; derive one deterministically.
fn client_request_token(token: &str) -> String {
    let hex = crate::secret::sha256_hex(token);
    hex[..48].to_owned()
}

#[async_trait]
impl SecretStore for AwsSecretStore {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretString>> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.secret_string.map(SecretString::new)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify("GetSecretValue", &e)),
        }
    }

    async fn put_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<()> {
        let token = client_request_token(request_token);
        let not_found = |e: &SdkError<_, _>| {
            e.as_service_error()
                .is_some_and(|s: &PutSecretValueError| s.is_resource_not_found_exception())
        };
        match self.put_version(name, value, &token).await {
            Err(e) if not_found(&e) => {}
            other => return other.map_err(|e| classify("PutSecretValue", &e)),
        }
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value.expose())
            .client_request_token(&token)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Lost a race with another creator: write a version on top.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                self.put_version(name, value, &token)
                    .await
                    .map_err(|e| classify("PutSecretValue", &e))
            }
            Err(e) => Err(classify("CreateSecret", &e)),
        }
    }

    async fn update_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<bool> {
        match self
            .put_version(name, value, &client_request_token(request_token))
            .await
        {
            Ok(()) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("PutSecretValue", &e)),
        }
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("DeleteSecret", &e)),
        }
    }
}

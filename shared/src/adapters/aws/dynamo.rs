//! DynamoDB: connection records and the small conditional records (sessions, states,
//! leases, idempotency, identities, webhook deliveries) in one table.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValue;

use super::dynamo_items::*;
use super::sdk::{classify, own_retry_partition};
use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::ports::{ConnectionStore, Item, ItemKind, SWEPT_ITEM_GRACE_SECS, StoreResult};

// ---------------------------------------------------------------------------------------------
// DynamoDB

#[derive(Clone, Debug)]
pub struct DynamoConnectionStore {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
}

pub(super) fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl ConnectionStore for DynamoConnectionStore {
    async fn get_connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(connection_pk(id)))
            .key("sk", s("CONN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", &e))?;
        out.item.as_ref().map(record_from).transpose()
    }

    async fn put_connection(
        &self,
        record: &ConnectionRecord,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        let version = expected.map_or(1, |v| v + 1);
        let item = connection_item(record, version)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(v)),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("PutItem", &e)),
        }
    }

    async fn delete_connection(&self, id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(connection_pk(id)))
            .key("sk", s("CONN"))
            .send()
            .await
            .map_err(|e| classify("DeleteItem", &e))?;
        Ok(())
    }

    async fn list_connections(
        &self,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        Ok(self.list_page(status, after_id, limit).await?.0)
    }

    async fn list_end_user_connections(
        &self,
        end_user_id: &str,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        Ok(self
            .list_end_user_page(end_user_id, status, after_id, limit)
            .await?
            .0)
    }

    async fn due_connections(
        &self,
        due_by: i64,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        self.query_due_index(DUE_SHARD.to_owned(), due_by, limit, |attrs| {
            record_from(attrs).map(Some)
        })
        .await
    }

    async fn get_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(item_pk(kind, key)))
            .key("sk", s("ITEM"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", &e))?;
        Ok(out
            .item
            .as_ref()
            .map(item_from)
            .transpose()?
            .filter(|i| is_live(i, now)))
    }

    async fn create_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        // UpdateItem rather than PutItem so the version keeps growing over an expired item.
        let update = self
            .item_update(kind, key, value)
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_exists(expires_at) AND expires_at <= :now)",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now));
        let (update, expiry) = with_expiry(update, kind, expires_at);
        let update = update.update_expression(format!(
            "SET #value = :value, #version = if_not_exists(#version, :zero) + :one{expiry}"
        ));
        conditional(update.send().await)
    }

    async fn replace_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        expected: u64,
    ) -> StoreResult<bool> {
        let update = self
            .item_update(kind, key, value)
            .condition_expression("#version = :expected")
            .expression_attribute_values(":expected", n(expected))
            .expression_attribute_values(":one", n(1));
        let (update, expiry) = with_expiry(update, kind, expires_at);
        let update = update.update_expression(format!(
            "SET #value = :value, #version = #version + :one{expiry}"
        ));
        conditional(update.send().await)
    }

    async fn take_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(item_pk(kind, key)))
            .key("sk", s("ITEM"))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .attributes
                .as_ref()
                .map(item_from)
                .transpose()?
                .filter(|i| is_live(i, now))),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(classify("DeleteItem", &e)),
        }
    }

    async fn delete_item(
        &self,
        kind: ItemKind,
        key: &str,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(item_pk(kind, key)))
            .key("sk", s("ITEM"))
            .return_values(ReturnValue::AllOld);
        let delete = match expected {
            Some(v) => delete
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(v)),
            None => delete,
        };
        match delete.send().await {
            Ok(out) => Ok(out.attributes.is_some_and(|a| !a.is_empty())),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("DeleteItem", &e)),
        }
    }

    async fn expired_items(
        &self,
        kind: ItemKind,
        expired_by: i64,
        limit: usize,
    ) -> StoreResult<Vec<(String, Item)>> {
        // One partition of the due index per swept kind, by expiry.
        if !kind.is_swept() {
            return Ok(Vec::new());
        }
        let prefix = format!("{}#", kind.prefix());
        self.query_due_index(expiry_shard(kind), expired_by, limit, |attrs| {
            let Some(key) = get_s(attrs, "pk").and_then(|pk| pk.strip_prefix(&prefix)) else {
                return Ok(None);
            };
            Ok(Some((key.to_owned(), item_from(attrs)?)))
        })
        .await
    }
}

impl DynamoConnectionStore {
    /// Up to `limit` items of one partition (`shard`) of `next-refresh-index` due by `by`, in
    /// order, read by `read` (which may skip an item), page after page.
    async fn query_due_index<T>(
        &self,
        shard: String,
        by: i64,
        limit: usize,
        read: impl Fn(&Attrs) -> StoreResult<Option<T>>,
    ) -> StoreResult<Vec<T>> {
        let mut found = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(NEXT_REFRESH_INDEX)
                .key_condition_expression("refresh_shard = :shard AND next_refresh_at <= :by")
                .expression_attribute_values(":shard", s(shard.clone()))
                .expression_attribute_values(":by", n(by))
                .limit((limit - found.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query", &e))?;
            for attrs in out.items() {
                found.extend(read(attrs)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && found.len() < limit => start = Some(key),
                _ => return Ok(found),
            }
        }
    }

    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .retry_partition(own_retry_partition("dynamodb"))
                    .build(),
            ),
            table: table.into(),
        }
    }
}

impl DynamoConnectionStore {
    /// An UpdateItem of a small record's value (`#value`, `#version` named): the caller adds
    /// its condition and update expression.
    fn item_update(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
    ) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(item_pk(kind, key)))
            .key("sk", s("ITEM"))
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":value", s(value.to_string()))
    }
}

/// A conditional UpdateItem's outcome: written, or its condition did not hold.
fn conditional<O, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<O, SdkError<E, R>>,
) -> StoreResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(classify("UpdateItem", &e)),
    }
}

/// The expiry part of an item write (after its `SET` of value and version), with its values:
/// `expires_at` and the TTL attribute; for a swept kind also its place in the sweep's index
/// (`refresh_shard` + `next_refresh_at`) and a TTL [`SWEPT_ITEM_GRACE_SECS`] later. Without an
/// expiry all of them are removed.
fn with_expiry(
    update: UpdateItemFluentBuilder,
    kind: ItemKind,
    expires_at: Option<i64>,
) -> (UpdateItemFluentBuilder, &'static str) {
    let update = update.expression_attribute_names("#ttl", "ttl");
    match expires_at {
        Some(exp) if kind.is_swept() => (
            update
                .expression_attribute_values(":exp", n(exp))
                .expression_attribute_values(":ttl", n(exp + SWEPT_ITEM_GRACE_SECS))
                .expression_attribute_values(":shard", s(expiry_shard(kind))),
            ", expires_at = :exp, #ttl = :ttl, refresh_shard = :shard, next_refresh_at = :exp",
        ),
        Some(exp) => (
            update.expression_attribute_values(":exp", n(exp)),
            ", expires_at = :exp, #ttl = :exp",
        ),
        None if kind.is_swept() => (
            update,
            " REMOVE expires_at, #ttl, refresh_shard, next_refresh_at",
        ),
        None => (update, " REMOVE expires_at, #ttl"),
    }
}

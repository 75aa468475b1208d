//! DynamoDB: connection records and the small conditional records (sessions, states,
//! leases, idempotency, identities, webhook deliveries) in one table.
//!
//! DynamoDB layout (one table, `pk`/`sk` strings):
//! - connection: `pk = CONN#{id}`, `sk = CONN`, `kind`, `id`, `status`, `version`, `body`
//!   (JSON), and while it is due for refreshes `refresh_shard = "due"` + `next_refresh_at`, the
//!   keys of the sparse `next-refresh-index`; always `list_shard` and `list_status`, the keys of
//!   the listing indexes below; `list_end_user` when the connection has an `end_user.id`;
//! - small records: `pk = {KIND}#{key}`, `sk = ITEM`, `value` (JSON), `version`, `expires_at`,
//!   and `ttl` (same as `expires_at`, the table's TTL attribute).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::dynamo_listing::*;
use super::{classify, own_retry_partition};
use crate::domain::error::StoreError;
use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::ports::{ConnectionStore, Item, ItemKind, StoreResult};

pub const NEXT_REFRESH_INDEX: &str = "next-refresh-index";

pub(super) const DUE_SHARD: &str = "due";

// ---------------------------------------------------------------------------------------------
// DynamoDB

#[derive(Clone, Debug)]
pub struct DynamoConnectionStore {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
}

pub(super) type Attrs = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Attrs, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn get_n(item: &Attrs, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub(super) fn connection_pk(id: &str) -> String {
    format!("CONN#{id}")
}

pub(super) fn item_pk(kind: ItemKind, key: &str) -> String {
    format!("{}#{key}", kind.prefix())
}

pub(super) fn record_from(item: &Attrs) -> StoreResult<ConnectionRecord> {
    let body = get_s(item, "body")
        .ok_or_else(|| StoreError::Other("connection item without body".into()))?;
    let mut rec: ConnectionRecord = serde_json::from_str(body)
        .map_err(|e| StoreError::Other(format!("corrupt connection: {e}")))?;
    rec.version = get_n(item, "version").unwrap_or(0) as u64;
    Ok(rec)
}

pub(super) fn item_from(item: &Attrs) -> StoreResult<Item> {
    let value =
        get_s(item, "value").ok_or_else(|| StoreError::Other("item without value".into()))?;
    Ok(Item {
        value: serde_json::from_str(value)
            .map_err(|e| StoreError::Other(format!("corrupt item: {e}")))?,
        version: get_n(item, "version").unwrap_or(0) as u64,
        expires_at: get_n(item, "expires_at"),
    })
}

pub(super) fn is_live(item: &Item, now: i64) -> bool {
    item.expires_at.is_none_or(|exp| exp > now)
}

/// The DynamoDB item of a connection record at `version`: keys, the attributes the indexes
/// use (`list_shard`/`list_status` always, `refresh_shard`/`next_refresh_at` while due) and
/// the record as JSON. Public so bulk loaders (the bench's seeding) write exactly what
/// `put_connection` writes.
pub fn connection_item(
    record: &ConnectionRecord,
    version: u64,
) -> StoreResult<HashMap<String, AttributeValue>> {
    let mut stored = record.clone();
    stored.version = version;
    let body = serde_json::to_string(&stored).map_err(|e| StoreError::Other(e.to_string()))?;
    let shard = list_shard(&record.id);
    let mut item: Attrs = HashMap::from([
        ("pk".into(), s(connection_pk(&record.id))),
        ("sk".into(), s("CONN")),
        ("kind".into(), s("CONN")),
        ("id".into(), s(&record.id)),
        ("status".into(), s(record.status.as_str())),
        ("version".into(), n(version)),
        ("body".into(), s(body)),
        // The listing indexes' keys (sparse: only connection records carry them).
        ("list_shard".into(), s(shard.to_string())),
        (
            "list_status".into(),
            s(list_status_key(record.status, shard)),
        ),
    ]);
    if let Some(end_user_id) = record.end_user.as_ref().and_then(|u| u.id.as_deref()) {
        item.insert("list_end_user".into(), s(end_user_id));
    }
    if let Some(at) = record.next_refresh_at {
        item.insert("refresh_shard".into(), s(DUE_SHARD));
        item.insert("next_refresh_at".into(), n(at));
    }
    Ok(item)
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
        let mut records = Vec::new();
        let mut start: Option<Attrs> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(NEXT_REFRESH_INDEX)
                .key_condition_expression("refresh_shard = :due AND next_refresh_at <= :by")
                .expression_attribute_values(":due", s(DUE_SHARD))
                .expression_attribute_values(":by", n(due_by))
                .limit((limit - records.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query", &e))?;
            for item in out.items() {
                records.push(record_from(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && records.len() < limit => start = Some(key),
                _ => return Ok(records),
            }
        }
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
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(item_pk(kind, key)))
            .key("sk", s("ITEM"))
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_exists(expires_at) AND expires_at <= :now)",
            )
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":value", s(value.to_string()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now));
        let update = match expires_at {
            Some(exp) => update
                .update_expression(
                    "SET #value = :value, #version = if_not_exists(#version, :zero) + :one, expires_at = :exp, #ttl = :exp",
                )
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":exp", n(exp)),
            None => update.update_expression(
                "SET #value = :value, #version = if_not_exists(#version, :zero) + :one REMOVE expires_at, #ttl",
            )
            .expression_attribute_names("#ttl", "ttl"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("UpdateItem", &e)),
        }
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
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(item_pk(kind, key)))
            .key("sk", s("ITEM"))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":value", s(value.to_string()))
            .expression_attribute_values(":expected", n(expected))
            .expression_attribute_values(":one", n(1));
        let update = match expires_at {
            Some(exp) => update
                .update_expression("SET #value = :value, #version = #version + :one, expires_at = :exp, #ttl = :exp")
                .expression_attribute_values(":exp", n(exp)),
            None => update.update_expression("SET #value = :value, #version = #version + :one REMOVE expires_at, #ttl"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify("UpdateItem", &e)),
        }
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
}

impl DynamoConnectionStore {
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

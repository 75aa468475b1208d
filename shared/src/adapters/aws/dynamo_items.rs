//! The table's item layout: how records become DynamoDB items and back.
//!
//! DynamoDB layout (one table, `pk`/`sk` strings):
//! - connection: `pk = CONN#{id}`, `sk = CONN`, `kind`, `id`, `status`, `version`, `body`
//!   (JSON), and while it is due for refreshes `refresh_shard = "due"` + `next_refresh_at`, the
//!   keys of the sparse `next-refresh-index`; always `list_shard` and `list_status`, the keys of
//!   the listing indexes below; `list_end_user` when the connection has an `end_user.id`;
//! - small records: `pk = {KIND}#{key}`, `sk = ITEM`, `value` (JSON), `version`, `expires_at`,
//!   and `ttl` (same as `expires_at`, the table's TTL attribute). Items of a swept kind
//!   (`ItemKind::is_swept`, e.g. the tracking of parked connect-session secrets) also carry
//!   `refresh_shard = "expiry#{KIND}"` + `next_refresh_at = expires_at`, which puts them in
//!   their own partition of the sparse `next-refresh-index` (the sweep finds the expired ones
//!   by a query, as it finds due connections), and their `ttl` is `SWEPT_ITEM_GRACE_SECS` later
//!   than `expires_at`, so DynamoDB's TTL cannot remove one before the sweep has seen it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::error::StoreError;
use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::ports::{Item, ItemKind, StoreResult};

pub const NEXT_REFRESH_INDEX: &str = "next-refresh-index";

pub(super) const DUE_SHARD: &str = "due";

/// The partition of `next-refresh-index` holding a swept kind's items, by expiry.
pub(super) fn expiry_shard(kind: ItemKind) -> String {
    format!("expiry#{}", kind.prefix())
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

/// Connection records by `list_shard`, ordered by `id`.
pub const LIST_INDEX: &str = "list-index";

/// Connection records by `list_status` (`"{status}#{shard}"`), ordered by `id`.
pub const LIST_STATUS_INDEX: &str = "list-status-index";

/// Connection records with an end user, by `list_end_user` (the end user id), ordered by `id`.
pub const LIST_END_USER_INDEX: &str = "list-end-user-index";

/// How many partitions the listing indexes spread connection records over. Fixed: changing it
/// means rewriting every record's `list_shard`/`list_status`.
pub const LIST_SHARDS: u8 = 8;

/// The listing shard of a connection: a stable hash of its id (never changes for a record).
pub fn list_shard(id: &str) -> u8 {
    let hex = crate::secret::sha256_hex(id);
    let first = u8::from_str_radix(&hex[..2], 16).unwrap_or(0);
    first % LIST_SHARDS
}

pub(super) fn list_status_key(status: ConnectionStatus, shard: u8) -> String {
    format!("{}#{shard}", status.as_str())
}

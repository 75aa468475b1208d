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

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;

use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::error::StoreError;
use crate::ports::{ConnectionStore, EventBus, Item, ItemKind, SecretStore, StoreResult};
use crate::secret::SecretString;

pub const NEXT_REFRESH_INDEX: &str = "next-refresh-index";
/// Connection records by `list_shard`, ordered by `id`.
pub const LIST_INDEX: &str = "list-index";
/// Connection records by `list_status` (`"{status}#{shard}"`), ordered by `id`.
pub const LIST_STATUS_INDEX: &str = "list-status-index";
/// Connection records with an end user, by `list_end_user` (the end user id), ordered by `id`.
pub const LIST_END_USER_INDEX: &str = "list-end-user-index";
/// How many partitions the listing indexes spread connection records over. Fixed: changing it
/// means rewriting every record's `list_shard`/`list_status`.
pub const LIST_SHARDS: u8 = 8;
const DUE_SHARD: &str = "due";
pub const EVENT_SOURCE: &str = "zoom-connector";

/// Loads the shared SDK configuration once per container: bounded timeouts, the standard
/// retry mode (which retries throttling with back-off), the SDK's HTTPS client on
/// compiled-in roots rather than the system's CA bundle (`aws_http`), and the region and
/// credentials of the environment when it holds them (`aws_env`).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    super::aws_env::from_environment(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .http_client(super::aws_http::https_client_from_env())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(crate::deadline::AWS_ATTEMPT_TIMEOUT)
                .operation_timeout(crate::deadline::AWS_OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// The SDK's retry budget (a token bucket that each retry draws from) is shared by every
/// client of a partition in the process. Each adapter gets its own, as each Lambda container
/// has its own: a second connector in one process (the local stack's tests, a benchmark)
/// stands for another container and must not spend this one's retries.
fn own_retry_partition(service: &str) -> aws_sdk_dynamodb::config::retry::RetryPartition {
    aws_sdk_dynamodb::config::retry::RetryPartition::new(format!(
        "{service}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Classifies an SDK error: throttling, 5xx, timeouts and dispatch failures are transient.
fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    what: &str,
    err: &SdkError<E, R>,
) -> StoreError {
    let transient = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code == "ProvisionedThroughputExceededException"
                || code == "RequestLimitExceeded"
                || code == "InternalServiceError"
                || code == "InternalServerError"
                || code == "InternalFailure"
                || code == "ServiceUnavailable"
        }
        _ => false,
    };
    let code = err.code().unwrap_or("unknown");
    let message = format!("{what}: {code}");
    if transient {
        StoreError::Transient(message)
    } else {
        StoreError::Other(message)
    }
}

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

// ---------------------------------------------------------------------------------------------
// DynamoDB

#[derive(Clone, Debug)]
pub struct DynamoConnectionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Attrs, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Attrs, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn connection_pk(id: &str) -> String {
    format!("CONN#{id}")
}

fn item_pk(kind: ItemKind, key: &str) -> String {
    format!("{}#{key}", kind.prefix())
}

fn record_from(item: &Attrs) -> StoreResult<ConnectionRecord> {
    let body = get_s(item, "body")
        .ok_or_else(|| StoreError::Other("connection item without body".into()))?;
    let mut rec: ConnectionRecord = serde_json::from_str(body)
        .map_err(|e| StoreError::Other(format!("corrupt connection: {e}")))?;
    rec.version = get_n(item, "version").unwrap_or(0) as u64;
    Ok(rec)
}

fn item_from(item: &Attrs) -> StoreResult<Item> {
    let value =
        get_s(item, "value").ok_or_else(|| StoreError::Other("item without value".into()))?;
    Ok(Item {
        value: serde_json::from_str(value)
            .map_err(|e| StoreError::Other(format!("corrupt item: {e}")))?,
        version: get_n(item, "version").unwrap_or(0) as u64,
        expires_at: get_n(item, "expires_at"),
    })
}

fn is_live(item: &Item, now: i64) -> bool {
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

/// The listing shard of a connection: a stable hash of its id (never changes for a record).
pub fn list_shard(id: &str) -> u8 {
    let hex = crate::secret::sha256_hex(id);
    let first = u8::from_str_radix(&hex[..2], 16).unwrap_or(0);
    first % LIST_SHARDS
}

fn list_status_key(status: ConnectionStatus, shard: u8) -> String {
    format!("{}#{shard}", status.as_str())
}

/// Items per shard query: the shard's expected share of the page plus half again and a little
/// (ids are uniform over shards), so most pages need one query per shard.
fn list_shard_limit(limit: usize) -> usize {
    let share = limit.div_ceil(usize::from(LIST_SHARDS));
    (share + share / 2 + 2).min(limit)
}

/// What one listing page cost in DynamoDB: queries sent and items read (`ScannedCount`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListCost {
    pub queries: u64,
    pub items_read: u64,
}

/// One shard's state during a page merge.
struct ShardPage {
    shard: u8,
    buffered: std::collections::VecDeque<ConnectionRecord>,
    resume: Option<Attrs>,
    done: bool,
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

    /// A page of connections (ordered by id, after `after_id`, optionally of one status) from
    /// the listing indexes, with what it cost.
    pub async fn list_page(
        &self,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<ConnectionRecord>, ListCost)> {
        let mut cost = ListCost::default();
        if limit == 0 {
            return Ok((Vec::new(), cost));
        }
        // An empty position is the start (DynamoDB refuses an empty key condition value).
        let after = after_id.filter(|a| !a.is_empty());
        let per_shard = list_shard_limit(limit);
        let mut shards: Vec<ShardPage> = (0..LIST_SHARDS)
            .map(|shard| ShardPage {
                shard,
                buffered: std::collections::VecDeque::new(),
                resume: None,
                done: false,
            })
            .collect();
        let mut records = Vec::with_capacity(limit);
        while records.len() < limit {
            // A shard with nothing buffered and more to read might hold the next smallest id:
            // fetch its next page before picking (all such shards at once).
            let pending: Vec<usize> = shards
                .iter()
                .enumerate()
                .filter(|(_, p)| p.buffered.is_empty() && !p.done)
                .map(|(i, _)| i)
                .collect();
            // The page's first query goes alone: when DynamoDB is failing, one query (and its
            // one retry) finds out, not eight, whose retries would drain the SDK's retry
            // budget for every other call of this container.
            let batches = if cost.queries == 0 && pending.len() > 1 {
                vec![pending[..1].to_vec(), pending[1..].to_vec()]
            } else {
                vec![pending]
            };
            for batch in batches.into_iter().filter(|b| !b.is_empty()) {
                let fetches = batch.iter().map(|&i| {
                    let page = &shards[i];
                    self.query_shard(status, after, page.shard, page.resume.clone(), per_shard)
                });
                let fetched = futures::future::try_join_all(fetches).await?;
                for (i, (items, next, read)) in batch.into_iter().zip(fetched) {
                    cost.queries += 1;
                    cost.items_read += read;
                    let page = &mut shards[i];
                    page.buffered.extend(items);
                    page.done = next.is_none();
                    page.resume = next;
                }
            }
            let smallest = shards
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.buffered.front().map(|r| (i, r.id.as_str())))
                .min_by(|a, b| a.1.cmp(b.1))
                .map(|(i, _)| i);
            match smallest.and_then(|i| shards[i].buffered.pop_front()) {
                Some(record) => records.push(record),
                None => break,
            }
        }
        Ok((records, cost))
    }

    /// One query of one shard of a listing index: records, the `LastEvaluatedKey` to resume
    /// from (`None`: the shard has no more), and the items DynamoDB read.
    async fn query_shard(
        &self,
        status: Option<ConnectionStatus>,
        after: Option<&str>,
        shard: u8,
        resume: Option<Attrs>,
        limit: usize,
    ) -> StoreResult<(Vec<ConnectionRecord>, Option<Attrs>, u64)> {
        let (index, hash_key, hash_value) = match status {
            Some(st) => (LIST_STATUS_INDEX, "list_status", list_status_key(st, shard)),
            None => (LIST_INDEX, "list_shard", shard.to_string()),
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#h", hash_key)
            .expression_attribute_values(":h", s(hash_value))
            .limit(limit.clamp(1, 1000) as i32)
            .set_exclusive_start_key(resume);
        let query = match after {
            Some(after) => query
                .key_condition_expression("#h = :h AND #id > :after")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("#h = :h"),
        };
        // A page queries every shard at once: each gets one retry, so one listing during an
        // outage cannot spend the container's whole SDK retry quota (shared by every call).
        let out = query
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(2)),
            )
            .send()
            .await
            .map_err(|e| classify("Query", &e))?;
        let records = out
            .items()
            .iter()
            .map(record_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let read = out.scanned_count().max(out.count()).max(0) as u64;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((records, next, read))
    }
}

impl DynamoConnectionStore {
    /// A page of one end user's connections (see the module docs): one partition of
    /// `list-end-user-index`, read until the page is full or the partition ends.
    pub async fn list_end_user_page(
        &self,
        end_user_id: &str,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<ConnectionRecord>, ListCost)> {
        let mut cost = ListCost::default();
        let mut records = Vec::new();
        let after = after_id.filter(|a| !a.is_empty());
        let mut resume: Option<Attrs> = None;
        while records.len() < limit {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LIST_END_USER_INDEX)
                .expression_attribute_names("#h", "list_end_user")
                .expression_attribute_values(":h", s(end_user_id))
                // Without a status filter every item read is returned: ask for exactly the
                // rest of the page. With one, read ahead a little more.
                .limit(
                    (limit - records.len()).clamp(1, 1000) as i32
                        + i32::from(status.is_some()) * 10,
                )
                .set_exclusive_start_key(resume.take());
            let query = match after {
                Some(after) => query
                    .key_condition_expression("#h = :h AND #id > :after")
                    .expression_attribute_names("#id", "id")
                    .expression_attribute_values(":after", s(after)),
                None => query.key_condition_expression("#h = :h"),
            };
            let query = match status {
                Some(st) => query
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(st.as_str())),
                None => query,
            };
            let out = query.send().await.map_err(|e| classify("Query", &e))?;
            cost.queries += 1;
            cost.items_read += out.scanned_count().max(out.count()).max(0) as u64;
            for item in out.items() {
                if records.len() < limit {
                    records.push(record_from(item)?);
                }
            }
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(key) => resume = Some(key),
                None => break,
            }
        }
        Ok((records, cost))
    }
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
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

// ---------------------------------------------------------------------------------------------
// EventBridge

#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(sdk: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(sdk)
                    .retry_partition(own_retry_partition("eventbridge"))
                    .build(),
            ),
            bus_name: bus_name.into(),
        }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> StoreResult<()> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify("PutEvents", &e))?;
        if out.failed_entry_count > 0 {
            let code = out
                .entries()
                .iter()
                .find_map(|e| e.error_code().map(str::to_owned))
                .unwrap_or_default();
            return Err(StoreError::Transient(format!(
                "PutEvents rejected the event: {code}"
            )));
        }
        Ok(())
    }
}

//! AWS adapters: Secrets Manager for credentials, DynamoDB for connection records and the
//! small conditional records, EventBridge for events. They honour the standard SDK
//! environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials), which is how tests point them
//! at moto.
//!
//! DynamoDB layout (one table, `pk`/`sk` strings):
//! - connection: `pk = CONN#{id}`, `sk = CONN`, `kind`, `status`, `version`, `body` (JSON), and
//!   while it is due for refreshes `refresh_shard = "due"` + `next_refresh_at`, the keys of the
//!   sparse `next-refresh-index`;
//! - small records: `pk = {KIND}#{key}`, `sk = ITEM`, `value` (JSON), `version`, `expires_at`,
//!   and `ttl` (same as `expires_at`, the table's TTL attribute).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use base64::Engine;

use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::error::StoreError;
use crate::ports::{ConnectionStore, EventBus, Item, ItemKind, SecretStore, StoreResult};
use crate::secret::SecretString;

pub const NEXT_REFRESH_INDEX: &str = "next-refresh-index";
const DUE_SHARD: &str = "due";
pub const EVENT_SOURCE: &str = "zoom-connector";

/// Loads the shared SDK configuration once per container: bounded timeouts, and the standard
/// retry mode (which retries throttling with back-off).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
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
            client: aws_sdk_secretsmanager::Client::new(sdk),
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

impl DynamoConnectionStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(sdk),
            table: table.into(),
        }
    }

    fn encode_cursor(key: &Attrs) -> Option<String> {
        get_s(key, "pk").map(|pk| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pk))
    }

    fn decode_cursor(cursor: &str) -> StoreResult<Attrs> {
        let pk = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|pk| pk.starts_with("CONN#"))
            .ok_or_else(|| StoreError::Other("invalid cursor".into()))?;
        Ok(HashMap::from([
            ("pk".into(), s(pk)),
            ("sk".into(), s("CONN")),
        ]))
    }

    /// A page of connections using DynamoDB's own pagination (the cursor is opaque).
    pub async fn scan_connections(
        &self,
        status: Option<ConnectionStatus>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<(Vec<ConnectionRecord>, Option<String>)> {
        let mut start = cursor.map(Self::decode_cursor).transpose()?;
        let mut records = Vec::new();
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .limit((limit * 4).clamp(25, 1000) as i32)
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_values(":conn", s("CONN"));
            scan = match status {
                Some(st) => scan
                    .filter_expression("#kind = :conn AND #status = :status")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":status", s(st.as_str())),
                None => scan.filter_expression("#kind = :conn"),
            };
            let out = scan
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Scan", &e))?;
            for item in out.items() {
                records.push(record_from(item)?);
                if records.len() == limit {
                    let next = Self::encode_cursor(item);
                    return Ok((records, next));
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok((records, None)),
            }
        }
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
        let mut stored = record.clone();
        stored.version = version;
        let body = serde_json::to_string(&stored).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut item: Attrs = HashMap::from([
            ("pk".into(), s(connection_pk(&record.id))),
            ("sk".into(), s("CONN")),
            ("kind".into(), s("CONN")),
            ("id".into(), s(&record.id)),
            ("status".into(), s(record.status.as_str())),
            ("version".into(), n(version)),
            ("body".into(), s(body)),
        ]);
        if let Some(at) = record.next_refresh_at {
            item.insert("refresh_shard".into(), s(DUE_SHARD));
            item.insert("next_refresh_at".into(), n(at));
        }
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
        // Stable id order across pages: collect every match, sort, and cut. Listing is an
        // operator/admin call; the refresh sweep never lists (it queries the index).
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = self
                .scan_connections(status, cursor.as_deref(), 500)
                .await?;
            all.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all
            .into_iter()
            .filter(|r| after_id.is_none_or(|after| r.id.as_str() > after))
            .take(limit)
            .collect())
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
            client: aws_sdk_eventbridge::Client::new(sdk),
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

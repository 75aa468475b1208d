//! Listing cost: `GET /connections` pages from the listing indexes on moto. N connection
//! records are seeded with `BatchWriteItem` (the exact items `put_connection` writes, from
//! `connection_item`), at two table sizes, then pages of 100 are read through the adapter:
//! first page, a page 90 % deep, and the same two with `status=active`. DynamoDB calls are
//! counted by the counting proxy in front of moto, items read from the queries' `ScannedCount`
//! (what read units are charged on). For comparison, the pre-index listing's cost: a filtered
//! `Scan` of the whole table (what every page cost before).

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, WriteRequest,
};
use futures::StreamExt;
use time::OffsetDateTime;
use zoom_connector::adapters::aws::DynamoConnectionStore;
use zoom_connector::adapters::aws::dynamo_items::{LIST_INDEX, LIST_STATUS_INDEX};
use zoom_connector::adapters::aws::dynamo_items::{NEXT_REFRESH_INDEX, connection_item};
use zoom_connector::domain::{
    AuthType, ConnectionRecord, ConnectionStatus, ZoomIdentity, new_connection_id,
};

use crate::BenchError;
use crate::counting_proxy::CountingProxy;

pub const PAGE: usize = 100;

/// One measured page.
#[derive(Debug, Clone)]
pub struct PageCost {
    pub table_size: usize,
    pub page: &'static str,
    pub returned: usize,
    /// Requests that reached moto during the page (all `Query`).
    pub calls: usize,
    pub items_read: u64,
    /// Median of the runs, on moto (whose `Query` walks the whole table in Python: the time
    /// grows with the table there, unlike DynamoDB's).
    pub median_ms: f64,
}

/// The pre-index listing at one table size: one filtered scan of the whole table.
#[derive(Debug, Clone)]
pub struct ScanCost {
    pub table_size: usize,
    pub calls: usize,
    pub items_read: u64,
    pub secs: f64,
}

#[derive(Debug, Clone)]
pub struct ListingResult {
    pub sizes: Vec<usize>,
    pub active_share: f64,
    pub seed_secs: f64,
    pub pages: Vec<PageCost>,
    pub scans: Vec<ScanCost>,
}

/// Every fifth record is `needs_reauth`, the rest `active`.
fn status_of(i: usize) -> ConnectionStatus {
    if i % 5 == 4 {
        ConnectionStatus::NeedsReauth
    } else {
        ConnectionStatus::Active
    }
}

fn record(i: usize, now: OffsetDateTime) -> ConnectionRecord {
    let id = new_connection_id();
    ConnectionRecord {
        zoom: ZoomIdentity {
            user_id: format!("bench-user-{i}"),
            account_id: format!("bench-account-{i}"),
            email: Some(format!("bench-{i}@example.com")),
        },
        id,
        status: status_of(i),
        auth_type: AuthType::PlatformApp,
        client_id: zoom_sim::DEFAULT_CLIENT_ID.to_owned(),
        end_user: None,
        scopes: vec!["meeting:write".into(), "recording:read".into()],
        access_token_expires_at: Some(now),
        last_refreshed_at: Some(now),
        last_error: None,
        created_at: now,
        updated_at: now,
        authorized_at: None,
        consecutive_failures: 0,
        next_refresh_at: Some(now.unix_timestamp() + 3000),
        version: 0,
    }
}

/// The connections table as template.yaml defines it (with the listing indexes).
async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), BenchError> {
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .map_err(|e| BenchError::new(e.to_string()))
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .map_err(|e| BenchError::new(e.to_string()))
    };
    let mut indexes = Vec::new();
    for (name, hash, range) in [
        (NEXT_REFRESH_INDEX, "refresh_shard", "next_refresh_at"),
        (LIST_INDEX, "list_shard", "id"),
        (LIST_STATUS_INDEX, "list_status", "id"),
    ] {
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| BenchError::new(e.to_string()))?,
        );
    }
    ddb.create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("refresh_shard", ScalarAttributeType::S)?)
        .attribute_definitions(attr("next_refresh_at", ScalarAttributeType::N)?)
        .attribute_definitions(attr("id", ScalarAttributeType::S)?)
        .attribute_definitions(attr("list_shard", ScalarAttributeType::S)?)
        .attribute_definitions(attr("list_status", ScalarAttributeType::S)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .set_global_secondary_indexes(Some(indexes))
        .send()
        .await
        .map_err(|e| BenchError::new(format!("CreateTable: {e:?}")))?;
    Ok(())
}

/// Writes records `from..to` in batches of 25 (retrying what DynamoDB leaves unprocessed).
async fn seed(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    from: usize,
    to: usize,
    ids: &mut Vec<(String, ConnectionStatus)>,
) -> Result<(), BenchError> {
    let now = OffsetDateTime::now_utc();
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(25);
    for i in from..to {
        let rec = record(i, now);
        ids.push((rec.id.clone(), rec.status));
        let item = connection_item(&rec, 1).map_err(|e| BenchError::new(e.to_string()))?;
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| BenchError::new(e.to_string()))?;
        batch.push(WriteRequest::builder().put_request(put).build());
        if batch.len() == 25 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(batches)
        .map(|batch| async move {
            let mut pending = batch;
            for _ in 0..10 {
                let out = ddb
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| BenchError::new(format!("BatchWriteItem: {e:?}")))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    return Ok(());
                }
            }
            Err(BenchError::new("BatchWriteItem left items unprocessed"))
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The pre-index listing: a `Scan` of the whole table keeping connection records.
async fn scan_cost(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    table_size: usize,
) -> Result<ScanCost, BenchError> {
    let started = Instant::now();
    let (mut calls, mut items_read) = (0, 0u64);
    let mut start = None;
    loop {
        let out = ddb
            .scan()
            .table_name(table)
            .limit(1000)
            .filter_expression("#kind = :conn")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(
                ":conn",
                aws_sdk_dynamodb::types::AttributeValue::S("CONN".into()),
            )
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| BenchError::new(format!("Scan: {e:?}")))?;
        calls += 1;
        items_read += out.scanned_count().max(0) as u64;
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(ScanCost {
        table_size,
        calls,
        items_read,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Seeds up to each of `sizes` (ascending) and measures the pages at each size.
pub async fn run(
    moto_endpoint: &str,
    sizes: &[usize],
    rounds: usize,
) -> Result<ListingResult, BenchError> {
    let proxy = CountingProxy::start(moto_endpoint).await?;
    let direct = aws_sdk_dynamodb::Client::new(&crate::moto::sdk_config(moto_endpoint).await);
    let counted_sdk = crate::moto::sdk_config(&proxy.endpoint).await;
    let table = format!(
        "bench-listing-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    create_table(&direct, &table).await?;
    let store = Arc::new(DynamoConnectionStore::new(&counted_sdk, table.clone()));

    let mut ids: Vec<(String, ConnectionStatus)> = Vec::new();
    let mut seed_secs = 0.0;
    let mut pages = Vec::new();
    let mut scans = Vec::new();
    for &size in sizes {
        let seeding = Instant::now();
        let from = ids.len();
        if size > from {
            seed(&direct, &table, from, size, &mut ids).await?;
        }
        seed_secs += seeding.elapsed().as_secs_f64();
        crate::progress(&format!(
            "listing: {size} connections seeded ({seed_secs:.0} s so far)"
        ));

        let mut sorted: Vec<&str> = ids.iter().map(|(id, _)| id.as_str()).collect();
        sorted.sort_unstable();
        let mut active: Vec<&str> = ids
            .iter()
            .filter(|(_, s)| *s == ConnectionStatus::Active)
            .map(|(id, _)| id.as_str())
            .collect();
        active.sort_unstable();
        // 90 % of the way in, leaving at least a full page after it.
        let deep_at = |len: usize| (len * 9 / 10).min(len.saturating_sub(PAGE + 1));
        let deep = sorted[deep_at(sorted.len())].to_owned();
        let deep_active = active[deep_at(active.len())].to_owned();
        let cases: [(&'static str, Option<ConnectionStatus>, Option<String>); 4] = [
            ("first page", None, None),
            ("page 90 % deep", None, Some(deep)),
            (
                "status=active, first page",
                Some(ConnectionStatus::Active),
                None,
            ),
            (
                "status=active, 90 % deep",
                Some(ConnectionStatus::Active),
                Some(deep_active),
            ),
        ];
        for (name, status, after) in cases {
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..rounds.max(1) {
                let from = Instant::now();
                let (records, cost) = store
                    .list_page(status, after.as_deref(), PAGE)
                    .await
                    .map_err(|e| BenchError::new(e.to_string()))?;
                let to = Instant::now();
                times.push((to - from).as_secs_f64() * 1000.0);
                let calls = proxy.calls_between(from, to).len();
                if records.len() != PAGE
                    || records.windows(2).any(|w| w[0].id >= w[1].id)
                    || records
                        .iter()
                        .any(|r| status.is_some_and(|s| s != r.status))
                {
                    return Err(BenchError::new(format!(
                        "listing at {size}, {name}: a wrong page ({} records)",
                        records.len()
                    )));
                }
                last = Some((records.len(), calls, cost.items_read));
            }
            let (returned, calls, items_read) = last.unwrap_or_default();
            pages.push(PageCost {
                table_size: size,
                page: name,
                returned,
                calls,
                items_read,
                median_ms: median(times),
            });
        }
        // The scan baseline only at the smallest size: moto's `Scan` walks the table on every
        // call, so at 100k it would take many minutes; its cost is N items at any size.
        if scans.is_empty() {
            crate::progress(&format!("listing: pages at {size} measured; full scan"));
            scans.push(scan_cost(&direct, &table, size).await?);
        }
    }
    let active = ids
        .iter()
        .filter(|(_, s)| *s == ConnectionStatus::Active)
        .count();
    Ok(ListingResult {
        sizes: sizes.to_vec(),
        active_share: active as f64 / ids.len().max(1) as f64,
        seed_secs,
        pages,
        scans,
    })
}

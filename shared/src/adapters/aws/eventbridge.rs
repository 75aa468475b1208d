//! EventBridge: every event the connector publishes, on the configured bus.

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
use crate::domain::error::StoreError;
use crate::ports::{EventBus, StoreResult};
use async_trait::async_trait;

pub const EVENT_SOURCE: &str = "zoom-connector";

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

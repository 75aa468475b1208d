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

use aws_config::retry::RetryConfig;

use super::dynamo::DynamoConnectionStore;
use super::dynamo_items::*;
use super::sdk::classify;
use crate::domain::{ConnectionRecord, ConnectionStatus};
use crate::ports::StoreResult;

/// Items per shard query: the shard's expected share of the page plus half again and a little
/// (ids are uniform over shards), so most pages need one query per shard.
pub(super) fn list_shard_limit(limit: usize) -> usize {
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
pub(super) struct ShardPage {
    shard: u8,
    buffered: std::collections::VecDeque<ConnectionRecord>,
    resume: Option<Attrs>,
    done: bool,
}

impl DynamoConnectionStore {
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

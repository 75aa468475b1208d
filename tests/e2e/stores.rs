//! One adapter test suite, two backends: the embedded local store and the AWS adapters on
//! moto must behave the same for everything the services rely on.

use std::sync::Arc;

use e2e_tests::moto::moto;
use e2e_tests::stack::{create_table, unique};
use futures::StreamExt;
use futures::future::join_all;
use time::OffsetDateTime;
use zoom_connector::adapters::aws::{AwsSecretStore, DynamoConnectionStore};
use zoom_connector::adapters::local::LocalStore;
use zoom_connector::domain::{
    AuthType, ConnectionRecord, ConnectionStatus, ZoomIdentity, new_connection_id,
};
use zoom_connector::ports::{ConnectionStore, ItemKind, SecretStore};
use zoom_connector::secret::SecretString;

fn record(id: &str, status: ConnectionStatus, next_refresh_at: Option<i64>) -> ConnectionRecord {
    let now = OffsetDateTime::now_utc();
    ConnectionRecord {
        id: id.into(),
        status,
        auth_type: AuthType::PlatformApp,
        client_id: "client".into(),
        end_user: None,
        zoom: ZoomIdentity {
            user_id: format!("u-{id}"),
            account_id: "acc".into(),
            email: None,
        },
        scopes: vec!["meeting:write".into()],
        access_token_expires_at: Some(now),
        last_refreshed_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        authorized_at: None,
        consecutive_failures: 0,
        next_refresh_at,
        version: 0,
    }
}

async fn secrets_suite(secrets: Arc<dyn SecretStore>, prefix: &str) {
    let name = format!("{prefix}/connections/a");
    assert!(secrets.get_secret(&name).await.unwrap().is_none());
    secrets
        .put_secret(&name, &SecretString::new("v1"), "token-1")
        .await
        .unwrap();
    assert_eq!(
        secrets.get_secret(&name).await.unwrap().unwrap().expose(),
        "v1"
    );
    // A retried write with the same request token is harmless.
    secrets
        .put_secret(&name, &SecretString::new("v1"), "token-1")
        .await
        .unwrap();
    secrets
        .put_secret(&name, &SecretString::new("v2"), "token-2")
        .await
        .unwrap();
    assert_eq!(
        secrets.get_secret(&name).await.unwrap().unwrap().expose(),
        "v2"
    );
    secrets.delete_secret(&name).await.unwrap();
    assert!(secrets.get_secret(&name).await.unwrap().is_none());
    secrets.delete_secret(&name).await.unwrap();
}

async fn connections_suite(store: Arc<dyn ConnectionStore>) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let a = record("conn_a", ConnectionStatus::Active, Some(now - 100));
    assert!(store.put_connection(&a, None).await.unwrap());
    assert!(
        !store.put_connection(&a, None).await.unwrap(),
        "create twice must conflict"
    );
    let stored = store.get_connection("conn_a").await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    let mut changed = stored.clone();
    changed.status = ConnectionStatus::RefreshFailing;
    assert!(store.put_connection(&changed, Some(1)).await.unwrap());
    assert!(
        !store.put_connection(&changed, Some(1)).await.unwrap(),
        "stale version must conflict"
    );
    let stored = store.get_connection("conn_a").await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.status),
        (2, ConnectionStatus::RefreshFailing)
    );

    store
        .put_connection(
            &record("conn_b", ConnectionStatus::Active, Some(now - 50)),
            None,
        )
        .await
        .unwrap();
    store
        .put_connection(&record("conn_c", ConnectionStatus::NeedsReauth, None), None)
        .await
        .unwrap();
    store
        .put_connection(
            &record("conn_d", ConnectionStatus::Active, Some(now + 3600)),
            None,
        )
        .await
        .unwrap();

    let due: Vec<String> = store
        .due_connections(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        due,
        vec!["conn_a", "conn_b"],
        "due, earliest first; not-due and unindexed left out"
    );
    assert_eq!(store.due_connections(now, 1).await.unwrap().len(), 1);

    let all: Vec<String> = store
        .list_connections(None, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, vec!["conn_a", "conn_b", "conn_c", "conn_d"]);
    let page2: Vec<String> = store
        .list_connections(None, Some("conn_b"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(page2, vec!["conn_c", "conn_d"]);
    let active: Vec<String> = store
        .list_connections(Some(ConnectionStatus::Active), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active, vec!["conn_b", "conn_d"]);

    store.delete_connection("conn_d").await.unwrap();
    assert!(store.get_connection("conn_d").await.unwrap().is_none());
}

async fn items_suite(store: Arc<dyn ConnectionStore>) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let v = serde_json::json!({ "x": 1 });
    assert!(
        store
            .create_item(ItemKind::Session, "s1", &v, Some(now + 60), now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_item(ItemKind::Session, "s1", &v, Some(now + 60), now)
            .await
            .unwrap()
    );
    let item = store
        .get_item(ItemKind::Session, "s1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.value, v);
    // Kinds are separate namespaces.
    assert!(
        store
            .get_item(ItemKind::OAuthState, "s1", now)
            .await
            .unwrap()
            .is_none()
    );
    // Expired reads as absent and can be created again, with a newer version.
    assert!(
        store
            .get_item(ItemKind::Session, "s1", now + 61)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .create_item(ItemKind::Session, "s1", &v, Some(now + 600), now + 61)
            .await
            .unwrap()
    );
    let again = store
        .get_item(ItemKind::Session, "s1", now + 61)
        .await
        .unwrap()
        .unwrap();
    assert!(again.version > item.version);
    // Compare-and-set.
    let w = serde_json::json!({ "x": 2 });
    assert!(
        !store
            .replace_item(ItemKind::Session, "s1", &w, Some(now + 600), item.version)
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_item(ItemKind::Session, "s1", &w, Some(now + 600), again.version)
            .await
            .unwrap()
    );
    // Conditional delete.
    assert!(
        !store
            .delete_item(ItemKind::Session, "s1", Some(again.version))
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_item(ItemKind::Session, "s1", Some(again.version + 1))
            .await
            .unwrap()
    );
    // No expiry (identity items).
    assert!(
        store
            .create_item(ItemKind::Identity, "k", &v, None, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .get_item(ItemKind::Identity, "k", now + 1_000_000)
            .await
            .unwrap()
            .is_some()
    );
    // An expired item cannot be taken.
    store
        .create_item(ItemKind::OAuthState, "old", &v, Some(now + 1), now)
        .await
        .unwrap();
    assert!(
        store
            .take_item(ItemKind::OAuthState, "old", now + 5)
            .await
            .unwrap()
            .is_none()
    );

    // Concurrency: one creator wins, one taker wins.
    let creates = join_all((0..20).map(|i| {
        let store = store.clone();
        async move {
            store
                .create_item(
                    ItemKind::Lease,
                    "race",
                    &serde_json::json!({ "owner": i }),
                    Some(now + 30),
                    now,
                )
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        creates.iter().filter(|c| **c).count(),
        1,
        "exactly one lease owner"
    );
    store
        .create_item(ItemKind::OAuthState, "once", &v, Some(now + 60), now)
        .await
        .unwrap();
    let takes = join_all((0..20).map(|_| {
        let store = store.clone();
        async move {
            store
                .take_item(ItemKind::OAuthState, "once", now)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(
        takes.iter().filter(|t| t.is_some()).count(),
        1,
        "single use"
    );
    swept_items_follow_a_replaced_expiry(&*store, now).await;
}

/// A swept kind's item found by its expiry: a replace that moves the expiry moves it in the
/// sweep's view too, and one without an expiry takes it out of that view.
async fn swept_items_follow_a_replaced_expiry(store: &dyn ConnectionStore, now: i64) {
    let kind = ItemKind::PendingSecret;
    let key = format!("moved-{now}");
    let v = serde_json::json!({ "x": 1 });
    let key = key.as_str();
    assert!(
        store
            .create_item(kind, key, &v, Some(now + 10), now)
            .await
            .unwrap()
    );
    let version = || async move {
        store
            .get_item(kind, key, now)
            .await
            .unwrap()
            .unwrap()
            .version
    };
    let expired_by = |at: i64| async move {
        store
            .expired_items(kind, at, 100)
            .await
            .unwrap()
            .into_iter()
            .any(|(k, _)| k == key)
    };
    assert!(expired_by(now + 20).await, "found once past its expiry");
    assert!(
        store
            .replace_item(kind, key, &v, Some(now + 100), version().await)
            .await
            .unwrap()
    );
    assert!(
        !expired_by(now + 20).await,
        "not expired at its old expiry any more"
    );
    assert!(expired_by(now + 200).await, "found past its new expiry");
    assert!(
        store
            .replace_item(kind, key, &v, None, version().await)
            .await
            .unwrap()
    );
    assert!(
        !expired_by(now + 200).await,
        "without an expiry it is never due"
    );
}

/// Every page of a listing, `page` at a time, following the last id as the service does.
async fn list_all(
    store: &Arc<dyn ConnectionStore>,
    status: Option<ConnectionStatus>,
    page: usize,
) -> Vec<Vec<ConnectionRecord>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let records = store
            .list_connections(status, after.as_deref(), page)
            .await
            .unwrap();
        assert!(records.len() <= page, "a page never exceeds its limit");
        let full = records.len() == page;
        after = records.last().map(|r| r.id.clone());
        pages.push(records);
        if !full {
            return pages;
        }
        assert!(pages.len() < 100, "the listing does not end");
    }
}

/// 450 connections of three statuses, pages of 100: every id exactly once, in id order (the
/// documented order, on both backends), with and without `status`; the small records beside
/// them never show up; a position that is no id of ours resumes at the next id.
async fn listing_suite(store: Arc<dyn ConnectionStore>) {
    let statuses = [
        ConnectionStatus::Active,
        ConnectionStatus::Active,
        ConnectionStatus::NeedsReauth,
        ConnectionStatus::Active,
        ConnectionStatus::Revoked,
    ];
    let made: Vec<(String, ConnectionStatus)> = (0..450)
        .map(|i| (new_connection_id(), statuses[i % statuses.len()]))
        .collect();
    futures::stream::iter(made.iter())
        .for_each_concurrent(16, |(id, status)| {
            let store = store.clone();
            async move {
                assert!(
                    store
                        .put_connection(&record(id, *status, None), None)
                        .await
                        .unwrap()
                );
            }
        })
        .await;
    // One of them changes status after its first write: it moves between status listings.
    let (moved, _) = made[1].clone();
    let mut rec = store.get_connection(&moved).await.unwrap().unwrap();
    rec.status = ConnectionStatus::RefreshFailing;
    assert!(store.put_connection(&rec, Some(rec.version)).await.unwrap());
    let made: Vec<(String, ConnectionStatus)> = made
        .into_iter()
        .map(|(id, st)| {
            let st = if id == moved {
                ConnectionStatus::RefreshFailing
            } else {
                st
            };
            (id, st)
        })
        .collect();
    // Small records in the same table are not connections.
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let v = serde_json::json!({ "x": 1 });
    for kind in [ItemKind::Session, ItemKind::Identity, ItemKind::Idempotency] {
        store
            .create_item(kind, "listing", &v, Some(now + 600), now)
            .await
            .unwrap();
    }

    for status in [
        None,
        Some(ConnectionStatus::Active),
        Some(ConnectionStatus::NeedsReauth),
        Some(ConnectionStatus::RefreshFailing),
        Some(ConnectionStatus::Pending),
    ] {
        let mut want: Vec<&str> = made
            .iter()
            .filter(|(_, st)| status.is_none_or(|s| s == *st))
            .map(|(id, _)| id.as_str())
            .collect();
        want.sort_unstable();
        let pages = list_all(&store, status, 100).await;
        assert_eq!(pages.len(), want.len() / 100 + 1, "{status:?}");
        let got: Vec<&str> = pages.iter().flatten().map(|r| r.id.as_str()).collect();
        assert_eq!(got, want, "{status:?}: every id once, in id order");
        for r in pages.iter().flatten() {
            assert!(status.is_none_or(|s| r.status == s), "{status:?}");
        }
    }

    // Positions that are no id of ours (what a forged cursor could carry) are harmless.
    let mut all: Vec<&str> = made.iter().map(|(id, _)| id.as_str()).collect();
    all.sort_unstable();
    let ids = |records: Vec<ConnectionRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let from_start = ids(store.list_connections(None, Some(""), 3).await.unwrap());
    assert_eq!(from_start, all[..3]);
    let between = format!("{}0", all[199]);
    let resumed = ids(store
        .list_connections(None, Some(&between), 2)
        .await
        .unwrap());
    assert_eq!(resumed, all[200..202]);
    for beyond in ["conn_g", "~", "\u{10FFFF}"] {
        assert!(
            store
                .list_connections(None, Some(beyond), 10)
                .await
                .unwrap()
                .is_empty(),
            "{beyond:?}"
        );
    }
    assert!(
        store
            .list_connections(Some(ConnectionStatus::Active), Some("~"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_store_lists_in_id_order_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    listing_suite(Arc::new(LocalStore::open(dir.path()).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_lists_from_its_index_in_id_order_across_pages() {
    let sdk = moto().sdk_config().await;
    let table = unique("listing");
    create_table(&sdk, &table).await;
    listing_suite(Arc::new(DynamoConnectionStore::new(&sdk, table))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_store_passes_the_adapter_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    secrets_suite(Arc::new(store.clone()), "zc").await;
    connections_suite(Arc::new(store.clone())).await;
    items_suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_adapters_on_moto_pass_the_adapter_suite() {
    let sdk = moto().sdk_config().await;
    let table = unique("conformance");
    create_table(&sdk, &table).await;
    secrets_suite(Arc::new(AwsSecretStore::new(&sdk)), &unique("zc")).await;
    connections_suite(Arc::new(DynamoConnectionStore::new(&sdk, table.clone()))).await;
    items_suite(Arc::new(DynamoConnectionStore::new(&sdk, table))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_local_store_handles_on_one_data_dir_share_state_safely() {
    // Two opens of the same data dir stand for two processes.
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(LocalStore::open(dir.path()).unwrap());
    let b = Arc::new(LocalStore::open(dir.path()).unwrap());
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let results = join_all((0..20).map(|i| {
        let s: Arc<dyn ConnectionStore> = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            s.create_item(
                ItemKind::Lease,
                "shared",
                &serde_json::json!({ "i": i }),
                Some(now + 30),
                now,
            )
            .await
            .unwrap()
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| **r).count(), 1);
}

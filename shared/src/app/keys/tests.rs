//! The key cache with a fake secret store and tokio's paused clock: how many reads a rotation
//! and a spray of wrong keys cost, and when each key starts and stops working.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use crate::domain::error::StoreError;
use crate::ports::{SecretStore, StoreResult};

#[derive(Default)]
struct FakeSecrets {
    value: Mutex<String>,
    reads: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl SecretStore for FakeSecrets {
    async fn get_secret(&self, _name: &str) -> StoreResult<Option<SecretString>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Transient(
                "GetSecretValue: ServiceUnavailable".into(),
            ));
        }
        Ok(Some(SecretString::new(self.value.lock().unwrap().clone())))
    }
    async fn put_secret(&self, _: &str, _: &SecretString, _: &str) -> StoreResult<()> {
        unreachable!()
    }
    async fn update_secret(&self, _: &str, _: &SecretString, _: &str) -> StoreResult<bool> {
        unreachable!()
    }
    async fn delete_secret(&self, _: &str) -> StoreResult<()> {
        unreachable!()
    }
}

struct Fixture {
    connector: Connector,
    secrets: Arc<FakeSecrets>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(keys: serde_json::Value) -> Self {
        let (mut connector, dir) = crate::wiring::test_connector(&[]);
        let secrets = Arc::new(FakeSecrets::default());
        connector.secrets = secrets.clone();
        let f = Self {
            connector,
            secrets,
            _dir: dir,
        };
        f.set(keys);
        f
    }

    fn set(&self, keys: serde_json::Value) {
        *self.secrets.value.lock().unwrap() = keys.to_string();
    }

    fn reads(&self) -> usize {
        self.secrets.reads.load(Ordering::SeqCst)
    }

    async fn ok(&self, key: &str) -> bool {
        self.connector.check_api_key(key).await.unwrap()
    }
}

async fn advance(d: Duration) {
    tokio::time::advance(d).await;
}

#[test]
fn both_keys_are_accepted_and_nothing_else() {
    let keys: ConnectorKeys = serde_json::from_value(
        serde_json::json!({ "api_key": "new-key", "previous_api_key": "old-key" }),
    )
    .unwrap();
    assert!(keys.accepts_api_key("new-key"));
    assert!(keys.accepts_api_key("old-key"));
    for wrong in ["", "new-ke", "new-key ", "old-keyx", "NEW-KEY"] {
        assert!(!keys.accepts_api_key(wrong), "{wrong:?}");
    }
    // An empty previous key is no key.
    let keys: ConnectorKeys =
        serde_json::from_value(serde_json::json!({ "api_key": "k", "previous_api_key": "" }))
            .unwrap();
    assert!(!keys.accepts_api_key(""));
    assert!(format!("{keys:?}").contains("[redacted]") && !format!("{keys:?}").contains("\"k\""));
}

#[tokio::test(start_paused = true)]
async fn a_rotation_reaches_the_container_in_bounded_time() {
    let f = Fixture::new(serde_json::json!({ "api_key": "old" }));
    assert!(f.ok("old").await);
    assert_eq!(f.reads(), 1);

    // Step 1: new key in, old one kept as previous.
    f.set(serde_json::json!({ "api_key": "new", "previous_api_key": "old" }));
    advance(Duration::from_secs(3)).await;
    assert!(
        !f.ok("new").await,
        "too soon after the last read to re-read"
    );
    assert_eq!(f.reads(), 1);
    advance(UNKNOWN_KEY_RECHECK).await;
    assert!(
        f.ok("new").await,
        "an unknown key re-reads once the recheck interval passed"
    );
    assert!(f.ok("old").await);
    assert_eq!(f.reads(), 2);

    // Step 2: previous removed; the old key works until the copy is too old.
    f.set(serde_json::json!({ "api_key": "new" }));
    assert!(f.ok("old").await);
    advance(f.connector.config.keys_max_age).await;
    assert!(
        !f.ok("old").await,
        "gone within CONNECTOR_KEYS_MAX_AGE_SECS"
    );
    assert!(f.ok("new").await);
    assert_eq!(f.reads(), 3);
}

#[tokio::test(start_paused = true)]
async fn spraying_wrong_keys_costs_one_read_per_recheck_interval() {
    let f = Fixture::new(serde_json::json!({ "api_key": "right" }));
    assert!(f.ok("right").await);
    // 50 wrong keys a second for two minutes, 10 at a time concurrently.
    for _ in 0..(120 * 5) {
        let tries = (0..10).map(|i| {
            f.connector
                .check_api_key(if i % 2 == 0 { "x" } else { "y" })
        });
        for r in futures::future::join_all(tries).await {
            assert!(!r.unwrap());
        }
        advance(Duration::from_millis(200)).await;
    }
    let bound = 1 + (120 / UNKNOWN_KEY_RECHECK.as_secs() as usize) + 1;
    assert!(f.reads() <= bound, "{} reads, bound {bound}", f.reads());
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_secret_serves_the_last_copy_for_a_while() {
    let f = Fixture::new(serde_json::json!({ "api_key": "k" }));
    assert!(f.ok("k").await);
    f.secrets.down.store(true, Ordering::SeqCst);
    advance(f.connector.config.keys_max_age).await;
    assert!(
        f.ok("k").await,
        "the last copy serves while Secrets Manager is down"
    );
    let reads = f.reads();
    for _ in 0..20 {
        assert!(f.ok("k").await);
    }
    assert_eq!(f.reads(), reads, "no read per request while backing off");
    advance(MAX_STALE).await;
    assert!(f.connector.check_api_key("k").await.is_err(), "not forever");
    f.secrets.down.store(false, Ordering::SeqCst);
    assert!(f.ok("k").await);
}

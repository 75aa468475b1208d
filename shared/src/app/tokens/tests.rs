//! The refresh state machine with fake ports: the real embedded store on a temporary
//! directory (wrapped to count calls), a scripted Zoom OAuth that counts refreshes, and a
//! clock the test moves.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::refresh::{REFRESH_BUDGET, backoff_secs};
use super::*;
use crate::adapters::local::LocalStore;
use crate::app::sweep::SweepReport;
use crate::app::{Connector, Ports};
use crate::config::Config;
use crate::domain::{TokenSet, ZoomIdentity};
use crate::ports::{
    Clock, ConnectionStore, EventBus, Item, SecretStore, StoreResult, ZoomApi, ZoomOAuth,
    ZoomRequest, ZoomResponse, ZoomTransportError,
};
use crate::ports::{ItemKind, OAuthError};

const ID: &str = "conn_test";

// ---- fakes -------------------------------------------------------------------------------

struct FakeClock(Mutex<OffsetDateTime>);

impl FakeClock {
    fn new() -> Arc<Self> {
        // Whole seconds: the store keeps unix seconds.
        let now = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .unwrap();
        Arc::new(Self(Mutex::new(now)))
    }

    fn advance(&self, secs: i64) {
        *self.0.lock().unwrap() += time::Duration::seconds(secs);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// The embedded store, counting every secret and record call, and naming the secret calls
/// that create or delete (what the refresh function's IAM role does not allow).
#[derive(Clone)]
struct CountingStore {
    inner: LocalStore,
    calls: Arc<AtomicUsize>,
    creates_or_deletes: Arc<AtomicUsize>,
}

impl CountingStore {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl SecretStore for CountingStore {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretString>> {
        self.count();
        self.inner.get_secret(name).await
    }
    async fn put_secret(&self, name: &str, value: &SecretString, token: &str) -> StoreResult<()> {
        self.count();
        self.creates_or_deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.put_secret(name, value, token).await
    }
    async fn update_secret(
        &self,
        name: &str,
        value: &SecretString,
        token: &str,
    ) -> StoreResult<bool> {
        self.count();
        self.inner.update_secret(name, value, token).await
    }
    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        self.count();
        self.creates_or_deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_secret(name).await
    }
}

#[async_trait]
impl ConnectionStore for CountingStore {
    async fn get_connection(&self, id: &str) -> StoreResult<Option<ConnectionRecord>> {
        self.count();
        self.inner.get_connection(id).await
    }
    async fn put_connection(
        &self,
        r: &ConnectionRecord,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        self.count();
        self.inner.put_connection(r, expected).await
    }
    async fn delete_connection(&self, id: &str) -> StoreResult<()> {
        self.count();
        self.inner.delete_connection(id).await
    }
    async fn list_connections(
        &self,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        self.count();
        self.inner.list_connections(status, after_id, limit).await
    }
    async fn list_end_user_connections(
        &self,
        end_user_id: &str,
        status: Option<ConnectionStatus>,
        after_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        self.count();
        self.inner
            .list_end_user_connections(end_user_id, status, after_id, limit)
            .await
    }
    async fn due_connections(&self, by: i64, limit: usize) -> StoreResult<Vec<ConnectionRecord>> {
        self.count();
        self.inner.due_connections(by, limit).await
    }
    async fn get_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
        self.count();
        self.inner.get_item(kind, key, now).await
    }
    async fn create_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<bool> {
        self.count();
        self.inner
            .create_item(kind, key, value, expires_at, now)
            .await
    }
    async fn replace_item(
        &self,
        kind: ItemKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: Option<i64>,
        expected: u64,
    ) -> StoreResult<bool> {
        self.count();
        self.inner
            .replace_item(kind, key, value, expires_at, expected)
            .await
    }
    async fn take_item(&self, kind: ItemKind, key: &str, now: i64) -> StoreResult<Option<Item>> {
        self.count();
        self.inner.take_item(kind, key, now).await
    }
    async fn delete_item(
        &self,
        kind: ItemKind,
        key: &str,
        expected: Option<u64>,
    ) -> StoreResult<bool> {
        self.count();
        self.inner.delete_item(kind, key, expected).await
    }
}

/// What the fake token endpoint answers to one refresh.
#[derive(Clone)]
enum Answer {
    Success,
    InvalidGrant,
    InvalidClient,
    Unavailable,
    /// Another process stores these tokens while our call is in flight, then Zoom refuses
    /// our (already rotated) refresh token.
    InvalidGrantAfterOtherWrote(ConnectionSecret),
    /// The user removes the app while our call is in flight (the webhook deletes the secret,
    /// then marks the record revoked); Zoom had already rotated the tokens.
    SuccessAfterDeauthorization,
}

struct FakeOAuth {
    clock: Arc<FakeClock>,
    store: LocalStore,
    prefix: String,
    refreshes: AtomicUsize,
    issued: AtomicUsize,
    /// Answers by the refresh token presented (for concurrent sweeps), then in order.
    by_token: Mutex<HashMap<String, Answer>>,
    queue: Mutex<VecDeque<Answer>>,
    /// How long each refresh takes, so concurrent callers really overlap.
    latency: Duration,
}

impl FakeOAuth {
    fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }

    fn script(&self, answers: &[Answer]) {
        self.queue.lock().unwrap().extend(answers.iter().cloned());
    }

    fn answer_for(&self, refresh_token: &str, answer: Answer) {
        self.by_token
            .lock()
            .unwrap()
            .insert(refresh_token.to_owned(), answer);
    }
}

fn rejected(error: &str) -> OAuthError {
    OAuthError::Rejected {
        status: if error == "invalid_client" { 401 } else { 400 },
        error: error.into(),
        reason: "Invalid Token!".into(),
    }
}

#[async_trait]
impl ZoomOAuth for FakeOAuth {
    fn authorize_url(&self, _: &str, _: &str, _: &str, _: &SecretString) -> String {
        unimplemented!("not used by the refresh routine")
    }

    async fn exchange_code(
        &self,
        _: &ClientCredentials,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<TokenSet, OAuthError> {
        unimplemented!("not used by the refresh routine")
    }

    async fn refresh(
        &self,
        _client: &ClientCredentials,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, OAuthError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        let answer = self
            .by_token
            .lock()
            .unwrap()
            .remove(refresh_token.expose())
            .or_else(|| self.queue.lock().unwrap().pop_front())
            .unwrap_or(Answer::Success);
        if let Answer::SuccessAfterDeauthorization = answer {
            let name = connection_secret_name(&self.prefix, ID);
            self.store.delete_secret(&name).await.unwrap();
            let mut record = self.store.get_connection(ID).await.unwrap().unwrap();
            let version = record.version;
            record.status = ConnectionStatus::Revoked;
            record.next_refresh_at = None;
            assert!(
                self.store
                    .put_connection(&record, Some(version))
                    .await
                    .unwrap()
            );
        }
        match answer {
            Answer::Success | Answer::SuccessAfterDeauthorization => {
                let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(TokenSet {
                    access_token: format!("at-new-{n}").into(),
                    refresh_token: format!("rt-new-{n}").into(),
                    expires_at: self.clock.now() + time::Duration::hours(1),
                    scopes: vec!["meeting:write".into()],
                    api_url: None,
                })
            }
            Answer::InvalidGrant => Err(rejected("invalid_grant")),
            Answer::InvalidClient => Err(rejected("invalid_client")),
            Answer::Unavailable => Err(OAuthError::Unavailable("zoom answered 503".into())),
            Answer::InvalidGrantAfterOtherWrote(secret) => {
                let name = connection_secret_name(&self.prefix, ID);
                let value = serde_secret(&secret).unwrap();
                self.store.put_secret(&name, &value, "other").await.unwrap();
                Err(rejected("invalid_grant"))
            }
        }
    }

    async fn revoke(&self, _: &ClientCredentials, _: &SecretString) -> Result<(), OAuthError> {
        Ok(())
    }
}

struct NoZoomApi;

#[async_trait]
impl ZoomApi for NoZoomApi {
    async fn send(&self, _: ZoomRequest) -> Result<ZoomResponse, ZoomTransportError> {
        Err(ZoomTransportError::Connect(
            "no REST calls in these tests".into(),
        ))
    }
}

// ---- harness -----------------------------------------------------------------------------

struct Rig {
    connector: Connector,
    store: LocalStore,
    calls: Arc<AtomicUsize>,
    creates_or_deletes: Arc<AtomicUsize>,
    oauth: Arc<FakeOAuth>,
    clock: Arc<FakeClock>,
    dir: Arc<tempfile::TempDir>,
    env: Vec<(&'static str, String)>,
}

fn config(env: &[(&'static str, String)]) -> Config {
    let map: HashMap<&str, String> = env.iter().cloned().collect();
    Config::from_lookup(|k| map.get(k).cloned(), Some("http://127.0.0.1:3000")).unwrap()
}

impl Rig {
    async fn new(env: &[(&'static str, &str)]) -> Self {
        let env: Vec<(&'static str, String)> =
            env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let clock = FakeClock::new();
        let rig = Self::on(dir, clock, env);
        let platform = serde_json::json!({ "client_id": "platform-client", "client_secret": "platform-secret" });
        rig.store
            .put_secret(
                &rig.connector.config.aws.platform_app_secret_id,
                &SecretString::new(platform.to_string()),
                "seed",
            )
            .await
            .unwrap();
        rig
    }

    /// Another process on the same data dir: its own store handle, cache and fake Zoom
    /// client, the same clock.
    fn on(
        dir: Arc<tempfile::TempDir>,
        clock: Arc<FakeClock>,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        let config = config(&env);
        let store = LocalStore::open(dir.path()).unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let creates_or_deletes = Arc::new(AtomicUsize::new(0));
        let counting = CountingStore {
            inner: store.clone(),
            calls: calls.clone(),
            creates_or_deletes: creates_or_deletes.clone(),
        };
        let oauth = Arc::new(FakeOAuth {
            clock: clock.clone(),
            store: store.clone(),
            prefix: config.aws.secrets_prefix.clone(),
            refreshes: AtomicUsize::new(0),
            issued: AtomicUsize::new(0),
            by_token: Mutex::default(),
            queue: Mutex::default(),
            latency: Duration::from_millis(50),
        });
        let ports = Ports {
            secrets: Arc::new(counting.clone()),
            store: Arc::new(counting),
            bus: Arc::new(store.clone()) as Arc<dyn EventBus>,
            oauth: oauth.clone(),
            zoom: Arc::new(NoZoomApi),
            clock: clock.clone(),
            data_keys: Arc::new(crate::adapters::local::LocalDataKeys::in_memory()),
        };
        Self {
            connector: Connector::new(config, ports),
            store,
            calls,
            creates_or_deletes,
            oauth,
            clock,
            dir,
            env,
        }
    }

    fn sibling(&self) -> Self {
        Self::on(self.dir.clone(), self.clock.clone(), self.env.clone())
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn store_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn secret_name(&self, id: &str) -> String {
        connection_secret_name(&self.connector.config.aws.secrets_prefix, id)
    }

    /// An active connection whose access token expires in `expires_in` seconds.
    async fn connection(&self, id: &str, expires_in: i64, refresh_token: &str) -> ConnectionSecret {
        let now = self.now();
        let secret = ConnectionSecret {
            auth_type: AuthType::PlatformApp,
            client_id: "platform-client".into(),
            client_secret: None,
            access_token: format!("at-{refresh_token}").into(),
            refresh_token: refresh_token.into(),
            expires_at: now + time::Duration::seconds(expires_in),
            scopes: vec!["meeting:write".into()],
            api_url: None,
        };
        self.put_secret(id, &secret).await;
        let record = ConnectionRecord {
            id: id.into(),
            status: ConnectionStatus::Active,
            auth_type: AuthType::PlatformApp,
            client_id: "platform-client".into(),
            end_user: None,
            zoom: ZoomIdentity {
                user_id: format!("user-{id}"),
                account_id: "acc".into(),
                email: None,
            },
            scopes: secret.scopes.clone(),
            access_token_expires_at: Some(secret.expires_at),
            last_refreshed_at: Some(now),
            last_error: None,
            created_at: now,
            updated_at: now,
            authorized_at: None,
            consecutive_failures: 0,
            next_refresh_at: Some(self.connector.next_refresh_at(now, secret.expires_at)),
            version: 0,
        };
        assert!(self.store.put_connection(&record, None).await.unwrap());
        secret
    }

    async fn put_secret(&self, id: &str, secret: &ConnectionSecret) {
        let value = serde_secret(secret).unwrap();
        let token = sha256_hex(secret.refresh_token.expose());
        self.store
            .put_secret(&self.secret_name(id), &value, &token)
            .await
            .unwrap();
    }

    async fn stored_secret(&self, id: &str) -> Option<ConnectionSecret> {
        let raw = self
            .store
            .get_secret(&self.secret_name(id))
            .await
            .unwrap()?;
        Some(serde_json::from_str(raw.expose()).unwrap())
    }

    async fn record(&self, id: &str) -> ConnectionRecord {
        self.store.get_connection(id).await.unwrap().unwrap()
    }

    async fn set_record(&self, id: &str, change: impl Fn(&mut ConnectionRecord)) {
        self.connector.update_record(id, change).await.unwrap();
    }

    async fn events(&self, detail_type: &str) -> Vec<serde_json::Value> {
        self.store
            .events()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail)
            .collect()
    }
}

// ---- the state machine -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fresh_token_is_served_from_a_warm_cache_without_store_calls() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 3600, "rt-0").await;

    let first = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap();
    assert!(!first.refreshed);
    assert_eq!(first.token.access_token.expose(), "at-rt-0");
    assert!(rig.store_calls() > 0, "a cold cache reads the store");

    let before = rig.store_calls();
    for _ in 0..5 {
        let again = rig
            .connector
            .obtain_token(ID, TokenNeed::Usable)
            .await
            .unwrap();
        assert_eq!(again.token.access_token.expose(), "at-rt-0");
        assert!(!again.refreshed);
    }
    assert_eq!(
        rig.store_calls(),
        before,
        "a warm action makes no store call"
    );
    assert_eq!(rig.oauth.refreshes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiring_token_is_refreshed_exactly_once_for_concurrent_callers() {
    let rig = Rig::new(&[]).await;
    // Within REFRESH_AHEAD_SECS (300 s) of expiry.
    rig.connection(ID, 120, "rt-0").await;

    let calls = (0..25).map(|_| rig.connector.obtain_token(ID, TokenNeed::Usable));
    let results = futures::future::join_all(calls).await;
    let results: Vec<_> = results.into_iter().map(Result::unwrap).collect();

    assert_eq!(rig.oauth.refreshes(), 1);
    assert_eq!(results.iter().filter(|o| o.refreshed).count(), 1);
    assert!(
        results
            .iter()
            .all(|o| o.token.access_token.expose() == "at-new-1")
    );
    let stored = rig.stored_secret(ID).await.unwrap();
    assert_eq!(stored.refresh_token.expose(), "rt-new-1");
    let record = rig.record(ID).await;
    let now = rig.now();
    assert_eq!(record.status, ConnectionStatus::Active);
    assert_eq!(record.last_refreshed_at, Some(now));
    assert_eq!(record.access_token_expires_at, Some(stored.expires_at));
    assert_eq!(
        record.next_refresh_at,
        Some((now + time::Duration::hours(24)).unix_timestamp())
    );
    // The lease is gone again.
    assert!(
        rig.store
            .get_item(ItemKind::Lease, ID, rig.now().unix_timestamp())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_sharing_a_store_refresh_once_through_the_lease() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 120, "rt-0").await;
    let others = [rig.sibling(), rig.sibling()];

    let mut calls = Vec::new();
    for connector in [&rig.connector, &others[0].connector, &others[1].connector] {
        for _ in 0..10 {
            calls.push(connector.obtain_token(ID, TokenNeed::Usable));
        }
    }
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| {
        r.as_ref()
            .is_ok_and(|o| o.token.access_token.expose() == "at-new-1")
    }));
    let refreshes =
        rig.oauth.refreshes() + others[0].oauth.refreshes() + others[1].oauth.refreshes();
    assert_eq!(refreshes, 1, "one refresh across three processes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_grant_with_an_unchanged_secret_means_reauth() {
    let rig = Rig::new(&[]).await;
    let before = rig.connection(ID, 120, "rt-0").await;
    rig.oauth.script(&[Answer::InvalidGrant]);

    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap_err();
    assert_eq!(err.status, http::StatusCode::CONFLICT);
    assert_eq!(err.code, ErrorCode::ConnectionNeedsReauth);

    let record = rig.record(ID).await;
    assert_eq!(record.status, ConnectionStatus::NeedsReauth);
    assert_eq!(record.next_refresh_at, None, "out of the sweep's index");
    assert_eq!(record.last_error.unwrap().code, "invalid_grant");
    let events = rig.events(events::CONNECTION_NEEDS_REAUTH).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["connection_id"], ID);
    // Nothing else was stored in place of the dead tokens.
    let stored = rig.stored_secret(ID).await.unwrap();
    assert_eq!(stored.refresh_token, before.refresh_token);

    // From now on: 409 at once, without asking Zoom again.
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectionNeedsReauth);
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Always)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectionNeedsReauth);
    assert_eq!(rig.oauth.refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_grant_after_someone_else_refreshed_uses_their_tokens() {
    let rig = Rig::new(&[]).await;
    let before = rig.connection(ID, 120, "rt-0").await;
    let mut theirs = before.clone();
    theirs.access_token = "at-theirs".into();
    theirs.refresh_token = "rt-theirs".into();
    theirs.expires_at = rig.now() + time::Duration::hours(1);
    rig.oauth
        .script(&[Answer::InvalidGrantAfterOtherWrote(theirs)]);

    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap();
    assert_eq!(got.token.access_token.expose(), "at-theirs");
    assert!(!got.refreshed);
    assert_eq!(rig.record(ID).await.status, ConnectionStatus::Active);
    assert!(rig.events(events::CONNECTION_NEEDS_REAUTH).await.is_empty());
    assert_eq!(
        rig.stored_secret(ID).await.unwrap().refresh_token.expose(),
        "rt-theirs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unavailable_keeps_the_old_token_counts_backs_off_and_turns_failing() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 200, "rt-0").await;
    rig.oauth.script(&[
        Answer::Unavailable,
        Answer::Unavailable,
        Answer::Unavailable,
    ]);
    let start = rig.now().unix_timestamp();

    // 1st failure: the action goes on with the old, still valid token.
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap();
    assert_eq!(got.token.access_token.expose(), "at-rt-0");
    assert!(!got.refreshed);
    let record = rig.record(ID).await;
    assert_eq!(record.consecutive_failures, 1);
    assert_eq!(record.status, ConnectionStatus::Active);
    assert_eq!(record.next_refresh_at, Some(start + backoff_secs(1)));
    assert_eq!(record.last_error.as_ref().unwrap().code, "zoom_unavailable");
    assert_eq!(
        rig.stored_secret(ID).await.unwrap().refresh_token.expose(),
        "rt-0"
    );

    // During the back-off, actions use the old token without asking Zoom again.
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap();
    assert_eq!(got.token.access_token.expose(), "at-rt-0");
    assert_eq!(rig.oauth.refreshes(), 1);

    // A token Zoom refused is not handed out again, back-off or not.
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::ReplaceRejected("at-rt-0".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ZoomUnavailable);
    assert_eq!(err.status, http::StatusCode::BAD_GATEWAY);
    assert!(err.retry_after_secs.is_some());
    assert_eq!(rig.record(ID).await.consecutive_failures, 2);

    // The 3rd failure in a row shows `refresh_failing`.
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Always)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ZoomUnavailable);
    let record = rig.record(ID).await;
    assert_eq!(record.consecutive_failures, 3);
    assert_eq!(record.status, ConnectionStatus::RefreshFailing);
    assert_eq!(record.next_refresh_at, Some(start + backoff_secs(3)));
    let failed = rig.events(events::CONNECTION_REFRESH_FAILED).await;
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[2]["consecutive_failures"], 3);
    assert_eq!(failed[2]["connection_id"], ID);

    // Recovery resets everything.
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::Always)
        .await
        .unwrap();
    assert!(got.refreshed);
    let record = rig.record(ID).await;
    assert_eq!(record.status, ConnectionStatus::Active);
    assert_eq!(record.consecutive_failures, 0);
    assert!(record.last_error.is_none());
    assert_eq!(rig.oauth.refreshes(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unavailable_with_an_expired_token_is_a_502_for_the_action() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 10, "rt-0").await;
    rig.oauth.script(&[Answer::Unavailable]);
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ZoomUnavailable);
    assert_eq!(rig.record(ID).await.consecutive_failures, 1);

    // Once the back-off is over, the sweep (or an action) tries again.
    rig.clock.advance(backoff_secs(1));
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap();
    assert!(got.refreshed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_platform_app_is_a_failure_but_a_refused_byo_app_needs_reauth() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 120, "rt-0").await;
    rig.oauth.script(&[Answer::InvalidClient]);
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Always)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ZoomError);
    let record = rig.record(ID).await;
    assert_eq!(record.status, ConnectionStatus::Active);
    assert_eq!(record.consecutive_failures, 1);

    let byo = "conn_byo";
    let mut secret = rig.connection(byo, 120, "rt-byo").await;
    secret.auth_type = AuthType::ByoApp;
    secret.client_secret = Some("byo-secret".into());
    rig.put_secret(byo, &secret).await;
    rig.oauth.script(&[Answer::InvalidClient]);
    let err = rig
        .connector
        .obtain_token(byo, TokenNeed::Always)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectionNeedsReauth);
    assert_eq!(rig.record(byo).await.status, ConnectionStatus::NeedsReauth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deauthorization_during_the_refresh_is_not_undone_by_its_write() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 10, "rt-0").await;
    rig.oauth.script(&[Answer::SuccessAfterDeauthorization]);
    let creates_or_deletes = rig.creates_or_deletes.load(Ordering::SeqCst);
    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectionRevoked);
    assert_eq!(rig.oauth.refreshes(), 1);
    assert!(
        rig.stored_secret(ID).await.is_none(),
        "the deauthorized connection's credentials were re-created"
    );
    assert_eq!(rig.record(ID).await.status, ConnectionStatus::Revoked);
    assert_eq!(
        rig.creates_or_deletes.load(Ordering::SeqCst),
        creates_or_deletes,
        "the refresh created or deleted a secret (its IAM role may do neither)"
    );
    // Nothing is served for it from this container either.
    let again = rig.connector.obtain_token(ID, TokenNeed::Usable).await;
    assert_eq!(again.unwrap_err().code, ErrorCode::ConnectionRevoked);
    assert_eq!(rig.oauth.refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_refresh_starts_that_could_not_be_stored_before_the_deadline() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 10, "rt-0").await;
    let short = Some(tokio::time::Instant::now() + REFRESH_BUDGET - Duration::from_secs(1));
    // Still valid for a few seconds: served as it is, Zoom is not asked.
    let got = crate::deadline::within(short, rig.connector.obtain_token(ID, TokenNeed::Usable))
        .await
        .unwrap();
    assert!(!got.refreshed);
    assert_eq!(rig.oauth.refreshes(), 0);
    // Expired: a clear 503 to retry, still without asking Zoom.
    rig.clock.advance(60);
    rig.connector.tokens.forget(ID);
    let err = crate::deadline::within(short, rig.connector.obtain_token(ID, TokenNeed::Usable))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status.as_u16(), err.code),
        (503, ErrorCode::RefreshDeferred)
    );
    assert_eq!(rig.oauth.refreshes(), 0);
    assert_eq!(
        rig.stored_secret(ID).await.unwrap().refresh_token.expose(),
        "rt-0"
    );
    // With the time it needs, the refresh runs.
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::Usable)
        .await
        .unwrap();
    assert!(got.refreshed);
}

/// A warm container follows the record: a connection deleted, deauthorized or reconnected
/// in another container stops being used here within a minute, for one store read per
/// connection per minute, in the background while the copy is younger than a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warm_containers_follow_the_record_within_a_minute() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 3600, "rt-0").await;
    let other = rig.sibling();
    let warm = || async { rig.connector.obtain_token(ID, TokenNeed::Usable).await };
    warm().await.unwrap();

    // Younger than the re-check: no store call.
    rig.clock.advance(54);
    let before = rig.store_calls();
    warm().await.unwrap();
    assert_eq!(rig.store_calls(), before);

    // Reconnected elsewhere (a new authorization): served while the background look runs,
    // dropped once it has seen the record.
    let reconnected_at = rig.now();
    other
        .set_record(ID, |r| r.authorized_at = Some(reconnected_at))
        .await;
    rig.clock.advance(2);
    warm().await.unwrap();
    for _ in 0..100 {
        if rig.connector.tokens.get(ID).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        rig.connector.tokens.get(ID).is_none(),
        "the reconnect was not noticed"
    );
    assert_eq!(rig.store_calls(), before + 1, "one read for the re-check");
    // The next action reads the connection again and caches what the record says now.
    warm().await.unwrap();

    // Deleted elsewhere while this copy aged past a minute: checked before use, refused.
    other.store.delete_connection(ID).await.unwrap();
    rig.clock.advance(61);
    let err = warm().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectionNotFound);
}

/// What following the record costs (docs/benchmarks.md, "Warm caches follow the record"): a
/// connection used every 5 s for an hour of the fake clock is read from the store about once
/// per re-check period: about once a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn following_the_record_costs_about_one_read_a_minute() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 4 * 3600, "rt-0").await;
    let warm = || async { rig.connector.obtain_token(ID, TokenNeed::Usable).await };
    warm().await.unwrap();
    let before = rig.store_calls();
    for _ in 0..720 {
        rig.clock.advance(5);
        warm().await.unwrap();
        // Let a background re-check finish before the clock moves on (waits for the
        // re-check, however slow the machine; the bound only stops a hung test).
        for _ in 0..10_000 {
            if !rig.connector.tokens.rechecking(ID) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let reads = rig.store_calls() - before;
    println!("store reads for one connection used every 5 s for an hour: {reads}");
    assert!((55..=70).contains(&reads), "{reads} reads in an hour");
    assert_eq!(rig.oauth.refreshes(), 0, "no refresh was due");
}

/// Deleting a connection also deletes a sealed copy of rotated tokens a refresh left (it
/// holds a refresh token, even if nothing reads it once the secret is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_connection_deletes_its_sealed_token_copy() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 3600, "rt-0").await;
    let now = rig.now().unix_timestamp();
    let sealed = serde_json::json!({ "sealed": "opaque" });
    assert!(
        rig.store
            .create_item(ItemKind::PendingTokens, ID, &sealed, None, now)
            .await
            .unwrap()
    );
    rig.connector.delete_connection(ID).await.unwrap();
    let left = rig
        .store
        .get_item(ItemKind::PendingTokens, ID, now)
        .await
        .unwrap();
    assert!(left.is_none(), "the sealed copy outlived its connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_due_refreshes_only_when_due() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 3600, "rt-0").await;
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::IfDue)
        .await
        .unwrap();
    assert!(!got.refreshed, "the keep-alive is a day away");
    assert_eq!(rig.oauth.refreshes(), 0);

    let due = rig.now().unix_timestamp() - 1;
    rig.set_record(ID, |r| r.next_refresh_at = Some(due)).await;
    let got = rig
        .connector
        .obtain_token(ID, TokenNeed::IfDue)
        .await
        .unwrap();
    assert!(got.refreshed);
    assert_eq!(rig.oauth.refreshes(), 1);
    assert!(rig.record(ID).await.next_refresh_at.unwrap() > rig.now().unix_timestamp());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_due_with_a_missing_secret_marks_the_connection_revoked() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 3600, "rt-0").await;
    let due = rig.now().unix_timestamp() - 1;
    rig.set_record(ID, |r| r.next_refresh_at = Some(due)).await;
    rig.store.delete_secret(&rig.secret_name(ID)).await.unwrap();

    let err = rig
        .connector
        .obtain_token(ID, TokenNeed::IfDue)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectionRevoked);
    let record = rig.record(ID).await;
    assert_eq!(record.status, ConnectionStatus::Revoked);
    assert_eq!(
        record.next_refresh_at, None,
        "never picked by the sweep again"
    );
    assert_eq!(record.last_error.unwrap().code, "credentials_missing");
    let revoked = rig.events(events::CONNECTION_REVOKED).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(rig.oauth.refreshes(), 0);
    assert!(
        rig.store
            .due_connections(rig.now().unix_timestamp(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn next_refresh_at_in_lazy_and_eager_modes() {
    let lazy = Rig::new(&[]).await;
    let now = lazy.now();
    let in_an_hour = now + time::Duration::hours(1);
    assert_eq!(
        lazy.connector.next_refresh_at(now, in_an_hour),
        (now + time::Duration::hours(24)).unix_timestamp(),
        "lazy: the keep-alive only"
    );

    let eager = Rig::new(&[("REFRESH_MODE", "eager")]).await;
    // Before REFRESH_AHEAD_SECS, less one sweep period so a sweep run lands in time.
    assert_eq!(
        eager.connector.next_refresh_at(now, in_an_hour),
        (in_an_hour - time::Duration::seconds(300 + 600)).unix_timestamp()
    );
    // Never later than the keep-alive, never sooner than a minute.
    let short_keepalive = Rig::new(&[("REFRESH_MODE", "eager"), ("KEEPALIVE_HOURS", "1")]).await;
    assert_eq!(
        short_keepalive
            .connector
            .next_refresh_at(now, now + time::Duration::hours(5)),
        (now + time::Duration::hours(1)).unix_timestamp()
    );
    assert_eq!(
        eager
            .connector
            .next_refresh_at(now, now + time::Duration::seconds(30)),
        now.unix_timestamp() + 60
    );
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(backoff_secs(1), 120);
    assert_eq!(backoff_secs(2), 240);
    assert!(backoff_secs(3) > backoff_secs(2));
    assert_eq!(backoff_secs(30), 3600);
}

// ---- the sweep ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweep_counts_refreshed_failed_and_skipped() {
    let rig = Rig::new(&[]).await;
    let past = rig.now().unix_timestamp() - 10;
    for (id, rt) in [
        ("conn_ok", "rt-ok"),
        ("conn_down", "rt-down"),
        ("conn_dead", "rt-dead"),
        ("conn_later", "rt-later"),
        ("conn_stale", "rt-stale"),
    ] {
        rig.connection(id, 3600, rt).await;
        if id != "conn_later" {
            rig.set_record(id, |r| r.next_refresh_at = Some(past)).await;
        }
    }
    // A stale index entry of a dead connection: never refreshed.
    rig.set_record("conn_stale", |r| r.status = ConnectionStatus::NeedsReauth)
        .await;
    rig.oauth.answer_for("rt-down", Answer::Unavailable);
    rig.oauth.answer_for("rt-dead", Answer::InvalidGrant);

    let report = rig
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(300))
        .await;
    assert_eq!(
        report,
        SweepReport {
            scanned: 4,
            refreshed: 1,
            skipped: 1,
            failed: 2
        }
    );
    assert_eq!(
        rig.oauth.refreshes(),
        3,
        "ok, down and dead; never stale or later"
    );
    assert_eq!(rig.record("conn_ok").await.consecutive_failures, 0);
    assert_eq!(rig.record("conn_down").await.consecutive_failures, 1);
    assert_eq!(
        rig.record("conn_dead").await.status,
        ConnectionStatus::NeedsReauth
    );
    assert_eq!(rig.record("conn_stale").await.next_refresh_at, None);
    // Nothing is due any more: a second run finds nothing.
    let again = rig
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(300))
        .await;
    assert_eq!(again, SweepReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweep_with_no_time_left_starts_nothing() {
    let rig = Rig::new(&[]).await;
    rig.connection(ID, 3600, "rt-0").await;
    let past = rig.now().unix_timestamp() - 10;
    rig.set_record(ID, |r| r.next_refresh_at = Some(past)).await;
    let report = rig
        .connector
        .run_sweep(tokio::time::Instant::now() + Duration::from_secs(5))
        .await;
    assert_eq!(report, SweepReport::default());
    assert_eq!(rig.oauth.refreshes(), 0);
    assert_eq!(
        rig.record(ID).await.next_refresh_at,
        Some(past),
        "still due"
    );
}

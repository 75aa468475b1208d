//! Durable rotation (issue 14 item 1; DESIGN.md "Token refresh", point 6): Secrets Manager
//! refuses every token write for a stretch spanning several token expiries (the simulator
//! issues 310 s access tokens and `REFRESH_AHEAD_SECS=300`, so each token needs a refresh
//! 10 s after it was issued), while actions arrive from three containers, starting with a
//! burst that refreshes every connection at once. On moto the refusal is the fault proxy
//! answering 503 to `PutSecretValue`/`UpdateSecret`; on the local store, a secret store that
//! refuses writes.
//!
//! What must hold: no connection lost (none `needs_reauth`), no refresh token spent twice
//! (the simulator counts reuse), every action answered 200 with a token Zoom accepts, the
//! newest token served by a container that has never seen the connection, a clear 503 only
//! where the connector has no token (moto: KMS refusing to unwrap the data key for a new
//! container); afterwards the pending copies reach Secrets Manager (the sweep moves them) and
//! are deleted. The figures are printed (`--nocapture`) for docs/benchmarks.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e_tests::fakes::{AheadClock, BeforeSecretWrite, HookedSecrets, SecretWrite};
use e2e_tests::faultproxy::{AwsFault, FaultProxy};
use e2e_tests::stack::{Backend, Served, StackOptions, TestStack, ports_for, serve};
use futures::future::join_all;
use zoom_connector::app::Connector;
use zoom_connector::app::tokens::TokenNeed;
use zoom_connector::app::tokens::pending::{PENDING_RECHECK_SECS, SECRET_WRITE_BUDGET};
use zoom_connector::domain::ConnectionStatus;
use zoom_connector::domain::error::StoreError;
use zoom_connector::ports::{ItemKind, StoreResult};

e2e_tests::on_both_backends!(
    durable_local, durable_aws;
    a_secrets_manager_write_outage_loses_no_connection,
);

const CONNECTIONS: usize = 60;
const CONTAINERS: usize = 3;
/// The outage lasts at least this long (several minutes: about 18 expiries of each token),
/// and until every connection has been refreshed twice more (so it spans expiries however slow
/// the machine is)...
const OUTAGE: Duration = Duration::from_secs(180);
/// ...but not longer than this (then the test fails: refreshes stopped happening).
const OUTAGE_MAX: Duration = Duration::from_secs(600);
const TOKEN_TTL_SECS: u64 = 310;

/// The local store's secret writes refused while the flag is set.
struct RefuseWhileDown(Arc<AtomicBool>);

#[async_trait::async_trait]
impl BeforeSecretWrite for RefuseWhileDown {
    async fn before(&self, _name: &str, _write: SecretWrite) -> StoreResult<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(StoreError::Transient("ServiceUnavailable (test)".into()));
        }
        Ok(())
    }
}

/// The outage switch: the fault proxy in front of moto, or the refusing local secrets.
struct Outage {
    proxy: Option<FaultProxy>,
    down: Arc<AtomicBool>,
}

impl Outage {
    fn start(&self) {
        self.down.store(true, Ordering::SeqCst);
        if let Some(proxy) = &self.proxy {
            for target in [
                "secretsmanager.PutSecretValue",
                "secretsmanager.UpdateSecret",
            ] {
                proxy.inject(target, AwsFault::Unavailable, None);
            }
        }
    }

    fn end(&self) {
        self.down.store(false, Ordering::SeqCst);
        if let Some(proxy) = &self.proxy {
            proxy.clear();
        }
    }
}

/// A container on the stack's backend (through the proxy on moto, refusing writes locally).
fn container(stack: &TestStack, outage: &Outage) -> Connector {
    container_ahead(stack, outage, None)
}

fn container_ahead(stack: &TestStack, outage: &Outage, ahead: Option<time::Duration>) -> Connector {
    let config = (*stack.connector.config).clone();
    let (mut ports, _) = ports_for(&config, stack.aws.as_ref(), stack.data_dir.path());
    if let Some(ahead) = ahead {
        ports.clock = Arc::new(AheadClock(ahead));
    }
    if stack.backend == Backend::Local {
        ports.secrets = Arc::new(HookedSecrets {
            inner: ports.secrets,
            hook: RefuseWhileDown(outage.down.clone()),
        });
    }
    Connector::new(config, ports)
}

async fn serve_container(connector: Connector) -> Served {
    serve(zoom_connector::http::common::finish(
        zoom_connector::http::all_routes(connector.clone()),
        connector,
    ))
    .await
}

fn user_id(n: usize) -> String {
    format!("durable-user-{n}")
}

/// One action (`GET /users/me` at Zoom); its status, or 0 when no answer came at all. The
/// bound only stops a hung test: how fast answers come (the connector's own write budget keeps
/// them inside API Gateway's 30 s) is printed with the figures, not asserted.
async fn act(stack: &TestStack, base_url: &str, id: &str) -> u16 {
    let sent = stack
        .http
        .get(format!("{base_url}/connections/{id}/zoom/me"))
        .bearer_auth(&stack.api_key)
        .timeout(Duration::from_secs(120))
        .send()
        .await;
    match sent {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn a_secrets_manager_write_outage_loses_no_connection(backend: Backend) {
    let sim_config = zoom_sim::SimConfig {
        access_token_ttl_secs: TOKEN_TTL_SECS,
        ..Default::default()
    };
    let (options, proxy) = match backend {
        Backend::Local => (StackOptions::new(backend), None),
        Backend::Aws => {
            let proxy = FaultProxy::in_front_of_moto().await;
            let sdk = proxy.sdk_config().await;
            (StackOptions::new(backend).with_aws_sdk(sdk), Some(proxy))
        }
    };
    let stack = TestStack::start(
        options
            .with_sim_config(sim_config)
            .env("REFRESH_AHEAD_SECS", "300"),
    )
    .await;
    let outage = Outage {
        proxy,
        down: Arc::new(AtomicBool::new(false)),
    };

    let mut ids = Vec::new();
    for n in 0..CONNECTIONS {
        stack.sim.add_user(zoom_sim::SimUser::new(
            &user_id(n),
            "durable-account",
            &format!("durable{n}@example.com"),
            "Dur",
            "Able",
        ));
        stack.sim.set_current_user(&user_id(n));
        ids.push(stack.connect_platform().await);
    }
    let containers: Vec<Served> = join_all((0..CONTAINERS).map(|_| {
        let connector = container(&stack, &outage);
        serve_container(connector)
    }))
    .await;
    let grants_before = stack.sim.counters().refresh_grants;

    // The outage, once every token is past its refresh point.
    tokio::time::sleep(Duration::from_secs(TOKEN_TTL_SECS - 300 + 1)).await;
    outage.start();
    let started = tokio::time::Instant::now();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();

    // The burst: every connection at once, spread over the containers.
    let burst = join_all(ids.iter().enumerate().map(|(n, id)| {
        let base = containers[n % CONTAINERS].base_url.clone();
        let stack = &stack;
        async move { act(stack, &base, id).await }
    }))
    .await;
    let burst_secs = started.elapsed().as_secs_f64();
    let burst_grants = stack.sim.counters().refresh_grants - grants_before;
    // How fast the burst's refreshes reached Zoom (first to last grant).
    let times = stack.sim.refresh_grant_times();
    let burst_times = &times[times
        .len()
        .saturating_sub(usize::try_from(burst_grants).unwrap_or(0))..];
    let burst_span = match (burst_times.first(), burst_times.last()) {
        (Some(a), Some(b)) => (*b - *a).as_seconds_f64().max(0.001),
        _ => 0.001,
    };
    for s in burst {
        *statuses.entry(s).or_default() += 1;
    }

    // Then rounds until the outage ends: every connection from a rotating container.
    let mut round = 0usize;
    let spans_expiries =
        || stack.sim.counters().refresh_grants - grants_before >= (2 * CONNECTIONS) as u64;
    while started.elapsed() < OUTAGE || !spans_expiries() {
        assert!(
            started.elapsed() < OUTAGE_MAX,
            "the outage saw only {} refreshes",
            stack.sim.counters().refresh_grants - grants_before
        );
        let answers = join_all(ids.iter().enumerate().map(|(n, id)| {
            let base = containers[(n + round) % CONTAINERS].base_url.clone();
            let stack = &stack;
            async move { act(stack, &base, id).await }
        }))
        .await;
        for s in answers {
            *statuses.entry(s).or_default() += 1;
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let grants_during = stack.sim.counters().refresh_grants - grants_before;

    // Still in the outage: a container that never saw these connections gets the newest
    // tokens (the pending copies), the very ones Zoom issued last.
    let newcomer = container(&stack, &outage);
    for (n, id) in ids.iter().enumerate() {
        let got = newcomer
            .obtain_token(id, TokenNeed::Usable)
            .await
            .expect("a token during the outage");
        let latest = stack
            .sim
            .latest_tokens(&user_id(n), zoom_sim::DEFAULT_CLIENT_ID)
            .expect("tokens at the simulator");
        assert_eq!(
            got.token.access_token.expose(),
            latest.access_token,
            "{id}: the newest access token"
        );
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let pending = pending_copies(&stack, &ids, now).await;
    // No token: KMS refusing to unwrap for a new container is a clear 503 (moto only).
    let mut no_token_answer = None;
    if let Some(proxy) = &outage.proxy {
        proxy.inject("TrentService.Decrypt", AwsFault::Unavailable, None);
        let blind = serve_container(container(&stack, &outage)).await;
        let r = stack
            .http
            .get(format!("{}/connections/{}/zoom/me", blind.base_url, ids[0]))
            .bearer_auth(&stack.api_key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry_after = r.headers().contains_key("retry-after");
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "store_unavailable", "{body}");
        assert!(retry_after, "a 503 carries Retry-After");
        no_token_answer = Some(status);
    }
    // Background attempts to move the copies (spawned by the reads above) end, failing, before
    // the outage does: the sweep below, with its clock ahead, must not meet a live lease.
    // (A container's first write tries Secrets Manager for up to SECRET_WRITE_BUDGET.)
    tokio::time::sleep(SECRET_WRITE_BUDGET + Duration::from_secs(2)).await;
    outage.end();
    let outage_secs = started.elapsed().as_secs_f64();

    // After: the sweep moves every pending copy into Secrets Manager and deletes it. A record
    // with a pending copy is due again PENDING_RECHECK_SECS later: the sweeping container's
    // clock is that far ahead, instead of the test waiting for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut swept = 0;
    loop {
        let sweeper = container_ahead(
            &stack,
            &outage,
            Some(time::Duration::seconds(PENDING_RECHECK_SECS + 5)),
        );
        sweeper
            .run_sweep(tokio::time::Instant::now() + Duration::from_secs(60))
            .await;
        swept += 1;
        let now = time::OffsetDateTime::now_utc().unix_timestamp() + 120;
        let left = pending_copies(&stack, &ids, now).await;
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} pending copies left after {swept} sweeps"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut not_active = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let record = stack
            .connector
            .store
            .get_connection(id)
            .await
            .unwrap()
            .unwrap();
        if record.status != ConnectionStatus::Active {
            not_active.push((id.clone(), record.status));
        }
        let stored = stack.connector.read_connection_secret(id).await.unwrap();
        let latest = stack
            .sim
            .latest_tokens(&user_id(n), zoom_sim::DEFAULT_CLIENT_ID)
            .unwrap();
        assert_eq!(
            stored.refresh_token.expose(),
            latest.refresh_token,
            "{id}: Secrets Manager holds Zoom's live refresh token"
        );
    }
    let lost = not_active
        .iter()
        .filter(|(_, status)| *status == ConnectionStatus::NeedsReauth)
        .count();
    let counters = stack.sim.counters();
    let events = stack.events().await;
    let reauth_events = events
        .iter()
        .filter(|(t, _)| t == "Zoom Connection Needs Reauth")
        .count();
    println!(
        "durable rotation ({backend:?}): {CONNECTIONS} connections, {CONTAINERS} containers, \
         outage {outage_secs:.0} s; burst: {burst_grants} refreshes at Zoom within \
         {burst_span:.2} s ({:.0}/s), all answered within {burst_secs:.1} s; refreshes during the outage {grants_during}; pending copies at its end \
         {pending}; answers by status {statuses:?}; no-token answer {no_token_answer:?}; \
         sweeps to clear {swept}; connections lost {lost}; refresh tokens reused {}",
        f64::from(u32::try_from(burst_grants).unwrap_or(u32::MAX)) / burst_span,
        counters.refresh_token_reuse
    );
    assert!(
        not_active.is_empty(),
        "every connection still active: {not_active:?}"
    );
    assert_eq!(reauth_events, 0, "no Needs Reauth event");
    assert_eq!(
        counters.refresh_token_reuse, 0,
        "no refresh token spent twice"
    );
    assert!(
        grants_during as usize >= 2 * CONNECTIONS,
        "the outage spans several expiries: {grants_during} refreshes"
    );
    assert!(pending > 0, "the outage left pending copies to move");
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [200],
        "every action during the outage served: {statuses:?}"
    );
}

/// How many of `ids` still have a pending (sealed) copy of their tokens.
async fn pending_copies(stack: &TestStack, ids: &[String], now: i64) -> usize {
    let mut pending = 0;
    for id in ids {
        let item = stack
            .connector
            .store
            .get_item(ItemKind::PendingTokens, id, now)
            .await
            .unwrap();
        pending += usize::from(item.is_some());
    }
    pending
}

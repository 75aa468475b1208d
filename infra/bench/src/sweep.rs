//! Sweep rate: N due connections on the embedded store, Zoom's token endpoint slowed to
//! 150 ms, `REFRESH_TPS=40`; one sweep refreshes them all. Token writes are timed by wrapping
//! the secret store, Zoom's grants by the simulator.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use zoom_connector::adapters::local::LocalStore;
use zoom_connector::adapters::zoom_http::{HttpZoomApi, HttpZoomOAuth, http_client};
use zoom_connector::app::sweep::SweepReport;
use zoom_connector::app::{Connector, Ports, ZOOM_OAUTH_TIMEOUT};
use zoom_connector::config::Config;
use zoom_connector::ports::{
    ConnectionStore, EventBus, SecretStore, StoreResult, SystemClock, ZoomOAuth,
};
use zoom_connector::secret::SecretString;
use zoom_sim::{FaultTarget, ZoomSim};

use crate::BenchError;
use zoom_connector_bench::stats::{max_in_window, max_per_whole_second};

pub const TOKEN_LATENCY: Duration = Duration::from_millis(150);

/// The local store's secrets, with the moments of every successful write noted: when the
/// connector issued it and when the store had it.
struct TimedSecrets {
    inner: LocalStore,
    writes: Mutex<Vec<(Instant, Instant)>>,
}

#[async_trait]
impl SecretStore for TimedSecrets {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SecretString>> {
        self.inner.get_secret(name).await
    }

    async fn put_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<()> {
        self.inner.put_secret(name, value, request_token).await
    }

    /// The sweep's token writes (they only ever update an existing secret).
    async fn update_secret(
        &self,
        name: &str,
        value: &SecretString,
        request_token: &str,
    ) -> StoreResult<bool> {
        let issued = Instant::now();
        let result = self.inner.update_secret(name, value, request_token).await;
        if result.is_ok()
            && let Ok(mut writes) = self.writes.lock()
        {
            writes.push((issued, Instant::now()));
        }
        result
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        self.inner.delete_secret(name).await
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepResult {
    pub connections: usize,
    pub refresh_tps: u32,
    pub seed_secs: f64,
    pub sweep_secs: f64,
    pub budget_secs: f64,
    pub report: SweepReport,
    pub writes: usize,
    /// By the moment each write was issued (what the pacer governs and the service counts).
    pub max_writes_any_window: usize,
    pub max_writes_whole_second: usize,
    /// By the moment each write was done (issue time plus the store's own latency).
    pub max_stored_any_window: usize,
    pub grants: usize,
    pub max_grants_any_window: usize,
    pub mean_writes_per_sec: f64,
}

pub async fn run(
    connections: usize,
    refresh_tps: u32,
    data_dir: &Path,
) -> Result<SweepResult, BenchError> {
    let sim = ZoomSim::with_defaults();
    let running = sim.start().await?;
    let store = LocalStore::open(data_dir).map_err(|e| BenchError::new(e.to_string()))?;
    let env = [
        ("CONNECTOR_PUBLIC_URL", "http://127.0.0.1:9".to_owned()),
        ("ZOOM_OAUTH_URL", running.oauth_url()),
        ("ZOOM_API_URL", running.api_url()),
        ("REFRESH_TPS", refresh_tps.to_string()),
    ];
    let config = Config::from_lookup(
        |name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()),
        None,
    )
    .map_err(|e| BenchError::new(e.to_string()))?;
    let timed = Arc::new(TimedSecrets {
        inner: store.clone(),
        writes: Mutex::new(Vec::new()),
    });
    let http = http_client();
    let oauth: Arc<dyn ZoomOAuth> = Arc::new(HttpZoomOAuth::new(
        http.clone(),
        &config.zoom_oauth_url,
        ZOOM_OAUTH_TIMEOUT,
    ));
    let prefix = config.aws.secrets_prefix.clone();
    let platform_secret_id = config.aws.platform_app_secret_id.clone();
    let connector = Connector::new(
        config,
        Ports {
            secrets: timed.clone(),
            store: Arc::new(store.clone()) as Arc<dyn ConnectionStore>,
            bus: Arc::new(store.clone()) as Arc<dyn EventBus>,
            oauth: oauth.clone(),
            zoom: Arc::new(HttpZoomApi::new(http)),
            clock: Arc::new(SystemClock),
            data_keys: Arc::new(zoom_connector::adapters::local::LocalDataKeys::in_memory()),
        },
    );

    // N connections, all due now, with live tokens at the simulator.
    let seeding = Instant::now();
    let platform = serde_json::json!({ "client_id": zoom_sim::DEFAULT_CLIENT_ID, "client_secret": zoom_sim::DEFAULT_CLIENT_SECRET });
    store
        .put_secret(
            &platform_secret_id,
            &SecretString::new(platform.to_string()),
            "bench-platform",
        )
        .await
        .map_err(|e| BenchError::new(e.to_string()))?;
    let issued = crate::seed::issue_tokens(&sim, oauth, "sweep", connections, 16).await?;
    let now = time::OffsetDateTime::now_utc();
    let due = now.unix_timestamp() - 60;
    let writes: Vec<Result<(), BenchError>> =
        futures::stream::iter(issued.iter())
            .map(|i| {
                let (record, secret) = crate::seed::connection_for(i, now, due);
                let (store, prefix) = (store.clone(), prefix.clone());
                async move {
                    crate::seed::write_connection(&store, &store, &prefix, &record, &secret).await
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
    writes.into_iter().collect::<Result<Vec<()>, _>>()?;
    let seed_secs = seeding.elapsed().as_secs_f64();

    sim.set_latency(FaultTarget::Token, TOKEN_LATENCY);
    let grants_before = sim.refresh_grant_times().len();
    let started = Instant::now();
    let wall_started = time::OffsetDateTime::now_utc();
    // A deadline far enough that it never cuts the sweep short (Lambda's would be 300 s; the
    // leftovers would wait for the next run, which this bench does not want to measure).
    let budget_secs = 1.1 * connections as f64 / f64::from(refresh_tps);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(budget_secs * 2.0 + 60.0);
    let report = connector.run_sweep(deadline).await;
    let sweep_secs = started.elapsed().as_secs_f64();
    sim.set_latency(FaultTarget::Token, Duration::ZERO);

    let writes = timed.writes.lock().map(|w| w.clone()).unwrap_or_default();
    let write_moments: Vec<Duration> = writes.iter().map(|(issued, _)| *issued - started).collect();
    let stored_moments: Vec<Duration> =
        writes.iter().map(|(_, stored)| *stored - started).collect();
    let grant_moments: Vec<Duration> = sim
        .refresh_grant_times()
        .into_iter()
        .skip(grants_before)
        .map(|t| (t - wall_started).unsigned_abs())
        .collect();
    Ok(SweepResult {
        connections,
        refresh_tps,
        seed_secs,
        sweep_secs,
        budget_secs,
        report,
        writes: write_moments.len(),
        max_writes_any_window: max_in_window(&write_moments, Duration::from_secs(1)),
        max_writes_whole_second: max_per_whole_second(&write_moments),
        max_stored_any_window: max_in_window(&stored_moments, Duration::from_secs(1)),
        grants: grant_moments.len(),
        max_grants_any_window: max_in_window(&grant_moments, Duration::from_secs(1)),
        mean_writes_per_sec: write_moments.len() as f64 / sweep_secs.max(f64::EPSILON),
    })
}

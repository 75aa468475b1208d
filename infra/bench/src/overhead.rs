//! Action overhead: the same Zoom call (`GET /v2/users/me`) made directly at the simulator,
//! through the connector (`GET /connections/{id}/zoom/me` on the release local stack, AWS
//! adapters on moto) and through nginx with a fixed bearer header, interleaved in one run, at
//! concurrency 1 and 32. AWS calls reaching moto during the measured warm actions are counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::counting_proxy::{CountingProxy, summarize};
use zoom_connector_bench::stats::Percentiles;

/// One way of making the call.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: &'static str,
    pub url: String,
    /// `None` for nginx, which adds the bearer header itself.
    pub bearer: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PathResult {
    pub name: &'static str,
    pub latency: Percentiles,
    pub errors: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LevelResult {
    pub concurrency: usize,
    pub paths: Vec<PathResult>,
    pub wall_secs: f64,
}

impl LevelResult {
    pub fn path(&self, name: &str) -> Option<&PathResult> {
        self.paths.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OverheadResult {
    pub levels: Vec<LevelResult>,
    /// Connector requests in the measured runs (after warm-up), on every connector path.
    pub connector_actions: usize,
    /// Requests that reached moto while those ran.
    pub aws_calls: usize,
    pub aws_operations: String,
    pub nginx: Option<String>,
}

/// Sends `requests_per_path` requests to each target from `concurrency` workers; every worker
/// takes the targets in turn, starting at a different one, so the paths share the same
/// moments and the same load.
pub async fn measure_level(
    http: &reqwest::Client,
    targets: &[Target],
    concurrency: usize,
    requests_per_path: usize,
) -> LevelResult {
    let per_worker = (requests_per_path * targets.len()).div_ceil(concurrency);
    let targets = Arc::new(targets.to_vec());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (http, targets) = (http.clone(), targets.clone());
        workers.spawn(async move {
            let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
            let mut errors = vec![0usize; targets.len()];
            for i in 0..per_worker {
                let which = (worker + i) % targets.len();
                let target = &targets[which];
                let sent = Instant::now();
                let mut request = http.get(&target.url);
                if let Some(bearer) = &target.bearer {
                    request = request.bearer_auth(bearer);
                }
                let outcome = request.send().await;
                let ok = match outcome {
                    // The body is part of the answer: read it before stopping the clock.
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    Ok(r) => {
                        let _ = r.bytes().await;
                        false
                    }
                    Err(_) => false,
                };
                if ok {
                    samples[which].push(sent.elapsed());
                } else {
                    errors[which] += 1;
                }
            }
            (samples, errors)
        });
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
    let mut errors = vec![0usize; targets.len()];
    while let Some(joined) = workers.join_next().await {
        if let Ok((s, e)) = joined {
            for (i, mut v) in s.into_iter().enumerate() {
                samples[i].append(&mut v);
            }
            for (i, n) in e.into_iter().enumerate() {
                errors[i] += n;
            }
        }
    }
    LevelResult {
        concurrency,
        wall_secs: started.elapsed().as_secs_f64(),
        paths: targets
            .iter()
            .enumerate()
            .map(|(i, t)| PathResult {
                name: t.name,
                latency: Percentiles::of(&samples[i]),
                errors: errors[i],
            })
            .collect(),
    }
}

/// Warms every path up, then measures each concurrency level and counts the AWS calls the
/// connector made meanwhile.
pub async fn run(
    targets: &[Target],
    levels: &[(usize, usize)],
    proxy: &CountingProxy,
    nginx_note: Option<String>,
) -> Result<OverheadResult, BenchError> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Warm-up: connections opened, the connector's key and token caches filled.
    let warm = measure_level(&http, targets, 4, 300).await;
    for path in &warm.paths {
        if path.errors > 0 {
            return Err(BenchError::new(format!(
                "{} answered {} errors during warm-up",
                path.name, path.errors
            )));
        }
    }
    let from = Instant::now();
    let mut results = Vec::new();
    for &(concurrency, requests) in levels {
        results.push(measure_level(&http, targets, concurrency, requests).await);
    }
    // Let any write-behind settle before closing the window.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = proxy.calls_between(from, Instant::now());
    // Every path through a connector stack (its AWS calls all reach the one proxy).
    let connector_actions = results
        .iter()
        .flat_map(|l| &l.paths)
        .filter(|p| p.name.starts_with("connector"))
        .map(|p| p.latency.count + p.errors)
        .sum();
    Ok(OverheadResult {
        levels: results,
        connector_actions,
        aws_calls: calls.len(),
        aws_operations: summarize(&calls),
        nginx: nginx_note,
    })
}

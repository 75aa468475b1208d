//! The scheduled sweep: refresh the connections that are due, at most `REFRESH_TPS` token
//! writes per second, bounded concurrency, and stop cleanly before the deadline.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use utoipa::ToSchema;

use super::Connector;
use super::tokens::TokenNeed;

/// Refreshes running at once.
pub const SWEEP_CONCURRENCY: usize = 32;
/// Stop starting refreshes when less than this is left: one refresh (lease) must fit.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(35);
const PAGE: usize = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SweepReport {
    pub scanned: u64,
    pub refreshed: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// A token bucket of one: starts are spaced `1/rate` apart, so writes never exceed `rate`
/// per second over any window (each refresh writes once).
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    pub fn per_second(rate: u32) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / f64::from(rate.max(1))),
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

impl Connector {
    /// One sweep; `deadline` is when the invocation must have returned.
    pub async fn run_sweep(&self, deadline: Instant) -> SweepReport {
        let limiter = Arc::new(RateLimiter::per_second(self.config.refresh_tps));
        let slots = Arc::new(Semaphore::new(SWEEP_CONCURRENCY));
        let report = Arc::new(std::sync::Mutex::new(SweepReport::default()));
        let mut seen = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        'pages: loop {
            if deadline.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN {
                break;
            }
            let due = match self.store.due_connections(self.now_unix(), PAGE).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "could not query due connections");
                    break;
                }
            };
            let fresh: Vec<_> = due
                .into_iter()
                .filter(|r| seen.insert(r.id.clone()))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for record in fresh {
                if deadline.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN {
                    break 'pages;
                }
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break 'pages;
                };
                limiter.acquire().await;
                report.lock().map(|mut r| r.scanned += 1).ok();
                let (this, report) = (self.clone(), report.clone());
                tasks.spawn(async move {
                    let _permit = permit;
                    let outcome = this.obtain_token(&record.id, TokenNeed::IfDue).await;
                    let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Ok(o) if o.refreshed => r.refreshed += 1,
                        Ok(_) => r.skipped += 1,
                        Err(e)
                            if e.code == "zoom_unavailable"
                                || e.code == "refresh_in_progress"
                                || e.status.is_server_error() =>
                        {
                            r.failed += 1
                        }
                        // needs_reauth / revoked / gone: nothing more to do for it.
                        Err(_) => r.failed += 1,
                    }
                });
            }
            while tasks.len() > SWEEP_CONCURRENCY * 4 {
                tasks.join_next().await;
            }
        }
        while tasks.join_next().await.is_some() {}
        let report = *report.lock().unwrap_or_else(|p| p.into_inner());
        tracing::info!(
            scanned = report.scanned,
            refreshed = report.refreshed,
            skipped = report.skipped,
            failed = report.failed,
            "sweep finished"
        );
        report
    }
}

//! The scheduled sweep: refresh the connections that are due, at most `REFRESH_TPS` token
//! writes per second, bounded concurrency, and stop cleanly before the deadline.
//!
//! Pacing sits inside the refresh routine, where it counts: each refresh holding its lease
//! waits for a slot right before calling Zoom's token endpoint, and again right before
//! writing the new tokens, so both Zoom grants and secret writes stay at or under
//! `REFRESH_TPS` in every one-second window, whatever Zoom's answer times do.
//!
//! After the refreshes, the same run deletes the secrets of abandoned connect flows
//! (`pending_secrets`), under the same write pace and deadline; they are not in the report.
//!
//! Report: `scanned` = `refreshed` + `skipped` + `failed`. Skipped: nothing to do (no longer
//! due, refreshed elsewhere meanwhile, deleted, not usable any more, or left for the next run
//! because the deadline came close). Failed: a refresh was due and did not happen (Zoom
//! unavailable, refused, the connection found dead, storage errors).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use utoipa::ToSchema;

use super::Connector;
use crate::domain::error::ErrorCode;

/// Upper bound of refreshes running at once.
pub const SWEEP_CONCURRENCY: usize = 32;
/// How often the sweep runs (template.yaml schedules it `rate(10 minutes)`).
pub const SWEEP_PERIOD: Duration = Duration::from_secs(600);
/// Stop starting refreshes when less than this is left: a refresh may wait for a lease held
/// elsewhere (25 s at most) or run a Zoom call and its write.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(35);
/// A Zoom call is not started with less than this left: the call (11 s at most) and the
/// write of its answer must fit.
const CALL_MARGIN: Duration = Duration::from_secs(20);
const PAGE: usize = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SweepReport {
    pub scanned: u64,
    pub refreshed: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// A sliding-window pacer: no window of one second (plus a small margin) ever holds more than
/// `rate` of the moments `acquire` returns, and consecutive ones are at least half an interval
/// apart (no bursts). Unlike fixed spacing, a late wake-up does not push every later slot back,
/// so the pace stays close to `rate`. Waiters are served in arrival order.
pub struct RateLimiter {
    rate: usize,
    min_spacing: Duration,
    issued: Mutex<std::collections::VecDeque<Instant>>,
}

/// What happens after `acquire` (a network hop, a busy scheduler) can bring calls a little
/// closer together at the receiver than they left here: count windows this much longer.
const WINDOW_MARGIN: Duration = Duration::from_millis(25);

impl RateLimiter {
    pub fn per_second(rate: u32) -> Self {
        let rate = rate.max(1);
        Self {
            rate: rate as usize,
            min_spacing: Duration::from_secs(1) / (2 * rate),
            issued: Mutex::new(std::collections::VecDeque::with_capacity(rate as usize)),
        }
    }

    pub async fn acquire(&self) {
        // The lock is held across the sleep: waiters go one by one, in order.
        let mut issued = self.issued.lock().await;
        let mut at = Instant::now();
        if issued.len() == self.rate
            && let Some(oldest) = issued.front()
        {
            at = at.max(*oldest + Duration::from_secs(1) + WINDOW_MARGIN);
        }
        if let Some(last) = issued.back() {
            at = at.max(*last + self.min_spacing);
        }
        tokio::time::sleep_until(at).await;
        if issued.len() == self.rate {
            issued.pop_front();
        }
        issued.push_back(Instant::now());
    }
}

/// The sweep's pacing and deadline, applied by the refresh routine (see the module docs).
pub struct SweepPace {
    calls: RateLimiter,
    writes: RateLimiter,
    deadline: Instant,
}

impl SweepPace {
    pub fn new(rate: u32, deadline: Instant) -> Self {
        Self {
            calls: RateLimiter::per_second(rate),
            writes: RateLimiter::per_second(rate),
            deadline,
        }
    }

    /// Waits for a Zoom-call slot; `false` when the deadline no longer leaves room for one.
    pub async fn before_zoom_call(&self) -> bool {
        if !self.leaves(CALL_MARGIN) {
            return false;
        }
        self.calls.acquire().await;
        self.leaves(CALL_MARGIN)
    }

    /// Waits for a token-write slot. Calls are already paced, so this only evens out
    /// differences in Zoom's answer times.
    pub async fn before_write(&self) {
        self.writes.acquire().await;
    }

    fn leaves(&self, margin: Duration) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) >= margin
    }
}

/// Refreshes at once: enough to keep the pace, few enough that a refresh holding its lease
/// never queues long for a slot (about two seconds' worth of slots at most).
fn concurrency(rate: u32) -> usize {
    usize::try_from(rate)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
        .clamp(2, SWEEP_CONCURRENCY)
}

impl Connector {
    /// One sweep; `deadline` is when the invocation must have returned.
    pub async fn run_sweep(&self, deadline: Instant) -> SweepReport {
        let pace = Arc::new(SweepPace::new(self.config.refresh_tps, deadline));
        let slots = Arc::new(Semaphore::new(concurrency(self.config.refresh_tps)));
        let report = Arc::new(std::sync::Mutex::new(SweepReport::default()));
        let tally = |f: &dyn Fn(&mut SweepReport)| {
            let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut r);
        };
        let time_to_start =
            || deadline.saturating_duration_since(Instant::now()) >= DEADLINE_MARGIN;
        let mut seen = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut drained = false;
        'pages: while time_to_start() {
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
                // The page may be full of refreshes still running (or failures that stay
                // due): let those finish and look once more before calling it done.
                if drained || tasks.is_empty() {
                    break;
                }
                while tasks.join_next().await.is_some() {}
                drained = true;
                continue;
            }
            drained = false;
            for record in fresh {
                if !record.status.is_usable() {
                    // A stale index entry (needs_reauth, revoked, pending): never refreshed.
                    tally(&|r| {
                        r.scanned += 1;
                        r.skipped += 1;
                    });
                    self.unindex_unusable(&record.id).await;
                    continue;
                }
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break 'pages;
                };
                if !time_to_start() {
                    break 'pages;
                }
                tally(&|r| r.scanned += 1);
                let (this, pace, report) = (self.clone(), pace.clone(), report.clone());
                tasks.spawn(async move {
                    let _permit = permit;
                    let outcome = this.refresh_if_due(&record.id, &pace).await;
                    let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                    match outcome {
                        Ok(o) if o.refreshed => r.refreshed += 1,
                        Ok(_) => r.skipped += 1,
                        // Deleted since it was listed.
                        Err(e) if e.code == ErrorCode::ConnectionNotFound => r.skipped += 1,
                        Err(e) => {
                            tracing::warn!(connection_id = %record.id, code = e.code.as_str(), "sweep refresh failed");
                            r.failed += 1;
                        }
                    }
                });
                while tasks.try_join_next().is_some() {}
            }
        }
        while tasks.join_next().await.is_some() {}
        // Then the secrets of abandoned connect flows, at the same secret-write pace.
        self.delete_orphaned_pending_secrets(self.now_unix(), Some(&pace), Some(deadline))
            .await;
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

    /// Takes a connection that can no longer be refreshed out of the due index.
    async fn unindex_unusable(&self, id: &str) {
        let result = self
            .update_record(id, |r| {
                if !r.status.is_usable() {
                    r.next_refresh_at = None;
                }
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(connection_id = id, error = %e, "could not take a dead connection out of the sweep");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Acquisitions of a strict pacer never put more than `rate` into any one-second window.
    /// Time is paused (tokio's test clock advances only when every task waits), so these are
    /// the pacer's own decisions, whatever else the machine is doing.
    #[tokio::test(start_paused = true)]
    async fn pacer_never_exceeds_its_rate_in_any_second() {
        let limiter = Arc::new(RateLimiter::per_second(20));
        let times = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..45 {
            let (limiter, times) = (limiter.clone(), times.clone());
            tasks.spawn(async move {
                limiter.acquire().await;
                times.lock().unwrap().push(Instant::now());
            });
        }
        while tasks.join_next().await.is_some() {}
        let mut times = times.lock().unwrap().clone();
        times.sort();
        assert_eq!(times.len(), 45);
        for pair in times.windows(21) {
            assert!(
                pair[20] - pair[0] >= Duration::from_secs(1),
                "21 acquisitions within {:?}",
                pair[20] - pair[0]
            );
        }
        // No bursts: consecutive slots at least half an interval apart.
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(25), "{pair:?}");
        }
        // And it keeps the pace: 45 at 20/s take a little over two seconds, not more.
        let span = times[44] - times[0];
        assert!(span < Duration::from_millis(2300), "{span:?}");
    }

    #[test]
    fn concurrency_is_bounded() {
        assert_eq!(concurrency(1), 2);
        assert_eq!(concurrency(10), 20);
        assert_eq!(concurrency(40), SWEEP_CONCURRENCY);
    }
}

//! The meeting queue on one machine: what SQS does for the meeting-events function on AWS
//! (redelivery with growing delays, a receive limit, a dead-letter count), in process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::app::Connector;
use crate::app::meeting_events::EventOutcome;
use crate::metrics::Metric;

/// Delivery rules of [`LocalMeetingQueue`] (SQS's redrive policy and visibility back-off).
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    /// Deliveries of one message before it is dead-lettered (SQS `maxReceiveCount`).
    pub max_deliveries: u32,
    /// Wait before the second delivery; doubles each time.
    pub first_retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            max_deliveries: 5,
            first_retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

impl QueuePolicy {
    /// Wait after the `delivered`-th delivery failed transiently.
    pub fn retry_delay(&self, delivered: u32) -> Duration {
        let factor = 1u32 << delivered.saturating_sub(1).min(16);
        self.first_retry_delay
            .saturating_mul(factor)
            .min(self.max_retry_delay)
    }
}

/// What a [`LocalMeetingQueue`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub enqueued: u64,
    pub deliveries: u64,
    pub settled: u64,
    pub redelivered: u64,
    pub dead_lettered: u64,
    /// Enqueued and neither settled nor dead-lettered yet (processing or waiting to retry).
    pub outstanding: u64,
    /// Being processed right now.
    pub in_flight: u64,
}

#[derive(Default)]
struct Counters {
    enqueued: AtomicU64,
    deliveries: AtomicU64,
    settled: AtomicU64,
    redelivered: AtomicU64,
    dead_lettered: AtomicU64,
    in_flight: AtomicU64,
    changed: tokio::sync::Notify,
}

/// The local stack's stand-in for SQS feeding the `meeting-events` function: each message is
/// processed as it arrives; a transient failure comes back after a growing delay, up to
/// `max_deliveries`, then it is dead-lettered (logged). In memory: a restart loses messages
/// that were still waiting.
#[derive(Clone)]
pub struct LocalMeetingQueue {
    connector: Connector,
    policy: QueuePolicy,
    counters: Arc<Counters>,
}

impl LocalMeetingQueue {
    pub fn new(connector: Connector, policy: QueuePolicy) -> Self {
        Self {
            connector,
            policy,
            counters: Arc::default(),
        }
    }

    /// Accepts a message (the body of an SQS message) and starts its first delivery.
    pub fn enqueue(&self, body: String) {
        self.counters.enqueued.fetch_add(1, Ordering::SeqCst);
        let queue = self.clone();
        tokio::spawn(async move { queue.deliver(body).await });
    }

    async fn deliver(self, body: String) {
        let c = &self.counters;
        for delivery in 1..=self.policy.max_deliveries.max(1) {
            c.deliveries.fetch_add(1, Ordering::SeqCst);
            c.in_flight.fetch_add(1, Ordering::SeqCst);
            let outcome = self.connector.process_meeting_event(&body).await;
            c.in_flight.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                EventOutcome::Settled => {
                    self.connector.count(Metric::MeetingEvents, Some("settled"));
                    c.settled.fetch_add(1, Ordering::SeqCst);
                    c.changed.notify_waiters();
                    return;
                }
                EventOutcome::Retry(reason) if delivery < self.policy.max_deliveries => {
                    self.connector.count(Metric::MeetingEvents, Some("retried"));
                    c.redelivered.fetch_add(1, Ordering::SeqCst);
                    c.changed.notify_waiters();
                    let delay = self.policy.retry_delay(delivery);
                    tracing::info!(
                        reason,
                        delivery,
                        ?delay,
                        "meeting event will be delivered again"
                    );
                    tokio::time::sleep(delay).await;
                }
                EventOutcome::Retry(reason) => {
                    tracing::error!(
                        reason,
                        deliveries = delivery,
                        "meeting event dead-lettered: every delivery failed"
                    );
                }
            }
        }
        self.connector
            .count(Metric::MeetingEvents, Some("dead_lettered"));
        c.dead_lettered.fetch_add(1, Ordering::SeqCst);
        c.changed.notify_waiters();
    }

    pub fn stats(&self) -> QueueStats {
        let c = &self.counters;
        let enqueued = c.enqueued.load(Ordering::SeqCst);
        let settled = c.settled.load(Ordering::SeqCst);
        let dead = c.dead_lettered.load(Ordering::SeqCst);
        QueueStats {
            enqueued,
            deliveries: c.deliveries.load(Ordering::SeqCst),
            settled,
            redelivered: c.redelivered.load(Ordering::SeqCst),
            dead_lettered: dead,
            outstanding: enqueued.saturating_sub(settled + dead),
            in_flight: c.in_flight.load(Ordering::SeqCst),
        }
    }

    /// Waits until `done(stats)` holds or `timeout` passes; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&QueueStats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.counters.changed.notified();
            if done(&self.stats()) {
                return true;
            }
            // Re-check now and then too: in_flight drops without a notification.
            let wake = (tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
            if tokio::time::timeout_at(wake, changed).await.is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return done(&self.stats());
            }
        }
    }

    /// Shutdown: lets the deliveries being processed finish (up to `grace`). Messages waiting
    /// for a retry are dropped, as the queue lives in memory.
    pub async fn finish_in_flight(&self, grace: Duration) -> bool {
        self.wait_until(grace, |s| s.in_flight == 0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_cap() {
        let p = QueuePolicy::default();
        let secs: Vec<u64> = (1..=7).map(|d| p.retry_delay(d).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 30, 30]);
    }
}

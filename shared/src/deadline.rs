//! The invocation's deadline. On Lambda the function is stopped at the moment the Runtime API
//! names (`Lambda-Runtime-Deadline-Ms`); work that must not be cut off half-way (spending an
//! authorization code, storing rotated tokens) asks first how much time is left. The deadline
//! travels with the request's task; outside Lambda there is none and only the fixed timeouts
//! apply. The budgets of every function are in docs/operations.md ("Timeouts").

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Kept back from Lambda's deadline for sending the answer.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);
/// One AWS operation, retries included (the SDK's operation timeout; DynamoDB and Secrets
/// Manager answer in milliseconds, so this is about outages, not load).
pub const AWS_OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of an AWS operation (the SDK retries within the operation timeout).
pub const AWS_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` under `deadline` (none: no deadline).
pub async fn within<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(at) => DEADLINE.scope(at, work).await,
        None => work.await,
    }
}

/// The deadline of a Lambda invocation whose runtime deadline is `lambda_deadline`, less the
/// answer's margin.
pub fn from_lambda(lambda_deadline: SystemTime) -> Instant {
    let left = lambda_deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Instant::now() + left.saturating_sub(ANSWER_MARGIN)
}

/// The current task's deadline, to hand on to a task it spawns (a task-local does not
/// travel into `tokio::spawn`).
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|at| *at).ok()
}

/// Time left before the current task's deadline; `None` without one.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|at| at.saturating_duration_since(Instant::now()))
        .ok()
}

/// Whether `budget` still fits before the deadline (always, without one).
pub fn leaves(budget: Duration) -> bool {
    remaining().is_none_or(|left| left >= budget)
}

/// `timeout`, shortened so that it ends by the deadline.
pub fn capped(timeout: Duration) -> Duration {
    remaining().map_or(timeout, |left| left.min(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budgets_follow_the_task_deadline() {
        assert!(leaves(Duration::from_secs(3600)), "no deadline, no limit");
        assert_eq!(capped(Duration::from_secs(10)), Duration::from_secs(10));
        let at = Some(Instant::now() + Duration::from_secs(5));
        within(at, async {
            assert!(leaves(Duration::from_secs(5)));
            assert!(!leaves(Duration::from_secs(6)));
            assert_eq!(capped(Duration::from_secs(10)), Duration::from_secs(5));
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(remaining(), Some(Duration::from_secs(3)));
        })
        .await;
        assert_eq!(remaining(), None);
    }

    #[test]
    fn a_lambda_deadline_keeps_the_answer_margin() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let at = from_lambda(SystemTime::now() + Duration::from_secs(10));
            let left = at - Instant::now();
            assert!(left <= Duration::from_secs(10) - ANSWER_MARGIN, "{left:?}");
            assert!(left > Duration::from_secs(9), "{left:?}");
            assert_eq!(from_lambda(SystemTime::UNIX_EPOCH), Instant::now());
        });
    }
}

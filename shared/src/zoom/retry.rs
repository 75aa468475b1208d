//! Whether a Zoom call is tried again: a pure decision (`{ retry, reason }`) that the call loop
//! in `app::actions` follows. Only safe methods are retried (a retried create could create
//! twice), only after a 5xx or a transport failure, at most [`SAFE_RETRIES`] times, and only
//! while another attempt still fits the call's budget and the invocation's time.

use std::time::Duration;

/// Safe calls retry 5xx and transport failures at most this many times.
pub const SAFE_RETRIES: u32 = 2;

/// A retry is only started when the whole call can still end within this (one more attempt
/// included), which keeps actions inside API Gateway's 30 s limit.
pub const CALL_BUDGET: Duration = Duration::from_secs(20);

/// What the invocation must keep beyond the wait before another attempt.
const AFTER_WAIT: Duration = Duration::from_secs(1);

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Answered(u16),
    TransportFailed,
}

/// The call so far, and what another attempt would cost.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// GET or HEAD.
    pub safe: bool,
    pub retries: u32,
    pub elapsed: Duration,
    /// The (jittered) wait before the next attempt.
    pub wait: Duration,
    /// The most one attempt may take.
    pub attempt_timeout: Duration,
    /// What is left of the invocation, when it has a deadline.
    pub time_left: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub retry: bool,
    pub reason: &'static str,
}

pub fn decide(attempt: Attempt, progress: &Progress) -> Decision {
    let no = |reason| Decision {
        retry: false,
        reason,
    };
    let reason = match attempt {
        Attempt::Answered(status) if status < 500 => return no("answered"),
        Attempt::Answered(_) => "server_error",
        Attempt::TransportFailed => "transport_failure",
    };
    if !progress.safe {
        return no("unsafe_method");
    }
    if progress.retries >= SAFE_RETRIES {
        return no("retries_exhausted");
    }
    let fits_budget = progress.elapsed + progress.wait + progress.attempt_timeout <= CALL_BUDGET;
    let fits_invocation = progress
        .time_left
        .is_none_or(|left| left >= progress.wait + AFTER_WAIT);
    if !(fits_budget && fits_invocation) {
        return no("out_of_time");
    }
    Decision {
        retry: true,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress {
            safe: true,
            retries: 0,
            elapsed: Duration::from_secs(1),
            wait: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(10),
            time_left: None,
        }
    }

    #[test]
    fn only_safe_calls_after_5xx_or_transport_failures_within_budget_retry() {
        let p = progress();
        assert!(decide(Attempt::Answered(503), &p).retry);
        assert!(decide(Attempt::TransportFailed, &p).retry);
        assert_eq!(decide(Attempt::Answered(404), &p).reason, "answered");
        assert_eq!(decide(Attempt::Answered(429), &p).reason, "answered");
        let post = Progress { safe: false, ..p };
        assert_eq!(
            decide(Attempt::Answered(502), &post).reason,
            "unsafe_method"
        );
        let spent = Progress {
            retries: SAFE_RETRIES,
            ..p
        };
        assert_eq!(
            decide(Attempt::Answered(500), &spent).reason,
            "retries_exhausted"
        );
        let late = Progress {
            elapsed: Duration::from_secs(10),
            ..p
        };
        assert_eq!(decide(Attempt::Answered(500), &late).reason, "out_of_time");
        let short = Progress {
            time_left: Some(Duration::from_millis(900)),
            ..p
        };
        assert_eq!(
            decide(Attempt::TransportFailed, &short).reason,
            "out_of_time"
        );
        let roomy = Progress {
            time_left: Some(Duration::from_secs(5)),
            ..p
        };
        assert!(decide(Attempt::TransportFailed, &roomy).retry);
    }
}

//! Logging: JSON on Lambda (CloudWatch parses it), human-readable locally. The level comes
//! from `RUST_LOG` (default `info`). Secrets never reach a log line: every secret is a
//! [`crate::secret::SecretString`], whose `Debug`/`Display` redact.

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON logs for Lambda, without ANSI colours or the time (CloudWatch adds it).
pub fn init_lambda() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Human-readable logs for the local stack and tools.
pub fn init_local() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false)
        .try_init();
}

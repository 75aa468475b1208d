//! The SDK configuration every AWS client of a process shares, and how SDK errors become
//! store errors (throttling and 5xx are transient).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::domain::error::StoreError;

/// Loads the shared SDK configuration once per container: bounded timeouts, the standard
/// retry mode (which retries throttling with back-off), the SDK's HTTPS client on
/// compiled-in roots rather than the system's CA bundle (`https`), and the region and
/// credentials of the environment when it holds them (`env`).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let loader =
        super::env::from_environment(aws_config::defaults(aws_config::BehaviorVersion::latest()))
            .http_client(super::https::https_client_from_env());
    bounded(loader).load().await
}

/// The retry mode and timeouts every AWS client of the connector runs with.
pub fn bounded(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(crate::deadline::AWS_ATTEMPT_TIMEOUT)
                .operation_timeout(crate::deadline::AWS_OPERATION_TIMEOUT)
                .build(),
        )
}

/// The SDK's retry budget (a token bucket that each retry draws from) is shared by every
/// client of a partition in the process. Each adapter gets its own, as each Lambda container
/// has its own: a second connector in one process (the local stack's tests, a benchmark)
/// stands for another container and must not spend this one's retries.
pub fn own_retry_partition(service: &str) -> aws_sdk_dynamodb::config::retry::RetryPartition {
    aws_sdk_dynamodb::config::retry::RetryPartition::new(format!(
        "{service}-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Classifies an SDK error: throttling, 5xx, timeouts and dispatch failures are transient.
pub fn classify<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    what: &str,
    err: &SdkError<E, R>,
) -> StoreError {
    let transient = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code == "ProvisionedThroughputExceededException"
                || code == "RequestLimitExceeded"
                || code == "InternalServiceError"
                || code == "InternalServerError"
                || code == "InternalFailure"
                || code == "ServiceUnavailable"
        }
        _ => false,
    };
    let code = err.code().unwrap_or("unknown");
    let message = format!("{what}: {code}");
    if transient {
        StoreError::Transient(message)
    } else {
        StoreError::Other(message)
    }
}

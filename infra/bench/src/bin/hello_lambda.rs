//! The cold-start baseline: the smallest `lambda_runtime` function (echoes its event), with
//! the same `#[tokio::main]` runtime as the connector's functions and nothing else.

use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<serde_json::Value, Error>(event.payload)
        },
    ))
    .await
}

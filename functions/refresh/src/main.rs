//! Lambda function `refresh`: the scheduled sweep (EventBridge Scheduler, every 10 minutes).

use lambda_runtime::{LambdaEvent, service_fn};
use zoom_connector::app::sweep::SweepReport;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let connector = zoom_connector::wiring::lambda::init().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let connector = connector.clone();
        async move {
            // Stop before Lambda's deadline; what is left waits for the next run.
            let deadline = zoom_connector::deadline::from_lambda(event.context.deadline());
            let report =
                zoom_connector::deadline::within(Some(deadline), connector.run_sweep(deadline))
                    .await;
            connector.metrics.flush();
            Ok::<SweepReport, lambda_runtime::Error>(report)
        }
    }))
    .await
}

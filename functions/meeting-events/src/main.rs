//! Lambda function `meeting-events`: SQS consumer creating one Zoom meeting per event, with
//! `ReportBatchItemFailures` so only transiently failed messages come back.

use lambda_runtime::{LambdaEvent, service_fn};
use zoom_connector::wiring::lambda::{SqsBatchResponse, SqsEvent, handle_sqs_event};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let connector = zoom_connector::wiring::lambda::init().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let connector = connector.clone();
        async move {
            let deadline = zoom_connector::deadline::from_lambda(event.context.deadline());
            let work = handle_sqs_event(&connector, event.payload);
            let response = zoom_connector::deadline::within(Some(deadline), work).await;
            connector.metrics.flush();
            Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
        }
    }))
    .await
}

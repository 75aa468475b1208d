//! Lambda function `meeting-events`: SQS consumer creating one Zoom meeting per event, with
//! `ReportBatchItemFailures` so only transiently failed messages come back.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let connector = zoom_connector::lambda::init().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let connector = connector.clone();
        async move {
            let messages = event
                .payload
                .records
                .into_iter()
                .filter_map(|m| Some((m.message_id?, m.body.unwrap_or_default())))
                .collect();
            let failed = connector.process_meeting_batch(messages).await;
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = failed
                .into_iter()
                .map(|id| {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    failure
                })
                .collect();
            Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
        }
    }))
    .await
}

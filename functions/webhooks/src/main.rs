//! Lambda function `webhooks`: serves `zoom_connector::http::webhooks_router` through API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let connector = zoom_connector::wiring::lambda::init().await?;
    zoom_connector::wiring::lambda::serve(
        connector.clone(),
        zoom_connector::http::webhooks_router(connector),
    )
    .await
}

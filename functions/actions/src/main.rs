//! Lambda function `actions`: serves `zoom_connector::http::actions_router` through API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let connector = zoom_connector::wiring::lambda::init().await?;
    zoom_connector::wiring::lambda::serve(
        connector.clone(),
        zoom_connector::http::actions_router(connector),
    )
    .await
}

//! Lambda function `connect`: serves `zoom_connector::http::connect_router` through API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let connector = zoom_connector::wiring::lambda::init().await?;
    zoom_connector::wiring::lambda::serve(
        connector.clone(),
        zoom_connector::http::connect_router(connector),
    )
    .await
}

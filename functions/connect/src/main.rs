//! Lambda function `connect`: serves `zoom_connector::http::connect_router` through API Gateway.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let connector = zoom_connector::lambda::init().await?;
    zoom_connector::lambda::serve(
        connector.clone(),
        zoom_connector::http::connect_router(connector),
    )
    .await
}

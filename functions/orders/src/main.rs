//! Lambda entry point of the `orders` function: wiring only.

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    shared::http::serve(orders::from_env()?).await
}

//! Lambda entry point of the `notifications` function: wiring only.

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    shared::http::serve(notifications::from_env()?).await
}

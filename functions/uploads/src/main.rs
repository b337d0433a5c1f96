//! Lambda entry point of the `uploads` function: wiring only.

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    shared::http::serve(uploads::from_env()?).await
}

//! Lambda entry point of the `tasks` function: wiring only.

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    shared::http::serve(tasks::from_env()?).await
}

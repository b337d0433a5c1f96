//! Lambda entry point of the `users` function: wiring only.

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    shared::http::serve(users::from_env()?).await
}

//! Lambda entry point of the `notifications` function: wiring only.

use shared::{
    config::{DatabaseConfig, TokenConfig},
    db, http, telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let state = notifications::AppState::new(db, &TokenConfig::from_env()?);
    http::serve(notifications::router(state)).await
}

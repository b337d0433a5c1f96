//! Lambda entry point of the `notifications` function: wiring only.

use shared::{
    db::{self, DatabaseConfig},
    http,
    identity::tokens::TokenConfig,
    telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let state = notifications::AppState::new(db, &TokenConfig::from_env()?);
    http::serve(notifications::router(state)).await
}

//! Lambda entry point of the `tasks` function: wiring only.

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
    let state = tasks::AppState::new(db, &TokenConfig::from_env()?);
    http::serve(tasks::router(state)).await
}

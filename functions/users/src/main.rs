//! Lambda entry point of the `users` function: wiring only.

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
    let tokens = TokenConfig::from_env()?;
    http::serve(users::router(users::AppState::new(db, &tokens))).await
}

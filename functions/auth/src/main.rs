//! Lambda entry point of the `auth` function: wiring only.

use shared::{
    db::{self, DatabaseConfig},
    http,
    identity::{sessions::SessionPolicy, throttle::RateLimits, tokens::TokenConfig},
    messaging::{Publisher, Queue, QueueConfig},
    telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let tokens = TokenConfig::from_env()?;
    let publisher = Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?;
    let sessions = SessionPolicy::from_env()?;
    let state = auth::AppState::new(db, &tokens, sessions, publisher, RateLimits::from_env()?);
    http::serve(auth::router(state)).await
}

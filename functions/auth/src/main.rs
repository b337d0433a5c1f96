//! Lambda entry point of the `auth` function: wiring only.

use shared::{
    aws::Publisher,
    config::{DatabaseConfig, QueueConfig, TokenConfig},
    db, http, password, telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let tokens = TokenConfig::from_env()?;
    let publisher = Publisher::from_config(&QueueConfig::from_env()?).await;
    // Hash the dummy password off the request path, so the first unknown-email login
    // of this environment takes no longer than any other.
    tokio::task::spawn_blocking(password::warm_up);
    let state = auth::AppState::new(db, tokens, publisher);
    http::serve(auth::router(state)).await
}

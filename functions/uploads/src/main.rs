//! Lambda entry point of the `uploads` function: wiring only.

use std::sync::Arc;

use shared::{
    db::{self, DatabaseConfig},
    http,
    identity::tokens::TokenConfig,
    telemetry,
    uploads::{StorageConfig, presign::Presigner},
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let storage = StorageConfig::from_env()?;
    let presigner = Presigner::from_env(&storage)?;
    let state = uploads::AppState::new(db, &TokenConfig::from_env()?, presigner, Arc::new(storage));
    http::serve(uploads::router(state)).await
}

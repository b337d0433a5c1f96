//! Lambda entry point of the `uploads` function: wiring only.

use std::sync::Arc;

use shared::{
    aws,
    db::{self, DatabaseConfig},
    http,
    identity::tokens::TokenConfig,
    telemetry,
    uploads::{StorageConfig, s3_client},
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let storage = StorageConfig::from_env()?;
    let s3 = s3_client(&aws::sdk_config()?, storage.force_path_style);
    let state = uploads::AppState::new(db, &TokenConfig::from_env()?, s3, Arc::new(storage));
    http::serve(uploads::router(state)).await
}

//! Lambda entry point of the `platform` function: wiring only.

use shared::{
    db::{self, DatabaseConfig},
    http, telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    http::serve(platform::router(db)).await
}

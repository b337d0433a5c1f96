//! Lambda entry point of the `notify-worker` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use shared::{config::DatabaseConfig, db, telemetry};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        notify_worker::handle(&db, event)
    }))
    .await
}

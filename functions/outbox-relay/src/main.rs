//! Lambda entry point of the `outbox-relay` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use shared::{
    db::{self, DatabaseConfig},
    messaging::{Publisher, Queue, QueueConfig},
    telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let publisher = Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        outbox_relay::handle(&db, &publisher, event)
    }))
    .await
}

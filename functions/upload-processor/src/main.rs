//! Lambda entry point of the `upload-processor` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{
    db::{self, DatabaseConfig},
    messaging::{Publisher, Queue, QueueConfig},
    outbound::https_client,
    telemetry,
    uploads::{StorageConfig, presign::Presigner},
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let storage = StorageConfig::from_env()?;
    let state = upload_processor::State {
        db: db::pool(&DatabaseConfig::from_env()?)?,
        storage: Presigner::from_env(&storage)?,
        http: https_client(),
        publisher: Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?,
        bucket: storage.bucket,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        upload_processor::handle(&state, event)
    }))
    .await
}

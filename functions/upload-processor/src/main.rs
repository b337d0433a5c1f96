//! Lambda entry point of the `upload-processor` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{
    aws,
    db::{self, DatabaseConfig},
    messaging::{Publisher, Queue, QueueConfig},
    telemetry,
    uploads::{self, StorageConfig},
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let storage = StorageConfig::from_env()?;
    let sdk = aws::sdk_config()?;
    let state = upload_processor::State {
        db: db::pool(&DatabaseConfig::from_env()?)?,
        s3: uploads::s3_client(&sdk, storage.force_path_style),
        publisher: Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?,
        bucket: storage.bucket,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        upload_processor::handle(&state, event)
    }))
    .await
}

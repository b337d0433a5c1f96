//! Lambda entry point of the `upload-processor` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = upload_processor::State::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        upload_processor::handle(&state, event)
    }))
    .await
}

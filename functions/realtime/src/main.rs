//! Lambda entry point of the `realtime` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = realtime::State::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        realtime::handle(&state, event)
    }))
    .await
}

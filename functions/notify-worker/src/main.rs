//! Lambda entry point of the `notify-worker` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = notify_worker::State::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        notify_worker::handle(&state, event)
    }))
    .await
}

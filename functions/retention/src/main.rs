//! Lambda entry point of the `retention` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = retention::State::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        retention::handle(&state, event)
    }))
    .await
}

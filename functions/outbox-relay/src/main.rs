//! Lambda entry point of the `outbox-relay` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = outbox_relay::State::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        outbox_relay::handle(&state.db, &state.publisher, event)
    }))
    .await
}

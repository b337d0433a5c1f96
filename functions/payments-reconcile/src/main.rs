//! Lambda entry point of the `payments-reconcile` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = payments_reconcile::State::from_env()?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        payments_reconcile::handle(&state, event)
    }))
    .await
}

//! Entry point of the `migrate` function: inside Lambda it migrates on each invocation;
//! elsewhere (`cargo run -p migrate`) it migrates once and exits.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    shared::telemetry::init();
    shared::secrets::load().await?;
    let state = migrate::State::from_env()?;
    let admin = state.first_admin.as_ref();
    // Set by the Lambda runtime only: outside it, one run and out.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let report = migrate::run(&state.db, admin).await?;
        tracing::info!(?report, "migrations applied");
        return Ok(());
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        migrate::handle(&state.db, admin, event)
    }))
    .await
}

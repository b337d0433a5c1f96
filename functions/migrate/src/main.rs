//! Entry point of the `migrate` function: inside Lambda it migrates on each invocation;
//! elsewhere (`cargo run -p migrate`) it migrates once and exits.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{
    db::{self, DatabaseConfig},
    telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let mut config = DatabaseConfig::from_var("DATABASE_DIRECT_URL")?;
    config.max_connections = 1;
    let pool = db::pool(&config)?;
    let admin = migrate::first_admin::FirstAdmin::from_env()?;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let report = migrate::run(&pool, admin.as_ref()).await?;
        tracing::info!(?report, "migrations applied");
        return Ok(());
    }
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        migrate::handle(&pool, admin.as_ref(), event)
    }))
    .await
}

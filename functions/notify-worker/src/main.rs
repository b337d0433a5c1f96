//! Lambda entry point of the `notify-worker` function: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use notify_worker::mail::MailConfig;
use notify_worker::{State, mail::Mailer};
use shared::{
    db::{self, DatabaseConfig},
    telemetry,
};

#[tokio::main]
async fn main() -> Result<(), shared::BoxError> {
    telemetry::init();
    let mail = MailConfig::from_env()?;
    let state = State {
        db: db::pool(&DatabaseConfig::from_env()?)?,
        mailer: Mailer::new(&mail.transport)?,
        mail,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        notify_worker::handle(&state, event)
    }))
    .await
}

//! The `payments-reconcile` function: on a schedule, finishes what Stripe's webhook or a
//! crash left undone (`shared::payments::reconcile`): sends refunds decided but not sent
//! (an event's cancellation decides one per paid order, in its own transaction, and
//! leaves the sending here, so a crash halfway refunds each order once), cancels the
//! payments of holds that ran out, and applies payments whose webhook never came.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use shared::{
    messaging::{Publisher, Queue, QueueConfig, outbox},
    payments::{StripeConfig, reconcile, stripe::Gateway},
};
use sqlx::PgPool;

/// What a run needs; built once per cold start.
pub struct State {
    /// The database.
    pub db: PgPool,
    /// Sends the buyers' notifications after commit.
    pub publisher: Publisher,
    /// Stripe.
    pub stripe: Arc<dyn Gateway>,
    /// A payment not final this long is read from Stripe.
    pub settle_after: Duration,
}

impl State {
    /// Loads the state from the environment.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        Ok(Self {
            db: shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?,
            publisher: Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?,
            stripe: Arc::new(StripeConfig::from_env()?.client()),
            settle_after: SETTLE_AFTER,
        })
    }
}

/// How long a payment may stay not final before we stop waiting for its webhook: a card
/// payment settles in seconds, and Stripe's first retry of a failed delivery comes
/// within minutes.
pub const SETTLE_AFTER: Duration = Duration::from_secs(300);

/// Handles one scheduled run.
pub async fn handle(
    state: &State,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<reconcile::Report, lambda_runtime::Error> {
    tracing::debug!(request_id = %event.context.request_id, "payments reconciliation");
    let (report, messages) =
        reconcile::run(&state.db, state.stripe.as_ref(), state.settle_after).await?;
    outbox::relay(&state.db, &state.publisher, messages).await;
    tracing::info!(
        refunds = report.refunds,
        cancelled = report.cancelled,
        settled = report.settled,
        failed = report.failed,
        "payments reconciled"
    );
    Ok(report)
}

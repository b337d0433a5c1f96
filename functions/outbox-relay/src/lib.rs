//! The `outbox-relay` function: on a schedule, sends the outbox messages that the
//! request path could not (the queue was unreachable, or the function stopped between
//! commit and send).
//!
//! See `shared::outbox` for the protocol; this crate only drives [`shared::messaging::outbox::sweep`].
//! The same tick also deletes rate-limit and lockout counters whose windows ended a day
//! ago ([`shared::identity::throttle::purge_stale`]), so those tables stay small, and
//! reports the backlog (pending messages, the oldest one's age) as CloudWatch metrics in
//! Embedded Metric Format, which the template's `OutboxAgeAlarm` watches.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use shared::{
    identity::throttle,
    messaging::{Publisher, Queue, outbox},
    telemetry::metrics::{self, Unit},
};
use sqlx::PgPool;

/// What a tick needs; built once per cold start.
pub struct State {
    /// The database (the outbox and the throttle counters).
    pub db: PgPool,
    /// Sends to the notifications queue.
    pub publisher: Publisher,
}

impl State {
    /// Loads the state from the environment.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        let queue = shared::messaging::QueueConfig::from_env()?;
        Ok(Self {
            db: shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?,
            publisher: Publisher::from_env(&queue, Queue::Notifications)?,
        })
    }
}

/// Most messages sent per invocation; the next tick takes the rest.
pub const BATCH_LIMIT: i64 = 500;

/// Handles one scheduled tick.
pub async fn handle(
    db: &PgPool,
    publisher: &Publisher,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<outbox::SweepReport, lambda_runtime::Error> {
    tracing::debug!(request_id = %event.context.request_id, "outbox sweep");
    let report = outbox::sweep(db, publisher, Queue::Notifications, BATCH_LIMIT).await?;
    tracing::info!(
        sent = report.sent,
        failed = report.failed,
        "outbox sweep done"
    );
    // The backlog as a metric (CloudWatch alarms on its oldest message's age).
    match sqlx::query!(
        r#"SELECT count(*) AS "pending!",
                  coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) AS "oldest!"
           FROM outbox WHERE sent_at IS NULL"#
    )
    .fetch_one(db)
    .await
    {
        Ok(backlog) => metrics::emit(
            &[
                ("OutboxSent", report.sent as f64, Unit::Count),
                ("OutboxFailed", report.failed as f64, Unit::Count),
                ("OutboxPending", backlog.pending as f64, Unit::Count),
                ("OutboxOldestSeconds", backlog.oldest, Unit::Seconds),
            ],
            &[],
        ),
        Err(err) => tracing::warn!(error = %err, "reading the outbox backlog failed"),
    }
    // Housekeeping must not fail the sweep: the next tick tries again.
    match throttle::purge_stale(db).await {
        Ok(purged) => tracing::info!(purged, "stale throttle counters purged"),
        Err(err) => tracing::warn!(error = %err, "purging throttle counters failed"),
    }
    Ok(report)
}

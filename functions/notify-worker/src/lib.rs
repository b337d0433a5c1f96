//! The `notify-worker` function: consumes the notifications queue and writes each
//! message to its user's inbox.
//!
//! Each record is handled on its own, in its own transaction, and a failed record is
//! reported in `batchItemFailures`, so one bad message never makes SQS redeliver the
//! whole batch. Handling is idempotent: the message id is recorded in
//! `processed_messages` in the same transaction as the notification, so a redelivered
//! (or twice-relayed) message changes nothing.
//!
//! Failures are classified. Retryable ones (the database is down) are reported and come
//! back after the visibility timeout. Poison (a body that is not a notification) is
//! reported too, so it follows the queue's redrive policy into the dead-letter queue
//! after a few receives, where it is kept for inspection instead of retried forever. A
//! message for a user who has since been deleted is dropped: there is nobody to tell.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::messages::NotificationMessage;
use sqlx::PgPool;

/// This consumer's name in `processed_messages`.
pub const CONSUMER: &str = "notify-worker";

/// What happened to one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The notification was written.
    Delivered,
    /// The message had been handled before; nothing changed.
    Duplicate,
    /// The user no longer exists; the message was dropped.
    Orphaned,
}

/// Why a record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The body is not a notification message; retrying cannot help.
    #[error("poison message: {0}")]
    Poison(String),
    /// A transient failure (database); a retry may succeed.
    #[error("retryable failure: {0}")]
    Retryable(#[from] sqlx::Error),
}

/// Handles a batch: every record independently, failures reported per record.
pub async fn handle(
    db: &PgPool,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut response = SqsBatchResponse::default();
    for record in &event.payload.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        match process(db, record).await {
            Ok(outcome) => tracing::info!(%message_id, ?outcome, "record handled"),
            Err(err) => {
                match &err {
                    RecordError::Poison(_) => {
                        tracing::error!(%message_id, error = %err, "poison record")
                    }
                    RecordError::Retryable(_) => {
                        tracing::warn!(%message_id, error = %err, "record will be retried")
                    }
                }
                response.add_failure(message_id);
            }
        }
    }
    Ok(response)
}

/// Handles one record.
#[tracing::instrument(skip_all, fields(message_id = record.message_id.as_deref().unwrap_or("")))]
pub async fn process(db: &PgPool, record: &SqsMessage) -> Result<Outcome, RecordError> {
    let body = record.body.as_deref().unwrap_or_default();
    let message: NotificationMessage =
        serde_json::from_str(body).map_err(|e| RecordError::Poison(e.to_string()))?;

    let mut tx = db.begin().await?;
    let first_time = sqlx::query!(
        "INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        CONSUMER,
        message.id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !first_time {
        return Ok(Outcome::Duplicate);
    }

    let inserted = sqlx::query!(
        "INSERT INTO notifications (id, user_id, kind, title, body)
         SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2
         ON CONFLICT (id) DO NOTHING",
        message.id,
        message.user_id.0,
        message.kind,
        message.title,
        message.body,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(if inserted == 1 {
        Outcome::Delivered
    } else {
        Outcome::Orphaned
    })
}

//! The partial-batch loop every SQS consumer runs.
//!
//! Lambda hands a consumer up to ten records at once. Each is handled on its own; the
//! ones that failed are listed in `batchItemFailures`, so SQS redelivers only those
//! (the event source mapping has `ReportBatchItemFailures` on). Failures are
//! classified:
//! - [`RecordError::Retryable`]: a dependency failed (database, S3, SES); the record comes
//!   back after the visibility timeout and will likely succeed then;
//! - [`RecordError::Permanent`]: the record itself is bad (not JSON, not a message we
//!   know); it is still reported, so after the queue's `maxReceiveCount` it moves to the
//!   dead-letter queue and is kept for inspection instead of retried forever.

use std::{fmt::Debug, future::Future};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

/// Why one record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record can never succeed (poison); it ends in the dead-letter queue.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// A dependency failed; a retry may succeed.
    #[error("retryable failure: {0:#}")]
    Retryable(#[from] anyhow::Error),
}

impl RecordError {
    /// A permanent failure from anything printable (a parse error, say).
    pub fn permanent(reason: impl std::fmt::Display) -> Self {
        Self::Permanent(reason.to_string())
    }
}

impl From<sqlx::Error> for RecordError {
    fn from(err: sqlx::Error) -> Self {
        Self::Retryable(anyhow::Error::new(err).context("database error"))
    }
}

/// The record's body parsed as JSON of type `T`; a body that does not parse is poison.
pub fn parse_body<T: serde::de::DeserializeOwned>(record: &SqsMessage) -> Result<T, RecordError> {
    serde_json::from_str(record.body.as_deref().unwrap_or_default()).map_err(RecordError::permanent)
}

/// Runs `handle` on every record of `batch`, one after the other, and reports the
/// failed ones by message id. Each outcome and failure is logged with its message id.
pub async fn for_each_record<'a, F, Fut, O>(batch: &'a SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(&'a SqsMessage) -> Fut,
    Fut: Future<Output = Result<O, RecordError>>,
    O: Debug,
{
    let mut response = SqsBatchResponse::default();
    let (mut handled, mut poison, mut retried) = (0_u32, 0_u32, 0_u32);
    for record in &batch.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        match handle(record).await {
            Ok(outcome) => {
                handled += 1;
                tracing::info!(%message_id, ?outcome, "record handled");
            }
            Err(err) => {
                match &err {
                    RecordError::Permanent(_) => {
                        poison += 1;
                        tracing::error!(%message_id, error = %err, "poison record")
                    }
                    RecordError::Retryable(_) => {
                        retried += 1;
                        tracing::warn!(%message_id, error = %err, "record will be retried")
                    }
                }
                response.add_failure(message_id);
            }
        }
    }
    if !batch.records.is_empty() {
        use crate::telemetry::metrics::{Unit, emit};
        emit(
            &[
                ("RecordsProcessed", f64::from(handled), Unit::Count),
                ("RecordsPoison", f64::from(poison), Unit::Count),
                ("RecordsRetried", f64::from(retried), Unit::Count),
            ],
            &[],
        );
    }
    response
}

//! The `upload-processor` function: checks every object that arrives in the uploads
//! bucket and marks its upload `ready` or `rejected`; on a schedule, expires uploads
//! that never arrived.
//!
//! The bucket notifies an SQS queue on `ObjectCreated`, and the queue drives this
//! function (rather than S3 invoking it directly): failed records are retried per record
//! and end in a dead-letter queue, bursts are smoothed, and local development can replay
//! the same path (the emulator delivers bucket notifications to SQS).
//!
//! Layout: [`check`] handles one object (decode its key, find the upload, inspect the
//! real object, decide, record, notify); [`sweep`] expires abandoned uploads.
//! [`handle`] tells the two kinds of invocation apart.

pub mod check;
pub mod sweep;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::Value;
use shared::messaging::{
    Publisher,
    batch::{self, RecordError},
};
use shared::outbound::HttpsClient;
use shared::uploads::presign::Presigner;
use sqlx::PgPool;

/// What the handlers share; built once per cold start.
pub struct State {
    /// The database pool.
    pub db: PgPool,
    /// Signs the S3 requests that inspect and delete objects.
    pub storage: Presigner,
    /// Sends them.
    pub http: HttpsClient,
    /// Publishes "upload ready" notifications.
    pub publisher: Publisher,
    /// The uploads bucket; events for any other bucket are ignored.
    pub bucket: String,
}

impl State {
    /// Loads the state from the environment, once per cold start.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        let storage = shared::uploads::StorageConfig::from_env()?;
        let queue = shared::messaging::QueueConfig::from_env()?;
        Ok(Self {
            db: shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?,
            storage: Presigner::from_env(&storage)?,
            http: shared::outbound::https_client(),
            publisher: Publisher::from_env(&queue, shared::messaging::Queue::Notifications)?,
            bucket: storage.bucket,
        })
    }
}

/// Handles an invocation: an SQS batch of S3 events, or the scheduled sweep.
pub async fn handle(
    state: &State,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let payload = event.payload;
    if payload.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(payload)?;
        Ok(serde_json::to_value(handle_batch(state, &batch).await)?)
    } else if payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        Ok(serde_json::to_value(sweep::run(state).await?)?)
    } else {
        Err("unsupported event: expected an SQS batch or a scheduled event".into())
    }
}

/// Handles an SQS batch; each failed record is reported on its own.
pub async fn handle_batch(state: &State, batch: &SqsEvent) -> SqsBatchResponse {
    // Boxed: the S3 client's futures nest deep enough to exceed rustc's layout depth
    // limit once inlined into the batch loop's future.
    batch::for_each_record(batch, |record| Box::pin(handle_record(state, record))).await
}

/// Handles one record: an S3 event notification of one or more objects. Returns how
/// each object was handled.
async fn handle_record(
    state: &State,
    record: &SqsMessage,
) -> Result<Vec<check::Outcome>, RecordError> {
    let value: Value = batch::parse_body(record)?;
    // S3 sends this once when the notification is configured: nothing to do.
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let event: S3Notification = serde_json::from_value(value).map_err(RecordError::permanent)?;
    let mut outcomes = Vec::with_capacity(event.records.len());
    for s3_record in &event.records {
        let outcome =
            check::process_object(state, &s3_record.s3.bucket.name, &s3_record.s3.object.key)
                .await?;
        tracing::info!(?outcome, event = %s3_record.event_name, "object handled");
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The part of an S3 event notification this function reads. Deliberately lenient
/// (unlike the full `aws_lambda_events` type): whatever else a producer includes or
/// leaves out, a record needs only its bucket name and object key.
#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records")]
    records: Vec<S3Record>,
}

#[derive(Debug, Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Debug, Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    /// URL-encoded, spaces as `+`.
    key: String,
}

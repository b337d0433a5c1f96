//! The transactional outbox: messages are written in the same transaction as the
//! change that causes them, then relayed to SQS after commit.
//!
//! A request relays its own messages right after commit ([`relay`]); if the queue is
//! unreachable the rows stay pending, and the scheduled `outbox-relay` function sends
//! them later ([`sweep`]). Either path may send a message twice (a crash between send
//! and mark); consumers are idempotent on the message id, so that is harmless.

use serde::Serialize;
use sqlx::PgConnection;
#[cfg(feature = "sqs")]
use sqlx::PgPool;
use uuid::Uuid;

use super::Message;
#[cfg(feature = "sqs")]
use super::{Publisher, Queue};

/// A message written to the outbox, ready to relay.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The outbox id (also the message's idempotency key).
    pub id: Uuid,
    /// The JSON body to send.
    pub body: String,
}

/// Writes a message to the outbox inside the caller's transaction.
///
/// The row becomes due for the sweep a little later, giving the request path the
/// first chance to relay it without racing the sweep.
pub async fn enqueue<M: Message>(tx: &mut PgConnection, message: &M) -> anyhow::Result<Pending> {
    let (id, queue) = (message.id(), M::QUEUE.as_str());
    let payload = serde_json::to_value(message)?;
    sqlx::query!(
        "INSERT INTO outbox (id, queue, payload, next_attempt_at)
         VALUES ($1, $2, $3, now() + interval '30 seconds')",
        id,
        queue,
        payload,
    )
    .execute(&mut *tx)
    .await?;
    Ok(Pending {
        id,
        body: payload.to_string(),
    })
}

#[cfg(feature = "sqs")]
/// Sends messages just committed, in batches of ten (one call for a request's few
/// messages), marking each sent or failed. Never fails the caller, and waits at most
/// one bounded call per batch: whatever is not sent stays pending for the sweep.
#[tracing::instrument(skip_all, fields(count = messages.len()))]
pub async fn relay(db: &PgPool, publisher: &Publisher, messages: Vec<Pending>) {
    for chunk in messages.chunks(10) {
        let batch: Vec<(Uuid, String)> = chunk.iter().map(|m| (m.id, m.body.clone())).collect();
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let outcome = match publisher.send_batch(&batch).await {
            Ok(failed) => {
                let sent: Vec<Uuid> = ids
                    .iter()
                    .copied()
                    .filter(|id| !failed.contains(id))
                    .collect();
                match mark_sent(db, &sent).await {
                    Ok(()) => mark_failed(db, &failed, "rejected by SendMessageBatch").await,
                    Err(err) => Err(err),
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "relay failed; the sweep will retry");
                mark_failed(db, &ids, &format!("{err:#}")).await
            }
        };
        if let Err(err) = outcome {
            tracing::error!(error = %err, "could not record the relay outcome");
        }
    }
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Messages sent.
    pub sent: usize,
    /// Messages that failed again and stay pending.
    pub failed: usize,
}

#[cfg(feature = "sqs")]
/// Sends every due pending message of `queue`, at most `limit`, ten per SQS call.
///
/// Each batch of ten is its own short transaction: its rows are locked with `SKIP
/// LOCKED` (overlapping sweeps never send the same row at once), sent, marked and
/// committed before the next batch is taken, so a sweep cut short by the function's
/// timeout keeps what it already sent and recorded.
#[tracing::instrument(skip(db, publisher))]
pub async fn sweep(
    db: &PgPool,
    publisher: &Publisher,
    queue: Queue,
    limit: i64,
) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport::default();
    while ((report.sent + report.failed) as i64) < limit {
        let mut tx = db.begin().await?;
        let due = sqlx::query!(
            r#"SELECT id, payload::text AS "body!"
               FROM outbox
               WHERE sent_at IS NULL AND queue = $1 AND next_attempt_at <= now()
               ORDER BY next_attempt_at
               LIMIT 10
               FOR UPDATE SKIP LOCKED"#,
            queue.as_str(),
        )
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            break;
        }
        let batch: Vec<(Uuid, String)> = due.into_iter().map(|r| (r.id, r.body)).collect();
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        match publisher.send_batch(&batch).await {
            Ok(failed) => {
                let sent: Vec<Uuid> = ids
                    .iter()
                    .copied()
                    .filter(|id| !failed.contains(id))
                    .collect();
                mark_sent(&mut *tx, &sent).await?;
                mark_failed(&mut *tx, &failed, "rejected by SendMessageBatch").await?;
                report.sent += sent.len();
                report.failed += failed.len();
            }
            Err(err) => {
                tracing::warn!(error = %err, "sweep could not reach the queue");
                mark_failed(&mut *tx, &ids, &format!("{err:#}")).await?;
                report.failed += ids.len();
                tx.commit().await?;
                // The queue is down: the next tick tries again, no point hammering it now.
                break;
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

#[cfg(feature = "sqs")]
async fn mark_sent<'c, E>(db: E, ids: &[Uuid]) -> sqlx::Result<()>
where
    E: sqlx::PgExecutor<'c>,
{
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL
         WHERE id = ANY($1) AND sent_at IS NULL",
        ids,
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(feature = "sqs")]
/// Records a failed attempt. The first attempts are due again at once (the sweep's
/// schedule spaces them); after that the delay doubles, up to an hour, so a message
/// the queue keeps refusing does not hog every sweep.
async fn mark_failed<'c, E>(db: E, ids: &[Uuid], error: &str) -> sqlx::Result<()>
where
    E: sqlx::PgExecutor<'c>,
{
    if ids.is_empty() {
        return Ok(());
    }
    let error: String = error.chars().take(1000).collect();
    sqlx::query!(
        "UPDATE outbox
         SET attempts = attempts + 1,
             last_error = $2,
             next_attempt_at = now() + CASE
                 WHEN attempts < 3 THEN interval '0'
                 ELSE least(interval '1 minute' * power(2, attempts - 3), interval '1 hour')
             END
         WHERE id = ANY($1) AND sent_at IS NULL",
        ids,
        error,
    )
    .execute(db)
    .await?;
    Ok(())
}

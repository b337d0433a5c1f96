//! The scheduled sweep: uploads whose URL expired long ago without an object become
//! `expired`, and any object that slipped in anyway is deleted; then the queued object
//! deletions (`shared::uploads::deletions`: accounts deleted, avatars replaced, deletes
//! that failed) are sent to S3, each retried with backoff until S3 confirms.

use serde::Serialize;
use shared::uploads::deletions;

use crate::State;

/// How long after its URL expired a pending upload is given up on. Generous: an object
/// stored just before expiry may wait in the queue behind a backlog.
const GRACE: &str = "1 hour";

/// What a sweep did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Uploads marked expired.
    pub expired: usize,
    /// Queued objects deleted from the bucket.
    pub objects_deleted: usize,
    /// Queued objects S3 would not delete this time (retried later).
    pub deletions_failed: usize,
}

/// Most queued deletions sent per sweep (the next sweep, 15 minutes later, takes more).
const DELETIONS_PER_SWEEP: i64 = 200;

/// Expires up to 500 abandoned uploads.
#[tracing::instrument(skip_all)]
pub async fn run(state: &State) -> anyhow::Result<SweepReport> {
    let keys = sqlx::query_scalar!(
        "UPDATE uploads SET status = 'expired'
         WHERE id IN (
             SELECT id FROM uploads
             WHERE status = 'pending' AND url_expires_at < now() - $1::text::interval
             ORDER BY url_expires_at
             LIMIT 500
             FOR UPDATE SKIP LOCKED
         )
         RETURNING object_key",
        GRACE,
    )
    .fetch_all(&state.db)
    .await?;
    for key in &keys {
        // Usually there is no object; deleting a missing key succeeds.
        if let Err(err) = state.storage.delete_object(&state.http, key).await {
            tracing::warn!(error = %err, "could not delete an abandoned object; queued for the next sweep");
            deletions::queue(&state.db, key, "abandoned").await?;
        }
    }
    let (objects_deleted, deletions_failed) = drain_deletions(state).await?;
    tracing::info!(
        expired = keys.len(),
        objects_deleted,
        deletions_failed,
        "upload sweep done"
    );
    Ok(SweepReport {
        expired: keys.len(),
        objects_deleted,
        deletions_failed,
    })
}

/// Sends due queued deletions to S3. Each is leased first (its next attempt pushed 15
/// minutes out, in one statement), so an overlapping sweep skips it, and no transaction
/// is held across S3; a success deletes the row, a failure sets the next attempt with
/// backoff (1 minute doubling, at most a day).
async fn drain_deletions(state: &State) -> anyhow::Result<(usize, usize)> {
    let due = sqlx::query_scalar!(
        "UPDATE object_deletions SET next_attempt_at = now() + interval '15 minutes'
         WHERE object_key IN (
             SELECT object_key FROM object_deletions WHERE next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING object_key",
        DELETIONS_PER_SWEEP,
    )
    .fetch_all(&state.db)
    .await?;
    let (mut deleted, mut failed) = (0, 0);
    for key in &due {
        match state.storage.delete_object(&state.http, key).await {
            Ok(()) => {
                sqlx::query!("DELETE FROM object_deletions WHERE object_key = $1", key)
                    .execute(&state.db)
                    .await?;
                deleted += 1;
            }
            Err(err) => {
                tracing::warn!(error = %err, "a queued object deletion failed; retried later");
                sqlx::query!(
                    "UPDATE object_deletions
                     SET attempts = attempts + 1, last_error = left($2, 500),
                         next_attempt_at = now() + least(interval '1 minute' * power(2, attempts), interval '1 day')
                     WHERE object_key = $1",
                    key,
                    err.to_string(),
                )
                .execute(&state.db)
                .await?;
                failed += 1;
            }
        }
    }
    Ok((deleted, failed))
}

//! Objects waiting to be deleted from the bucket (`object_deletions`): queued in the
//! transaction that makes them garbage, deleted by the upload processor's sweep until S3
//! confirms, with backoff. S3's `DeleteObject` succeeds for a missing key, so a retry
//! after a crash is harmless.

use sqlx::PgExecutor;

use crate::identity::UserId;

/// Queues one object.
pub async fn queue(db: impl PgExecutor<'_>, key: &str, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO object_deletions (object_key, reason) VALUES ($1, $2)
         ON CONFLICT (object_key) DO NOTHING",
        key,
        reason,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Queues every object `user` has in the bucket (before their account, and with it their
/// upload rows, is deleted in the same transaction). Returns how many.
pub async fn queue_owned_by(db: impl PgExecutor<'_>, user: UserId) -> Result<u64, sqlx::Error> {
    // Rejected and expired uploads had their objects deleted then (or queued, if that
    // failed); pending ones may have an object already.
    Ok(sqlx::query!(
        "INSERT INTO object_deletions (object_key, reason)
         SELECT object_key, 'account_deleted' FROM uploads
         WHERE owner_id = $1 AND status IN ('pending', 'ready')
         ON CONFLICT (object_key) DO NOTHING",
        user.0,
    )
    .execute(db)
    .await?
    .rows_affected())
}

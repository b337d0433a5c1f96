//! The scheduled sweep: uploads whose URL expired long ago without an object become
//! `expired`, and any object that slipped in anyway is deleted.

use serde::Serialize;

use crate::State;

/// How long after its URL expired a pending upload is given up on. Generous: an object
/// stored just before expiry may wait in the queue behind a backlog.
const GRACE: &str = "1 hour";

/// What a sweep did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Uploads marked expired.
    pub expired: usize,
}

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
            tracing::warn!(error = %err, "could not delete an abandoned object; the next sweep will not retry it");
        }
    }
    tracing::info!(expired = keys.len(), "upload sweep done");
    Ok(SweepReport {
        expired: keys.len(),
    })
}

//! What happens when an object arrives in the bucket: the decisions, as pure functions
//! tested by tables, and the records they lead to.
//!
//! [`on_arrival`] decides from the upload's recorded status alone whether the object
//! needs inspecting, deleting or nothing; [`judge`] decides from what S3 stored whether
//! an inspected object is what was declared. [`mark_ready`] and [`mark_rejected`] record
//! the verdict; both only ever move an upload out of `pending`, so a duplicate event
//! changes nothing.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{Purpose, UploadStatus, sniff_matches};
use crate::{
    identity::UserId,
    messaging::{
        messages::NotificationMessage,
        outbox::{self, Pending},
    },
};

/// The upload an object key was issued for, as recorded when the URL was signed.
#[derive(Debug, Clone)]
pub struct Expected {
    /// The upload's id.
    pub id: Uuid,
    /// Who asked for it.
    pub owner_id: UserId,
    /// What it is for.
    pub purpose: Purpose,
    /// The client's file name (for the notification).
    pub filename: String,
    /// The declared type.
    pub content_type: String,
    /// The declared size.
    pub size: i64,
    /// Where it stands.
    pub status: UploadStatus,
}

/// The upload an object key belongs to, if one was issued.
pub async fn expected<'e>(
    db: impl PgExecutor<'e>,
    key: &str,
) -> Result<Option<Expected>, sqlx::Error> {
    sqlx::query_as!(
        Expected,
        r#"SELECT id, owner_id AS "owner_id: UserId", purpose AS "purpose: Purpose", filename,
                  content_type, size, status AS "status: UploadStatus"
           FROM uploads WHERE object_key = $1"#,
        key,
    )
    .fetch_optional(db)
    .await
}

/// What to do with an object that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Its upload waits for it: inspect it.
    Inspect,
    /// A key of our shape without a row: its upload was deleted before (or while) the
    /// file arrived. Remove the orphan.
    DeleteOrphan,
    /// Its upload expired before it came: nobody is waiting for it. Remove it.
    DeleteExpired,
    /// Its upload was rejected. Either a duplicate event for the object deleted then, or
    /// a second PUT through the still-valid URL onto the emptied key (`If-None-Match: *`
    /// passes there): nothing was inspected, so nothing may stay. Remove it.
    DeleteRejected,
    /// Its upload is ready: a duplicate event (the ready object blocks another PUT).
    Duplicate,
    /// Not a key we issued: not ours to touch.
    Ignore,
}

/// Decides from the upload's recorded status (none: no row) and whether the key has the
/// issued shape. Keys are recorded before they are signed, so a key of our shape with no
/// row was issued and then deleted. Only a `ready` upload ever keeps an object.
pub fn on_arrival(status: Option<UploadStatus>, issued_shape: bool) -> Arrival {
    match status {
        Some(UploadStatus::Pending) => Arrival::Inspect,
        Some(UploadStatus::Expired) => Arrival::DeleteExpired,
        Some(UploadStatus::Rejected) => Arrival::DeleteRejected,
        Some(UploadStatus::Ready) => Arrival::Duplicate,
        None if issued_shape => Arrival::DeleteOrphan,
        None => Arrival::Ignore,
    }
}

/// Whether `key` looks like one [`super::object_key`] makes: `<purpose>/<uuid>/<uuid>`.
pub fn has_issued_shape(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    matches!(parts.as_slice(), [purpose, owner, id]
        if Purpose::ALL.iter().any(|p| p.prefix() == *purpose)
            && Uuid::parse_str(owner).is_ok()
            && Uuid::parse_str(id).is_ok())
}

/// Decides whether an object's stored length, type and first bytes match the upload;
/// `Err` says why not.
pub fn judge(
    expected: &Expected,
    stored_size: Option<i64>,
    stored_type: Option<&str>,
    head: &[u8],
) -> Result<(), String> {
    let declared_size = expected.size;
    if stored_size != Some(declared_size) {
        return Err(format!(
            "size {stored_size:?} differs from the declared {declared_size}"
        ));
    }
    if declared_size > expected.purpose.max_size() {
        return Err("larger than allowed".into());
    }
    let stored_type = stored_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    if stored_type.as_deref() != Some(expected.content_type.as_str()) {
        return Err("content type differs from the declared one".into());
    }
    if !sniff_matches(&expected.content_type, head) {
        return Err(format!("content is not {}", expected.content_type));
    }
    Ok(())
}

/// Marks a pending upload ready: an avatar becomes its owner's, and an "upload ready"
/// notification is written to the outbox in the same transaction. Returns the message to
/// relay, or `None` when the upload was no longer pending (a duplicate).
pub async fn mark_ready(db: &PgPool, expected: &Expected) -> anyhow::Result<Option<Pending>> {
    let mut tx = db.begin().await?;
    let updated = sqlx::query!(
        "UPDATE uploads SET status = 'ready', ready_at = now() WHERE id = $1 AND status = 'pending'",
        expected.id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    if expected.purpose == Purpose::Avatar {
        // The avatar it replaces goes: its object queued for deletion, its row deleted.
        let replaced = sqlx::query!(
            "SELECT u.id, u.object_key FROM users us JOIN uploads u ON u.id = us.avatar_upload_id
             WHERE us.id = $1 AND us.avatar_upload_id <> $2 FOR UPDATE OF us",
            expected.owner_id.0,
            expected.id,
        )
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE users SET avatar_upload_id = $1, updated_at = now() WHERE id = $2",
            expected.id,
            expected.owner_id.0,
        )
        .execute(&mut *tx)
        .await?;
        if let Some(old) = replaced {
            super::deletions::queue(&mut *tx, &old.object_key, "avatar_replaced").await?;
            sqlx::query!("DELETE FROM uploads WHERE id = $1", old.id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let message = NotificationMessage::upload_ready(expected.owner_id, &expected.filename);
    let pending = outbox::enqueue(&mut tx, &message).await?;
    tx.commit().await?;
    Ok(Some(pending))
}

/// Marks a pending upload rejected, with the reason its owner will see.
pub async fn mark_rejected<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE uploads SET status = 'rejected', rejection_reason = $2 WHERE id = $1 AND status = 'pending'",
        id,
        reason,
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn what_to_do_with_an_arrival() {
        use Arrival::*;
        use UploadStatus::*;
        let table = [
            (Some(Pending), true, Inspect),
            (Some(Expired), true, DeleteExpired),
            (Some(Ready), true, Duplicate),
            (Some(Rejected), true, DeleteRejected),
            (None, true, DeleteOrphan),
            (None, false, Ignore),
        ];
        for (status, shape, expected) in table {
            assert_eq!(on_arrival(status, shape), expected, "{status:?} {shape}");
        }
    }

    #[test]
    fn issued_key_shape() {
        let (a, b) = (Uuid::nil(), Uuid::max());
        assert!(has_issued_shape(&format!("avatar/{a}/{b}")));
        assert!(has_issued_shape(&format!("attachment/{a}/{b}")));
        assert!(has_issued_shape(&format!("event_image/{a}/{b}")));
        assert!(!has_issued_shape(&format!("other/{a}/{b}")));
        assert!(!has_issued_shape(&format!("avatar/{a}/{b}/x")));
        assert!(!has_issued_shape("avatar/not-a-user/not-an-id"));
        assert!(!has_issued_shape("some dir/naïve file+1.png"));
        assert!(has_issued_shape(&super::super::object_key(
            Purpose::EventImage,
            UserId(a),
            b
        )));
    }

    fn avatar_png(size: i64) -> Expected {
        Expected {
            id: Uuid::nil(),
            owner_id: UserId(Uuid::nil()),
            purpose: Purpose::Avatar,
            filename: "me.png".into(),
            content_type: "image/png".into(),
            size,
            status: UploadStatus::Pending,
        }
    }

    #[test]
    fn verdicts() {
        let huge = 6 * 1024 * 1024;
        // (declared, stored size, stored type, first bytes, passes)
        type Row<'a> = (Expected, Option<i64>, Option<&'a str>, &'a [u8], bool);
        let table: [Row; 8] = [
            (avatar_png(16), Some(16), Some("image/png"), PNG, true),
            (avatar_png(16), Some(16), Some("IMAGE/PNG; x=y"), PNG, true),
            (avatar_png(16), Some(17), Some("image/png"), PNG, false),
            (avatar_png(16), None, Some("image/png"), PNG, false),
            (avatar_png(16), Some(16), Some("image/jpeg"), PNG, false),
            (avatar_png(16), Some(16), None, PNG, false),
            (
                avatar_png(16),
                Some(16),
                Some("image/png"),
                b"just some text!!",
                false,
            ),
            (avatar_png(huge), Some(huge), Some("image/png"), PNG, false),
        ];
        for (expected, size, stored_type, head, ok) in table {
            assert_eq!(
                judge(&expected, size, stored_type, head).is_ok(),
                ok,
                "{size:?} {stored_type:?} {head:?}"
            );
        }
    }
}

//! One object: is it the upload we signed for?
//!
//! The presigned PUT already made S3 refuse another type or length; what S3 cannot
//! refuse is content that lies about its type. So the real object is inspected: its
//! stored length and type must equal the declared ones, and its first bytes must look
//! like the declared type (a PNG starts with the PNG signature). A rejected object is
//! deleted. Every step is idempotent: a duplicate event finds the upload decided.

use anyhow::Context;
use shared::{
    identity::UserId,
    messaging::{batch::RecordError, messages::NotificationMessage, outbox},
    uploads::{Purpose, SNIFF_BYTES, decode_event_key, sniff_matches},
};
use uuid::Uuid;

use crate::State;

/// What happened to an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It matched; the upload is ready.
    Ready,
    /// It did not match; it was deleted and the upload rejected.
    Rejected(String),
    /// The upload was already decided (a duplicate event).
    Duplicate,
    /// Not ours to handle (another bucket, a key we never issued, an object gone).
    Ignored(&'static str),
}

/// The upload an object key was issued for.
struct Expected {
    id: Uuid,
    owner_id: Uuid,
    purpose: Purpose,
    filename: String,
    content_type: String,
    size: i64,
    status: String,
}

/// Decides whether an object's stored length, type and first bytes match the upload.
pub fn judge(
    purpose: Purpose,
    declared_type: &str,
    declared_size: i64,
    stored_size: Option<i64>,
    stored_type: Option<&str>,
    head: &[u8],
) -> Result<(), String> {
    if stored_size != Some(declared_size) {
        return Err(format!(
            "size {stored_size:?} differs from the declared {declared_size}"
        ));
    }
    if declared_size > purpose.max_size() {
        return Err("larger than allowed".into());
    }
    let stored_type = stored_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    if stored_type.as_deref() != Some(declared_type) {
        return Err("content type differs from the declared one".into());
    }
    if !sniff_matches(declared_type, head) {
        return Err(format!("content is not {declared_type}"));
    }
    Ok(())
}

/// Whether `key` looks like one `shared::uploads::object_key` makes:
/// `<purpose>/<uuid>/<uuid>`.
fn has_issued_shape(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    matches!(parts.as_slice(), [purpose, owner, id]
        if ["avatar", "event_image", "attachment"].contains(purpose)
            && Uuid::parse_str(owner).is_ok()
            && Uuid::parse_str(id).is_ok())
}

/// Handles one ObjectCreated record.
#[tracing::instrument(skip(state))]
pub async fn process_object(
    state: &State,
    bucket: &str,
    raw_key: &str,
) -> Result<Outcome, RecordError> {
    if bucket != state.bucket {
        return Ok(Outcome::Ignored("another bucket"));
    }
    let key =
        decode_event_key(raw_key).ok_or_else(|| RecordError::permanent("key is not UTF-8"))?;
    let Some(expected) = sqlx::query_as!(
        Expected,
        r#"SELECT id, owner_id, purpose AS "purpose: Purpose", filename, content_type, size, status::text AS "status!"
           FROM uploads WHERE object_key = $1"#,
        key,
    )
    .fetch_optional(&state.db)
    .await?
    else {
        // Keys are recorded before they are signed, so a key of our shape without a row
        // belongs to an upload deleted before (or while) its file arrived: remove the
        // orphan. Anything else was not ours to begin with.
        if has_issued_shape(&key) {
            delete_object(state, &key).await?;
            return Ok(Outcome::Ignored("upload was deleted; orphan object removed"));
        }
        return Ok(Outcome::Ignored("not a key we issued"));
    };
    match expected.status.as_str() {
        "pending" => {}
        "expired" => {
            // Arrived after the sweep gave up on it: nobody is waiting for it.
            delete_object(state, &key).await?;
            return Ok(Outcome::Ignored("upload had expired"));
        }
        _ => return Ok(Outcome::Duplicate),
    }

    let head = match state.s3.head_object().bucket(bucket).key(&key).send().await {
        Ok(head) => head,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {
            return Ok(Outcome::Ignored("object no longer exists"));
        }
        Err(err) => return Err(anyhow::Error::new(err).context("HeadObject failed").into()),
    };
    let first_bytes = state
        .s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .range(format!("bytes=0-{}", SNIFF_BYTES - 1))
        .send()
        .await
        .context("GetObject failed")?
        .body
        .collect()
        .await
        .context("reading the object failed")?
        .into_bytes();

    match judge(
        expected.purpose,
        &expected.content_type,
        expected.size,
        head.content_length(),
        head.content_type(),
        &first_bytes,
    ) {
        Ok(()) => mark_ready(state, &expected).await,
        Err(reason) => {
            // Delete first: if recording fails, the retry finds no object and the sweep
            // expires the record; an object we refused never stays.
            delete_object(state, &key).await?;
            sqlx::query!(
                "UPDATE uploads SET status = 'rejected', rejection_reason = $2 WHERE id = $1 AND status = 'pending'",
                expected.id,
                reason,
            )
            .execute(&state.db)
            .await?;
            tracing::info!(upload_id = %expected.id, %reason, "upload rejected");
            Ok(Outcome::Rejected(reason))
        }
    }
}

async fn mark_ready(state: &State, expected: &Expected) -> Result<Outcome, RecordError> {
    let mut tx = state.db.begin().await?;
    let updated = sqlx::query!(
        "UPDATE uploads SET status = 'ready', ready_at = now() WHERE id = $1 AND status = 'pending'",
        expected.id,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(Outcome::Duplicate);
    }
    if expected.purpose == Purpose::Avatar {
        sqlx::query!(
            "UPDATE users SET avatar_upload_id = $1, updated_at = now() WHERE id = $2",
            expected.id,
            expected.owner_id,
        )
        .execute(&mut *tx)
        .await?;
    }
    let message = NotificationMessage::upload_ready(UserId(expected.owner_id), &expected.filename);
    let pending = outbox::enqueue(&mut tx, &message).await?;
    tx.commit().await?;
    outbox::relay(&state.db, &state.publisher, vec![pending]).await;
    tracing::info!(upload_id = %expected.id, "upload ready");
    Ok(Outcome::Ready)
}

async fn delete_object(state: &State, key: &str) -> Result<(), RecordError> {
    state
        .s3
        .delete_object()
        .bucket(&state.bucket)
        .key(key)
        .send()
        .await
        .context("DeleteObject failed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn issued_key_shape() {
        let (a, b) = (Uuid::nil(), Uuid::max());
        assert!(has_issued_shape(&format!("avatar/{a}/{b}")));
        assert!(has_issued_shape(&format!("attachment/{a}/{b}")));
        assert!(!has_issued_shape(&format!("other/{a}/{b}")));
        assert!(!has_issued_shape(&format!("avatar/{a}/{b}/x")));
        assert!(!has_issued_shape("avatar/not-a-user/not-an-id"));
        assert!(!has_issued_shape("some dir/naïve file+1.png"));
    }

    #[test]
    fn matching_objects_pass() {
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                16,
                Some(16),
                Some("image/png"),
                PNG
            )
            .is_ok()
        );
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                16,
                Some(16),
                Some("IMAGE/PNG; x=y"),
                PNG
            )
            .is_ok()
        );
    }

    #[test]
    fn mismatches_are_rejected() {
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                16,
                Some(17),
                Some("image/png"),
                PNG
            )
            .is_err()
        );
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                16,
                None,
                Some("image/png"),
                PNG
            )
            .is_err()
        );
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                16,
                Some(16),
                Some("image/jpeg"),
                PNG
            )
            .is_err()
        );
        assert!(judge(Purpose::Avatar, "image/png", 16, Some(16), None, PNG).is_err());
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                16,
                Some(16),
                Some("image/png"),
                b"just some text!!"
            )
            .is_err()
        );
        let huge = 6 * 1024 * 1024;
        assert!(
            judge(
                Purpose::Avatar,
                "image/png",
                huge,
                Some(huge),
                Some("image/png"),
                PNG
            )
            .is_err()
        );
    }
}

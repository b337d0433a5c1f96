//! One object: is it the upload we signed for?
//!
//! The presigned PUT already made S3 refuse another type or length; what S3 cannot
//! refuse is content that lies about its type. So the real object is inspected: its
//! stored length and type must equal the declared ones, and its first bytes must look
//! like the declared type (a PNG starts with the PNG signature). A rejected object is
//! deleted, and so is anything put on a rejected key later (the presigned URL outlives
//! the rejection). Every step is idempotent: a duplicate event finds the upload decided.
//!
//! The decisions are `shared::uploads::arrivals`' pure functions ([`on_arrival`],
//! [`judge`]); this module does the I/O around them.

use shared::{
    messaging::{batch::RecordError, outbox},
    uploads::{
        SNIFF_BYTES,
        arrivals::{self, Arrival, has_issued_shape, judge, on_arrival},
        decode_event_key,
    },
};

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
    let expected = arrivals::expected(&state.db, &key).await?;
    let status = expected.as_ref().map(|e| e.status);
    let expected = match (on_arrival(status, has_issued_shape(&key)), expected) {
        (Arrival::Inspect, Some(expected)) => expected,
        (Arrival::DeleteOrphan, _) => {
            delete_object(state, &key).await?;
            return Ok(Outcome::Ignored(
                "upload was deleted; orphan object removed",
            ));
        }
        (Arrival::DeleteExpired, _) => {
            delete_object(state, &key).await?;
            return Ok(Outcome::Ignored("upload had expired"));
        }
        (Arrival::DeleteRejected, _) => {
            delete_object(state, &key).await?;
            return Ok(Outcome::Ignored(
                "upload was rejected; nothing uploaded since is kept",
            ));
        }
        (Arrival::Duplicate, _) => return Ok(Outcome::Duplicate),
        (Arrival::Ignore | Arrival::Inspect, _) => {
            return Ok(Outcome::Ignored("not a key we issued"));
        }
    };

    let Some(head) = state.storage.head_object(&state.http, &key).await? else {
        return Ok(Outcome::Ignored("object no longer exists"));
    };
    let first_bytes = state
        .storage
        .first_bytes(&state.http, &key, SNIFF_BYTES as usize)
        .await?;

    match judge(
        &expected,
        head.length,
        head.content_type.as_deref(),
        &first_bytes,
    ) {
        Ok(()) => {
            let Some(pending) = arrivals::mark_ready(&state.db, &expected).await? else {
                return Ok(Outcome::Duplicate);
            };
            outbox::relay(&state.db, &state.publisher, vec![pending]).await;
            tracing::info!(upload_id = %expected.id, "upload ready");
            Ok(Outcome::Ready)
        }
        Err(reason) => {
            // Delete first: if recording fails, the retry finds no object and the sweep
            // expires the record; an object we refused never stays.
            delete_object(state, &key).await?;
            arrivals::mark_rejected(&state.db, expected.id, &reason).await?;
            tracing::info!(upload_id = %expected.id, %reason, "upload rejected");
            Ok(Outcome::Rejected(reason))
        }
    }
}

async fn delete_object(state: &State, key: &str) -> Result<(), RecordError> {
    state.storage.delete_object(&state.http, key).await?;
    Ok(())
}

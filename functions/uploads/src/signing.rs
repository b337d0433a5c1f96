//! `POST /api/v1/uploads`: check the request, record a pending upload, presign a PUT.
//!
//! The presigned PUT signs `content-type`, `content-length` and `if-none-match: *`, so S3
//! refuses a body of another type or size with 403 before storing a byte, and refuses to
//! overwrite the object once it exists (412). The key is generated here
//! (`<purpose>/<user id>/<uuid>`); the client's file name is kept only for display.

use std::collections::BTreeMap;

use anyhow::Context;
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::Json,
    },
    identity::guard::CurrentUser,
    uploads::{Purpose, object_key},
};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

/// A request to upload a file.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// The file's name on the user's machine (shown back, never used as a key).
    #[schema(example = "holiday.png")]
    pub filename: String,
    /// Its MIME type; must be allowed for the purpose.
    #[schema(example = "image/png")]
    pub content_type: String,
    /// Its exact size in bytes.
    #[schema(example = 48213)]
    pub size: i64,
    /// `avatar` or `event_image` (JPEG, PNG or WebP up to 5 MiB), or `attachment` (PDF,
    /// images, plain text, CSV, ZIP and Office documents up to 25 MiB).
    pub purpose: Purpose,
}

/// Where and how to upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadTicket {
    /// The upload's id.
    pub id: Uuid,
    /// The presigned URL.
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// Exactly the headers to send with the body (browsers set `content-length` from the
    /// body themselves).
    pub headers: BTreeMap<String, String>,
    /// When the URL stops working.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// A valid upload request.
struct NewUpload {
    filename: String,
    content_type: String,
    size: i64,
    purpose: Purpose,
}

/// Cleans a client file name: the last path segment, no control characters, trimmed,
/// at most 255 characters.
pub fn clean_filename(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    let n = cleaned.chars().count();
    (n > 0 && n <= 255 && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

impl CreateUpload {
    fn parse(self) -> Result<NewUpload, ApiError> {
        let mut errors = Vec::new();
        let filename = clean_filename(&self.filename);
        if filename.is_none() {
            errors.push(FieldError::new(
                "filename",
                "invalid_filename",
                "must be 1 to 255 characters",
            ));
        }
        let content_type = self.content_type.trim().to_ascii_lowercase();
        if !self
            .purpose
            .allowed_types()
            .contains(&content_type.as_str())
        {
            errors.push(FieldError::new(
                "content_type",
                "type_not_allowed",
                format!(
                    "not allowed for {}; allowed: {}",
                    self.purpose.prefix(),
                    self.purpose.allowed_types().join(", ")
                ),
            ));
        }
        if self.size <= 0 {
            errors.push(FieldError::new(
                "size",
                "invalid_size",
                "must be a positive number of bytes",
            ));
        } else if self.size > self.purpose.max_size() {
            errors.push(FieldError::new(
                "size",
                "too_large",
                format!(
                    "must be at most {} bytes for {}",
                    self.purpose.max_size(),
                    self.purpose.prefix()
                ),
            ));
        }
        match filename {
            Some(filename) if errors.is_empty() => Ok(NewUpload {
                filename,
                content_type,
                size: self.size,
                purpose: self.purpose,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Starts an upload: returns a presigned PUT URL bound to the declared type and size.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    operation_id = "create_upload",
    tag = "uploads",
    request_body = CreateUpload,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Upload recorded; PUT the file to `upload_url` with `headers`", body = UploadTicket),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Type not allowed for the purpose, too large, or invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this user's budget of writes; `Retry-After` says when to retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(request): Json<CreateUpload>,
) -> ApiResult<(StatusCode, Json<UploadTicket>)> {
    state.writes.hit(&state.db, user.id).await?;
    let new = request.parse()?;
    let id = Uuid::now_v7();
    let key = object_key(new.purpose, user.id, id);
    let ttl = state.storage.upload_url_ttl;
    let expires_at = OffsetDateTime::now_utc() + ttl;

    // Record first: an object can only ever arrive under a key we know about.
    sqlx::query!(
        "INSERT INTO uploads (id, owner_id, purpose, object_key, filename, content_type, size, url_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        user.id.0,
        new.purpose as Purpose,
        key,
        new.filename,
        new.content_type,
        new.size,
        expires_at,
    )
    .execute(&state.db)
    .await?;

    let size = new.size.to_string();
    let signed_headers = [
        ("content-type", new.content_type.as_str()),
        ("content-length", size.as_str()),
        // Create only: once an object is there (and perhaps checked and ready), the same
        // URL cannot replace it with other bytes; S3 answers 412.
        ("if-none-match", "*"),
    ];
    let presigned = state
        .presigner
        .presign("PUT", &key, &[], &signed_headers, ttl)
        .context("failed to presign the upload")?;
    tracing::info!(upload_id = %id, purpose = ?new.purpose, size = new.size, "upload started");
    Ok((
        StatusCode::CREATED,
        Json(UploadTicket {
            id,
            upload_url: presigned.url,
            method: "PUT".into(),
            headers: presigned.headers.into_iter().collect(),
            expires_at,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(clean_filename("holiday.png").unwrap(), "holiday.png");
        assert_eq!(clean_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_filename("C:\\Users\\ada\\cv.pdf").unwrap(), "cv.pdf");
        assert_eq!(clean_filename("a\u{0}b\nc.txt").unwrap(), "abc.txt");
        assert_eq!(
            clean_filename("  naïve résumé.pdf ").unwrap(),
            "naïve résumé.pdf"
        );
        for bad in ["", "   ", "dir/", "..", ".", "\u{7}"] {
            assert!(clean_filename(bad).is_none(), "{bad:?}");
        }
        assert!(clean_filename(&"x".repeat(256)).is_none());
    }

    #[test]
    fn type_and_size_are_checked_against_the_purpose() {
        let request = |purpose, content_type: &str, size| CreateUpload {
            filename: "f".into(),
            content_type: content_type.into(),
            size,
            purpose,
        };
        assert!(request(Purpose::Avatar, "image/png", 1).parse().is_ok());
        assert!(request(Purpose::Avatar, "IMAGE/PNG ", 1).parse().is_ok());
        assert!(
            request(Purpose::Avatar, "application/pdf", 1)
                .parse()
                .is_err()
        );
        assert!(
            request(Purpose::Avatar, "image/png", 5 * 1024 * 1024 + 1)
                .parse()
                .is_err()
        );
        assert!(
            request(Purpose::Attachment, "application/pdf", 25 * 1024 * 1024)
                .parse()
                .is_ok()
        );
        assert!(
            request(Purpose::Attachment, "text/html", 10)
                .parse()
                .is_err()
        );
        assert!(
            request(Purpose::Attachment, "text/plain", 0)
                .parse()
                .is_err()
        );
    }
}

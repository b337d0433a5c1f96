//! One upload: its status, a redirect to download it, its removal.

use anyhow::Context;
use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path},
    },
    identity::{UserId, guard::CurrentUser},
    uploads::{Purpose, UploadStatus},
};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

/// An upload as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    /// Its id.
    pub id: Uuid,
    /// What it is for.
    pub purpose: Purpose,
    /// The cleaned client file name.
    pub filename: String,
    /// The declared MIME type.
    pub content_type: String,
    /// The declared size in bytes.
    pub size: i64,
    /// `pending`, `ready`, `rejected` or `expired`.
    pub status: UploadStatus,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// When it was requested.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it became ready.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ready_at: Option<OffsetDateTime>,
    #[serde(skip)]
    object_key: String,
}

async fn find<'c>(db: impl PgExecutor<'c>, owner: UserId, id: Uuid) -> ApiResult<Upload> {
    sqlx::query_as!(
        Upload,
        r#"SELECT id, purpose AS "purpose: Purpose", filename, content_type, size,
                  status AS "status: UploadStatus", rejection_reason, created_at, ready_at, object_key
           FROM uploads WHERE id = $1 AND owner_id = $2"#,
        id,
        owner.0,
    )
    .fetch_optional(db)
    .await?
    .ok_or(ApiError::NotFound("upload"))
}

/// Shows one of the caller's uploads.
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}",
    operation_id = "get_upload",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "Upload id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The upload", body = Upload),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upload for this user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, upload_id = %id))]
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Upload>> {
    Ok(Json(find(&state.db, user.id, id).await?))
}

/// Redirects to a short-lived presigned GET of a ready upload.
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}/download",
    operation_id = "download_upload",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "Upload id")),
    security(("bearer" = [])),
    responses(
        (status = 302, description = "`Location` is a presigned URL valid for a few minutes"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upload for this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not ready yet", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Rejected or expired", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, upload_id = %id))]
pub async fn download(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let upload = find(&state.db, user.id, id).await?;
    match upload.status {
        UploadStatus::Ready => {}
        UploadStatus::Pending => {
            return Err(ApiError::Conflict("the upload is not ready yet".into()));
        }
        UploadStatus::Rejected | UploadStatus::Expired => {
            return Err(ApiError::Gone("the upload was rejected or expired".into()));
        }
    }
    // Pictures open in the browser; documents download under their own name.
    let disposition = match upload.purpose {
        Purpose::Avatar | Purpose::EventImage => "inline",
        Purpose::Attachment => "attachment",
    };
    let encoded = utf8_percent_encode(&upload.filename, NON_ALPHANUMERIC);
    let content_disposition = format!("{disposition}; filename*=UTF-8''{encoded}");
    let query = [
        ("response-content-disposition", content_disposition.as_str()),
        ("response-content-type", upload.content_type.as_str()),
    ];
    let ttl = state.storage.download_url_ttl;
    let presigned = state
        .presigner
        .presign("GET", &upload.object_key, &query, &[], ttl)
        .context("failed to presign the download")?;
    let location =
        HeaderValue::from_str(&presigned.url).context("presigned URL is not a header value")?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// Deletes an upload: its object, then its record.
#[utoipa::path(
    delete,
    path = "/api/v1/uploads/{id}",
    operation_id = "delete_upload",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "Upload id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upload for this user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, upload_id = %id))]
pub async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let upload = find(&state.db, user.id, id).await?;
    // Object first: if S3 fails, the record stays and the client can retry. Deleting a
    // missing object succeeds, so a retry after a half-done attempt works too.
    state
        .presigner
        .delete_object(&state.http, &upload.object_key)
        .await
        .context("failed to delete the object")?;
    // Concurrent deletions are harmless: both S3 and this statement are idempotent.
    sqlx::query!(
        "DELETE FROM uploads WHERE id = $1 AND owner_id = $2",
        id,
        user.id.0
    )
    .execute(&state.db)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

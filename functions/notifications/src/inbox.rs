//! The inbox: list (or catch up after a reconnect) and mark read.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path, Query},
        pagination::{self, CreatedKey, Page, PageParams, PageSize},
        timestamp,
    },
    identity::guard::CurrentUser,
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;

/// One notification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Its id.
    pub id: Uuid,
    /// What kind (`welcome`, ...).
    pub kind: String,
    /// One line.
    pub title: String,
    /// The text.
    pub body: String,
    /// When it was read, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Catching up after a (re)connect.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatchUp {
    /// Only what arrived after this notification (its id, as the last frame or page
    /// showed it) or after this instant (RFC 3339), oldest first; `next_cursor` continues.
    pub since: Option<String>,
}

/// Lists the caller's notifications, newest first; with `since`, what arrived after it,
/// oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    operation_id = "list_notifications",
    tag = "notifications",
    params(CatchUp, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of notifications", body = Page<Notification>),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit, or a `since` that is neither an instant nor one of the caller's notifications", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(catch_up): Query<CatchUp>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<Notification>>> {
    let (size, after): (_, Option<CreatedKey>) = params.parse()?;
    if let Some(since) = catch_up.since.as_deref() {
        return catch_up_from(&state, &user, since, after, size).await;
    }
    // Row comparison `(created_at, id) < (t, id)` walks the (user_id, created_at DESC,
    // id DESC) index from the cursor on; NULL parameters mean "first page".
    let rows = sqlx::query_as!(
        Notification,
        r#"SELECT id, kind, title, body, read_at, created_at
           FROM notifications
           WHERE user_id = $1
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        user.id.0,
        after.map(|k| k.t),
        after.map(|k| k.id),
        size.fetch(),
    )
    .fetch_all(&state.db)
    .await?;
    let page = pagination::page(rows, size, |n| CreatedKey {
        t: n.created_at,
        id: n.id,
    });
    Ok(Json(page))
}

/// What arrived after `since` (or after the cursor, which continues a catch-up), oldest
/// first.
async fn catch_up_from(
    state: &AppState,
    user: &CurrentUser,
    since: &str,
    cursor: Option<CreatedKey>,
    size: PageSize,
) -> ApiResult<Json<Page<Notification>>> {
    let unknown = || {
        ApiError::invalid(
            "since",
            "invalid",
            "an RFC 3339 instant or the id of one of your notifications",
        )
    };
    let start = match (cursor, since.trim().parse::<Uuid>()) {
        (Some(key), _) => key,
        (None, Ok(id)) => sqlx::query_as!(
            CreatedKey,
            "SELECT created_at AS t, id FROM notifications WHERE id = $1 AND user_id = $2",
            id,
            user.id.0,
        )
        .fetch_optional(&state.db)
        .await?
        .ok_or_else(unknown)?,
        // The largest id makes the bound exclusive: strictly after the instant.
        (None, Err(_)) => CreatedKey {
            t: timestamp::parse(since).map_err(|_| unknown())?,
            id: Uuid::max(),
        },
    };
    let rows = sqlx::query_as!(
        Notification,
        r#"SELECT id, kind, title, body, read_at, created_at
           FROM notifications
           WHERE user_id = $1 AND (created_at, id) > ($2, $3)
           ORDER BY created_at, id
           LIMIT $4"#,
        user.id.0,
        start.t,
        start.id,
        size.fetch(),
    )
    .fetch_all(&state.db)
    .await?;
    Ok(Json(pagination::page(rows, size, |n| CreatedKey {
        t: n.created_at,
        id: n.id,
    })))
}

/// Marks one of the caller's notifications read (idempotent).
#[utoipa::path(
    post,
    path = "/api/v1/notifications/{id}/read",
    operation_id = "mark_notification_read",
    tag = "notifications",
    params(("id" = Uuid, Path, description = "Notification id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The notification, now read", body = Notification),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such notification for this user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, notification_id = %id))]
pub async fn mark_read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Notification>> {
    // Keep the first read time when marked twice.
    let updated = sqlx::query_as!(
        Notification,
        r#"UPDATE notifications SET read_at = coalesce(read_at, now())
           WHERE id = $1 AND user_id = $2
           RETURNING id, kind, title, body, read_at, created_at"#,
        id,
        user.id.0,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound("notification"))?;
    Ok(Json(updated))
}

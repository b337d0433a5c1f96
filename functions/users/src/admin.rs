//! The admin user directory: list, show, change (name, role) and delete any account.
//!
//! Every handler takes [`Admin`], so a non-admin gets 403 before any query runs, and
//! the role is the live one: a demoted admin is refused on the very next request.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use shared::{
    http::{
        client::ClientInfo,
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path, Query},
        pagination::{self, CreatedKey, Page, PageSize},
    },
    identity::{
        Role, UserId,
        accounts::{self, User},
        audit::{self, AuditEvent, AuditKind},
        guard::Admin,
    },
    realtime::connections::{self, Whose},
    uploads::deletions,
};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;

/// Filters of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only emails containing this text (case-insensitive).
    pub email: Option<String>,
    /// Only this role.
    pub role: Option<Role>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An admin's change to an account. Absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// Display name.
    pub name: Option<String>,
    /// New role. The last admin cannot be demoted.
    pub role: Option<Role>,
}

/// Lists users, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "list_users",
    tag = "users",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %admin.id))]
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<User>>> {
    let size = PageSize::parse(params.limit)?;
    let after: Option<CreatedKey> = params
        .cursor
        .as_deref()
        .map(pagination::decode_cursor)
        .transpose()?;
    // The email filter is a substring: escape LIKE's wildcards so `%` means `%`.
    let email = params.email.as_deref().map(|e| {
        let escaped = e
            .trim()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", email, name, role AS "role: Role",
                  email_verified_at IS NOT NULL AS "email_verified!",
                  '/api/v1/uploads/' || avatar_upload_id || '/download' AS avatar_url,
                  created_at, updated_at
           FROM users
           WHERE ($1::text IS NULL OR email ILIKE $1)
             AND ($2::user_role IS NULL OR role = $2)
             AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
           ORDER BY created_at DESC, id DESC
           LIMIT $5"#,
        email,
        params.role as Option<Role>,
        after.map(|k| k.t),
        after.map(|k| k.id),
        size.fetch(),
    )
    .fetch_all(&state.db)
    .await?;
    let page = pagination::page(rows, size, |u| CreatedKey {
        t: u.created_at,
        id: u.id.0,
    });
    Ok(Json(page))
}

/// One user.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    operation_id = "get_user",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %admin.id, user_id = %id))]
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<UserId>,
) -> ApiResult<Json<User>> {
    let mut conn = state.db.acquire().await?;
    let found = accounts::find(&mut conn, id, false)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(found))
}

/// Changes a user's name or role. A role change applies on the user's next request.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    operation_id = "update_user",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UserUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would demote the last admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %admin.id, user_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    admin: Admin,
    client: ClientInfo,
    Path(id): Path<UserId>,
    Json(changes): Json<UserUpdate>,
) -> ApiResult<Json<User>> {
    let name = accounts::parse_name(changes.name.as_deref())?;

    let mut tx = state.db.begin().await?;
    let admins = accounts::lock_admins(&mut tx).await?;
    let target = accounts::find(&mut tx, id, true)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if let Some(role) = changes.role.filter(|r| *r != target.role) {
        if role != Role::Admin {
            accounts::keep_an_admin(&admins, &target)?;
        }
        sqlx::query!(
            "UPDATE users SET role = $2, updated_at = now() WHERE id = $1",
            id.0,
            role as Role,
        )
        .execute(&mut *tx)
        .await?;
        let event = AuditEvent::by(AuditKind::RoleChanged, admin.id)
            .on(id)
            .with(serde_json::json!({ "from": target.role, "to": role }));
        audit::record(&mut *tx, &client, event).await?;
    }
    if let Some(name) = &name {
        accounts::rename(&mut tx, id, name).await?;
    }
    let updated = accounts::find(&mut tx, id, false)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    tx.commit().await?;
    if updated.role != target.role {
        // What they may receive changed: their tabs reconnect under the new role.
        connections::close(&state.db, state.realtime.as_ref(), Whose::all_of(id.0)).await;
    }
    Ok(Json(updated))
}

/// Deletes a user and everything they own.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    operation_id = "delete_user",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is the last admin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %admin.id, user_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    client: ClientInfo,
    Path(id): Path<UserId>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let admins = accounts::lock_admins(&mut tx).await?;
    let target = accounts::find(&mut tx, id, true)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    accounts::keep_an_admin(&admins, &target)?;
    let closing = connections::take(&mut *tx, Whose::all_of(id.0)).await?;
    deletions::queue_owned_by(&mut *tx, id).await?;
    accounts::delete(&mut tx, id).await?;
    let event = AuditEvent::by(AuditKind::AccountDeleted, admin.id).on(id);
    audit::record(&mut *tx, &client, event).await?;
    tx.commit().await?;
    connections::hang_up(state.realtime.as_ref(), &closing).await;
    Ok(StatusCode::NO_CONTENT)
}

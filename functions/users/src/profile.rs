//! Self-service: the caller's own profile, password and account.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use shared::{
    http::{
        client::ClientInfo,
        error::{ApiError, ApiResult, Problem},
        extract::Json,
    },
    identity::{
        Email,
        accounts::{self, PasswordSetBy, User},
        audit::{self, AuditEvent, AuditKind},
        guard::CurrentUser,
        password::{self, Password},
        throttle,
    },
};
use utoipa::ToSchema;

use crate::AppState;

const GONE: &str = "invalid or expired access token";

/// Changes to the caller's profile. Only the name can change here; anything else
/// (a `role`, say) is refused as an unknown field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Display name, 1 to 100 characters.
    pub name: Option<String>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new password (12 to 128 characters, not common, not containing the email).
    pub new_password: String,
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn show(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<User>> {
    let mut conn = state.db.acquire().await?;
    let found = accounts::find(&mut conn, user.id, false)
        .await?
        .ok_or(ApiError::Unauthorized(GONE))?;
    Ok(Json(found))
}

/// Changes the caller's name.
#[utoipa::path(
    patch,
    path = "/api/v1/users/me",
    tag = "users",
    request_body = ProfileUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated account", body = User),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(changes): Json<ProfileUpdate>,
) -> ApiResult<Json<User>> {
    let name = accounts::parse_name(changes.name.as_deref())?;
    let mut tx = state.db.begin().await?;
    if let Some(name) = &name {
        accounts::rename(&mut tx, user.id, name).await?;
    }
    let found = accounts::find(&mut tx, user.id, false)
        .await?
        .ok_or(ApiError::Unauthorized(GONE))?;
    tx.commit().await?;
    Ok(Json(found))
}

/// Changes the caller's password; every other session is revoked.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/password",
    tag = "users",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; this session stays, every other one is revoked"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The current password is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password breaks a rule (named in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    user: CurrentUser,
    Json(change): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let row = sqlx::query!(
        "SELECT email, password_hash FROM users WHERE id = $1",
        user.id.0
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::Unauthorized(GONE))?;
    let email = Email::parse(&row.email).map_err(anyhow::Error::msg)?;
    let new = Password::parse(change.new_password, &email)
        .map_err(|v| ApiError::invalid("new_password", v.code, v.message))?;

    // A stolen access token must not become a password oracle: wrong current passwords
    // count towards the same lockout as failed logins.
    throttle::begin_login(&state.db, email.as_str(), state.lockout).await?;
    if !password::verify_or_dummy(change.current_password, row.password_hash).await? {
        throttle::login_failed(&state.db, email.as_str(), state.lockout).await?;
        return Err(ApiError::Forbidden);
    }
    throttle::clear_login(&state.db, email.as_str()).await?;
    let hash = password::hash(new.into_inner()).await?;

    let mut tx = state.db.begin().await?;
    let why = PasswordSetBy::Changed;
    accounts::set_password(&mut tx, user.id, &hash, why, user.session_id).await?;
    audit::record(
        &mut *tx,
        &client,
        AuditEvent::by(AuditKind::PasswordChanged, user.id),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the caller's account and everything it owns; its sessions end with it.
#[utoipa::path(
    delete,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Account deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller is the last admin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn delete(
    State(state): State<AppState>,
    client: ClientInfo,
    user: CurrentUser,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let admins = accounts::lock_admins(&mut tx).await?;
    let me = accounts::find(&mut tx, user.id, true)
        .await?
        .ok_or(ApiError::Unauthorized(GONE))?;
    accounts::keep_an_admin(&admins, &me)?;
    accounts::delete(&mut tx, me.id).await?;
    audit::record(
        &mut *tx,
        &client,
        AuditEvent::by(AuditKind::AccountDeleted, me.id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!("account deleted by its owner");
    Ok(StatusCode::NO_CONTENT)
}

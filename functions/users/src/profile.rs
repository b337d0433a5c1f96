//! Self-service: the caller's own profile, password and account.

use std::time::Duration;

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
    realtime::connections::{self, Whose},
    uploads::deletions,
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

/// Proof for deleting the account. Needed unless the caller signed in within the last
/// [`RECENT_SIGN_IN`].
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletion {
    /// The password now (accounts that have one).
    pub current_password: Option<String>,
}

/// How recent a sign-in must be for deleting the account without the password: a stolen
/// access token lives 15 minutes, so the token alone is not enough for an act that
/// cannot be undone.
pub const RECENT_SIGN_IN: Duration = Duration::from_secs(5 * 60);

/// The caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    operation_id = "get_my_profile",
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
    operation_id = "update_my_profile",
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
    operation_id = "change_my_password",
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
    let row = credentials(&state, &user).await?;
    let email = Email::parse(&row.email).map_err(anyhow::Error::msg)?;
    let new = Password::parse(change.new_password, &email)
        .map_err(|v| ApiError::invalid("new_password", v.code, v.message))?;

    confirm_password(
        &state,
        &row.email,
        change.current_password,
        row.password_hash,
    )
    .await?;
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
    // The other sessions ended: so do their open tabs (this one's stay).
    let whose = Whose::User {
        user: user.id.0,
        keep: user.session_id.map(|s| s.0),
    };
    connections::close(&state.db, state.realtime.as_ref(), whose).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's email and password hash (none for accounts from Better Auth).
struct Credentials {
    email: String,
    password_hash: Option<String>,
}

async fn credentials(state: &AppState, user: &CurrentUser) -> ApiResult<Credentials> {
    sqlx::query_as!(
        Credentials,
        "SELECT email, password_hash FROM users WHERE id = $1",
        user.id.0
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::Unauthorized(GONE))
}

/// Checks the caller's current password: 403 when wrong. A stolen access token must not
/// become a password oracle, so wrong passwords count towards the same lockout as
/// failed logins (429 once locked). An account without a password (provisioned from
/// Better Auth) never matches.
async fn confirm_password(
    state: &AppState,
    email: &str,
    given: String,
    stored: Option<String>,
) -> ApiResult<()> {
    throttle::begin_login(&state.db, email, state.lockout).await?;
    if !password::verify_or_dummy(given, stored).await? {
        throttle::login_failed(&state.db, email, state.lockout).await?;
        return Err(ApiError::Forbidden);
    }
    throttle::clear_login(&state.db, email).await?;
    Ok(())
}

/// Deletes the caller's account and everything it owns; its sessions end with it. The
/// caller proves it is them: the current password, or a sign-in within the last five
/// minutes (for accounts from Better Auth, a token it minted that recently: sign in
/// there again).
#[utoipa::path(
    delete,
    path = "/api/v1/users/me",
    operation_id = "delete_my_account",
    tag = "users",
    security(("bearer" = [])),
    request_body(content = Option<AccountDeletion>, description = "Needed unless the caller signed in within the last 5 minutes"),
    responses(
        (status = 204, description = "Account deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The current password is wrong, or none was sent and the last sign-in is older than 5 minutes", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller is the last admin", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn delete(
    State(state): State<AppState>,
    client: ClientInfo,
    user: CurrentUser,
    body: Option<Json<AccountDeletion>>,
) -> ApiResult<StatusCode> {
    let proof = match body.and_then(|Json(b)| b.current_password) {
        Some(given) => {
            let row = credentials(&state, &user).await?;
            confirm_password(&state, &row.email, given, row.password_hash).await?;
            "password"
        }
        None if user.signed_in_within(RECENT_SIGN_IN) => "recent_sign_in",
        None => return Err(ApiError::NotAllowed(STALE_SIGN_IN)),
    };

    let mut tx = state.db.begin().await?;
    let admins = accounts::lock_admins(&mut tx).await?;
    let me = accounts::find(&mut tx, user.id, true)
        .await?
        .ok_or(ApiError::Unauthorized(GONE))?;
    accounts::keep_an_admin(&admins, &me)?;
    let closing = connections::take(&mut *tx, Whose::all_of(me.id.0)).await?;
    deletions::queue_owned_by(&mut *tx, me.id).await?;
    accounts::delete(&mut tx, me.id).await?;
    let event = AuditEvent::by(AuditKind::AccountDeleted, me.id)
        .with(serde_json::json!({ "confirmed_by": proof }));
    audit::record(&mut *tx, &client, event).await?;
    tx.commit().await?;
    connections::hang_up(state.realtime.as_ref(), &closing).await;
    tracing::info!(confirmed_by = proof, "account deleted by its owner");
    Ok(StatusCode::NO_CONTENT)
}

const STALE_SIGN_IN: &str =
    "deleting the account needs `current_password`, or a sign-in within the last 5 minutes";

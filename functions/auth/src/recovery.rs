//! Password reset and email verification: single-use, hashed, 30-minute tokens sent by
//! email.
//!
//! Requesting a link only queues an [`AccountEmailMessage`]; `notify-worker` looks the
//! address up, creates the token (storing its SHA-256) and sends the email. So the
//! request does the same work, and answers 202, whether or not an account exists.
//! Confirming spends the token (row-locked, so it works once even under concurrent
//! use); a password reset then revokes every session of the account.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use shared::{
    http::{
        client::ClientInfo,
        error::{ApiError, ApiResult, Problem},
        extract::Json,
    },
    identity::{
        Email, UserId,
        accounts::{self, PasswordSetBy},
        audit::{self, AuditEvent, AuditKind},
        guard::CurrentUser,
        password::{self, Password},
        throttle,
        tokens::hash_refresh_token,
    },
    messaging::{
        messages::{AccountEmailKind, AccountEmailMessage},
        outbox,
    },
    realtime::connections::{self, Whose},
};
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::AppState;

const BAD_TOKEN: &str = "the link is invalid, used or expired; request a new one";

/// A password reset request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The account's email address.
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// A password reset confirmation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetConfirmation {
    /// The token from the emailed link.
    pub token: String,
    /// The new password (same policy as registration).
    pub new_password: String,
}

/// An email verification.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The token from the emailed link.
    pub token: String,
}

/// Emails a password reset link, if an account has this address. Always 202.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset",
    tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If an account has this address, a link is on its way"),
        (status = 422, description = "Not an email address", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn request_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<ResetRequest>,
) -> ApiResult<StatusCode> {
    limit(&state, &client).await?;
    let email =
        Email::parse(&request.email).map_err(|m| ApiError::invalid("email", "invalid_email", m))?;
    queue_email(&state, AccountEmailKind::PasswordReset, &email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset token; every session of the account is revoked.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    tag = "auth",
    request_body = ResetConfirmation,
    responses(
        (status = 204, description = "Password changed; log in again"),
        (status = 400, description = "Invalid, used or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password breaks a rule (named in `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn confirm_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<ResetConfirmation>,
) -> ApiResult<StatusCode> {
    limit(&state, &client).await?;
    // Check the password against the account before hashing, without spending the token.
    let owner = token_owner(&state, &request.token, "password_reset").await?;
    let password = Password::parse(request.new_password, &owner)
        .map_err(|v| ApiError::invalid("new_password", v.code, v.message))?;
    let hash = password::hash(password.into_inner()).await?;

    let mut tx = state.db.begin().await?;
    let user = spend_token(&mut tx, &request.token, "password_reset").await?;
    // The link went to the address, so it proves control of it: verified too.
    accounts::set_password(&mut tx, user, &hash, PasswordSetBy::Reset, None).await?;
    audit::record(
        &mut *tx,
        &client,
        AuditEvent::anonymous(AuditKind::PasswordReset, Some(user)),
    )
    .await?;
    tx.commit().await?;
    // Every session ended: so do their open tabs.
    connections::close(&state.db, state.realtime.as_ref(), Whose::all_of(user.0)).await;
    throttle::clear_login(&state.db, owner.as_str()).await?;
    tracing::info!(user_id = %user, "password reset");
    Ok(StatusCode::NO_CONTENT)
}

/// Marks the address verified with a verification token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = VerifyRequest,
    responses(
        (status = 204, description = "Email verified"),
        (status = 400, description = "Invalid, used or expired token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<VerifyRequest>,
) -> ApiResult<StatusCode> {
    limit(&state, &client).await?;
    let mut tx = state.db.begin().await?;
    let user = spend_token(&mut tx, &request.token, "email_verification").await?;
    sqlx::query!(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()) WHERE id = $1",
        user.0,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &client,
        AuditEvent::by(AuditKind::EmailVerified, user),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the caller a new verification link (nothing when already verified).
#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email/resend",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A new link is on its way, unless the address is already verified"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn resend_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    user: CurrentUser,
) -> ApiResult<StatusCode> {
    limit(&state, &client).await?;
    let email = sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", user.id.0)
        .fetch_optional(&state.db)
        .await?
        .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
    let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
    queue_email(&state, AccountEmailKind::VerifyEmail, &email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Every recovery route counts against one per-IP budget: together they are what an
/// attacker would use to mail-bomb an address or probe tokens.
async fn limit(state: &AppState, client: &ClientInfo) -> ApiResult<()> {
    let budget = state.limits.password_reset;
    throttle::hit(&state.db, "password_reset", client.rate_key(), budget).await
}

async fn queue_email(state: &AppState, kind: AccountEmailKind, email: &Email) -> ApiResult<()> {
    let message = AccountEmailMessage::new(kind, email.as_str());
    let mut tx = state.db.begin().await?;
    let pending = outbox::enqueue(&mut tx, &message).await?;
    tx.commit().await?;
    outbox::relay(&state.db, &state.publisher, vec![pending]).await;
    Ok(())
}

/// The address a live token was sent to, without spending it.
async fn token_owner(state: &AppState, token: &str, purpose: &str) -> ApiResult<Email> {
    let email = sqlx::query_scalar!(
        "SELECT u.email FROM user_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.purpose = $2::text::user_token_purpose
           AND t.used_at IS NULL AND t.expires_at > now() AND lower(t.email) = lower(u.email)",
        hash_refresh_token(token),
        purpose,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| ApiError::BadRequest(BAD_TOKEN.into()))?;
    Email::parse(&email).map_err(|m| ApiError::Internal(anyhow::anyhow!("stored email: {m}")))
}

/// Spends a live token (row-locked: the second of two concurrent uses sees it used).
/// A token sent to an address the account no longer has is refused.
async fn spend_token(tx: &mut PgConnection, token: &str, purpose: &str) -> ApiResult<UserId> {
    sqlx::query_scalar!(
        r#"UPDATE user_tokens t SET used_at = now()
           FROM users u
           WHERE t.token_hash = $1 AND t.purpose = $2::text::user_token_purpose
             AND t.used_at IS NULL AND t.expires_at > now()
             AND u.id = t.user_id AND lower(t.email) = lower(u.email)
           RETURNING t.user_id AS "user_id: UserId""#,
        hash_refresh_token(token),
        purpose,
    )
    .fetch_optional(tx)
    .await?
    .ok_or_else(|| ApiError::BadRequest(BAD_TOKEN.into()))
}

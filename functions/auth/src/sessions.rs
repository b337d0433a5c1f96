//! Sessions: login, refresh-token rotation with reuse detection, logout.
//!
//! A session is one login. Each refresh rotates its refresh token: the presented one is
//! marked used and a new one issued. A used token presented again means two parties
//! hold it (theft or replay), so the whole session is revoked: the newest refresh
//! token and every access token of the session stop working at once.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    auth::CurrentUser,
    error::{ApiError, ApiResult, Problem},
    extract::Json,
    identity::{Role, SessionId, UserId},
    password,
    tokens::{RefreshToken, hash_refresh_token},
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;

const BAD_CREDENTIALS: &str = "invalid email or password";
const BAD_REFRESH: &str = "invalid or expired refresh token";

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Email address (any case).
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Password.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// A refresh request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh. Single use.
    pub refresh_token: String,
}

/// A token pair.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// JWT to send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque, single-use token to get the next pair.
    pub refresh_token: String,
}

/// Logs in. Unknown email and wrong password give the same answer in the same time.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Invalid email or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let account = sqlx::query!(
        r#"SELECT id AS "id: UserId", password_hash, role AS "role: Role"
           FROM users WHERE lower(email) = lower($1)"#,
        request.email.trim(),
    )
    .fetch_optional(&state.db)
    .await?;

    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let matches = password::verify_or_dummy(request.password, stored).await?;
    let Some(account) = account.filter(|_| matches) else {
        tracing::info!("login refused");
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };

    let mut tx = state.db.begin().await?;
    let session = SessionId::new();
    let expires_at = OffsetDateTime::now_utc() + state.config.refresh_ttl;
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, $3)",
        session.0,
        account.id.0,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    let refresh = insert_refresh_token(&mut tx, session, expires_at).await?;
    tx.commit().await?;

    tracing::info!(user_id = %account.id, session_id = %session, "logged in");
    token_pair(&state, account.id, session, account.role, refresh)
}

/// Exchanges a refresh token for a new pair. Reusing a rotated token revokes the session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let hash = hash_refresh_token(&request.refresh_token);
    let mut tx = state.db.begin().await?;
    // The row lock serialises concurrent refreshes with one token: the second sees it used.
    let Some(found) = sqlx::query!(
        r#"SELECT t.session_id AS "session_id: SessionId", t.used_at, t.expires_at,
                  s.revoked_at, s.user_id AS "user_id: UserId", u.role AS "role: Role"
           FROM refresh_tokens t
           JOIN sessions s ON s.id = t.session_id
           JOIN users u ON u.id = s.user_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t, s"#,
        hash,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    };

    if found.revoked_at.is_some() {
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }
    if found.used_at.is_some() {
        revoke_session(&mut tx, found.session_id, "refresh_token_reuse").await?;
        tx.commit().await?;
        tracing::warn!(session_id = %found.session_id, user_id = %found.user_id, "refresh token reuse: session revoked");
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }
    if found.expires_at <= OffsetDateTime::now_utc() {
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }

    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
        hash
    )
    .execute(&mut *tx)
    .await?;
    let expires_at = OffsetDateTime::now_utc() + state.config.refresh_ttl;
    sqlx::query!(
        "UPDATE sessions SET expires_at = $2 WHERE id = $1",
        found.session_id.0,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    let next = insert_refresh_token(&mut tx, found.session_id, expires_at).await?;
    tx.commit().await?;

    token_pair(&state, found.user_id, found.session_id, found.role, next)
}

/// Ends the caller's session: its refresh token and access tokens stop working at once.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    revoke_session(&mut tx, user.session_id, "logout").await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn insert_refresh_token(
    tx: &mut PgConnection,
    session: SessionId,
    expires_at: OffsetDateTime,
) -> Result<RefreshToken, sqlx::Error> {
    let token = RefreshToken::generate();
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token.hash,
        session.0,
        expires_at,
    )
    .execute(tx)
    .await?;
    Ok(token)
}

async fn revoke_session(
    tx: &mut PgConnection,
    session: SessionId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        session.0,
        reason,
    )
    .execute(tx)
    .await?;
    Ok(())
}

fn token_pair(
    state: &AppState,
    user: UserId,
    session: SessionId,
    role: Role,
    refresh: RefreshToken,
) -> ApiResult<Json<TokenResponse>> {
    let access = state.auth.tokens.issue(user, session, role)?;
    Ok(Json(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: refresh.token,
    }))
}

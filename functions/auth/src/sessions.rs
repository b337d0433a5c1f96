//! Sessions: login (with per-IP rate limits and per-account lockout), refresh-token
//! rotation with reuse detection, logout.
//!
//! A session is one login. Each refresh rotates its refresh token: the presented one is
//! marked used and a new one issued. A used token presented again means two parties
//! hold it (theft or replay), so the whole session is revoked: the newest refresh
//! token and every access token of the session stop working at once.
//!
//! Browser clients get the refresh token as an `HttpOnly` cookie as well as in the
//! body ([`crate::cookies`]); refresh and logout take it from either.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{AppendHeaders, IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        client::ClientInfo,
        error::{ApiError, ApiResult, Problem},
        extract::Json,
    },
    identity::{
        Role, SessionId, UserId,
        audit::{self, AuditEvent, AuditKind},
        guard::CurrentUser,
        password, throttle,
        tokens::{RefreshToken, hash_refresh_token},
    },
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{AppState, cookies};

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

/// A refresh or logout request. The body is optional when the `refresh_token` cookie
/// is sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh. Single use.
    pub refresh_token: Option<String>,
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
    /// Opaque, single-use token to get the next pair (also set as a cookie). Absent when
    /// the request brought it in the cookie: a browser's scripts never see it then, so
    /// an XSS cannot steal it through a refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Logs in. Unknown email and wrong password give the same answer in the same time;
/// five failures within 15 minutes lock the email (known or not) for 15 minutes.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; the refresh token is also set as an HttpOnly cookie", body = TokenResponse),
        (status = 401, description = "Invalid email or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or the email is locked; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Response> {
    throttle::hit(&state.db, "login", client.rate_key(), state.limits.login).await?;
    let email_key = throttle::email_key(&request.email);
    throttle::begin_login(&state.db, &email_key, state.lockout).await?;

    let account = sqlx::query!(
        r#"SELECT id AS "id: UserId", password_hash, role AS "role: Role"
           FROM users WHERE lower(email) = lower($1)"#,
        request.email.trim(),
    )
    .fetch_optional(&state.db)
    .await?;

    // No account and an account without a password (provisioned from Better Auth) both
    // verify against the dummy hash: same work, same answer.
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let matches = password::verify_or_dummy(request.password, stored).await?;
    let target = account.as_ref().map(|a| a.id);
    let Some(account) = account.filter(|_| matches) else {
        // The audit log (admins only) may name the account; the client learns nothing.
        audit::record(
            &state.db,
            &client,
            AuditEvent::anonymous(AuditKind::LoginFailed, target),
        )
        .await?;
        if throttle::login_failed(&state.db, &email_key, state.lockout).await? {
            audit::record(
                &state.db,
                &client,
                AuditEvent::anonymous(AuditKind::Lockout, target),
            )
            .await?;
            tracing::warn!("login locked after repeated failures");
        }
        tracing::info!("login refused");
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    throttle::clear_login(&state.db, &email_key).await?;

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
    audit::record(
        &mut *tx,
        &client,
        AuditEvent::by(AuditKind::LoginSucceeded, account.id),
    )
    .await?;
    tx.commit().await?;

    tracing::info!(user_id = %account.id, session_id = %session, "logged in");
    token_pair(&state, account.id, session, account.role, refresh, true)
}

/// Where a refresh token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Body,
    Cookie,
}

/// The refresh token a client presented: the body's, else the cookie's.
fn presented_refresh_token(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Option<(String, Source)>> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "expected a request body with `Content-Type: application/json`".into(),
            ));
        }
        let request: RefreshRequest = serde_json::from_slice(body).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                ApiError::BadRequest(format!("malformed JSON: {e}"))
            } else {
                ApiError::Unprocessable(format!("invalid request body: {e}"))
            }
        })?;
        request.refresh_token
    };
    Ok(from_body
        .map(|t| (t, Source::Body))
        .or_else(|| cookies::read(headers).map(|t| (t, Source::Cookie))))
}

/// Exchanges a refresh token (body or cookie) for a new pair. Reusing a rotated token
/// revokes the session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body(content = Option<RefreshRequest>, description = "Optional when the refresh_token cookie is sent"),
    responses(
        (status = 200, description = "A new token pair; the cookie is replaced too", body = TokenResponse),
        (status = 401, description = "Missing, unknown, expired, revoked or reused refresh token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // The rate-limit count and the rotation share one transaction (one commit, not
    // two). Every outcome commits, refusals included, so refused attempts count too;
    // a failed statement aborts the transaction, and its COMMIT then rolls back.
    let mut tx = state.db.begin().await?;
    let outcome = rotate(&state, &client, &headers, &body, &mut tx).await;
    tx.commit().await?;
    outcome
}

async fn rotate(
    state: &AppState,
    client: &ClientInfo,
    headers: &HeaderMap,
    body: &Bytes,
    tx: &mut PgConnection,
) -> ApiResult<Response> {
    throttle::hit(&mut *tx, "refresh", client.rate_key(), state.limits.refresh).await?;
    let (presented, source) =
        presented_refresh_token(headers, body)?.ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    let hash = hash_refresh_token(&presented);
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
        revoke_session(tx, found.session_id, "refresh_token_reuse").await?;
        let event = AuditEvent::anonymous(AuditKind::RefreshReuseDetected, Some(found.user_id))
            .with(serde_json::json!({ "session_id": found.session_id }));
        audit::record(&mut *tx, client, event).await?;
        tracing::warn!(session_id = %found.session_id, user_id = %found.user_id, "refresh token reuse: session revoked");
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }
    if found.expires_at <= OffsetDateTime::now_utc() {
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }

    // The rotation's three writes in one statement (one round trip, not three): the
    // presented token is spent, the session extended, its successor stored.
    let expires_at = OffsetDateTime::now_utc() + state.config.refresh_ttl;
    let next = RefreshToken::generate();
    sqlx::query!(
        "WITH spent AS (UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1),
              extended AS (UPDATE sessions SET expires_at = $3 WHERE id = $2)
         INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($4, $2, $3)",
        hash,
        found.session_id.0,
        expires_at,
        next.hash,
    )
    .execute(&mut *tx)
    .await?;

    let in_body = source == Source::Body;
    token_pair(
        state,
        found.user_id,
        found.session_id,
        found.role,
        next,
        in_body,
    )
}

/// Ends a session: its refresh token and access tokens stop working at once. The
/// session is the bearer token's, or else the refresh token's (body or cookie), so a
/// browser whose access token expired can still log out. The cookie is cleared.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("bearer" = []), ()),
    request_body(content = Option<RefreshRequest>, description = "Needed only without a bearer token or cookie"),
    responses(
        (status = 204, description = "Logged out; the cookie is cleared"),
        (status = 401, description = "No valid access token, refresh token or cookie", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    user: Option<CurrentUser>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let session = match user.and_then(|u| u.session_id.map(|s| (u.id, s))) {
        Some(found) => found,
        None => {
            let (presented, _) = presented_refresh_token(&headers, &body)?
                .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
            sqlx::query!(
                r#"SELECT s.user_id AS "user_id: UserId", s.id AS "id: SessionId"
                   FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
                   WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
                     AND s.revoked_at IS NULL"#,
                hash_refresh_token(&presented),
            )
            .fetch_optional(&state.db)
            .await?
            .map(|row| (row.user_id, row.id))
            .ok_or(ApiError::Unauthorized(BAD_REFRESH))?
        }
    };
    let (user_id, session_id) = session;
    let mut tx = state.db.begin().await?;
    revoke_session(&mut tx, session_id, "logout").await?;
    let event = AuditEvent::by(AuditKind::Logout, user_id)
        .with(serde_json::json!({ "session_id": session_id }));
    audit::record(&mut *tx, &client, event).await?;
    tx.commit().await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, cookies::clear())]),
    )
        .into_response())
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

/// Revokes one session (logout, refresh-token reuse).
pub(crate) async fn revoke_session(
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
    in_body: bool,
) -> ApiResult<Response> {
    let access = state.auth.tokens.issue(user, session, role)?;
    let cookie = cookies::set(&refresh.token, state.config.refresh_ttl.as_secs());
    let body = Json(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: in_body.then_some(refresh.token),
    });
    Ok((AppendHeaders([(header::SET_COOKIE, cookie)]), body).into_response())
}

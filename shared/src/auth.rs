//! The authentication extractor: `CurrentUser` in a handler's arguments means "this
//! route needs a valid bearer token for a live session".
//!
//! A JWT alone cannot be revoked, so after checking the signature we look the session
//! up: a logged-out or reuse-revoked session is refused at once, and the role is read
//! from the database, so a role change applies on the next request.

use std::sync::Arc;

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts},
};
use sqlx::PgPool;

use crate::{
    config::TokenConfig,
    error::ApiError,
    identity::{Role, SessionId, UserId},
    tokens::AccessTokens,
};

/// What the extractor needs from a function's state. A function keeps one in its
/// `AppState` and derives `FromRef`, so the extractor finds it.
#[derive(Clone)]
pub struct AuthState {
    /// The database, to check the session.
    pub db: PgPool,
    /// The verifier for access tokens.
    pub tokens: Arc<AccessTokens>,
}

impl AuthState {
    /// The state for a function that verifies our access tokens.
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            db,
            tokens: Arc::new(AccessTokens::new(config)),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser {
    /// The user.
    pub id: UserId,
    /// The session the token belongs to.
    pub session_id: SessionId,
    /// The user's role now (not when the token was issued).
    pub role: Role,
}

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let auth = AuthState::from_ref(state);
        let claims = auth.tokens.verify(token)?;
        let role = live_session_role(&auth.db, claims.sub, claims.sid)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
        Ok(Self {
            id: claims.sub,
            session_id: claims.sid,
            role,
        })
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing bearer token"))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(ApiError::Unauthorized("malformed authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthorized("malformed authorization header"));
    }
    Ok(token.trim())
}

/// The user's role if the session is live (not revoked, not expired, theirs).
#[tracing::instrument(skip(db))]
async fn live_session_role(
    db: &PgPool,
    user: UserId,
    session: SessionId,
) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT u.role AS "role: Role"
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()"#,
        session.0,
        user.0,
    )
    .fetch_optional(db)
    .await
}

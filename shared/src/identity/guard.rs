//! The authentication extractor: `CurrentUser` in a handler's arguments means "this
//! route needs a valid bearer token for a live session".
//!
//! A JWT alone cannot be revoked, so after checking the signature we look the session
//! up: a logged-out or reuse-revoked session is refused at once, and the role is read
//! from the database, so a role change applies on the next request.
//!
//! Roles are enforced by one guard: [`Authorized<R>`] in a handler's arguments (e.g.
//! [`Admin`]) answers 403 unless the caller's live role includes `R`'s.

use std::{marker::PhantomData, ops::Deref, sync::Arc};

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts},
};
use sqlx::PgPool;
use time::OffsetDateTime;

use jsonwebtoken::Algorithm;

use crate::{
    http::error::ApiError,
    identity::{
        Role, SessionId, UserId,
        better_auth::{self, BetterAuth},
        tokens::{AccessTokens, TokenConfig},
    },
};

/// What the extractor needs from a function's state. A function keeps one in its
/// `AppState` and derives `FromRef`, so the extractor finds it.
#[derive(Clone)]
pub struct AuthState {
    /// The database, to check the session.
    pub db: PgPool,
    /// The verifier for access tokens.
    pub tokens: Arc<AccessTokens>,
    /// The verifier for Better Auth tokens, when configured.
    pub better_auth: Option<Arc<BetterAuth>>,
}

impl AuthState {
    /// The state for a function that verifies our access tokens (and Better Auth's,
    /// when configured).
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            db,
            tokens: Arc::new(AccessTokens::new(config)),
            better_auth: config
                .better_auth
                .clone()
                .map(|c| Arc::new(BetterAuth::new(c))),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser {
    /// The user.
    pub id: UserId,
    /// The session the token belongs to (none for Better Auth tokens: their sessions
    /// live in Better Auth).
    pub session_id: Option<SessionId>,
    /// The user's role now (not when the token was issued).
    pub role: Role,
    /// When the user last proved who they are: the login that opened our session, or a
    /// Better Auth token's `auth_time`/`iat` (`None` when it states neither). Routes
    /// that need a recent sign-in check it ([`CurrentUser::signed_in_within`]).
    pub authenticated_at: Option<OffsetDateTime>,
}

impl CurrentUser {
    /// Whether the user signed in within `window` (a stolen access token alone should
    /// not be enough for the most dangerous changes).
    pub fn signed_in_within(&self, window: std::time::Duration) -> bool {
        self.authenticated_at
            .is_some_and(|at| at + window >= OffsetDateTime::now_utc())
    }
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
        // Ours are HS256; Better Auth's are asymmetric. The header picks the verifier,
        // and each verifier pins its own algorithms, so the choice cannot be abused.
        if let Some(external) = &auth.better_auth
            && jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg != Algorithm::HS256)
        {
            let claims = external.verify(token).await?;
            let (id, role) =
                better_auth::link_or_provision(&auth.db, external.issuer(), &claims).await?;
            return Ok(Self {
                id,
                session_id: None,
                role,
                authenticated_at: claims.authenticated_at(),
            });
        }
        let claims = auth.tokens.verify_or_refresh(token).await?;
        let live = live_session(&auth.db, claims.sub, claims.sid)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
        Ok(Self {
            id: claims.sub,
            session_id: Some(claims.sid),
            role: live.role,
            authenticated_at: Some(live.logged_in_at),
        })
    }
}

/// `Option<CurrentUser>`: `None` when there is no usable bearer token (for routes that
/// also accept other credentials, like logout with a refresh cookie). A database
/// failure is still an error.
impl<S> OptionalFromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(ApiError::Unauthorized(_)) => Ok(None),
            Err(other) => Err(other),
        }
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

/// A live session's user's role now, and when that session logged in.
struct LiveSession {
    role: Role,
    logged_in_at: OffsetDateTime,
}

/// The session if it is live (not revoked, not expired, the user's).
#[tracing::instrument(skip(db))]
async fn live_session(
    db: &PgPool,
    user: UserId,
    session: SessionId,
) -> Result<Option<LiveSession>, sqlx::Error> {
    sqlx::query_as!(
        LiveSession,
        r#"SELECT u.role AS "role: Role", s.created_at AS logged_in_at
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()"#,
        session.0,
        user.0,
    )
    .fetch_optional(db)
    .await
}

/// A role a route requires; see [`Authorized`].
pub trait RequiredRole {
    /// The least role allowed in.
    const ROLE: Role;
}

/// Requires [`Role::Admin`].
pub struct AdminRole;
impl RequiredRole for AdminRole {
    const ROLE: Role = Role::Admin;
}

/// Requires [`Role::Organizer`] (or admin).
pub struct OrganizerRole;
impl RequiredRole for OrganizerRole {
    const ROLE: Role = Role::Organizer;
}

/// The guard: a [`CurrentUser`] whose live role includes `R::ROLE`; anyone else gets
/// 403 (401 without a valid token). Dereferences to the user.
pub struct Authorized<R: RequiredRole> {
    user: CurrentUser,
    role: PhantomData<R>,
}

/// An authenticated admin.
pub type Admin = Authorized<AdminRole>;
/// An authenticated organizer or admin.
pub type Organizer = Authorized<OrganizerRole>;

impl<R: RequiredRole> Deref for Authorized<R> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.user
    }
}

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    S: Send + Sync,
    AuthState: FromRef<S>,
    R: RequiredRole,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if !user.role.includes(R::ROLE) {
            tracing::info!(user_id = %user.id, required = ?R::ROLE, "forbidden: role too low");
            return Err(ApiError::Forbidden);
        }
        Ok(Self {
            user,
            role: PhantomData,
        })
    }
}

//! Sessions over HTTP: login (per-IP rate limit, then `shared::identity::sessions`
//! checks the credentials under the per-account lockout and opens the session), refresh
//! (rotation with reuse detection) and logout. The rules live in the domain module; this
//! one reads requests and writes responses.
//!
//! Browser clients get the refresh token as an `HttpOnly` cookie as well as in the
//! body ([`crate::cookies`]); refresh and logout take it from either.

use axum::{
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
        guard::CurrentUser,
        sessions::{self, BAD_REFRESH, Issued},
        throttle,
    },
    realtime::connections::{self, Whose},
    telemetry::metrics,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{AppState, cookies};

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
    let account = sessions::verify_credentials(
        &state.db,
        &client,
        &request.email,
        request.password,
        state.lockout,
    )
    .await
    .inspect_err(|e| {
        if matches!(
            e,
            ApiError::Unauthorized(_) | ApiError::TooManyRequests { .. }
        ) {
            metrics::count("LoginFailures");
        }
    })?;
    let issued = sessions::open(&state.db, &client, account, state.sessions).await?;
    let answer = token_pair(&state, issued, true)?;
    metrics::count("Logins");
    Ok(answer)
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
    body: Option<Json<RefreshRequest>>,
) -> Option<(String, Source)> {
    body.and_then(|Json(request)| request.refresh_token)
        .map(|t| (t, Source::Body))
        .or_else(|| cookies::read(headers).map(|t| (t, Source::Cookie)))
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
    body: Option<Json<RefreshRequest>>,
) -> ApiResult<Response> {
    // The rate-limit count and the rotation share one transaction (one commit, not
    // two). Every outcome commits, refusals included, so refused attempts count too;
    // a failed statement aborts the transaction, and its COMMIT then rolls back.
    let mut tx = state.db.begin().await?;
    let presented = presented_refresh_token(&headers, body);
    let outcome = rotate(&state, &client, presented, &mut tx).await;
    tx.commit().await?;
    outcome
}

async fn rotate(
    state: &AppState,
    client: &ClientInfo,
    presented: Option<(String, Source)>,
    tx: &mut PgConnection,
) -> ApiResult<Response> {
    throttle::hit(&mut *tx, "refresh", client.rate_key(), state.limits.refresh).await?;
    let (presented, source) = presented.ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
    let issued = sessions::rotate(tx, client, &presented, state.sessions).await?;
    token_pair(state, issued, source == Source::Body)
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
    body: Option<Json<RefreshRequest>>,
) -> ApiResult<Response> {
    let (user_id, session_id) = match user.and_then(|u| u.session_id.map(|s| (u.id, s))) {
        Some(found) => found,
        None => {
            let (presented, _) = presented_refresh_token(&headers, body)
                .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;
            sessions::of_refresh_token(&state.db, &presented)
                .await?
                .ok_or(ApiError::Unauthorized(BAD_REFRESH))?
        }
    };
    sessions::end(&state.db, &client, user_id, session_id).await?;
    // The session's open tabs stop receiving pushes and are disconnected.
    connections::close(
        &state.db,
        state.realtime.as_ref(),
        Whose::Session(session_id.0),
    )
    .await;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, cookies::clear())]),
    )
        .into_response())
}

/// The response of a login or refresh: the access token, the refresh token as a
/// cookie, and in the body too unless it came in the cookie.
fn token_pair(state: &AppState, issued: Issued, in_body: bool) -> ApiResult<Response> {
    let access = state
        .auth
        .tokens
        .issue(issued.user, issued.session, issued.role)?;
    let refresh = issued.refresh;
    // The cookie lives as long as its token: a session near its absolute end gets a
    // cookie that goes with it.
    let max_age = (issued.expires_at - OffsetDateTime::now_utc()).whole_seconds();
    let cookie = cookies::set(&refresh.token, u64::try_from(max_age).unwrap_or(0));
    let body = Json(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token: in_body.then_some(refresh.token),
    });
    Ok((AppendHeaders([(header::SET_COOKIE, cookie)]), body).into_response())
}

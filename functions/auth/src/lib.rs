//! The `auth` function: registration, login, token refresh, logout and "who am I".
//!
//! Layout: [`accounts`] registers users and shows the current one; [`sessions`] logs in
//! (rate-limited per IP, locked per account after repeated failures), rotates refresh
//! tokens (revoking the whole session when a used token comes back) and logs out;
//! [`recovery`] handles password reset and email verification links; [`cookies`] is the
//! refresh-token cookie for browsers. `main.rs` builds [`AppState`] once per cold start
//! and serves [`router`]. Every security event is written to the audit log.
//!
//! A request flows: API Gateway -> `shared::http` (request id, panic guard, body limit)
//! -> this router -> handler -> Postgres (one transaction per change) -> after commit,
//! the welcome message is relayed from the outbox to SQS.

pub mod accounts;
pub mod cookies;
pub mod recovery;
pub mod sessions;

use axum::{Router, extract::FromRef};
use shared::{
    db::{self, DatabaseConfig},
    identity::{
        guard::AuthState,
        sessions::SessionPolicy,
        throttle::{Lockout, RateLimits},
        tokens::TokenConfig,
    },
    messaging::{Publisher, Queue, QueueConfig},
    realtime::management::Management,
};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handlers share; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Session and refresh-token lifetimes.
    pub sessions: SessionPolicy,
    /// Access-token issuer and verifier, and session checks.
    pub auth: AuthState,
    /// Publishes to the notifications queue.
    pub publisher: Publisher,
    /// Per-client-IP limits.
    pub limits: RateLimits,
    /// The per-account lockout rule.
    pub lockout: Lockout,
    /// Closes a session's WebSocket connections when it ends (none: rows only).
    pub realtime: Option<Management>,
}

impl AppState {
    /// Assembles the state from its parts, with the default lockout rule.
    pub fn new(
        db: PgPool,
        tokens: &TokenConfig,
        sessions: SessionPolicy,
        publisher: Publisher,
        limits: RateLimits,
    ) -> Self {
        Self {
            auth: AuthState::new(db.clone(), tokens),
            db,
            sessions,
            publisher,
            limits,
            lockout: Lockout::default(),
            realtime: None,
        }
    }

    /// With the WebSocket API's Management API, to close connections.
    pub fn with_realtime(mut self, realtime: Option<Management>) -> Self {
        self.realtime = realtime;
        self
    }
}

// Every route of the function, each declared once: a handler's `#[utoipa::path]` gives
// both its axum route (`routes()`) and its OpenAPI operation (`openapi()`); handlers that
// share a path are listed together. API Gateway sends this function `/api/v1/auth/{proxy+}`.
shared::api_routes!(AppState, ApiDoc;
    [accounts::register],
    [accounts::me],
    [sessions::login],
    [sessions::refresh],
    [sessions::logout],
    [recovery::request_reset],
    [recovery::confirm_reset],
    [recovery::verify_email],
    [recovery::resend_verification],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = db::pool(&DatabaseConfig::from_env()?)?;
    let publisher = Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?;
    let state = AppState::new(
        db,
        &TokenConfig::from_env()?,
        SessionPolicy::from_env()?,
        publisher,
        RateLimits::from_env()?,
    )
    .with_realtime(Management::from_env()?);
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes()
        .with_state(state)
        // Tokens and personal data: never cached by a browser or proxy.
        .layer(shared::http::no_store())
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "auth", description = "Registration, login and sessions")))]
pub struct ApiDoc;

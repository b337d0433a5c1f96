//! The `auth` function: registration, login, token refresh, logout and "who am I".
//!
//! Layout: [`accounts`] registers users and shows the current one; [`sessions`] logs in,
//! rotates refresh tokens (revoking the whole session when a used token comes back) and
//! logs out. `main.rs` builds [`AppState`] once per cold start and serves [`router`].
//!
//! A request flows: API Gateway -> `shared::http` (request id, panic guard, body limit)
//! -> this router -> handler -> Postgres (one transaction per change) -> after commit,
//! the welcome message is relayed from the outbox to SQS.

pub mod accounts;
pub mod sessions;

use std::sync::Arc;

use axum::{
    Router,
    extract::FromRef,
    routing::{get, post},
};
use shared::{auth::AuthState, aws::Publisher, config::TokenConfig};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handlers share; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Token settings (lifetimes).
    pub config: Arc<TokenConfig>,
    /// Access-token issuer and verifier, and session checks.
    pub auth: AuthState,
    /// Publishes to the notifications queue.
    pub publisher: Publisher,
}

impl AppState {
    /// Assembles the state from its parts.
    pub fn new(db: PgPool, config: TokenConfig, publisher: Publisher) -> Self {
        Self {
            auth: AuthState::new(db.clone(), &config),
            db,
            config: Arc::new(config),
            publisher,
        }
    }
}

/// The function's routes, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/auth/register", post(accounts::register))
        .route("/api/v1/auth/me", get(accounts::me))
        .route("/api/v1/auth/login", post(sessions::login))
        .route("/api/v1/auth/refresh", post(sessions::refresh))
        .route("/api/v1/auth/logout", post(sessions::logout))
        .with_state(state)
}

/// The OpenAPI description of this function's routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        accounts::register,
        accounts::me,
        sessions::login,
        sessions::refresh,
        sessions::logout,
    ),
    tags((name = "auth", description = "Registration, login and sessions"))
)]
pub struct ApiDoc;

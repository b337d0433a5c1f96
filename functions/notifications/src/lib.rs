//! The `notifications` function: the caller's in-app inbox.
//!
//! Layout: [`inbox`] lists notifications (newest first, keyset-paginated) and marks one
//! read. Every query is scoped by the caller's id in SQL, so another user's
//! notification is indistinguishable from a missing one (404). Notifications are
//! written by the `notify-worker` function, never here.

pub mod inbox;

use axum::{
    Router,
    extract::FromRef,
    routing::{get, post},
};
use shared::identity::{guard::AuthState, tokens::TokenConfig};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handlers share; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Access-token verification and session checks.
    pub auth: AuthState,
}

impl AppState {
    /// Assembles the state.
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
        }
    }
}

/// The function's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/notifications", get(inbox::list))
        .route("/api/v1/notifications/{id}/read", post(inbox::mark_read))
        .with_state(state)
}

/// The OpenAPI description of this function's routes.
#[derive(OpenApi)]
#[openapi(
    paths(inbox::list, inbox::mark_read),
    tags((name = "notifications", description = "The caller's in-app notifications"))
)]
pub struct ApiDoc;

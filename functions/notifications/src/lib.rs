//! The `notifications` function: the caller's in-app inbox.
//!
//! Layout: [`inbox`] lists notifications (newest first, keyset-paginated) and marks one
//! read. Every query is scoped by the caller's id in SQL, so another user's
//! notification is indistinguishable from a missing one (404). Notifications are
//! written by the `notify-worker` function, never here.

pub mod inbox;

use axum::{Router, extract::FromRef};
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

// Every route of the function, each declared once: a handler's `#[utoipa::path]` gives
// both its axum route (`routes()`) and its OpenAPI operation (`openapi()`); handlers that
// share a path are listed together. API Gateway sends this function `/api/v1/notifications` and `/api/v1/notifications/{proxy+}`.
shared::api_routes!(AppState, ApiDoc;
    [inbox::list],
    [inbox::mark_read],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let state = AppState::new(db, &TokenConfig::from_env()?);
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes().with_state(state)
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "notifications", description = "The caller's in-app notifications")))]
pub struct ApiDoc;

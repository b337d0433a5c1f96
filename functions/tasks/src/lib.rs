//! The `tasks` function: each user's todo list.
//!
//! Layout: [`task`] holds the task type and the parsers for every field (title, tags,
//! status, ...); [`edit`] creates, reads, patches (JSON merge semantics, `If-Match`) and
//! deletes one task; [`listing`] filters, sorts and keyset-paginates the list with signed
//! cursors. Every query is scoped by the caller's id in SQL, so another user's task is
//! indistinguishable from a missing one (404).

pub mod edit;
pub mod listing;
pub mod task;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use shared::{
    http::pagination::CursorSigner,
    identity::{
        guard::AuthState,
        throttle::{Limit, WriteLimit},
        tokens::TokenConfig,
    },
};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handlers share; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Access-token verification and session checks.
    pub auth: AuthState,
    /// Signs and checks list cursors.
    pub cursors: Arc<CursorSigner>,
    /// Each user's budget of creates, edits and deletes.
    pub writes: WriteLimit,
}

/// The default budget of task writes per user: two a second, sustained for a minute
/// (`RATE_LIMIT_TASK_WRITES`).
pub const WRITES: WriteLimit = WriteLimit {
    bucket: "task_writes",
    limit: Limit::per(120, 60),
};

impl AppState {
    /// Assembles the state.
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            cursors: Arc::new(CursorSigner::derived_from(
                config.secret_bytes(),
                "tasks-cursor-v1",
            )),
            writes: WRITES,
        }
    }
}

// Every route of the function, each declared once: a handler's `#[utoipa::path]` gives
// both its axum route (`routes()`) and its OpenAPI operation (`openapi()`); handlers that
// share a path are listed together. API Gateway sends this function `/api/v1/tasks` and `/api/v1/tasks/{proxy+}`.
shared::api_routes!(AppState, ApiDoc;
    [listing::list, edit::create],
    [edit::fetch, edit::update, edit::remove],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let state = AppState {
        writes: WriteLimit::from_env(WRITES.bucket, "RATE_LIMIT_TASK_WRITES", WRITES.limit)?,
        ..AppState::new(db, &TokenConfig::from_env()?)
    };
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes().with_state(state)
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(
    tags((name = "tasks", description = "The caller's todo list")),
    // Named by the listing's query parameters only, so not collected from any body.
    components(schemas(listing::params::SortParam, task::Status, task::Priority))
)]
pub struct ApiDoc;

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

use axum::{Router, extract::FromRef, routing::get};
use shared::{
    http::pagination::CursorSigner,
    identity::{guard::AuthState, tokens::TokenConfig},
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
}

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
        }
    }
}

/// The function's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/tasks", get(listing::list).post(edit::create))
        .route(
            "/api/v1/tasks/{id}",
            get(edit::fetch).patch(edit::update).delete(edit::remove),
        )
        .with_state(state)
}

/// The OpenAPI description of this function's routes.
#[derive(OpenApi)]
#[openapi(
    paths(listing::list, edit::create, edit::fetch, edit::update, edit::remove),
    tags((name = "tasks", description = "The caller's todo list"))
)]
pub struct ApiDoc;

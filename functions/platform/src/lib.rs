//! The `platform` function: health check and API documentation.
//!
//! Layout: [`health`] reports whether the database answers; [`docs`] serves the
//! OpenAPI 3.1 document of every function (generated from their handlers, committed,
//! and checked by the tests so it cannot drift), rendered by Swagger UI and ReDoc.

pub mod docs;
pub mod health;

use axum::{Router, routing::get};
use sqlx::PgPool;

/// The function's routes.
pub fn router(db: PgPool) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .with_state(db)
        .merge(docs::router())
}

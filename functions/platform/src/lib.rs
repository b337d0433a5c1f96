//! The `platform` function: health check and API documentation.
//!
//! Layout: [`health`] reports whether the database answers; [`docs`] serves the
//! OpenAPI 3.1 document of every function (generated from their handlers, committed,
//! and checked by the tests so it cannot drift), rendered by Swagger UI and ReDoc.

pub mod docs;
pub mod health;

use axum::Router;
use sqlx::PgPool;
// The documented routes, each declared once by its handler's `#[utoipa::path]`, on top
// of the document-wide settings ([`docs::PlatformDoc`]). The documentation pages
// themselves ([`docs::router`]) serve the document and are not in it.
shared::api_routes!(PgPool, docs::PlatformDoc;
    [health::health],
);

/// The function as deployed: its pool and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    Ok(shared::http::deployed(router(db))?)
}

/// The function's router: health and the documentation.
pub fn router(db: PgPool) -> Router {
    routes().with_state(db).merge(docs::router())
}

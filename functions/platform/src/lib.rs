//! The `platform` function: health check and API documentation.
//!
//! Layout: [`health`] reports whether the database answers; [`docs`] serves the
//! OpenAPI 3.1 document of every function (generated from their handlers, committed,
//! and checked by the tests so it cannot drift), rendered by Swagger UI and ReDoc.

pub mod docs;
pub mod health;

use axum::Router;
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The documented routes, each declared once by its handler's `#[utoipa::path]`, on
/// top of the document-wide settings ([`docs::PlatformDoc`]). The documentation pages
/// themselves ([`docs::router`]) serve the document and are not in it.
pub fn routes() -> OpenApiRouter<PgPool> {
    OpenApiRouter::with_openapi(docs::PlatformDoc::openapi()).routes(routes!(health::health))
}

/// The function's router: health and the documentation.
pub fn router(db: PgPool) -> Router {
    let (router, _) = routes().split_for_parts();
    router.with_state(db).merge(docs::router())
}

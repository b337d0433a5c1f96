//! The OpenAPI document of every HTTP function, and the pages that render it.

use axum::{
    Router,
    extract::Request,
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_redoc::{Redoc, Servable};
use utoipa_swagger_ui::SwaggerUi;

/// This function's own routes, plus document-wide settings.
#[derive(OpenApi)]
#[openapi(
    info(title = "Backend API", description = "Serverless backend for the web frontend. Errors are RFC 9457 `application/problem+json`."),
    paths(crate::health::health),
    components(schemas(shared::error::Problem, shared::error::FieldError)),
    modifiers(&BearerAuth),
    tags((name = "platform", description = "Health and documentation"))
)]
struct PlatformDoc;

/// Declares the `bearer` security scheme the handlers refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole API: every HTTP function's routes in one OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = PlatformDoc::openapi();
    doc.merge(auth::ApiDoc::openapi());
    doc.merge(notifications::ApiDoc::openapi());
    doc.merge(tasks::ApiDoc::openapi());
    doc.merge(uploads::ApiDoc::openapi());
    doc.merge(users::ApiDoc::openapi());
    doc
}

/// `/openapi.json`, `/docs` (Swagger UI) and `/redoc` (ReDoc).
pub fn router() -> Router {
    let doc = openapi();
    Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc.clone()))
        .merge(Redoc::with_url("/redoc", doc))
        .layer(middleware::from_fn(docs_entry))
}

/// Swagger UI's own `/docs` redirects to `/docs/`, a path API Gateway's `/docs/{proxy+}`
/// route may not match (a greedy variable wants a non-empty rest). Send people straight
/// to `/docs/index.html` instead, which it matches and which Swagger UI serves.
async fn docs_entry(request: Request, next: Next) -> Response {
    if request.uri().path() == "/docs" {
        return Redirect::to("/docs/index.html").into_response();
    }
    next.run(request).await
}

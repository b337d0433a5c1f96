//! HTTP glue shared by every HTTP function: request ids, logging, panic safety, body
//! limits, problem+json fallbacks, and serving an axum router as a Lambda handler.
//!
//! A request flows: API Gateway event -> `lambda_http` -> [`request_context`] (request id,
//! span, `x-request-id` header) -> panic guard -> body limit -> the function's router.

use std::time::Instant;

use axum::{
    Router,
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use lambda_http::{RequestExt, request::RequestContext};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::error::ApiError;

/// Largest JSON body any endpoint accepts. Every payload of this API is small; a
/// larger one is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The response header carrying the request id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Wraps a function's router with everything every HTTP function needs.
pub fn app(router: Router) -> Router {
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(request_context))
}

/// Serves the router as a Lambda handler (API Gateway HTTP API and REST events).
pub async fn serve(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(app(router)).await
}

async fn no_route(request: Request) -> ApiError {
    ApiError::NoRoute(format!("{} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The payload may hold user data; the log gets the fact, the client a generic 500.
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Picks the request id: API Gateway's own id (what its access logs show), else the
/// Lambda invocation id, else a fresh one (tests, local runs).
fn request_id_of(request: &Request) -> String {
    let gateway = request.request_context_ref().and_then(|ctx| match ctx {
        RequestContext::ApiGatewayV2(c) => c.request_id.clone(),
        RequestContext::ApiGatewayV1(c) => c.request_id.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    });
    gateway
        .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

async fn request_context(request: Request, next: Next) -> Response {
    let id = request_id_of(&request);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

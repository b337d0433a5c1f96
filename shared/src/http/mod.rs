//! HTTP glue shared by every HTTP function: request ids, logging, panic safety, body
//! limits, problem+json fallbacks, and serving an axum router as a Lambda handler.
//!
//! A request flows: API Gateway event -> `lambda_http` -> CORS (when configured) ->
//! [`request_context`] (request id, span, `x-request-id` header) -> security headers ->
//! panic guard -> body limit -> the function's router.

use std::time::Instant;

pub mod client;
pub mod conditional;
pub mod cors;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod pagination;
pub mod timestamp;

use axum::{
    Router,
    extract::Request,
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use lambda_http::{RequestExt, request::RequestContext};
use tower_http::{catch_panic::CatchPanicLayer, set_header::SetResponseHeaderLayer};
use tracing::Instrument;

pub use cors::{CorsConfig, app_with_cors};
pub use error::{ApiError, ApiResult, Problem};
pub use extract::{Json, Path, Query};

use crate::telemetry::REQUEST_ID;

/// Largest JSON body any endpoint accepts. Every payload of this API is small; a
/// larger one is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The response header carrying the request id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a function's router with everything every HTTP function needs.
pub fn app(router: Router) -> Router {
    router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(problem_bodies))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(request_context))
}

/// A function's router as deployed: [`app`] with CORS for `CORS_ALLOWED_ORIGINS`.
pub fn deployed(router: Router) -> Result<Router, crate::config::ConfigError> {
    Ok(app_with_cors(router, &CorsConfig::from_env()?))
}

/// Serves a [`deployed`] app as a Lambda handler (API Gateway HTTP API and REST events).
pub async fn serve(app: Router) -> Result<(), crate::BoxError> {
    lambda_http::run(app).await
}

/// `Cache-Control: no-store` on every response of a router, for routes that hand out
/// credentials or personal data: no browser or proxy may keep a copy.
pub fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// What JSON responses may do in a browser: nothing (no scripts, no frames). A route
/// that serves pages sets its own policy (the platform function's docs do).
const CSP_API: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Sets the security headers on every response (a handler's or router's own values win).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CONTENT_SECURITY_POLICY, CSP_API);
    response
}

/// Turns a plain-text error response (an axum extractor's own rejection, such as a body
/// over the limit for a handler that takes raw bytes) into problem+json, keeping its
/// status and headers: every error a client sees has the same shape. Responses a
/// handler shaped itself (problem+json, the health report's JSON) pass unchanged.
async fn problem_bodies(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    let problem = error::Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: (!detail.is_empty()).then_some(detail),
        request_id: crate::telemetry::current_request_id(),
        errors: Vec::new(),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(error::PROBLEM_JSON),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
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
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms,
            "request finished"
        );
    });
    request_metrics(response.status(), latency_ms);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

/// Whether this execution environment has answered a request yet.
static WARM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One Embedded Metric Format line per request: `Requests` and `Latency` by status class
/// (`2xx`, `4xx`, `5xx`; few values, so few CloudWatch metrics), and `ColdStart` on an
/// environment's first request.
fn request_metrics(status: StatusCode, latency_ms: f64) {
    use crate::telemetry::metrics::{Unit, emit};
    let class = match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let cold = !WARM.swap(true, std::sync::atomic::Ordering::Relaxed);
    emit(
        &[
            ("Requests", 1.0, Unit::Count),
            ("Latency", latency_ms, Unit::Milliseconds),
            ("ColdStart", if cold { 1.0 } else { 0.0 }, Unit::Count),
        ],
        &[("StatusClass", class)],
    );
}

/// Declares an HTTP function's routes once, from its handlers' `#[utoipa::path]`, as
/// groups of handlers that share a path:
///
/// ```ignore
/// shared::api_routes!(AppState, ApiDoc;
///     [listing::list, edit::create],
///     [edit::fetch, edit::update, edit::remove],
/// );
/// ```
///
/// It defines `routes()`, the axum router (each handler at its annotation's path and
/// methods, nothing else computed, so a cold start builds no OpenAPI document), and
/// `openapi()`, the same handlers' part of the OpenAPI document through utoipa-axum
/// (for the committed document and the tests). The function crate depends on `axum`,
/// `utoipa` and `utoipa-axum`.
#[macro_export]
macro_rules! api_routes {
    ($state:ty, $doc:ty; $( [ $( $module:ident :: $handler:ident ),+ $(,)? ] ),+ $(,)?) => {
        /// Every route of the function, at its handler's `#[utoipa::path]` path and methods.
        pub fn routes() -> ::axum::Router<$state> {
            let router = ::axum::Router::new();
            $(
                let path = $crate::http::one_path(&[
                    $( ::utoipa_axum::routes!(@path [path()] of $module :: $handler) ),+
                ]);
                let methods = ::axum::routing::MethodRouter::new();
                $(
                    let methods = $crate::http::on_methods(
                        methods,
                        &::utoipa_axum::routes!(@path [methods()] of $module :: $handler),
                        $module :: $handler,
                    );
                )+
                let router = router.route(&path, methods);
            )+
            router
        }

        /// This function's part of the OpenAPI document, from the same declarations.
        pub fn openapi() -> ::utoipa::openapi::OpenApi {
            ::utoipa_axum::router::OpenApiRouter::<$state>::with_openapi(
                <$doc as ::utoipa::OpenApi>::openapi(),
            )
            $( .routes(::utoipa_axum::routes!($( $module :: $handler ),+)) )+
            .into_openapi()
        }
    };
}

/// The path a group of handlers shares (used by [`api_routes!`]). Handlers grouped
/// under different paths are a bug, caught by the first request of any test.
#[doc(hidden)]
pub fn one_path(paths: &[String]) -> String {
    let first = paths.first().cloned().unwrap_or_default();
    assert!(
        paths.iter().all(|p| *p == first),
        "handlers grouped in api_routes! must share one path: {paths:?}"
    );
    first
}

/// Adds `handler` to `router` for each of `methods` (used by [`api_routes!`]).
#[doc(hidden)]
pub fn on_methods<H, T, S>(
    router: axum::routing::MethodRouter<S>,
    methods: &[utoipa::openapi::path::HttpMethod],
    handler: H,
) -> axum::routing::MethodRouter<S>
where
    H: axum::handler::Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    use axum::routing::MethodFilter;
    use utoipa::openapi::path::HttpMethod;
    methods.iter().fold(router, |router, method| {
        let filter = match method {
            HttpMethod::Get => MethodFilter::GET,
            HttpMethod::Post => MethodFilter::POST,
            HttpMethod::Put => MethodFilter::PUT,
            HttpMethod::Delete => MethodFilter::DELETE,
            HttpMethod::Options => MethodFilter::OPTIONS,
            HttpMethod::Head => MethodFilter::HEAD,
            HttpMethod::Patch => MethodFilter::PATCH,
            HttpMethod::Trace => MethodFilter::TRACE,
        };
        router.on(filter, handler.clone())
    })
}

//! The OpenAPI document of every HTTP function, and the pages that render it.
//!
//! The document is generated from the handlers' annotations and committed as
//! `openapi.json` beside this crate's manifest (frontends generate their client types
//! from it); the test suite fails when it no longer matches the handlers, and
//! `UPDATE_OPENAPI=1 cargo test -p api-tests --test api openapi` rewrites it. Serving
//! the committed text means nothing is built at cold start or on the first request,
//! and this binary links none of the other functions. Swagger UI's three files are
//! embedded gzipped by `build.rs` and sent as they are; ReDoc's bundle comes from a CDN
//! at a pinned version with Subresource Integrity ([`REDOC_VERSION`]), so the browser
//! refuses it if the CDN ever serves other bytes (`scripts/test stack` checks the hash
//! against the npm package).

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use shared::http::{error::ApiError, extract::Path};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

/// The document `/openapi.json` serves.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The document-wide settings (title, error schemas, the bearer scheme); every function's
/// `routes()` adds its paths, and the tests merge them all to check [`OPENAPI_JSON`].
#[derive(OpenApi)]
#[openapi(
    info(title = "Backend API", description = "Serverless backend for the web frontend. Errors are RFC 9457 `application/problem+json`."),
    components(schemas(shared::http::error::Problem, shared::http::error::FieldError)),
    modifiers(&BearerAuth),
    tags((name = "platform", description = "Health and documentation"))
)]
pub struct PlatformDoc;

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

/// What the documentation pages need: Swagger UI's own files; ReDoc's pinned bundle
/// from jsDelivr (checked by its integrity hash) and the styles it injects; calls back to
/// this API only. No web fonts: the pages use the system's. Every other response keeps
/// `shared::http`'s policy, which allows nothing.
const CSP_DOCS: &str = "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; worker-src blob:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The ReDoc release the `/redoc` page loads, and the SHA-384 of its
/// `bundles/redoc.standalone.js` (as published to npm, which jsDelivr serves unchanged).
pub const REDOC_VERSION: &str = "2.5.4";
/// See [`REDOC_VERSION`]; change both together.
pub const REDOC_SHA384: &str = "w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwGGP1Fj0zJVf5";

/// `/docs` (Swagger UI) and `/redoc` (ReDoc), with the docs' content security policy.
fn pages() -> Router {
    Router::new()
        // Swagger UI's pages sit under `/docs/`, which API Gateway's `/docs/{proxy+}`
        // route may not match with an empty rest: send people to a path it matches.
        .route("/docs", get(|| async { Redirect::to("/docs/index.html") }))
        .route("/docs/{file}", get(swagger_ui))
        .route("/redoc", get(|| async { html(REDOC_HTML) }))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_DOCS),
        ))
}

/// `/openapi.json`, `/docs` (Swagger UI) and `/redoc` (ReDoc).
pub fn router() -> Router {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(pages())
}

async fn openapi_json() -> Response {
    text("application/json", OPENAPI_JSON)
}

const SWAGGER_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Backend API - Swagger UI</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./index.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"#;

const SWAGGER_CSS: &str = "html { box-sizing: border-box; overflow-y: scroll; }
*, *:before, *:after { box-sizing: inherit; }
body { margin: 0; background: #fafafa; }
";

const SWAGGER_INITIALIZER: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"##;

const REDOC_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Backend API - ReDoc</title>
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="https://cdn.jsdelivr.net/npm/redoc@2.5.4/bundles/redoc.standalone.js"
      integrity="sha384-w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwGGP1Fj0zJVf5"
      crossorigin="anonymous" referrerpolicy="no-referrer"></script>
  </body>
</html>
"#;

/// Swagger UI's files, gzipped at build time.
const BUNDLE_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js.gz"));
const PRESET_JS: &[u8] = include_bytes!(concat!(
    env!("OUT_DIR"),
    "/swagger-ui-standalone-preset.js.gz"
));
const UI_CSS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css.gz"));

/// The assets change only with the vendored version, which names their ETag.
const ASSETS_ETAG: &str = concat!("\"", env!("SWAGGER_UI_VERSION"), "\"");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

fn html(body: &'static str) -> Response {
    text("text/html; charset=utf-8", body)
}

fn text(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `/docs/{file}`: the page, its small text files, and the three gzipped assets.
async fn swagger_ui(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (content_type, gzipped) = match file.as_str() {
        "index.html" => return Ok(html(SWAGGER_HTML)),
        "index.css" => return Ok(text(CSS, SWAGGER_CSS)),
        "swagger-initializer.js" => return Ok(text(JS, SWAGGER_INITIALIZER)),
        "swagger-ui-bundle.js" => (JS, BUNDLE_JS),
        "swagger-ui-standalone-preset.js" => (JS, PRESET_JS),
        "swagger-ui.css" => (CSS, UI_CSS),
        _ => return Err(ApiError::NotFound("documentation file")),
    };
    let cache = [
        (header::ETAG, ASSETS_ETAG),
        (header::CACHE_CONTROL, "public, max-age=86400"),
        (header::VARY, "accept-encoding"),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == ASSETS_ETAG.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    if !accepts_gzip(&headers) {
        return Err(ApiError::NotAcceptable(
            "this file is only available gzip-encoded (Accept-Encoding: gzip)",
        ));
    }
    Ok((
        cache,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        gzipped,
    )
        .into_response())
}

/// Whether `Accept-Encoding` admits gzip (RFC 9110 §12.5.3): listed, or covered by
/// `*`, with a non-zero quality. An explicit `gzip` entry wins over `*`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    let entries = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for entry in entries {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let accepted = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .all(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(accepted);
        } else if coding == "*" {
            any = Some(accepted);
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn gzip_acceptance_follows_the_qualities() {
        assert!(accepts_gzip(&with(&["gzip, deflate, br, zstd"])));
        assert!(accepts_gzip(&with(&["br", "GZip;q=0.5"])));
        assert!(accepts_gzip(&with(&["*"])));
        assert!(accepts_gzip(&with(&["x-gzip"])));
        assert!(!accepts_gzip(&with(&[])));
        assert!(!accepts_gzip(&with(&["br, deflate"])));
        assert!(!accepts_gzip(&with(&["gzip;q=0"])));
        assert!(!accepts_gzip(&with(&["gzip;q=0.0, *"])));
        assert!(!accepts_gzip(&with(&["*;q=0"])));
        assert!(!accepts_gzip(&with(&["gzip;q=nonsense"])));
        assert!(accepts_gzip(&with(&["*;q=0, gzip"])));
    }
}

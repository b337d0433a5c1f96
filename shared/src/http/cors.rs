//! CORS for browser clients: the exact origins in `CORS_ALLOWED_ORIGINS`, with
//! credentials. In AWS, API Gateway's CORS configuration (the template's
//! `CorsAllowedOrigins`, the same list) answers preflights and overrides these headers;
//! locally this is what applies.

use axum::{
    Router,
    http::{HeaderValue, Method, header},
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::X_REQUEST_ID;
use crate::config::{ConfigError, optional};

/// Browser origins allowed to call the API with credentials (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`); empty means no CORS headers at all.
    pub origins: Vec<String>,
}

impl CorsConfig {
    /// Loads `CORS_ALLOWED_ORIGINS` (comma-separated).
    pub fn from_env() -> Result<Self, ConfigError> {
        optional("CORS_ALLOWED_ORIGINS").map_or(Ok(Self::default()), |raw| Self::parse(&raw))
    }

    /// Parses a comma-separated list, refusing wildcards (never allowed together with
    /// credentials) and anything that is not a bare `scheme://host[:port]` origin.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "CORS_ALLOWED_ORIGINS",
            reason,
        };
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin.contains('*') {
                return Err(invalid("wildcards are not allowed with credentials".into()));
            }
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| invalid(format!("{origin} must start with http:// or https://")))?;
            if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') {
                return Err(invalid(format!("{origin} must be a bare origin (no path)")));
            }
            origins.push(origin.to_owned());
        }
        Ok(Self { origins })
    }
}

/// [`super::app`] plus CORS for the configured origins (none configured: no CORS headers).
pub fn app_with_cors(router: Router, cors: &CorsConfig) -> Router {
    let app = super::app(router);
    if cors.origins.is_empty() {
        return app;
    }
    let origins: Vec<HeaderValue> = cors
        .origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    app.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                super::idempotency::IDEMPOTENCY_KEY.clone(),
                X_REQUEST_ID.clone(),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                super::idempotency::IDEMPOTENT_REPLAYED.clone(),
                X_REQUEST_ID.clone(),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

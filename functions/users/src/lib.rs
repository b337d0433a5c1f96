//! The `users` function: accounts after registration.
//!
//! Layout: [`profile`] is self-service (`/users/me`: show, rename, change password,
//! delete); [`admin`] is the admin directory (`/users`, `/users/{id}`); [`audit_log`]
//! serves the security audit log to admins; [`metrics`] the application's gauges
//! (`/metrics`). The account view and the rules every change
//! keeps (there is always an admin) live in `shared::identity::accounts`. `main.rs`
//! builds [`AppState`] once per cold start and serves [`router`].
//!
//! Authorization is by extractor: `CurrentUser` for self-service, `Admin` (the role
//! guard, reading the live role) for everything else. Every change runs in one
//! transaction with its audit event. A password change, a change of role and a deletion
//! close the user's real-time connections (`shared::realtime`) after commit.

pub mod admin;
pub mod audit_log;
pub mod metrics;
pub mod profile;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use shared::{
    config::{ConfigError, optional},
    identity::{guard::AuthState, throttle::Lockout, tokens::TokenConfig},
    messaging::Publisher,
    realtime::management::Management,
    sigv4::AwsAccess,
};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handlers share; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Access-token verification, session and role checks.
    pub auth: AuthState,
    /// The lockout rule wrong current passwords count towards.
    pub lockout: Lockout,
    /// Closes a user's WebSocket connections when their sessions, role or account end
    /// (none: rows only).
    pub realtime: Option<Management>,
    /// The queues whose depth `/metrics` reports, by name.
    pub queues: Arc<[(&'static str, Publisher)]>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            lockout: Lockout::default(),
            realtime: None,
            queues: Arc::new([]),
        }
    }

    /// With the queues `/metrics` reports.
    pub fn with_queues(mut self, queues: Vec<(&'static str, Publisher)>) -> Self {
        self.queues = queues.into();
        self
    }

    /// With the WebSocket API's Management API, to close connections.
    pub fn with_realtime(mut self, realtime: Option<Management>) -> Self {
        self.realtime = realtime;
        self
    }
}

// Every route of the function, each declared once: a handler's `#[utoipa::path]` gives
// both its axum route (`routes()`) and its OpenAPI operation (`openapi()`); handlers that
// share a path are listed together. API Gateway sends this function `/api/v1/users`,
// `/api/v1/users/{proxy+}` and `/api/v1/audit-events`; `/users/me` is a fixed path, so it
// wins over `/users/{id}`.
shared::api_routes!(AppState, ApiDoc;
    [admin::list],
    [profile::show, profile::update, profile::delete],
    [profile::change_password],
    [admin::show, admin::update, admin::delete],
    [audit_log::list],
    [metrics::show],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let state = AppState::new(db, &TokenConfig::from_env()?)
        .with_realtime(Management::from_env()?)
        .with_queues(queues_from_env()?);
    Ok(shared::http::deployed(router(state))?)
}

/// The queues `/metrics` reports: each of `NOTIFICATIONS_QUEUE_URL`,
/// `NOTIFICATIONS_DLQ_URL`, `UPLOAD_EVENTS_QUEUE_URL` and `UPLOAD_EVENTS_DLQ_URL` that is
/// set.
pub fn queues_from_env() -> Result<Vec<(&'static str, Publisher)>, ConfigError> {
    let named = [
        ("notifications", "NOTIFICATIONS_QUEUE_URL"),
        ("notifications_dlq", "NOTIFICATIONS_DLQ_URL"),
        ("upload_events", "UPLOAD_EVENTS_QUEUE_URL"),
        ("upload_events_dlq", "UPLOAD_EVENTS_DLQ_URL"),
    ];
    let urls: Vec<(&'static str, String)> = named
        .into_iter()
        .filter_map(|(name, var)| optional(var).map(|url| (name, url)))
        .collect();
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    let access = AwsAccess::from_env()?;
    Ok(urls
        .into_iter()
        .map(|(name, url)| (name, Publisher::new(access.clone(), url)))
        .collect())
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes()
        .with_state(state)
        // Tokens and personal data: never cached by a browser or proxy.
        .layer(shared::http::no_store())
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "users", description = "Profiles, passwords, the admin user directory and the audit log")))]
pub struct ApiDoc;

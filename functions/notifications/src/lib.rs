//! The `notifications` function: the caller's in-app inbox, and the tickets that open
//! its real-time push.
//!
//! Layout: [`inbox`] lists notifications (newest first, keyset-paginated; or, with
//! `since`, what arrived after a given one, oldest first, to catch up after a reconnect)
//! and marks one read; [`realtime`] issues connect tickets for the WebSocket API
//! (`shared::realtime`). Every query is scoped by the caller's id in SQL, so another
//! user's notification is indistinguishable from a missing one (404). Notifications are
//! written (and pushed) by the `notify-worker` function, never here.

pub mod inbox;
pub mod realtime;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use shared::{
    config::ConfigError,
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
    /// The WebSocket API's URL (`REALTIME_URL`), handed out with each connect ticket.
    pub realtime_url: Option<Arc<str>>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            realtime_url: None,
        }
    }

    /// With the WebSocket API's URL.
    pub fn with_realtime_url(mut self, url: Option<String>) -> Self {
        self.realtime_url = url.map(Into::into);
        self
    }
}

/// `REALTIME_URL`: the WebSocket API's stage URL (`wss://`, or `ws://` on loopback), if
/// there is one.
pub fn realtime_url_from_env() -> Result<Option<String>, ConfigError> {
    let Some(url) = shared::config::optional("REALTIME_URL") else {
        return Ok(None);
    };
    shared::config::check_secure_url("REALTIME_URL", &url, "wss", "ws")?;
    if url.contains(['?', '#', ' ']) {
        return Err(ConfigError::Invalid {
            name: "REALTIME_URL",
            reason: "must be a wss:// URL without a query (ws:// only on loopback)".into(),
        });
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

// Every route of the function, each declared once: a handler's `#[utoipa::path]` gives
// both its axum route (`routes()`) and its OpenAPI operation (`openapi()`); handlers that
// share a path are listed together. API Gateway sends this function `/api/v1/notifications`,
// `/api/v1/notifications/{proxy+}` and `/api/v1/realtime/{proxy+}`.
shared::api_routes!(AppState, ApiDoc;
    [inbox::list],
    [inbox::mark_read],
    [realtime::create_ticket],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let state =
        AppState::new(db, &TokenConfig::from_env()?).with_realtime_url(realtime_url_from_env()?);
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes()
        .with_state(state)
        // Inboxes and connect tickets are personal: never kept by a browser or proxy.
        .layer(shared::http::no_store())
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "notifications", description = "The caller's in-app notifications")))]
pub struct ApiDoc;

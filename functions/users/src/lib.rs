//! The `users` function: accounts after registration.
//!
//! Layout: [`profile`] is self-service (`/users/me`: show, rename, change password,
//! delete); [`admin`] is the admin directory (`/users`, `/users/{id}`); [`audit_log`]
//! serves the security audit log to admins; [`account`] holds the account view and the
//! rule every change keeps (there is always an admin). `main.rs` builds [`AppState`]
//! once per cold start and serves [`router`].
//!
//! Authorization is by extractor: `CurrentUser` for self-service, `Admin` (the role
//! guard, reading the live role) for everything else. Every change runs in one
//! transaction with its audit event.

pub mod account;
pub mod admin;
pub mod audit_log;
pub mod profile;

use axum::{
    Router,
    extract::FromRef,
    routing::{get, post},
};
use shared::identity::{guard::AuthState, throttle::Lockout, tokens::TokenConfig};
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
}

impl AppState {
    /// Assembles the state.
    pub fn new(db: PgPool, config: &TokenConfig) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            lockout: Lockout::default(),
        }
    }
}

/// The function's routes. `/users/me` is a fixed path, so it wins over `/users/{id}`
/// (here and in API Gateway alike).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/users", get(admin::list))
        .route(
            "/api/v1/users/me",
            get(profile::show)
                .patch(profile::update)
                .delete(profile::delete),
        )
        .route("/api/v1/users/me/password", post(profile::change_password))
        .route(
            "/api/v1/users/{id}",
            get(admin::show).patch(admin::update).delete(admin::delete),
        )
        .route("/api/v1/audit-events", get(audit_log::list))
        .with_state(state)
        // Tokens and personal data: never cached by a browser or proxy.
        .layer(shared::http::no_store())
}

/// The OpenAPI description of this function's routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        profile::show,
        profile::update,
        profile::change_password,
        profile::delete,
        admin::list,
        admin::show,
        admin::update,
        admin::delete,
        audit_log::list,
    ),
    tags((name = "users", description = "Profiles, passwords, the admin user directory and the audit log"))
)]
pub struct ApiDoc;

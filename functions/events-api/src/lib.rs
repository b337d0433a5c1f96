//! The `events-api` function: organizers create and edit their events; anyone reads the
//! published ones.
//!
//! Layout: [`event`] is the model (the JSON view, the create and patch bodies, and the
//! rules every field follows); [`manage`] is the organizer's side (create, list mine,
//! patch with `If-Match`); [`public`] shows one event by id or slug, to anyone when it
//! is published or cancelled and to its organizer (or an admin) while it is a draft,
//! with an `ETag` (304 on `If-None-Match`) and a short public `Cache-Control` so a CDN
//! absorbs read bursts; [`catalogue`] lists published events that have not ended, with
//! search and filters, cacheable the same way; [`tickets`] adds, changes and removes
//! ticket types and publishes a draft that has one; [`discounts`] creates and lists
//! discount codes; [`cancel`] cancels an event (tickets void, pending orders cancelled,
//! holders told) and tells holders of a change of time or venue; [`door`] checks
//! tickets in; [`attendees`] lists ticket holders (JSON pages or CSV) and sums sales.
//! Buyers' orders are the `orders` function's; both count inventory the same way
//! (`shared::ticketing`), under the event's row lock.
//!
//! A request flows: API Gateway -> `shared::http` -> this router -> handler -> Postgres.
//! An organizer only ever reaches their own events: every organizer query carries the
//! caller's id (admins excepted), so another organizer's event is a 404.

pub mod attendees;
pub mod cancel;
pub mod catalogue;
pub mod discounts;
pub mod door;
pub mod event;
pub mod manage;
pub mod public;
pub mod tickets;

use axum::{Router, extract::FromRef};
use shared::{
    identity::{guard::AuthState, tokens::TokenConfig},
    messaging::{Publisher, Queue, QueueConfig},
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
    /// Sends the outbox's messages (ticket holders' notifications) right after commit.
    pub publisher: Publisher,
}

impl AppState {
    /// Assembles the state.
    pub fn new(db: PgPool, config: &TokenConfig, publisher: Publisher) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            publisher,
        }
    }
}

// Every route of the function, each declared once (see `shared::api_routes!`). API Gateway
// sends this function `/api/v1/events` and `/api/v1/events/{proxy+}`.
shared::api_routes!(AppState, ApiDoc;
    [catalogue::list, manage::create],
    [manage::mine],
    [public::show, manage::update],
    [tickets::create],
    [tickets::update, tickets::remove],
    [tickets::publish],
    [cancel::cancel],
    [discounts::list, discounts::create],
    [door::check_in],
    [attendees::list],
    [attendees::sales],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let publisher = Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?;
    let state = AppState::new(db, &TokenConfig::from_env()?, publisher);
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes().with_state(state)
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "events", description = "Events: organizers' drafts and the published ones")))]
pub struct ApiDoc;

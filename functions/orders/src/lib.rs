//! The `orders` function: buyers order tickets and hold them until they pay; free
//! orders are confirmed at once; buyers see their orders and tickets (with each
//! ticket's QR code for the door).
//!
//! Layout: [`order`] is the model (the request and its rules, the order as shown);
//! [`place`] places an order in one transaction (idempotency key, the event's lock,
//! every limit, the discount, the hold, tickets when free), then opens a paid order's
//! Stripe PaymentIntent; [`discount`] applies a
//! discount code; [`mine`] lists, shows and cancels the buyer's orders; [`pay`] starts a
//! declined payment over; [`refund`] refunds a paid order; [`tickets`] lists
//! and shows their tickets and renders a ticket's QR code.
//!
//! A request flows: API Gateway -> `shared::http` -> this router -> handler -> Postgres,
//! then the outbox relays a confirmation to the notifications queue after commit.
//! Every buyer query carries the caller's id, so another buyer's order is a 404.

pub mod discount;
pub mod mine;
pub mod order;
pub mod pay;
pub mod place;
pub mod refund;
pub mod tickets;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::FromRef};
use shared::{
    config::ConfigError,
    identity::{
        guard::AuthState,
        throttle::{Limit, WriteLimit},
        tokens::TokenConfig,
    },
    messaging::{Publisher, Queue, QueueConfig},
    payments::{StripeConfig, stripe::Gateway},
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
    /// Sends the outbox's messages right after commit.
    pub publisher: Publisher,
    /// How long a pending order holds its tickets.
    pub hold: Duration,
    /// Stripe, for paid orders' PaymentIntents.
    pub stripe: Arc<dyn Gateway>,
    /// Given to the buyer's browser with each intent's client secret.
    pub publishable_key: Arc<str>,
    /// Each user's budget of new orders.
    pub writes: WriteLimit,
}

/// The default budget of orders placed per user: 20 a minute (`RATE_LIMIT_ORDERS`),
/// so one account cannot hold every ticket of an event with unpaid orders.
pub const WRITES: WriteLimit = WriteLimit {
    bucket: "orders",
    limit: Limit::per(20, 60),
};

impl AppState {
    /// Assembles the state.
    pub fn new(
        db: PgPool,
        config: &TokenConfig,
        publisher: Publisher,
        hold: Duration,
        stripe: &StripeConfig,
    ) -> Self {
        Self {
            auth: AuthState::new(db.clone(), config),
            db,
            publisher,
            hold,
            stripe: Arc::new(stripe.client()),
            publishable_key: stripe.publishable_key.as_str().into(),
            writes: WRITES,
        }
    }
}

/// `ORDER_HOLD_SECONDS`: how long a pending order holds its tickets (default 900, 60 to
/// 3600: long enough to pay, short enough that abandoned carts free tickets soon).
pub fn hold_from_env() -> Result<Duration, ConfigError> {
    let seconds: u64 = shared::config::parse_or("ORDER_HOLD_SECONDS", 900)?;
    if !(60..=3600).contains(&seconds) {
        return Err(ConfigError::Invalid {
            name: "ORDER_HOLD_SECONDS",
            reason: "must be 60 to 3600".into(),
        });
    }
    Ok(Duration::from_secs(seconds))
}

// Every route of the function, each declared once (see `shared::api_routes!`). API Gateway
// sends this function `/api/v1/orders`, `/api/v1/tickets` and what is below them.
shared::api_routes!(AppState, ApiDoc;
    [mine::list, place::create],
    [mine::fetch],
    [mine::cancel],
    [pay::retry],
    [refund::create],
    [tickets::list],
    [tickets::fetch],
    [tickets::qr],
);

/// The function as deployed: its state and CORS from the environment, loaded once per
/// cold start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let publisher = Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?;
    let state = AppState {
        writes: WriteLimit::from_env(WRITES.bucket, "RATE_LIMIT_ORDERS", WRITES.limit)?,
        ..AppState::new(
            db,
            &TokenConfig::from_env()?,
            publisher,
            hold_from_env()?,
            &StripeConfig::from_env()?,
        )
    };
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes()
        .with_state(state)
        // Orders and ticket codes are personal: never kept by a browser or proxy.
        .layer(shared::http::no_store())
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "orders", description = "Orders and tickets: buying, holding, showing at the door")))]
pub struct ApiDoc;

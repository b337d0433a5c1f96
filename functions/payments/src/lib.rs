//! The `payments` function: Stripe's webhook.
//!
//! Layout: [`webhook`] verifies a delivery's signature, records the event once, re-reads
//! the object it names from Stripe (the event is only a hint: deliveries arrive late,
//! twice or out of order) and settles it into the order in one transaction
//! (`shared::payments::settle`): a payment confirms its order and issues the tickets, or
//! is refunded when it can buy nothing; a refund's state reaches the ledger. It answers
//! 2xx only after that transaction committed, so Stripe redelivers anything we lost.
//!
//! A request flows: Stripe -> API Gateway (no token: the signature is the
//! authentication) -> `shared::http` -> [`webhook::receive`] -> Stripe's API and
//! Postgres, then the outbox relays the buyer's notification and requested refunds are
//! sent to Stripe.

pub mod webhook;

use std::sync::Arc;

use axum::{Router, extract::FromRef};
use secrecy::SecretString;
use shared::{
    messaging::{Publisher, Queue, QueueConfig},
    payments::{StripeConfig, stripe::Gateway, webhook_secrets_from_env},
};
use sqlx::PgPool;
use utoipa::OpenApi;

/// Everything the handler shares; built once per cold start.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// Sends the outbox's messages right after commit.
    pub publisher: Publisher,
    /// Stripe, to re-read what an event names and to send refunds.
    pub stripe: Arc<dyn Gateway>,
    /// The webhook signing secrets (current first; the previous while rotating).
    pub webhook_secrets: Arc<[SecretString]>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        db: PgPool,
        publisher: Publisher,
        stripe: &StripeConfig,
        webhook_secrets: Vec<SecretString>,
    ) -> Self {
        Self {
            db,
            publisher,
            stripe: Arc::new(stripe.client()),
            webhook_secrets: webhook_secrets.into(),
        }
    }
}

// Every route of the function, each declared once (see `shared::api_routes!`). API Gateway
// sends this function `/api/v1/payments/stripe/webhook`.
shared::api_routes!(AppState, ApiDoc;
    [webhook::receive],
);

/// The function as deployed: its state from the environment, loaded once per cold
/// start (`main` serves it; tests load it from their own variables).
pub fn from_env() -> Result<Router, shared::BoxError> {
    let db = shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?;
    let publisher = Publisher::from_env(&QueueConfig::from_env()?, Queue::Notifications)?;
    let state = AppState::new(
        db,
        publisher,
        &StripeConfig::from_env()?,
        webhook_secrets_from_env()?,
    );
    Ok(shared::http::deployed(router(state))?)
}

/// The function's router, at the same paths as behind API Gateway.
pub fn router(state: AppState) -> Router {
    routes().with_state(state)
}

/// This function's part of the OpenAPI document; the paths come from [`routes`].
#[derive(OpenApi)]
#[openapi(tags((name = "payments", description = "Stripe's webhook: payments and refunds settling into orders")))]
pub struct ApiDoc;

//! Card payments with Stripe: what the orders function (taking payment), the payments
//! function (webhooks) and the reconciliation job share.
//!
//! - [`stripe`]: our small client for the five Stripe calls, behind [`stripe::Gateway`];
//! - [`signature`]: verifying (and, for tests and tooling, making) `Stripe-Signature`;
//! - [`settle`]: the one place an intent's authoritative state changes an order: a
//!   payment confirms the order and issues its tickets exactly once (or, paid after its
//!   hold ran out with nothing left to sell, is refunded), and every charge and refund
//!   lands in the append-only `ledger_entries` in minor units;
//! - [`refunds`] (always built): refund requests, decided in a transaction and sent after
//!   it, so an event's cancellation can decide them without linking the Stripe client;
//! - `StripeConfig`: the keys and where the API is, read once per cold start.
//!
//! All but [`refunds`] need feature `payments`.
//!
//! The flow: `POST /api/v1/orders` commits a pending order, then opens its PaymentIntent
//! ([`settle::open_intent`], keyed by the order and attempt so a retry never opens a
//! second); the browser confirms it with Stripe.js; Stripe's webhook is only a hint:
//! the payments function re-reads the intent and hands it to [`settle::apply_intent`].
//! Refunds are rows first (`refunds`, status `requested`), executed after commit with
//! the row's id as Stripe's idempotency key ([`settle::execute_refund`]), so a crash
//! between the two is finished by the next attempt, never doubled.

#[cfg(feature = "payments")]
pub mod reconcile;
pub mod refunds;
#[cfg(feature = "payments")]
pub mod settle;
#[cfg(feature = "payments")]
pub mod signature;
#[cfg(feature = "payments")]
pub mod stripe;

#[cfg(feature = "payments")]
mod settings;

#[cfg(feature = "payments")]
pub use settings::{STRIPE_API, StripeConfig, webhook_secrets_from_env};

//! The library every function shares, organised by layer and by domain.
//!
//! Infrastructure (always built):
//! - [`config`]: the helpers that read settings once per cold start, naming the variable
//!   at fault;
//! - [`telemetry`]: JSON logs, and the id of the request being handled;
//! - [`db`]: the lazily connected pool sized for Lambda, constraint helpers;
//! - `aws` (feature `aws`): signed calls to AWS services without SDK clients;
//! - `secrets` (feature `aws`): secrets from Secrets Manager, fetched at cold start;
//! - `outbound` (feature `outbound`): the HTTPS client for a function's own calls;
//! - `sigv4` (feature `sigv4`): signing AWS requests without an SDK client.
//!
//! The HTTP layer, `http` (feature `http`): serving an axum router as a Lambda handler
//! (request ids, panic guard, body limit, security headers, CORS), the one error type
//! rendered as problem+json, `Json`/`Query`/`Path` extractors whose rejections are
//! problem+json too, the caller's address, and keyset pagination. It knows no domain and
//! no function's routes.
//!
//! Domains, each above the layers it uses:
//! - [`identity`]: ids, roles, email addresses and names (always); with feature
//!   `identity`: passwords, tokens, sessions, accounts, rate limits and lockout, the
//!   audit log, Better Auth, and the `CurrentUser`/`Admin` guard;
//! - [`messaging`]: queue message contracts typed with their queue, the transactional
//!   outbox; with `sqs` the publisher, with `sqs-consumer` the partial-batch loop;
//! - [`ticketing`]: order and ticket statuses, what is sold and held of each ticket type
//!   (counted from the orders, under the event's lock), ticket codes (generated with
//!   feature `ticketing`);
//! - [`payments`]: refund requests (always); with feature `payments` Stripe
//!   PaymentIntents and refunds through our own small client, webhook signatures,
//!   settling a payment into an order and the ledger, the reconciliation run;
//! - [`uploads`]: purposes, statuses, keys, file-type sniffing, the bucket's settings;
//!   with `presign` S3 requests signed with SigV4 alone;
//! - `realtime` (feature `realtime`): push to open browser tabs over API Gateway's
//!   WebSocket API: connect tickets, the connections table, frames, and the Management
//!   API's `PostToConnection`/`DeleteConnection` signed with SigV4.
//!
//! A function enables the features it uses in its `Cargo.toml`, so a health check does
//! not link argon2 and the SQS client. The modules form no cycle: infrastructure depends
//! on nothing here, `http` only on infrastructure, domains on both.

pub mod config;
pub mod db;
pub mod telemetry;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod payments;
#[cfg(feature = "realtime")]
pub mod realtime;
#[cfg(feature = "aws")]
pub mod secrets;
#[cfg(feature = "sigv4")]
pub mod sigv4;

pub mod identity;
pub mod messaging;
pub mod ticketing;
pub mod uploads;

/// The error type Lambda entry points return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

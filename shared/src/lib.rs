//! The library every function shares.
//!
//! Layout, in the order a request meets it:
//! - [`config`]: settings read once per cold start from the environment;
//! - [`telemetry`]: JSON logs carrying the request id;
//! - [`http`]: the glue that serves an axum router as a Lambda handler (request ids,
//!   panic guard, body limit, problem+json fallbacks);
//! - [`extract`]: `Json`/`Query`/`Path` whose rejections are problem+json;
//! - [`client`]: the caller's IP and user agent (rate limits, audit);
//! - [`auth`]: the `CurrentUser` extractor (JWT + live session check) and the role guard;
//!   [`better_auth`] verifies Better Auth tokens (JWKS) and links their users;
//! - [`throttle`], [`audit`]: rate limits and lockout kept in Postgres; the audit log;
//! - [`error`]: the one error type, rendered as RFC 9457 problem details;
//! - [`db`]: the lazily connected pool sized for Lambda, constraint helpers;
//! - [`identity`], [`tokens`], [`password`]: users, roles, tokens and hashing;
//! - [`pagination`]: page sizes, cursors and `{items, next_cursor}` pages;
//! - [`messages`], [`outbox`], [`aws`]: queue contracts, the transactional outbox, the
//!   SQS publisher and the S3 client;
//! - [`uploads`]: upload purposes, their limits, object keys and file-type sniffing.

pub mod audit;
pub mod auth;
pub mod aws;
pub mod better_auth;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod http;
pub mod identity;
pub mod messages;
pub mod outbox;
pub mod pagination;
pub mod password;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod uploads;

/// The error type Lambda entry points return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

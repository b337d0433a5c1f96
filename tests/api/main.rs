//! Black-box tests of every function, through real Lambda event JSON.
//!
//! Each `#[sqlx::test]` gets a fresh, migrated database; each `TestApp` a fresh queue
//! on the SQS emulator. See `support/lib.rs` for how requests reach the functions.

// Tests state their expectations with unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod auth;
mod better_auth;
mod brute_force;
mod config;
mod door;
mod e2e;
mod events;
mod events_api;
mod headers;
mod hostile_input;
mod metrics;
mod notifications;
mod orders;
mod outbox;
mod payments;
mod platform;
mod pooler;
mod realtime;
mod recovery;
mod retention;
mod secrets;
mod task_plans;
mod tasks;
mod tokens;
mod uploads;
mod users;
mod worker;

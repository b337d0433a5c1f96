//! The Postgres pool, sized and tuned for Lambda.
//!
//! The pool connects lazily: a cold start that never touches the database (the docs
//! page, a request refused before its query) pays nothing. Lambda freezes an execution
//! environment between invocations, and Neon scales to zero, so an idle connection may
//! be dead when the environment thaws: `test_before_acquire` pings it and replaces it.
//!
//! Request paths keep no session state outside a transaction (no `SET`, advisory locks
//! or temporary tables), so the same code runs through a transaction-mode pooler.

use secrecy::ExposeSecret;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::{ConfigError, DatabaseConfig};

/// Builds the lazily connected pool.
pub fn pool(config: &DatabaseConfig) -> Result<PgPool, ConfigError> {
    let options: PgConnectOptions =
        config
            .url
            .expose_secret()
            .parse()
            .map_err(|e: sqlx::Error| ConfigError::Invalid {
                name: config.var,
                reason: e.to_string(),
            })?;
    Ok(pool_with(options, config))
}

/// Builds the lazily connected pool from already-parsed options (tests use this).
pub fn pool_with(options: PgConnectOptions, config: &DatabaseConfig) -> PgPool {
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout)
        .test_before_acquire(true)
        // Neon closes idle connections when it scales to zero; do not hold them longer.
        .idle_timeout(Some(std::time::Duration::from_secs(240)))
        .connect_lazy_with(options.application_name("backend-lambda"))
}

/// The Postgres SQLSTATE for a unique-constraint violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Names the unique constraint (or index) a failed statement violated, if that is
/// why it failed. Handlers map a known name to a 409 instead of matching strings.
pub fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            db.constraint()
        }
        _ => None,
    }
}

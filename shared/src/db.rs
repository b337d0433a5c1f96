//! The Postgres pool, sized and tuned for Lambda.
//!
//! The pool connects lazily: a cold start that never touches the database (the docs
//! page, a request refused before its query) pays nothing. Lambda freezes an execution
//! environment between invocations, and Neon scales to zero, so an idle connection may
//! be dead when the environment thaws: `test_before_acquire` pings it and replaces it.
//!
//! Request paths keep no session state outside a transaction (no `SET`, session-level
//! advisory locks or temporary tables; a transaction's own advisory lock is fine), so the
//! same code runs through a transaction-mode pooler.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::{self, ConfigError, parse_or, required};

/// Where and how to reach Postgres.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// The variable the URL came from, for error messages.
    pub var: &'static str,
    /// Connection URL (with password): a secret.
    pub url: SecretString,
    /// Connections per execution environment. Lambda runs one request at a time per
    /// environment, so 1-2 is enough and keeps a burst of cold starts from exhausting
    /// the database's connection limit.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    /// Loads the pooled URL from `DATABASE_URL` (what request paths use).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_var("DATABASE_URL")
    }

    /// Loads the URL from the named variable, e.g. `DATABASE_DIRECT_URL` for migrations.
    pub fn from_var(var: &'static str) -> Result<Self, ConfigError> {
        let url = required(var)?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                name: var,
                reason: "must start with postgres:// or postgresql://".into(),
            });
        }
        check_tls(var, &url)?;
        Ok(Self {
            var,
            url: SecretString::from(url),
            max_connections: parse_or("DATABASE_MAX_CONNECTIONS", 2)?,
            acquire_timeout: Duration::from_millis(parse_or("DATABASE_ACQUIRE_TIMEOUT_MS", 5_000)?),
        })
    }
}

/// A database off this machine is reached over TLS that verifies its certificate and
/// host name (`sslmode=verify-full`, against the webpki roots sqlx links): anything less
/// lets whoever sits on the path read the password and every row. Loopback (development,
/// tests) may connect in the clear.
fn check_tls(var: &'static str, url: &str) -> Result<(), ConfigError> {
    if config::url_host(url).is_none_or(|_| config::is_loopback(url)) {
        // No host: a Unix socket on this machine.
        return Ok(());
    }
    let query = url.split_once('?').map_or("", |(_, q)| q);
    // The last one wins, as libpq reads it.
    let mode = query
        .rsplit('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.eq_ignore_ascii_case("sslmode"))
        .map(|(_, value)| value);
    match mode {
        Some("verify-full") => Ok(()),
        found => Err(ConfigError::Invalid {
            name: var,
            reason: format!(
                "a database on another host needs sslmode=verify-full (found {}): the \
                 connection must verify the server's certificate and host name",
                found.map_or("none".to_owned(), |m| format!("sslmode={m}"))
            ),
        }),
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("var", &self.var)
            .field("url", &"[redacted]")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

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

/// The Postgres SQLSTATE for a foreign-key violation.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// Names the foreign key a failed statement violated (a row still referenced by one
/// that may not lose it), if that is why it failed.
pub fn foreign_key_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(FOREIGN_KEY_VIOLATION) => {
            db.constraint()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_database_needs_verified_tls() {
        for ok in [
            "postgres://app:pw@127.0.0.1:5432/app",
            "postgres://app@localhost/app?sslmode=disable",
            "postgres:///app?host=/var/run/postgresql",
            "postgres://app:pw@ep-x-pooler.eu-central-1.aws.neon.tech/app?sslmode=verify-full",
            "postgresql://app:pw@db.example.com/app?application_name=x&sslmode=verify-full",
        ] {
            assert!(check_tls("DATABASE_URL", ok).is_ok(), "{ok}");
        }
        for bad in [
            "postgres://app:pw@db.example.com/app",
            "postgres://app:pw@db.example.com/app?sslmode=require",
            "postgres://app:pw@db.example.com/app?sslmode=verify-ca",
            "postgres://app:pw@db.example.com/app?sslmode=verify-full&sslmode=disable",
            "postgres://app:pw@127.0.0.1.example.com/app",
        ] {
            let refused = check_tls("DATABASE_URL", bad).unwrap_err().to_string();
            assert!(refused.contains("verify-full"), "{bad}: {refused}");
            assert!(
                !refused.contains("pw"),
                "the reason never shows the URL: {refused}"
            );
        }
    }
}

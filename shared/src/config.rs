//! Configuration, read once per cold start from the environment.
//!
//! This module holds only the helpers that read variables; each layer or domain owns
//! its settings next to the code that uses them (`db::DatabaseConfig`,
//! `identity::tokens::TokenConfig`, `uploads::StorageConfig`, ...), so a function loads
//! only the sections it needs and the platform function does not demand a JWT secret it
//! never uses. A missing or malformed variable stops start-up with an error naming it;
//! secrets are held in `secrecy::SecretString` so they never reach a log.

use std::str::FromStr;

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// Why it was refused (never the value itself: it may be a secret).
        reason: String,
    },
}

/// Reads a required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// Reads an optional variable; empty counts as unset.
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads and parses a variable, falling back to `default` when unset.
pub fn parse_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

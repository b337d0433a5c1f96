//! Brute-force defences kept in Postgres, so they hold across every Lambda instance:
//! per-client rate limits and per-account login lockout.
//!
//! Both are a single atomic upsert per check (`INSERT ... ON CONFLICT DO UPDATE`), so
//! concurrent requests serialise on the row and cannot overshoot a limit. API Gateway's
//! own throttling (in the template) still caps the total request rate in front of this.

use std::time::Duration;

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;

use crate::{
    config::{ConfigError, optional},
    http::error::ApiError,
    identity::UserId,
};

/// At most `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

impl Limit {
    /// A limit of `max` per `secs` seconds.
    pub const fn per(max: u32, secs: u64) -> Self {
        Self {
            max,
            window: Duration::from_secs(secs),
        }
    }

    /// Parses `max/seconds`, e.g. `20/60`.
    fn parse(name: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::Invalid {
            name,
            reason: "must look like <requests>/<seconds>, e.g. 20/60".into(),
        };
        let (max, secs) = raw.trim().split_once('/').ok_or_else(invalid)?;
        let max: u32 = max.trim().parse().map_err(|_| invalid())?;
        let secs: u64 = secs.trim().parse().map_err(|_| invalid())?;
        if max == 0 || secs == 0 {
            return Err(invalid());
        }
        Ok(Self::per(max, secs))
    }

    /// `name` as `requests/seconds`, or `default` when unset.
    pub fn from_env(name: &'static str, default: Self) -> Result<Self, ConfigError> {
        optional(name).map_or(Ok(default), |raw| Self::parse(name, &raw))
    }
}

/// A per-user budget of writes (creating tasks, uploads, orders), counted in Postgres
/// like the per-IP limits, so one account cannot flood a table or hold every ticket
/// however many Lambda instances serve it. Reads are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimit {
    /// The counter's bucket (one per kind of write).
    pub bucket: &'static str,
    /// The budget.
    pub limit: Limit,
}

impl WriteLimit {
    /// `variable` (`requests/seconds`), else `default`, counted in `bucket`.
    pub fn from_env(
        bucket: &'static str,
        variable: &'static str,
        default: Limit,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            bucket,
            limit: Limit::from_env(variable, default)?,
        })
    }

    /// Counts one write of `user`; `Err(429)` with `Retry-After` once over the budget.
    pub async fn hit(&self, db: impl PgExecutor<'_>, user: UserId) -> Result<(), ApiError> {
        hit(db, self.bucket, &user.0.to_string(), self.limit).await
    }
}

/// The per-client-IP limits of the auth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /auth/login`.
    pub login: Limit,
    /// `POST /auth/register`.
    pub register: Limit,
    /// `POST /auth/refresh`.
    pub refresh: Limit,
    /// `POST /auth/password-reset` and its confirmation, and verification emails.
    pub password_reset: Limit,
}

impl Default for RateLimits {
    /// Generous enough for an office behind one NAT address, tight enough to make
    /// guessing from one address slow.
    fn default() -> Self {
        Self {
            login: Limit::per(30, 60),
            register: Limit::per(10, 3600),
            refresh: Limit::per(120, 60),
            password_reset: Limit::per(10, 3600),
        }
    }
}

impl RateLimits {
    /// Loads `RATE_LIMIT_LOGIN`, `RATE_LIMIT_REGISTER`, `RATE_LIMIT_REFRESH` and
    /// `RATE_LIMIT_PASSWORD_RESET` (each `requests/seconds`), defaulting each.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            login: Limit::from_env("RATE_LIMIT_LOGIN", d.login)?,
            register: Limit::from_env("RATE_LIMIT_REGISTER", d.register)?,
            refresh: Limit::from_env("RATE_LIMIT_REFRESH", d.refresh)?,
            password_reset: Limit::from_env("RATE_LIMIT_PASSWORD_RESET", d.password_reset)?,
        })
    }
}

/// Counts one request of `client` against `bucket`; `Err(429)` once over the limit.
/// `db` may be a transaction: the count then commits with it (and holds the row until).
#[tracing::instrument(skip(db, limit))]
pub async fn hit(
    db: impl PgExecutor<'_>,
    bucket: &str,
    client: &str,
    limit: Limit,
) -> Result<(), ApiError> {
    let row = sqlx::query!(
        r#"INSERT INTO rate_limits AS r (bucket, client, hits, window_started_at)
           VALUES ($1, $2, 1, now())
           ON CONFLICT (bucket, client) DO UPDATE SET
             hits = CASE WHEN r.window_started_at <= now() - make_interval(secs => $3)
                         THEN 1 ELSE r.hits + 1 END,
             window_started_at = CASE WHEN r.window_started_at <= now() - make_interval(secs => $3)
                                      THEN now() ELSE r.window_started_at END
           RETURNING hits, window_started_at"#,
        bucket,
        client,
        limit.window.as_secs_f64(),
    )
    .fetch_one(db)
    .await?;
    if row.hits as i64 > i64::from(limit.max) {
        tracing::warn!(bucket, "rate limit exceeded");
        return Err(ApiError::TooManyRequests {
            retry_after: seconds_until(row.window_started_at + limit.window),
        });
    }
    Ok(())
}

/// The lockout rule: `max_failures` failed logins within `window` lock the email for
/// `lock_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Failures that trigger a lock.
    pub max_failures: u32,
    /// The window they must fall in.
    pub window: Duration,
    /// How long the lock lasts.
    pub lock_for: Duration,
}

impl Default for Lockout {
    /// 5 failures within 15 minutes lock for 15 minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lock_for: Duration::from_secs(15 * 60),
        }
    }
}

// The key an email's attempts are counted under is the SHA-256 of its lower-cased form,
// so the table never holds the addresses people typed. It is computed by Postgres, with
// the same `lower()` as the unique index on `users` and every account lookup: one
// normalisation decides both which account an address reaches and which counter it
// spends, so no spelling (`alİce`, `ALICE`) reaches an account under another counter.
// (Rust's `to_lowercase` folds some letters differently from the database's.)

/// The address as every lookup and counter takes it: without surrounding whitespace.
fn trimmed(email: &str) -> &str {
    email.trim()
}

/// Reserves a login attempt for an email before its password is checked. `Err(429)`
/// while the email is locked, or when the attempts in flight already reach the limit
/// (so a burst of concurrent guesses gets no more than `max_failures` checks).
#[tracing::instrument(skip_all)]
pub async fn begin_login(db: &PgPool, email: &str, rule: Lockout) -> Result<(), ApiError> {
    let row = sqlx::query!(
        r#"INSERT INTO login_attempts AS a (email_key, attempts, window_started_at)
           VALUES (sha256(convert_to(lower($1), 'UTF8')), 1, now())
           ON CONFLICT (email_key) DO UPDATE SET
             attempts = CASE
               WHEN a.locked_until > now() THEN a.attempts
               WHEN a.locked_until IS NOT NULL
                 OR a.window_started_at <= now() - make_interval(secs => $2) THEN 1
               ELSE a.attempts + 1 END,
             window_started_at = CASE
               WHEN a.locked_until > now() THEN a.window_started_at
               WHEN a.locked_until IS NOT NULL
                 OR a.window_started_at <= now() - make_interval(secs => $2) THEN now()
               ELSE a.window_started_at END,
             locked_until = CASE WHEN a.locked_until > now() THEN a.locked_until END
           RETURNING attempts, window_started_at, locked_until"#,
        trimmed(email),
        rule.window.as_secs_f64(),
    )
    .fetch_one(db)
    .await?;
    if let Some(until) = row.locked_until {
        return Err(ApiError::TooManyRequests {
            retry_after: seconds_until(until),
        });
    }
    if row.attempts as i64 > i64::from(rule.max_failures) {
        return Err(ApiError::TooManyRequests {
            retry_after: seconds_until(row.window_started_at + rule.window),
        });
    }
    Ok(())
}

/// Records that the reserved attempt failed. Returns `true` when this failure locked
/// the email (for the audit log).
#[tracing::instrument(skip_all)]
pub async fn login_failed(db: &PgPool, email: &str, rule: Lockout) -> Result<bool, sqlx::Error> {
    let locked = sqlx::query_scalar!(
        r#"UPDATE login_attempts
           SET locked_until = now() + make_interval(secs => $3)
           WHERE email_key = sha256(convert_to(lower($1), 'UTF8'))
             AND attempts >= $2 AND locked_until IS NULL
           RETURNING locked_until"#,
        trimmed(email),
        rule.max_failures as i32,
        rule.lock_for.as_secs_f64(),
    )
    .fetch_optional(db)
    .await?;
    Ok(locked.is_some())
}

/// Clears an email's attempts after a successful login or a password reset.
pub async fn clear_login(db: &PgPool, email: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM login_attempts WHERE email_key = sha256(convert_to(lower($1), 'UTF8'))",
        trimmed(email)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes counters whose windows ended long ago (run by a scheduled sweep).
pub async fn purge_stale(db: &PgPool) -> Result<u64, sqlx::Error> {
    let limits =
        sqlx::query!("DELETE FROM rate_limits WHERE window_started_at < now() - interval '1 day'")
            .execute(db)
            .await?
            .rows_affected();
    let attempts = sqlx::query!(
        "DELETE FROM login_attempts
         WHERE window_started_at < now() - interval '1 day'
           AND (locked_until IS NULL OR locked_until < now())"
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(limits + attempts)
}

fn seconds_until(at: OffsetDateTime) -> u64 {
    let left = (at - OffsetDateTime::now_utc()).whole_seconds();
    u64::try_from(left).unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_refuse_nonsense() {
        assert_eq!(Limit::parse("X", "20/60").unwrap(), Limit::per(20, 60));
        assert_eq!(Limit::parse("X", " 5 / 1 ").unwrap(), Limit::per(5, 1));
        for bad in ["", "20", "0/60", "20/0", "a/b", "-1/60", "20/60/1"] {
            assert!(Limit::parse("X", bad).is_err(), "{bad:?}");
        }
    }
}

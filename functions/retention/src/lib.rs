//! The `retention` function: on a schedule (hourly), deletes what is past its documented
//! retention, so no table grows without bound. Each rule deletes in small batches (a
//! short transaction each, never a long lock on a hot table) until nothing is left or the
//! run's time budget is spent; the next run goes on from there.
//!
//! The rules, with their defaults (each `RETENTION_*` variable overrides one):
//! - sessions revoked or expired 30 days ago, with their refresh tokens; and, in live
//!   sessions, refresh tokens used 30 days ago (no session lives longer, so reuse
//!   detection never needs them);
//! - outbox rows sent 7 days ago;
//! - `processed_messages` rows older than 15 days: longer than the queues' 14-day
//!   maximum retention, so de-duplication covers every possible redelivery (a shorter
//!   period is refused at start-up);
//! - account tokens (password reset, email verification) used or expired a day ago;
//! - upload rows expired or rejected 30 days ago (their objects were deleted then);
//! - idempotency keys after 24 hours (a client retries within minutes);
//! - Stripe event ids after 30 days (Stripe stops redelivering after 3);
//! - connect tickets an hour after they expired, and WebSocket connections past their
//!   2-hour lifetime;
//! - the audit log after 400 days, a whole month at a time: it is partitioned by month
//!   and append-only, so `audit_events_maintain` (a migration's SQL function) drops the
//!   months wholly past retention and creates the coming months' partitions ahead.
//!
//! The throttle counters are purged by `outbox-relay`'s tick.

use std::time::{Duration, Instant};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use shared::config::{ConfigError, parse_or};
use sqlx::PgPool;

/// Rows deleted per statement.
pub const BATCH: i64 = 1000;

/// How long one run may keep deleting (the function's timeout is 60 s).
pub const BUDGET: Duration = Duration::from_secs(40);

const DAY: u64 = 86_400;

/// How long each kind of row is kept once it is done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Ended sessions and used refresh tokens (`RETENTION_SESSIONS_DAYS`, 30).
    pub sessions: Duration,
    /// Sent outbox rows (`RETENTION_OUTBOX_DAYS`, 7).
    pub outbox: Duration,
    /// Handled message ids (`RETENTION_PROCESSED_MESSAGES_DAYS`, 15, at least 15).
    pub processed_messages: Duration,
    /// Used or expired account tokens (`RETENTION_ACCOUNT_TOKENS_DAYS`, 1).
    pub account_tokens: Duration,
    /// Expired or rejected uploads (`RETENTION_UPLOADS_DAYS`, 30).
    pub uploads: Duration,
    /// Idempotency keys (`RETENTION_IDEMPOTENCY_HOURS`, 24).
    pub idempotency_keys: Duration,
    /// Stripe event ids (`RETENTION_STRIPE_EVENTS_DAYS`, 30).
    pub stripe_events: Duration,
    /// Audit events (`RETENTION_AUDIT_DAYS`, 400, at least 90).
    pub audit: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            sessions: Duration::from_secs(30 * DAY),
            outbox: Duration::from_secs(7 * DAY),
            processed_messages: Duration::from_secs(15 * DAY),
            account_tokens: Duration::from_secs(DAY),
            uploads: Duration::from_secs(30 * DAY),
            idempotency_keys: Duration::from_secs(DAY),
            stripe_events: Duration::from_secs(30 * DAY),
            audit: Duration::from_secs(400 * DAY),
        }
    }
}

impl Policy {
    /// The periods from the environment, each defaulting as documented.
    pub fn from_env() -> Result<Self, ConfigError> {
        let days = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            let value: u64 = parse_or(name, default.as_secs() / DAY)?;
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1 day".into(),
                });
            }
            Ok(Duration::from_secs(value * DAY))
        };
        let base = Self::default();
        let processed_messages =
            days("RETENTION_PROCESSED_MESSAGES_DAYS", base.processed_messages)?;
        if processed_messages < base.processed_messages {
            return Err(ConfigError::Invalid {
                name: "RETENTION_PROCESSED_MESSAGES_DAYS",
                reason: "must be at least 15: longer than a queue keeps a message (14 days), \
                         or a redelivery could be handled twice"
                    .into(),
            });
        }
        let hours: u64 = parse_or("RETENTION_IDEMPOTENCY_HOURS", 24)?;
        if hours == 0 {
            return Err(ConfigError::Invalid {
                name: "RETENTION_IDEMPOTENCY_HOURS",
                reason: "must be at least 1 hour".into(),
            });
        }
        let audit = days("RETENTION_AUDIT_DAYS", base.audit)?;
        if audit < Duration::from_secs(90 * DAY) {
            return Err(ConfigError::Invalid {
                name: "RETENTION_AUDIT_DAYS",
                reason: "must be at least 90: security reviews look back months".into(),
            });
        }
        Ok(Self {
            sessions: days("RETENTION_SESSIONS_DAYS", base.sessions)?,
            outbox: days("RETENTION_OUTBOX_DAYS", base.outbox)?,
            processed_messages,
            account_tokens: days("RETENTION_ACCOUNT_TOKENS_DAYS", base.account_tokens)?,
            uploads: days("RETENTION_UPLOADS_DAYS", base.uploads)?,
            idempotency_keys: Duration::from_secs(hours * 3600),
            stripe_events: days("RETENTION_STRIPE_EVENTS_DAYS", base.stripe_events)?,
            audit,
        })
    }
}

/// What a run needs; built once per cold start.
pub struct State {
    /// The database.
    pub db: PgPool,
    /// The periods.
    pub policy: Policy,
}

impl State {
    /// Loads the state from the environment.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        Ok(Self {
            db: shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?,
            policy: Policy::from_env()?,
        })
    }
}

/// Rows deleted per rule in one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Ended sessions (their refresh tokens, tickets and connections went with them).
    pub sessions: u64,
    /// Used refresh tokens of live sessions.
    pub refresh_tokens: u64,
    /// Sent outbox rows.
    pub outbox: u64,
    /// Handled message ids.
    pub processed_messages: u64,
    /// Account tokens.
    pub account_tokens: u64,
    /// Upload rows.
    pub uploads: u64,
    /// Idempotency keys.
    pub idempotency_keys: u64,
    /// Stripe event ids.
    pub stripe_events: u64,
    /// Connect tickets.
    pub realtime_tickets: u64,
    /// WebSocket connections.
    pub realtime_connections: u64,
    /// Monthly audit log partitions dropped.
    pub audit_partitions: u64,
    /// Whether the budget ran out before every rule was done (the next run goes on).
    pub unfinished: bool,
}

/// Handles one scheduled run.
pub async fn handle(
    state: &State,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<Report, lambda_runtime::Error> {
    tracing::debug!(request_id = %event.context.request_id, "retention run");
    let report = run(&state.db, &state.policy, BUDGET).await?;
    tracing::info!(?report, "retention run done");
    Ok(report)
}

/// Applies every rule, in batches, within `budget`.
pub async fn run(db: &PgPool, policy: &Policy, budget: Duration) -> Result<Report, sqlx::Error> {
    let deadline = Instant::now() + budget;
    let mut report = Report::default();
    let secs = |d: Duration| d.as_secs_f64();
    macro_rules! rule {
        ($field:ident, $query:expr) => {
            loop {
                if Instant::now() >= deadline {
                    report.unfinished = true;
                    return Ok(report);
                }
                let deleted = $query.execute(db).await?.rows_affected();
                report.$field += deleted;
                if deleted < BATCH as u64 {
                    break;
                }
            }
        };
    }
    rule!(
        sessions,
        sqlx::query!(
            "DELETE FROM sessions WHERE id IN (
                 SELECT id FROM sessions
                 WHERE revoked_at < now() - make_interval(secs => $1)
                    OR expires_at < now() - make_interval(secs => $1)
                 LIMIT $2)",
            secs(policy.sessions),
            BATCH,
        )
    );
    rule!(
        refresh_tokens,
        sqlx::query!(
            "DELETE FROM refresh_tokens WHERE token_hash IN (
                 SELECT token_hash FROM refresh_tokens
                 WHERE used_at < now() - make_interval(secs => $1)
                    OR expires_at < now() - make_interval(secs => $1)
                 LIMIT $2)",
            secs(policy.sessions),
            BATCH,
        )
    );
    rule!(
        outbox,
        sqlx::query!(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)",
            secs(policy.outbox),
            BATCH,
        )
    );
    rule!(
        processed_messages,
        sqlx::query!(
            "DELETE FROM processed_messages WHERE (consumer, message_id) IN (
                 SELECT consumer, message_id FROM processed_messages
                 WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2)",
            secs(policy.processed_messages),
            BATCH,
        )
    );
    rule!(
        account_tokens,
        sqlx::query!(
            "DELETE FROM user_tokens WHERE token_hash IN (
                 SELECT token_hash FROM user_tokens
                 WHERE used_at < now() - make_interval(secs => $1)
                    OR expires_at < now() - make_interval(secs => $1)
                 LIMIT $2)",
            secs(policy.account_tokens),
            BATCH,
        )
    );
    rule!(
        uploads,
        sqlx::query!(
            "DELETE FROM uploads WHERE id IN (
                 SELECT id FROM uploads
                 WHERE status IN ('expired', 'rejected')
                   AND created_at < now() - make_interval(secs => $1)
                 LIMIT $2)",
            secs(policy.uploads),
            BATCH,
        )
    );
    rule!(
        idempotency_keys,
        sqlx::query!(
            "DELETE FROM idempotency_keys WHERE (user_id, scope, key) IN (
                 SELECT user_id, scope, key FROM idempotency_keys
                 WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)",
            secs(policy.idempotency_keys),
            BATCH,
        )
    );
    rule!(
        stripe_events,
        sqlx::query!(
            "DELETE FROM stripe_events WHERE id IN (
                 SELECT id FROM stripe_events
                 WHERE received_at < now() - make_interval(secs => $1) LIMIT $2)",
            secs(policy.stripe_events),
            BATCH,
        )
    );
    rule!(
        realtime_tickets,
        sqlx::query!(
            "DELETE FROM realtime_tickets WHERE ticket_hash IN (
                 SELECT ticket_hash FROM realtime_tickets
                 WHERE expires_at < now() - interval '1 hour' LIMIT $1)",
            BATCH,
        )
    );
    // The audit log: whole months, first, since it needs no batches.
    let dropped = sqlx::query_scalar!(
        r#"SELECT audit_events_maintain(now(), make_interval(secs => $1)) AS "dropped!""#,
        secs(policy.audit),
    )
    .fetch_one(db)
    .await?;
    report.audit_partitions = u64::try_from(dropped).unwrap_or_default();
    rule!(
        realtime_connections,
        sqlx::query!(
            "DELETE FROM realtime_connections WHERE connection_id IN (
                 SELECT connection_id FROM realtime_connections WHERE expires_at < now() LIMIT $1)",
            BATCH,
        )
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_default_as_documented_and_processed_messages_outlive_the_queue() {
        let defaults = shared::config::with_vars([], Policy::from_env).0.unwrap();
        assert_eq!(defaults, Policy::default());
        let set = |name: &str, value: &str| {
            shared::config::with_vars([(name.to_owned(), value.to_owned())], Policy::from_env).0
        };
        assert_eq!(
            set("RETENTION_OUTBOX_DAYS", "3").unwrap().outbox,
            Duration::from_secs(3 * DAY)
        );
        assert_eq!(
            set("RETENTION_IDEMPOTENCY_HOURS", "48")
                .unwrap()
                .idempotency_keys,
            Duration::from_secs(48 * 3600)
        );
        for (name, value) in [
            ("RETENTION_PROCESSED_MESSAGES_DAYS", "14"),
            ("RETENTION_SESSIONS_DAYS", "0"),
            ("RETENTION_AUDIT_DAYS", "30"),
            ("RETENTION_IDEMPOTENCY_HOURS", "0"),
            ("RETENTION_UPLOADS_DAYS", "soon"),
        ] {
            assert!(set(name, value).is_err(), "{name}={value}");
        }
    }
}

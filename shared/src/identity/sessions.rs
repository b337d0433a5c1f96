//! Sessions: checking credentials, opening a session, rotating its refresh token, and
//! ending one or all of a user's sessions.
//!
//! A session is one login. Each refresh rotates its refresh token: the presented one is
//! marked used and a new one issued. A used token presented again means two parties
//! hold it (theft or replay), so the whole session is revoked: the newest refresh token
//! and every access token of the session stop working at once (the guard checks the
//! session on every request). The one exception is the [`SessionPolicy::reuse_window`]
//! right after a rotation: two tabs of one browser that refresh with the same cookie at
//! once both get a pair of the same session (a sibling token) instead of logging the
//! user out. A thief racing the owner inside those seconds is not told apart; past them,
//! reuse revokes as before.
//!
//! A session lives while it is used ([`SessionPolicy::idle`], slid forward by each
//! refresh) and never longer than [`SessionPolicy::absolute`] from its login.
//!
//! Failed logins count towards the per-email lockout ([`super::throttle`]); attempts are
//! reserved before the password is checked, so concurrent guesses cannot overshoot.
//! Every outcome is written to the audit log.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use super::{
    Role, SessionId, UserId,
    audit::{self, AuditEvent, AuditKind},
    password, throttle,
    throttle::Lockout,
    tokens::{RefreshToken, hash_refresh_token},
};
use crate::{
    config::{ConfigError, parse_or},
    http::{client::ClientInfo, error::ApiError},
};

/// The answer to a wrong password and to an unknown email alike.
pub const BAD_CREDENTIALS: &str = "invalid email or password";
/// The answer to any refresh token that cannot be used.
pub const BAD_REFRESH: &str = "invalid or expired refresh token";

/// How long sessions live, and how long a rotated refresh token may still be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// An unused session ends this long after its last refresh (each refresh token
    /// lives this long).
    pub idle: Duration,
    /// No session outlives this, counted from its login, however often it refreshes.
    pub absolute: Duration,
    /// A just-rotated refresh token presented again within this gets a sibling token of
    /// the same session instead of revoking it (two tabs refreshing at once).
    pub reuse_window: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(7 * 24 * 3600),
            absolute: Duration::from_secs(30 * 24 * 3600),
            reuse_window: Duration::from_secs(10),
        }
    }
}

impl SessionPolicy {
    /// Loads `REFRESH_TOKEN_TTL_SECONDS` (idle), `SESSION_MAX_LIFETIME_SECONDS` (absolute)
    /// and `REFRESH_REUSE_WINDOW_SECONDS`, defaulting each (7 days, 30 days, 10 s).
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let seconds = |name, default: Duration| -> Result<Duration, ConfigError> {
            parse_or(name, default.as_secs()).map(Duration::from_secs)
        };
        Self::new(
            seconds("REFRESH_TOKEN_TTL_SECONDS", d.idle)?,
            seconds("SESSION_MAX_LIFETIME_SECONDS", d.absolute)?,
            seconds("REFRESH_REUSE_WINDOW_SECONDS", d.reuse_window)?,
        )
    }

    /// A policy, checked: both lifetimes positive, the window shorter than a minute (it
    /// is a grace for racing tabs, not a second lifetime).
    pub fn new(
        idle: Duration,
        absolute: Duration,
        reuse_window: Duration,
    ) -> Result<Self, ConfigError> {
        let invalid = |name, reason: &str| ConfigError::Invalid {
            name,
            reason: reason.into(),
        };
        if idle.is_zero() {
            return Err(invalid(
                "REFRESH_TOKEN_TTL_SECONDS",
                "must be greater than zero",
            ));
        }
        if absolute.is_zero() {
            return Err(invalid(
                "SESSION_MAX_LIFETIME_SECONDS",
                "must be greater than zero",
            ));
        }
        if reuse_window > Duration::from_secs(60) {
            return Err(invalid(
                "REFRESH_REUSE_WINDOW_SECONDS",
                "must be at most 60",
            ));
        }
        Ok(Self {
            idle,
            absolute,
            reuse_window,
        })
    }
}

/// An account whose credentials were just checked.
#[derive(Debug, Clone, Copy)]
pub struct Account {
    /// The user.
    pub id: UserId,
    /// Their role now.
    pub role: Role,
}

/// Checks an email and password. Unknown email and wrong password take the same time
/// and give the same answer (401); `lockout` failures within its window lock the email,
/// known or not (429 with the time left).
#[tracing::instrument(skip_all)]
pub async fn verify_credentials(
    db: &PgPool,
    client: &ClientInfo,
    email: &str,
    password: String,
    lockout: Lockout,
) -> Result<Account, ApiError> {
    throttle::begin_login(db, email, lockout).await?;
    let account = sqlx::query!(
        r#"SELECT id AS "id: UserId", password_hash, role AS "role: Role"
           FROM users WHERE lower(email) = lower($1)"#,
        email.trim(),
    )
    .fetch_optional(db)
    .await?;

    // No account and an account without a password (provisioned from Better Auth) both
    // verify against the dummy hash: same work, same answer.
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let matches = password::verify_or_dummy(password, stored).await?;
    let target = account.as_ref().map(|a| a.id);
    let Some(account) = account.filter(|_| matches) else {
        // The audit log (admins only) may name the account; the client learns nothing.
        audit::record(
            db,
            client,
            AuditEvent::anonymous(AuditKind::LoginFailed, target),
        )
        .await?;
        if throttle::login_failed(db, email, lockout).await? {
            audit::record(
                db,
                client,
                AuditEvent::anonymous(AuditKind::Lockout, target),
            )
            .await?;
            tracing::warn!("login locked after repeated failures");
        }
        tracing::info!("login refused");
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    throttle::clear_login(db, email).await?;
    Ok(Account {
        id: account.id,
        role: account.role,
    })
}

/// A session just opened or refreshed, with its new refresh token.
pub struct Issued {
    /// Whose session.
    pub user: UserId,
    /// The session.
    pub session: SessionId,
    /// The user's role now.
    pub role: Role,
    /// The new refresh token (its hash is stored; this is the only copy).
    pub refresh: RefreshToken,
    /// When it (and the session, unless refreshed again) expires.
    pub expires_at: OffsetDateTime,
}

/// Opens a session for an account whose credentials were checked, with a first refresh
/// token.
#[tracing::instrument(skip_all, fields(user_id = %account.id))]
pub async fn open(
    db: &PgPool,
    client: &ClientInfo,
    account: Account,
    policy: SessionPolicy,
) -> Result<Issued, ApiError> {
    let mut tx = db.begin().await?;
    let session = SessionId::new();
    let now = OffsetDateTime::now_utc();
    let absolute = now + policy.absolute;
    let expires_at = (now + policy.idle).min(absolute);
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at, absolute_expires_at) VALUES ($1, $2, $3, $4)",
        session.0,
        account.id.0,
        expires_at,
        absolute,
    )
    .execute(&mut *tx)
    .await?;
    let refresh = RefreshToken::generate();
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        refresh.hash,
        session.0,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        client,
        AuditEvent::by(AuditKind::LoginSucceeded, account.id),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(session_id = %session, "logged in");
    Ok(Issued {
        user: account.id,
        session,
        role: account.role,
        refresh,
        expires_at,
    })
}

/// Exchanges a refresh token for its successor, extending the session by the idle
/// lifetime (never past its absolute one). A token that was already used revokes its
/// whole session, unless it was used within the reuse window: then it gets a sibling
/// successor. The revocation is written to `tx`, so the caller must commit even when
/// this fails.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    tx: &mut PgConnection,
    client: &ClientInfo,
    presented: &str,
    policy: SessionPolicy,
) -> Result<Issued, ApiError> {
    let hash = hash_refresh_token(presented);
    // The row lock serialises concurrent refreshes with one token: the second sees it
    // used (and, inside the window, gets a sibling). The window is measured on the
    // database's clock, which set `used_at`.
    let found = sqlx::query!(
        r#"SELECT t.session_id AS "session_id: SessionId", t.used_at, t.expires_at,
                  t.used_at > now() - make_interval(secs => $2) AS "within_reuse_window",
                  s.revoked_at, s.absolute_expires_at,
                  s.user_id AS "user_id: UserId", u.role AS "role: Role"
           FROM refresh_tokens t
           JOIN sessions s ON s.id = t.session_id
           JOIN users u ON u.id = s.user_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t, s"#,
        hash,
        policy.reuse_window.as_secs_f64(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::Unauthorized(BAD_REFRESH))?;

    let now = OffsetDateTime::now_utc();
    if found.revoked_at.is_some() || found.absolute_expires_at <= now {
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }
    let sibling = found.used_at.is_some();
    if sibling && found.within_reuse_window != Some(true) {
        revoke(tx, found.session_id, "refresh_token_reuse").await?;
        let event = AuditEvent::anonymous(AuditKind::RefreshReuseDetected, Some(found.user_id))
            .with(serde_json::json!({ "session_id": found.session_id }));
        audit::record(&mut *tx, client, event).await?;
        tracing::warn!(session_id = %found.session_id, user_id = %found.user_id, "refresh token reuse: session revoked");
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }
    if found.expires_at <= now {
        return Err(ApiError::Unauthorized(BAD_REFRESH));
    }
    if sibling {
        tracing::info!(session_id = %found.session_id, "rotated token presented again within the reuse window");
    }

    // The rotation's three writes in one statement (one round trip, not three): the
    // presented token is spent (a sibling's first use stays its time), the session
    // extended, its successor stored.
    let expires_at = (now + policy.idle).min(found.absolute_expires_at);
    let next = RefreshToken::generate();
    sqlx::query!(
        "WITH spent AS (UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL),
              extended AS (UPDATE sessions SET expires_at = $3 WHERE id = $2)
         INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($4, $2, $3)",
        hash,
        found.session_id.0,
        expires_at,
        next.hash,
    )
    .execute(&mut *tx)
    .await?;
    Ok(Issued {
        user: found.user_id,
        session: found.session_id,
        role: found.role,
        refresh: next,
        expires_at,
    })
}

/// The live session an unused, unexpired refresh token belongs to.
pub async fn of_refresh_token(
    db: &PgPool,
    presented: &str,
) -> Result<Option<(UserId, SessionId)>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"SELECT s.user_id AS "user_id: UserId", s.id AS "id: SessionId"
           FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
           WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
             AND s.revoked_at IS NULL"#,
        hash_refresh_token(presented),
    )
    .fetch_optional(db)
    .await?
    .map(|row| (row.user_id, row.id)))
}

/// Ends a session at its user's request (logout), with its audit event.
#[tracing::instrument(skip(db, client))]
pub async fn end(
    db: &PgPool,
    client: &ClientInfo,
    user: UserId,
    session: SessionId,
) -> Result<(), ApiError> {
    let mut tx = db.begin().await?;
    revoke(&mut tx, session, "logout").await?;
    let event =
        AuditEvent::by(AuditKind::Logout, user).with(serde_json::json!({ "session_id": session }));
    audit::record(&mut *tx, client, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes one session: its refresh token and access tokens stop working at once.
pub async fn revoke(
    tx: &mut PgConnection,
    session: SessionId,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        session.0,
        reason,
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Revokes every live session of a user except `keep` (the one making the change).
pub async fn revoke_all(
    tx: &mut PgConnection,
    user: UserId,
    reason: &str,
    keep: Option<SessionId>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $3",
        user.0,
        reason,
        keep.map(|s| s.0),
    )
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_needs_positive_lifetimes_and_a_short_window() {
        let day = Duration::from_secs(86_400);
        let ok = SessionPolicy::new(day, 30 * day, Duration::ZERO).unwrap();
        assert_eq!(ok.reuse_window, Duration::ZERO);
        let refused = |idle, absolute, window| match SessionPolicy::new(idle, absolute, window) {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(Duration::ZERO, day, Duration::ZERO),
            "REFRESH_TOKEN_TTL_SECONDS"
        );
        assert_eq!(
            refused(day, Duration::ZERO, Duration::ZERO),
            "SESSION_MAX_LIFETIME_SECONDS"
        );
        assert_eq!(
            refused(day, day, Duration::from_secs(61)),
            "REFRESH_REUSE_WINDOW_SECONDS"
        );
    }
}

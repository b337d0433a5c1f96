//! The connections table: who is connected where, and the three things done with it
//! (connect, push, close).

use std::time::Duration;

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{
    Frame,
    management::{ConnectionError, Management},
    tickets,
};

/// API Gateway closes every WebSocket connection after 2 hours: a row outliving that
/// (its `$disconnect` was lost) is ignored and cleaned up.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// Redeems `ticket` for `connection_id`, in one statement: the ticket row is deleted
/// whatever happens next (a ticket works once), and the connection recorded only if the
/// ticket was live, its user exists and its session (if any) is neither revoked nor
/// expired. Returns the user, or `None` to refuse the handshake.
pub async fn connect(
    db: &PgPool,
    ticket: &str,
    connection_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let lifetime = CONNECTION_LIFETIME.as_secs_f64();
    sqlx::query_scalar!(
        r#"WITH used AS (
             DELETE FROM realtime_tickets WHERE ticket_hash = $1
             RETURNING user_id, session_id, expires_at)
           INSERT INTO realtime_connections (connection_id, user_id, session_id, expires_at)
           SELECT $2, used.user_id, used.session_id, now() + make_interval(secs => $3)
           FROM used
           JOIN users u ON u.id = used.user_id
           LEFT JOIN sessions s ON s.id = used.session_id
           WHERE used.expires_at > now()
             AND (used.session_id IS NULL
                  OR (s.revoked_at IS NULL AND s.expires_at > now()))
           ON CONFLICT (connection_id) DO NOTHING
           RETURNING user_id"#,
        tickets::hash(ticket),
        connection_id,
        lifetime,
    )
    .fetch_optional(db)
    .await
}

/// Forgets a connection (`$disconnect`); true if it was known.
pub async fn disconnect(db: &PgPool, connection_id: &str) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "DELETE FROM realtime_connections WHERE connection_id = $1",
        connection_id
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// What a push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Frames API Gateway accepted.
    pub sent: u32,
    /// Connections that were gone (their rows deleted).
    pub gone: u32,
    /// Other failures (logged; the inbox has the notification anyway).
    pub failed: u32,
}

/// Sends `frame` to every live connection of `user`: never to one whose session was
/// revoked or whose lifetime is over. Never fails: a push is a nudge, the inbox is the
/// truth. The user's dead rows (expired, revoked session) are deleted on the way.
pub async fn push(db: &PgPool, management: &Management, user: Uuid, frame: &Frame) -> Pushed {
    let mut pushed = Pushed::default();
    let targets = match live(db, user).await {
        Ok(targets) => targets,
        Err(e) => {
            tracing::warn!(%user, error = %e, "could not read the user's connections; nothing pushed");
            pushed.failed += 1;
            return pushed;
        }
    };
    if targets.is_empty() {
        return pushed;
    }
    let frame = frame.encode();
    let sends = targets.iter().map(|id| management.post(id, &frame));
    for (id, result) in targets.iter().zip(futures::future::join_all(sends).await) {
        match result {
            Ok(()) => pushed.sent += 1,
            Err(ConnectionError::Gone) => {
                pushed.gone += 1;
                if let Err(e) = disconnect(db, id).await {
                    tracing::warn!(connection_id = %id, error = %e, "could not forget a gone connection");
                }
            }
            Err(ConnectionError::Failed(e)) => {
                pushed.failed += 1;
                tracing::warn!(connection_id = %id, error = %e, "push failed");
            }
        }
    }
    pushed
}

/// The user's live connection ids, after deleting their dead ones.
async fn live(db: &PgPool, user: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH dead AS (
             DELETE FROM realtime_connections c
             WHERE c.user_id = $1
               AND (c.expires_at <= now()
                    OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = c.session_id
                               AND (s.revoked_at IS NOT NULL OR s.expires_at <= now())))
             RETURNING connection_id)
           SELECT connection_id AS "connection_id!" FROM realtime_connections
           WHERE user_id = $1 AND connection_id NOT IN (SELECT connection_id FROM dead)
           ORDER BY connected_at"#,
        user,
    )
    .fetch_all(db)
    .await
}

/// Whose connections to close.
#[derive(Debug, Clone, Copy)]
pub enum Whose {
    /// One session's (logout).
    Session(Uuid),
    /// All of a user's but those of `keep` (a password change keeps the caller's own).
    User {
        /// The user.
        user: Uuid,
        /// The session that stays.
        keep: Option<Uuid>,
    },
}

impl Whose {
    /// All of a user's.
    pub fn all_of(user: Uuid) -> Self {
        Self::User { user, keep: None }
    }
}

/// Closes connections after the change that ends them has committed: their rows are
/// deleted (so nothing more is pushed to them, whatever else fails), then each socket is
/// closed through the Management API when it is configured. Best effort: failures are
/// logged. Returns how many connections there were.
pub async fn close(db: &PgPool, management: Option<&Management>, whose: Whose) -> usize {
    match take(db, whose).await {
        Ok(ids) => {
            hang_up(management, &ids).await;
            ids.len()
        }
        Err(e) => {
            tracing::warn!(?whose, error = %e, "could not close the connections");
            0
        }
    }
}

/// Deletes the rows of `whose` connections (in the caller's transaction when the change
/// that ends them deletes what they hang on, e.g. the account) and returns their ids for
/// [`hang_up`] after commit.
pub async fn take(db: impl PgExecutor<'_>, whose: Whose) -> Result<Vec<String>, sqlx::Error> {
    let (session, user, keep) = match whose {
        Whose::Session(session) => (Some(session), None, None),
        Whose::User { user, keep } => (None, Some(user), keep),
    };
    sqlx::query_scalar!(
        "DELETE FROM realtime_connections
         WHERE (session_id = $1 OR user_id = $2) AND session_id IS DISTINCT FROM $3
         RETURNING connection_id",
        session,
        user,
        keep,
    )
    .fetch_all(db)
    .await
}

/// Closes these sockets through the Management API (`DeleteConnection`), if configured.
pub async fn hang_up(management: Option<&Management>, ids: &[String]) {
    let Some(management) = management else {
        return;
    };
    let deletes = ids.iter().map(|id| management.delete(id));
    for (id, result) in ids.iter().zip(futures::future::join_all(deletes).await) {
        if let Err(ConnectionError::Failed(e)) = result {
            tracing::warn!(connection_id = %id, error = %e, "could not close a connection");
        }
    }
}

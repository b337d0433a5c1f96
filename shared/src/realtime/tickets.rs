//! Connect tickets: what a browser puts in the WebSocket URL instead of a token.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a ticket may wait for its `$connect`: enough to open a socket, too short to
/// be worth stealing from a log.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// A ticket as its client gets it (the database keeps only [`hash`]).
#[derive(Debug)]
pub struct Ticket {
    /// base64url, 43 characters.
    pub ticket: String,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// The stored form of a ticket.
pub fn hash(ticket: &str) -> Vec<u8> {
    Sha256::digest(ticket.as_bytes()).to_vec()
}

/// Issues a ticket for `user` (and the session asking, so that ending the session ends
/// what it connected). The user's expired tickets go at the same time, so unused ones do
/// not pile up.
pub async fn issue(
    db: impl PgExecutor<'_>,
    user: Uuid,
    session: Option<Uuid>,
) -> Result<Ticket, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let ticket = URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = OffsetDateTime::now_utc() + TICKET_TTL;
    sqlx::query!(
        "WITH stale AS (DELETE FROM realtime_tickets WHERE user_id = $2 AND expires_at < now())
         INSERT INTO realtime_tickets (ticket_hash, user_id, session_id, expires_at)
         VALUES ($1, $2, $3, $4)",
        hash(&ticket),
        user,
        session,
        expires_at,
    )
    .execute(db)
    .await?;
    Ok(Ticket { ticket, expires_at })
}

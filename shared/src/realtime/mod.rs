//! Real-time push to open browser tabs over API Gateway's WebSocket API.
//!
//! The inbox (`notifications`) stays the source of truth; a push is a best-effort nudge,
//! so nothing here can lose a notification. The flow:
//!
//! 1. an authenticated client asks `POST /api/v1/realtime/tickets` for a connect ticket
//!    ([`tickets::issue`]): 256 random bits, valid 60 s, single use, only its hash
//!    stored. Browsers cannot set headers on a WebSocket, and a long-lived token in a URL
//!    ends up in access logs;
//! 2. it opens `wss://.../live?ticket=...`; the `realtime` function's `$connect`
//!    ([`connections::connect`]) redeems the ticket and records the connection, in one
//!    statement, or refuses the handshake (missing, expired, reused or forged ticket;
//!    logged-out session; deleted user);
//! 3. it fetches `GET /api/v1/notifications?since=...` to catch up, then again after
//!    every reconnect;
//! 4. when `notify-worker` writes a notification it posts a [`Frame`] to each of the
//!    user's live connections ([`connections::push`]) through the Management API
//!    ([`management::Management`]); a connection API Gateway says is gone (410) loses its
//!    row, any other failure is logged and never fails the notification;
//! 5. `$disconnect` deletes the row. That is best effort, so rows also expire (API
//!    Gateway closes every connection after 2 hours), and a push never goes to the
//!    connection of a revoked session. Logging out, changing the password, deleting the
//!    account and a change of role close the user's connections at once
//!    ([`connections::close`]).

pub mod connections;
pub mod management;
pub mod tickets;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// API Gateway refuses frames over 32 KB; ours stay well under, or become a [`Frame::Sync`].
pub const MAX_FRAME_BYTES: usize = 30 * 1024;

/// What the server sends on a connection (JSON text frames, `type` first).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// A notification was written to the inbox.
    Notification {
        /// As `GET /api/v1/notifications` shows it (unread).
        notification: PushedNotification,
    },
    /// Something changed that does not fit a frame: fetch the inbox.
    Sync,
    /// The answer to `{"action":"ping"}`.
    Pong,
    /// A message the server did not understand.
    Error {
        /// Why.
        message: String,
    },
}

/// A notification as a frame carries it.
#[derive(Debug, Clone, Serialize)]
pub struct PushedNotification {
    /// Its id (pass as `since` to catch up from it).
    pub id: Uuid,
    /// What kind (`order_confirmed`, ...).
    pub kind: String,
    /// One line.
    pub title: String,
    /// The text.
    pub body: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Frame {
    /// The frame's JSON, or a [`Frame::Sync`] when it would be too large to send.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        if json.is_empty() || json.len() > MAX_FRAME_BYTES {
            return r#"{"type":"sync"}"#.to_owned();
        }
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_tagged_json_and_stay_under_the_limit() {
        assert_eq!(Frame::Pong.encode(), r#"{"type":"pong"}"#);
        let notification = |body: String| Frame::Notification {
            notification: PushedNotification {
                id: Uuid::nil(),
                kind: "order_confirmed".into(),
                title: "Order confirmed".into(),
                body,
                created_at: OffsetDateTime::UNIX_EPOCH,
            },
        };
        let small = notification("See you there".into()).encode();
        assert!(
            small.starts_with(r#"{"type":"notification","notification":{"id":"#),
            "{small}"
        );
        assert!(
            small.contains(r#""created_at":"1970-01-01T00:00:00Z""#),
            "{small}"
        );
        let huge = notification("é".repeat(MAX_FRAME_BYTES)).encode();
        assert_eq!(huge, r#"{"type":"sync"}"#);
    }
}

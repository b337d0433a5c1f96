//! The contracts of queue messages, shared by their publishers and consumers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::UserId;

/// A message on the notifications queue: "put this in a user's inbox".
///
/// `id` is the outbox id: the consumer's idempotency key and the notification's id, so
/// however often the message is delivered, one notification exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationMessage {
    /// Idempotency key and notification id.
    pub id: Uuid,
    /// Whose inbox.
    pub user_id: UserId,
    /// What kind of notification (`welcome`, ...), for clients to pick an icon.
    pub kind: String,
    /// One line.
    pub title: String,
    /// The text.
    pub body: String,
}

impl NotificationMessage {
    /// The welcome message sent on registration.
    pub fn welcome(user_id: UserId, name: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind: "welcome".into(),
            title: "Welcome!".into(),
            body: format!("Hello {name}, thanks for signing up."),
        }
    }
}

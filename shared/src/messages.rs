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

/// Which account email to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountEmailKind {
    /// A password reset link (only if an account has the address).
    PasswordReset,
    /// An email verification link (only if the address is still unverified).
    VerifyEmail,
}

/// A message on the notifications queue: "email this address an account link".
///
/// It carries no token: the worker creates the single-use token when it sends the
/// email, so no secret waits in the outbox table or the queue. Password reset requests
/// are queued for unknown addresses too (and dropped by the worker), so the API does
/// the same work whether or not an account exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountEmailMessage {
    /// Idempotency key.
    pub id: Uuid,
    /// Which email.
    pub kind: AccountEmailKind,
    /// The address, as the user typed it.
    pub email: String,
}

impl AccountEmailMessage {
    /// A new message with a fresh id.
    pub fn new(kind: AccountEmailKind, email: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            email: email.to_owned(),
        }
    }
}

/// Anything on the notifications queue. Both shapes refuse unknown fields, so a body
/// matches at most one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueMessage {
    /// An in-app notification.
    Notification(NotificationMessage),
    /// An account email.
    AccountEmail(AccountEmailMessage),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_body_matches_one_shape() {
        let n = NotificationMessage::welcome(UserId::new(), "Ada");
        let body = serde_json::to_string(&n).unwrap();
        assert_eq!(
            serde_json::from_str::<QueueMessage>(&body).unwrap(),
            QueueMessage::Notification(n)
        );
        let e = AccountEmailMessage::new(AccountEmailKind::PasswordReset, "a@b.co");
        let body = serde_json::to_string(&e).unwrap();
        assert_eq!(
            serde_json::from_str::<QueueMessage>(&body).unwrap(),
            QueueMessage::AccountEmail(e)
        );
        assert!(serde_json::from_str::<QueueMessage>(r#"{"id":"x"}"#).is_err());
    }
}

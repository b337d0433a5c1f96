//! The contracts of queue messages, shared by their publishers and consumers. Each
//! message type names its queue ([`Message::QUEUE`]), so a publisher cannot send it to
//! the wrong one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Message, Queue};
use crate::identity::UserId;

/// What an in-app notification is about, for clients to pick an icon. Stored and
/// served as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Sent once, on registration.
    Welcome,
    /// An upload passed its checks.
    UploadReady,
    /// An order was confirmed and its tickets issued.
    OrderConfirmed,
    /// An event the user holds tickets for was cancelled.
    EventCancelled,
    /// An event the user holds tickets for changed its time or venue.
    EventChanged,
    /// Money was refunded to the user.
    PaymentRefunded,
}

impl NotificationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::UploadReady => "upload_ready",
            Self::OrderConfirmed => "order_confirmed",
            Self::EventCancelled => "event_cancelled",
            Self::EventChanged => "event_changed",
            Self::PaymentRefunded => "payment_refunded",
        }
    }

    /// Whether the user is also emailed (what they would not want to miss).
    pub fn emailed(self) -> bool {
        matches!(
            self,
            Self::OrderConfirmed
                | Self::EventCancelled
                | Self::EventChanged
                | Self::PaymentRefunded
        )
    }
}

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
    /// What kind of notification.
    pub kind: NotificationKind,
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
            kind: NotificationKind::Welcome,
            title: "Welcome!".into(),
            body: format!("Hello {name}, thanks for signing up."),
        }
    }

    /// "Your upload is ready", naming the file as the user called it.
    pub fn upload_ready(user_id: UserId, filename: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind: NotificationKind::UploadReady,
            title: "Upload ready".into(),
            body: format!("{filename} is ready."),
        }
    }
}

impl NotificationMessage {
    /// "Your tickets": an order was confirmed.
    pub fn order_confirmed(user_id: UserId, event_title: &str, tickets: usize) -> Self {
        let what = if tickets == 1 {
            "Your ticket is".to_owned()
        } else {
            format!("Your {tickets} tickets are")
        };
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind: NotificationKind::OrderConfirmed,
            title: format!("Order confirmed: {event_title}"),
            body: format!("{what} ready for {event_title}."),
        }
    }

    /// "Cancelled": an event the user holds tickets for will not take place.
    pub fn event_cancelled(user_id: UserId, event_title: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind: NotificationKind::EventCancelled,
            title: format!("Cancelled: {event_title}"),
            body: format!(
                "{event_title} has been cancelled by its organizer; your tickets are void."
            ),
        }
    }

    /// "Changed": an event the user holds tickets for moved in time or place.
    pub fn event_changed(user_id: UserId, event_title: &str, change: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind: NotificationKind::EventChanged,
            title: format!("Changed: {event_title}"),
            body: change.to_owned(),
        }
    }
}

impl NotificationMessage {
    /// "Refunded": money for an order went back to the buyer, with why.
    pub fn payment_refunded(user_id: UserId, event_title: &str, amount: &str, why: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            user_id,
            kind: NotificationKind::PaymentRefunded,
            title: format!("Refunded: {event_title}"),
            body: format!("{amount} has been refunded to your card: {why}"),
        }
    }
}

impl Message for NotificationMessage {
    const QUEUE: Queue = Queue::Notifications;
    fn id(&self) -> Uuid {
        self.id
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
    /// "Someone tried to register with your address": registration answers a taken
    /// address as it answers a new one, and tells the owner instead. No token.
    RegistrationAttempt,
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

impl Message for AccountEmailMessage {
    const QUEUE: Queue = Queue::Notifications;
    fn id(&self) -> Uuid {
        self.id
    }
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

/// Anything on the notifications queue (what `notify-worker` parses a body as). Both shapes refuse unknown fields, so a body
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

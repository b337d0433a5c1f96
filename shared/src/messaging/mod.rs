//! Messaging: what goes on the queues, how it gets there, and how consumers take it off.
//!
//! - [`messages`]: the contracts of queue messages, each typed with its queue
//!   ([`Message`]), shared by publishers and consumers;
//! - [`outbox`]: the transactional outbox (write with the change, relay after commit,
//!   sweep what the request path could not send);
//! - `publisher` (feature `sqs`): the SQS client that sends;
//! - `batch` (feature `sqs-consumer`): the one partial-batch loop every queue consumer
//!   runs, with retryable and permanent record errors told apart.

#[cfg(feature = "sqs-consumer")]
pub mod batch;
pub mod messages;
pub mod outbox;
#[cfg(feature = "sqs")]
mod publisher;

use serde::Serialize;
use uuid::Uuid;

#[cfg(feature = "sqs")]
pub use publisher::{Publisher, QueueDepth};

use crate::config::{ConfigError, required};

/// The queues messages are sent to. The name is what the outbox stores, so a row always
/// says which queue it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// In-app notifications and account emails, consumed by `notify-worker`.
    Notifications,
}

impl Queue {
    /// Every queue, for sweeps that serve them all.
    pub const ALL: [Queue; 1] = [Queue::Notifications];

    /// The queue's name in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notifications => "notifications",
        }
    }
}

/// A message with a home: the queue it goes to and the id its consumer deduplicates on.
pub trait Message: Serialize {
    /// The queue this kind of message is sent to.
    const QUEUE: Queue;

    /// The idempotency key (also the outbox row's id).
    fn id(&self) -> Uuid;
}

/// Where the queues are.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// URL of the notifications SQS queue.
    pub notifications_url: String,
}

impl QueueConfig {
    /// Loads `NOTIFICATIONS_QUEUE_URL`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            notifications_url: required("NOTIFICATIONS_QUEUE_URL")?,
        })
    }

    /// The URL of a queue.
    pub fn url(&self, queue: Queue) -> &str {
        match queue {
            Queue::Notifications => &self.notifications_url,
        }
    }
}

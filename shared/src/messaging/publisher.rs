//! The SQS publisher. The client is made on first use: making one loads the system's CA
//! certificates, and most invocations of a function that can publish never do.

use anyhow::Context;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_types::SdkConfig;
use uuid::Uuid;

use super::{Queue, QueueConfig};
use crate::aws::{LazyClient, lazy};

/// Sends messages to one queue.
#[derive(Clone, Debug)]
pub struct Publisher {
    client: LazyClient<aws_sdk_sqs::Client>,
    queue_url: String,
}

impl Publisher {
    /// A publisher for `queue_url` using `client`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client: lazy(move || client),
            queue_url: queue_url.into(),
        }
    }

    /// A publisher for `queue`; the client is made on first use.
    pub fn from_config(sdk: &SdkConfig, config: &QueueConfig, queue: Queue) -> Self {
        let sdk = sdk.clone();
        Self {
            client: lazy(move || aws_sdk_sqs::Client::new(&sdk)),
            queue_url: config.url(queue).to_owned(),
        }
    }

    /// Sends one message.
    pub async fn send(&self, body: String) -> anyhow::Result<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .context("SQS SendMessage failed")?;
        Ok(())
    }

    /// Sends up to ten messages in one call; returns the ids SQS did not accept.
    pub async fn send_batch(&self, messages: &[(Uuid, String)]) -> anyhow::Result<Vec<Uuid>> {
        let entries = messages
            .iter()
            .map(|(id, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id.simple().to_string())
                    .message_body(body)
                    .build()
                    .context("invalid batch entry")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("SQS SendMessageBatch failed")?;
        let failed = output
            .failed()
            .iter()
            .filter_map(|f| Uuid::parse_str(f.id()).ok())
            .collect();
        Ok(failed)
    }
}

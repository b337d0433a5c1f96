//! AWS clients: the SQS publisher and the S3 client.
//!
//! The client is built once per cold start. Its timeouts are short: a request that
//! relays its outbox messages must not hang on an unreachable queue (the sweep will
//! send them later), and the endpoint comes from the SDK's usual settings, so
//! `AWS_ENDPOINT_URL` points it at a local emulator.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use aws_config::{BehaviorVersion, timeout::TimeoutConfig};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::config::QueueConfig;

/// Loads the AWS SDK configuration shared by all clients of a function.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// An S3 client with the shared SDK settings; path-style addressing when asked (emulators).
pub async fn s3_client(force_path_style: bool) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&aws_config().await)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Sends messages to one queue.
///
/// The SDK client is made on first use, not at cold start: loading the SDK
/// configuration and the TLS roots costs milliseconds that most invocations (a login, a
/// refresh) never need to pay.
#[derive(Clone, Debug)]
pub struct Publisher {
    client: Arc<OnceCell<aws_sdk_sqs::Client>>,
    queue_url: String,
}

impl Publisher {
    /// A publisher for `queue_url` using `client`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client: Arc::new(OnceCell::new_with(Some(client))),
            queue_url: queue_url.into(),
        }
    }

    /// A publisher for the notifications queue, with the SDK's usual configuration,
    /// connecting on first use.
    pub fn from_config(config: &QueueConfig) -> Self {
        Self {
            client: Arc::new(OnceCell::new()),
            queue_url: config.notifications_url.clone(),
        }
    }

    async fn client(&self) -> &aws_sdk_sqs::Client {
        self.client
            .get_or_init(|| async { aws_sdk_sqs::Client::new(&aws_config().await) })
            .await
    }

    /// Sends one message.
    pub async fn send(&self, body: String) -> anyhow::Result<()> {
        self.client()
            .await
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
            .client()
            .await
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

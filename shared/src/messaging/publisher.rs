//! The SQS publisher: `SendMessage` and `SendMessageBatch` over SQS's JSON protocol
//! (what the SDK speaks too), signed with SigV4 and sent by `shared::aws`, rather than
//! through the SQS SDK client, which would be most of a small function's binary for
//! three calls.
//!
//! One attempt per call, bounded by [`CALL_TIMEOUT`], no retries: every message sent
//! here is already in the outbox, and the scheduled sweep sends whatever did not go, so
//! a request never waits long on a slow or unreachable queue.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Queue, QueueConfig};
use crate::{aws::AwsClient, config::ConfigError, sigv4::AwsAccess};

/// How long one call to SQS may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A queue's depth, as SQS approximates it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted (being handled, or about to come back).
    pub in_flight: u64,
}

/// Sends messages to one queue (and reads its depth). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    aws: AwsClient,
    /// SQS's endpoint (the JSON protocol posts to the service root).
    endpoint: String,
    queue_url: String,
}

impl Publisher {
    /// A publisher for `queue_url`, signing as `access` (whose endpoint, if any, is
    /// where SQS is: an emulator).
    pub fn new(access: AwsAccess, queue_url: impl Into<String>) -> Self {
        let aws = AwsClient::new(access);
        Self {
            inner: Arc::new(Inner {
                endpoint: aws.endpoint("sqs"),
                aws,
                queue_url: queue_url.into(),
            }),
        }
    }

    /// A publisher for `queue`, as this execution environment ([`AwsAccess::from_env`]).
    pub fn from_env(config: &QueueConfig, queue: Queue) -> Result<Self, ConfigError> {
        Ok(Self::new(AwsAccess::from_env()?, config.url(queue)))
    }

    /// Sends one message.
    pub async fn send(&self, body: String) -> anyhow::Result<()> {
        let payload = json!({ "QueueUrl": self.inner.queue_url, "MessageBody": body });
        self.call("SendMessage", &payload)
            .await
            .context("SQS SendMessage failed")?;
        Ok(())
    }

    /// Sends up to ten messages in one call; returns the ids SQS did not accept.
    pub async fn send_batch(&self, messages: &[(Uuid, String)]) -> anyhow::Result<Vec<Uuid>> {
        #[derive(Deserialize)]
        struct Failed {
            #[serde(rename = "Id")]
            id: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Failed", default)]
            failed: Vec<Failed>,
        }
        let entries: Vec<Value> = messages
            .iter()
            .map(|(id, body)| json!({ "Id": id.simple().to_string(), "MessageBody": body }))
            .collect();
        let payload = json!({ "QueueUrl": self.inner.queue_url, "Entries": entries });
        let answer = self
            .call("SendMessageBatch", &payload)
            .await
            .context("SQS SendMessageBatch failed")?;
        let answer: Answer = serde_json::from_slice(&answer).context("SendMessageBatch answer")?;
        Ok(answer
            .failed
            .iter()
            .filter_map(|f| Uuid::parse_str(&f.id).ok())
            .collect())
    }

    /// How many messages wait on the queue and how many are being handled
    /// (`GetQueueAttributes`), for the metrics snapshot.
    pub async fn depth(&self) -> anyhow::Result<QueueDepth> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Attributes", default)]
            attributes: std::collections::HashMap<String, String>,
        }
        let payload = json!({
            "QueueUrl": self.inner.queue_url,
            "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        });
        let answer = self
            .call("GetQueueAttributes", &payload)
            .await
            .context("SQS GetQueueAttributes failed")?;
        let answer: Answer =
            serde_json::from_slice(&answer).context("GetQueueAttributes answer")?;
        let count = |name: &str| -> u64 {
            answer
                .attributes
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        };
        Ok(QueueDepth {
            visible: count("ApproximateNumberOfMessages"),
            in_flight: count("ApproximateNumberOfMessagesNotVisible"),
        })
    }

    /// One signed call of the JSON protocol; the answer's body when it succeeded.
    async fn call(&self, action: &str, payload: &Value) -> anyhow::Result<Bytes> {
        let inner = &self.inner;
        inner
            .aws
            .json_call(
                "sqs",
                &inner.endpoint,
                "1.0",
                &format!("AmazonSQS.{action}"),
                payload,
                CALL_TIMEOUT,
            )
            .await
    }
}

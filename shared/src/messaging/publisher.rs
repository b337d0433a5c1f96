//! The SQS publisher: `SendMessage` and `SendMessageBatch` over SQS's JSON protocol
//! (what the SDK speaks too), signed with SigV4 and sent over `shared::outbound`'s HTTPS
//! client, rather than through the SQS SDK client, which would be most of a small
//! function's binary for two calls.
//!
//! One attempt per call, bounded by [`CALL_TIMEOUT`], no retries: every message sent
//! here is already in the outbox, and the scheduled sweep sends whatever did not go, so
//! a request never waits long on a slow or unreachable queue.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use aws_sigv4::http_request::{SignableBody, SigningSettings};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Queue, QueueConfig};
use crate::{
    config::ConfigError,
    outbound::{HttpsClient, https_client},
    sigv4::AwsAccess,
};

/// How long one call to SQS may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest SQS answer read (a batch answer is a few kilobytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

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
    access: AwsAccess,
    /// SQS's endpoint (the JSON protocol posts to the service root).
    endpoint: String,
    queue_url: String,
    http: HttpsClient<Full<Bytes>>,
}

impl Publisher {
    /// A publisher for `queue_url`, signing as `access` (whose endpoint, if any, is
    /// where SQS is: an emulator).
    pub fn new(access: AwsAccess, queue_url: impl Into<String>) -> Self {
        let endpoint = access
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://sqs.{}.amazonaws.com", access.region));
        Self {
            inner: Arc::new(Inner {
                access,
                endpoint: format!("{endpoint}/"),
                queue_url: queue_url.into(),
                http: https_client(),
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
        let body = serde_json::to_vec(payload)?;
        let target = format!("AmazonSQS.{action}");
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target.as_str()),
        ];
        let instructions = inner.access.sign(
            "sqs",
            SigningSettings::default(),
            "POST",
            &inner.endpoint,
            &headers,
            SignableBody::Bytes(&body),
        )?;
        let mut builder = http::Request::post(&inner.endpoint);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let mut request = builder
            .body(Full::new(Bytes::from(body)))
            .context("an SQS request")?;
        instructions.apply_to_request_http1x(&mut request);
        let exchange = async {
            let response = inner.http.request(request).await.context("SQS request")?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("SQS answer: {e}"))?
                .to_bytes();
            anyhow::ensure!(
                status.is_success(),
                "SQS answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
            Ok(body)
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .context("SQS did not answer in time")?
    }
}

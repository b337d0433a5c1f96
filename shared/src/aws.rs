//! AWS clients: the SQS publisher and the S3 client, and the settings they share.
//!
//! The SDK settings are read from the environment once per cold start
//! ([`sdk_config`]) instead of through `aws-config`'s provider chain. In Lambda the
//! region and the execution role's credentials are plain environment variables; the
//! chain's other sources (profile files, SSO, STS web identity, ECS, IMDS) each came
//! with its own client code, a large share of every binary that linked the SDK (see
//! BENCHMARKS.md), and file look-ups on the first call, and none of them applies here.
//! TLS runs on ring, which sqlx already links, rather than a second crypto library.
//! Timeouts are short: a request that relays its outbox messages must not hang
//! on an unreachable queue (the sweep sends them later). `AWS_ENDPOINT_URL` points every
//! client at a local emulator.
//!
//! Making an SDK client loads the system's CA certificates (milliseconds), so clients
//! that most invocations never use (SQS in auth: only registrations and resets send;
//! SES in notify-worker) are made on first use ([`LazyClient`]).

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use anyhow::Context;
use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_types::{
    SdkConfig,
    region::Region,
    sdk_config::{SharedHttpClient, TimeoutConfig},
};
use uuid::Uuid;

use crate::config::{ConfigError, QueueConfig, optional, required};

/// The HTTPS client every SDK client uses: rustls on ring, the system's CA roots.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK settings of this execution environment: `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), the credentials in `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (what Lambda gives the function's
/// role), and `AWS_ENDPOINT_URL` when set. Building it does no I/O.
pub fn sdk_config() -> Result<SdkConfig, ConfigError> {
    let region = optional("AWS_REGION")
        .or_else(|| optional("AWS_DEFAULT_REGION"))
        .ok_or(ConfigError::Missing("AWS_REGION"))?;
    // `Credentials` redacts the secret and the session token in its Debug output.
    let credentials = Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        optional("AWS_SESSION_TOKEN"),
        None,
        "environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(endpoint) = optional("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

/// An SDK client made the first time it is used. Cheap to clone.
pub type LazyClient<C> = Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>;

/// A [`LazyClient`] that `make` builds on first use.
pub fn lazy<C: Send + 'static>(make: impl FnOnce() -> C + Send + 'static) -> LazyClient<C> {
    Arc::new(LazyLock::new(Box::new(make)))
}

/// An S3 client with the shared SDK settings; path-style addressing when asked (emulators).
pub fn s3_client(sdk: &SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

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

    /// A publisher for the notifications queue; the client is made on first use.
    pub fn from_config(sdk: &SdkConfig, config: &QueueConfig) -> Self {
        let sdk = sdk.clone();
        Self {
            client: lazy(move || aws_sdk_sqs::Client::new(&sdk)),
            queue_url: config.notifications_url.clone(),
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

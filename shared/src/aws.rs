//! The AWS SDK settings for the one SDK client left (SES in `notify-worker`); SQS and S3
//! calls are SigV4-signed by hand (`shared::sigv4`), which keeps those functions small.
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

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_types::{
    SdkConfig,
    region::Region,
    sdk_config::{SharedHttpClient, TimeoutConfig},
};

use crate::{config::ConfigError, sigv4::AwsAccess};

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
    let access = AwsAccess::from_env()?;
    // No behaviour version here: each SDK crate is built with `behavior-version-latest`,
    // which its clients apply themselves.
    let mut builder = SdkConfig::builder()
        .region(Region::new(access.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(access.credentials().clone()))
        .http_client(http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(endpoint) = access.endpoint {
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

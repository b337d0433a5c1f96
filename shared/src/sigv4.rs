//! Signing AWS requests with SigV4 (`aws-sigv4`, the SDK's own signer), for the calls that
//! do not need a whole SDK client: presigned S3 URLs and sending to SQS. Signing is a
//! local computation; the requests go out over `shared::outbound`'s HTTPS client.

use std::time::SystemTime;

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningInstructions, SigningSettings, sign},
    sign::v4,
};

use crate::config::{ConfigError, optional, required};

/// Who signs, in which region, and where AWS (or an emulator) is.
#[derive(Clone)]
pub struct AwsAccess {
    credentials: Credentials,
    /// The region requests are signed for.
    pub region: String,
    /// `scheme://host[:port]` of an emulator (`AWS_ENDPOINT_URL`); none in AWS.
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for AwsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Credentials` redacts its secret and session token.
        f.debug_struct("AwsAccess")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl AwsAccess {
    /// Explicit credentials, region and endpoint (tests, emulators).
    pub fn new(
        credentials: Credentials,
        region: impl Into<String>,
        endpoint: Option<String>,
    ) -> Self {
        Self {
            credentials,
            region: region.into(),
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_owned()),
        }
    }

    /// This execution environment's: `AWS_REGION` (or `AWS_DEFAULT_REGION`), the role's
    /// credentials in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`
    /// (as Lambda sets them), and `AWS_ENDPOINT_URL` when set.
    pub fn from_env() -> Result<Self, ConfigError> {
        let region = optional("AWS_REGION")
            .or_else(|| optional("AWS_DEFAULT_REGION"))
            .ok_or(ConfigError::Missing("AWS_REGION"))?;
        let credentials = Credentials::new(
            required("AWS_ACCESS_KEY_ID")?,
            required("AWS_SECRET_ACCESS_KEY")?,
            optional("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        Ok(Self::new(credentials, region, optional("AWS_ENDPOINT_URL")))
    }

    /// The credentials (their `Debug` redacts the secret and the session token).
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Signs a request to `service` now; the instructions say what to add to it (headers,
    /// or query parameters for a presigned URL, as `settings` choose).
    pub fn sign(
        &self,
        service: &str,
        settings: SigningSettings,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
    ) -> anyhow::Result<SigningInstructions> {
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .context("SigV4 parameters")?
            .into();
        let signable = SignableRequest::new(method, url, headers.iter().copied(), body)
            .context("a signable request")?;
        let (instructions, _signature) = sign(signable, &params)
            .context("signing the request")?
            .into_parts();
        Ok(instructions)
    }
}

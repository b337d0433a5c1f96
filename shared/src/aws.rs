//! Calling AWS services without their SDK clients: a request signed with SigV4
//! ([`crate::sigv4`]) and sent over the functions' own HTTPS client
//! ([`crate::outbound`]). SQS, SES, Secrets Manager and API Gateway's Management API each
//! need one to three calls of a plain JSON protocol; an SDK client for each would bring
//! its own HTTP stack and most of a small function's binary (see BENCHMARKS.md).
//!
//! Every call is one attempt bounded by its caller's timeout, and reads at most
//! [`MAX_ANSWER_BYTES`] of the answer: the callers retry at their own level (the outbox
//! sweep, the queue's redelivery, the next cold start), where a retry is safe.
//! `AWS_ENDPOINT_URL` points every call at a local emulator.

use std::time::Duration;

use anyhow::Context;
use aws_sigv4::http_request::{SignableBody, SigningSettings};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use serde_json::Value;

use crate::{
    outbound::{HttpsClient, https_client},
    sigv4::AwsAccess,
};

/// The largest answer read; AWS's answers to these calls are a few kilobytes.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Signs and sends requests as one identity. Cheap to clone.
#[derive(Clone)]
pub struct AwsClient {
    access: AwsAccess,
    http: HttpsClient<Full<Bytes>>,
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// What a service answered.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (at most [`MAX_ANSWER_BYTES`]).
    pub body: Bytes,
}

impl Answer {
    /// The body, if the status is a success; otherwise an error naming `what`, the
    /// status and the start of AWS's message.
    pub fn success(self, what: &str) -> anyhow::Result<Bytes> {
        anyhow::ensure!(
            self.status.is_success(),
            "{what} answered {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
        );
        Ok(self.body)
    }
}

impl AwsClient {
    /// A client signing as `access`. No I/O until the first call.
    pub fn new(access: AwsAccess) -> Self {
        Self {
            access,
            http: https_client(),
        }
    }

    /// Who signs, and where.
    pub fn access(&self) -> &AwsAccess {
        &self.access
    }

    /// The service's regional endpoint, `https://{prefix}.{region}.amazonaws.com`, or the
    /// emulator's (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self, prefix: &str) -> String {
        self.access
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{prefix}.{}.amazonaws.com", self.access.region))
    }

    /// One signed request to `service` (the SigV4 signing name), answered within `timeout`.
    pub async fn send(
        &self,
        service: &str,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> anyhow::Result<Answer> {
        let instructions = self.access.sign(
            service,
            SigningSettings::default(),
            method.as_str(),
            url,
            headers,
            SignableBody::Bytes(&body),
        )?;
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(Full::new(Bytes::from(body)))
            .with_context(|| format!("a request to {service}"))?;
        instructions.apply_to_request_http1x(&mut request);
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .with_context(|| format!("{service} request"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("{service} answer: {e}"))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .with_context(|| format!("{service} did not answer in time"))?
    }

    /// One call of AWS's JSON protocol (`POST /` with `X-Amz-Target`), as SQS
    /// (`json_version` "1.0", target `AmazonSQS.SendMessage`) and Secrets Manager ("1.1",
    /// `secretsmanager.GetSecretValue`) speak it: the answer's body when it succeeded.
    pub async fn json_call(
        &self,
        service: &str,
        endpoint: &str,
        json_version: &str,
        target: &str,
        payload: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Bytes> {
        let content_type = format!("application/x-amz-json-{json_version}");
        let headers = [
            ("content-type", content_type.as_str()),
            ("x-amz-target", target),
        ];
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        self.send(
            service,
            Method::POST,
            &url,
            &headers,
            serde_json::to_vec(payload)?,
            timeout,
        )
        .await?
        .success(target)
    }
}

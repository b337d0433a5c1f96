//! Presigned S3 URLs, made with SigV4 alone (`aws-sigv4`, the SDK's own signer), not the
//! whole S3 client: signing is a local computation, and the `uploads` function needs
//! nothing else from S3 (its one S3 call, deleting an object, is a presigned `DELETE`
//! sent with the HTTPS client every function links anyway). That keeps the S3 client's
//! code out of its binary.
//!
//! A presigned URL carries the signature in its query (`X-Amz-Signature`, with the
//! credential, date, lifetime and the list of signed headers); the headers it was signed
//! with must be sent unchanged, and S3 refuses anything else with 403.

use std::time::Duration;

use anyhow::Context;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
#[cfg(feature = "outbound")]
use hyper::body::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::StorageConfig;
use crate::{config::ConfigError, sigv4::AwsAccess};

/// What SigV4 leaves unencoded in a path segment or query value: RFC 3986's unreserved
/// characters.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A request anyone holding it may send, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// The URL, signature included.
    pub url: String,
    /// Exactly the headers the signature covers, lower-case (`host` aside, which every
    /// HTTP client sets from the URL): the request must carry them unchanged.
    pub headers: Vec<(String, String)>,
}

/// Signs S3 requests for one bucket. Built once per cold start; signing does no I/O.
#[derive(Debug, Clone)]
pub struct Presigner {
    access: AwsAccess,
    path_style: bool,
    bucket: String,
}

impl Presigner {
    /// A presigner for `storage`'s bucket, signing as `access`.
    pub fn new(access: AwsAccess, storage: &StorageConfig) -> Self {
        Self {
            access,
            path_style: storage.force_path_style,
            bucket: storage.bucket.clone(),
        }
    }

    /// The presigner of this execution environment ([`AwsAccess::from_env`]).
    pub fn from_env(storage: &StorageConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(AwsAccess::from_env()?, storage))
    }

    /// The bucket's URL of an object key, path-style or virtual-hosted.
    fn object_url(&self, key: &str) -> String {
        let path: Vec<String> = key
            .split('/')
            .map(|segment| utf8_percent_encode(segment, AWS_ENCODE).to_string())
            .collect();
        let path = path.join("/");
        let bucket = &self.bucket;
        let region = &self.access.region;
        match (&self.access.endpoint, self.path_style) {
            (Some(endpoint), true) => format!("{endpoint}/{bucket}/{path}"),
            (Some(endpoint), false) => match endpoint.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{bucket}.{host}/{path}"),
                None => format!("https://{bucket}.{endpoint}/{path}"),
            },
            (None, true) => format!("https://s3.{region}.amazonaws.com/{bucket}/{path}"),
            (None, false) => format!("https://{bucket}.s3.{region}.amazonaws.com/{path}"),
        }
    }

    /// Presigns `method` on `key`, valid for `expires_in`, with extra query parameters
    /// (`response-content-type`, ...) and the headers the request must carry.
    pub fn presign(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        expires_in: Duration,
    ) -> anyhow::Result<Presigned> {
        let mut url = self.object_url(key);
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&utf8_percent_encode(name, AWS_ENCODE).to_string());
            url.push('=');
            url.push_str(&utf8_percent_encode(value, AWS_ENCODE).to_string());
        }
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        // S3 signs the path as sent: encoded once, never normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let instructions = self.access.sign(
            "s3",
            settings,
            method,
            &url,
            headers,
            SignableBody::UnsignedPayload,
        )?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .body(())
            .context("a request to sign")?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(Presigned {
            url: request.uri().to_string(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned()))
                .collect(),
        })
    }
}

/// How long a presigned request the function sends itself stays valid.
#[cfg(feature = "outbound")]
const OWN_REQUEST_TTL: Duration = Duration::from_secs(60);

#[cfg(feature = "outbound")]
impl Presigner {
    /// Presigns `method` on `key` and sends it at once without a body, within a sixth
    /// of the signature's lifetime; `operation` names the S3 call in errors.
    async fn send_bodiless(
        &self,
        client: &crate::outbound::HttpsClient,
        method: http::Method,
        key: &str,
        operation: &str,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let signed = self.presign(method.as_str(), key, &[], &[], OWN_REQUEST_TTL)?;
        let request = http::Request::builder()
            .method(method)
            .uri(signed.url)
            .body(http_body_util::Empty::new())
            .with_context(|| format!("a {operation} request"))?;
        tokio::time::timeout(OWN_REQUEST_TTL / 6, client.request(request))
            .await
            .with_context(|| format!("{operation} timed out"))?
            .with_context(|| format!("{operation} failed"))
    }

    /// Deletes an object (a presigned `DELETE` sent at once). Deleting a missing object
    /// succeeds, as in S3.
    pub async fn delete_object(
        &self,
        client: &crate::outbound::HttpsClient,
        key: &str,
    ) -> anyhow::Result<()> {
        let status = self
            .send_bodiless(client, http::Method::DELETE, key, "DeleteObject")
            .await?
            .status();
        anyhow::ensure!(
            status.is_success() || status == http::StatusCode::NOT_FOUND,
            "DeleteObject answered {status}"
        );
        Ok(())
    }

    /// An object's stored length and type (HeadObject); `None` when there is no such
    /// object.
    pub async fn head_object(
        &self,
        client: &crate::outbound::HttpsClient,
        key: &str,
    ) -> anyhow::Result<Option<ObjectHead>> {
        let response = self
            .send_bodiless(client, http::Method::HEAD, key, "HeadObject")
            .await?;
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        anyhow::ensure!(status.is_success(), "HeadObject answered {status}");
        let header = |name: http::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Some(ObjectHead {
            length: header(http::header::CONTENT_LENGTH).and_then(|l| l.parse().ok()),
            content_type: header(http::header::CONTENT_TYPE),
        }))
    }

    /// The first `n` bytes of an object (a ranged GetObject).
    pub async fn first_bytes(
        &self,
        client: &crate::outbound::HttpsClient,
        key: &str,
        n: usize,
    ) -> anyhow::Result<Bytes> {
        use http_body_util::BodyExt;
        let signed = self.presign("GET", key, &[], &[], OWN_REQUEST_TTL)?;
        let request = http::Request::get(signed.url)
            // Not signed: S3 accepts unsigned headers on a presigned request.
            .header(
                http::header::RANGE,
                format!("bytes=0-{}", n.saturating_sub(1)),
            )
            .body(http_body_util::Empty::new())
            .context("a GET request")?;
        let exchange = async {
            let response = client.request(request).await.context("GetObject failed")?;
            let status = response.status();
            anyhow::ensure!(status.is_success(), "GetObject answered {status}");
            let body = http_body_util::Limited::new(response.into_body(), n)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("reading the object failed: {e}"))?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(OWN_REQUEST_TTL / 6, exchange)
            .await
            .context("GetObject timed out")?
    }
}

/// What HeadObject says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Its stored length.
    pub length: Option<i64>,
    /// Its stored `Content-Type`.
    pub content_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presigner(endpoint: Option<&str>, path_style: bool) -> Presigner {
        let storage = StorageConfig {
            bucket: "uploads".into(),
            upload_url_ttl: Duration::from_secs(600),
            download_url_ttl: Duration::from_secs(60),
            force_path_style: path_style,
        };
        let credentials =
            aws_credential_types::Credentials::new("AKID", "secret", None, None, "test");
        let access = AwsAccess::new(credentials, "eu-west-1", endpoint.map(str::to_owned));
        Presigner::new(access, &storage)
    }

    #[test]
    fn urls_address_the_bucket_both_ways() {
        let key = "avatar/u/n a+m%e";
        assert_eq!(
            presigner(None, false).object_url(key),
            "https://uploads.s3.eu-west-1.amazonaws.com/avatar/u/n%20a%2Bm%25e"
        );
        assert_eq!(
            presigner(Some("http://127.0.0.1:5000/"), true).object_url("a/b"),
            "http://127.0.0.1:5000/uploads/a/b"
        );
        assert_eq!(
            presigner(Some("http://localhost:5000"), false).object_url("a/b"),
            "http://uploads.localhost:5000/a/b"
        );
    }

    #[test]
    fn a_presigned_url_carries_its_signature_and_signed_headers() {
        let signed = presigner(None, false)
            .presign(
                "PUT",
                "avatar/u/id",
                &[],
                &[("content-type", "image/png"), ("if-none-match", "*")],
                Duration::from_secs(600),
            )
            .unwrap();
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKID%2F",
            "X-Amz-Expires=600",
            "X-Amz-SignedHeaders=content-type%3Bhost%3Bif-none-match",
            "X-Amz-Signature=",
        ] {
            assert!(signed.url.contains(part), "{part} in {}", signed.url);
        }
        assert_eq!(
            signed.headers,
            [
                ("content-type".to_owned(), "image/png".to_owned()),
                ("if-none-match".to_owned(), "*".to_owned())
            ]
        );
        assert!(!signed.url.contains("secret"));
    }
}

//! Object storage for tests.
//!
//! [`SigningS3`] is an S3 server inside the test process (the `s3s` crate over a
//! temporary directory) that verifies SigV4 signatures, presigned URLs included, the way
//! S3 does: a tampered, expired or mismatched request is refused with 403. The moto
//! emulator never checks signatures, so every signing test runs against this one.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use hyper_util::rt::TokioIo;
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};
use shared::{
    sigv4::AwsAccess,
    uploads::{StorageConfig, presign::Presigner},
};
use tokio::{net::TcpListener, task::JoinHandle};

/// The credentials the signing server accepts.
const ACCESS_KEY: &str = "AKIDTESTSIGNING";
const SECRET_KEY: &str = "signing-secret-for-tests";

/// A signature-verifying S3 server on a loopback port; stops when dropped.
pub struct SigningS3 {
    addr: SocketAddr,
    root: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for SigningS3 {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl SigningS3 {
    /// Starts a server with one empty bucket, `uploads`.
    pub async fn start() -> Self {
        let root = std::env::temp_dir().join(format!("s3s-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).expect("temp dir");
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs over the temp dir");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let server = Self { addr, root, task };
        server
            .client()
            .create_bucket()
            .bucket("uploads")
            .send()
            .await
            .expect("create bucket");
        server
    }

    /// The server's base URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client with the accepted credentials.
    pub fn client(&self) -> aws_sdk_s3::Client {
        client_for(&self.endpoint(), ACCESS_KEY, SECRET_KEY)
    }

    /// Where and as whom the uploads function signs for this server.
    pub fn target(&self) -> S3Target {
        S3Target {
            endpoint: self.endpoint(),
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
        }
    }
}

/// An S3 endpoint and the credentials to sign for it with.
#[derive(Debug, Clone)]
pub struct S3Target {
    /// Base URL.
    pub endpoint: String,
    /// Access key id.
    pub access_key: &'static str,
    /// Secret key.
    pub secret_key: &'static str,
}

impl S3Target {
    /// The uploads function's presigner for `storage`'s bucket on this endpoint.
    pub fn presigner(&self, storage: &StorageConfig) -> Presigner {
        let credentials = Credentials::new(self.access_key, self.secret_key, None, None, "tests");
        let access = AwsAccess::new(credentials, "us-east-1", Some(self.endpoint.clone()));
        Presigner::new(access, storage)
    }
}

/// The moto emulator (which accepts any credentials).
pub fn moto_target() -> S3Target {
    S3Target {
        endpoint: crate::sqs::endpoint(),
        access_key: "test",
        secret_key: "test",
    }
}

/// An S3 client for an endpoint, path-style, with static credentials.
pub fn client_for(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            access_key, secret_key, None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .http_client(crate::sdk_http_client())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Storage settings for `bucket` with an upload URL lifetime.
pub fn storage(bucket: &str, upload_url_ttl: Duration) -> StorageConfig {
    StorageConfig {
        bucket: bucket.into(),
        upload_url_ttl,
        download_url_ttl: Duration::from_secs(60),
        force_path_style: true,
    }
}

/// A client for the moto emulator (which accepts any credentials).
pub fn moto_client() -> aws_sdk_s3::Client {
    client_for(&crate::sqs::endpoint(), "test", "test")
}

/// Makes sure the default test bucket exists on moto (idempotent): the default
/// `TestApp` signs for it, and a fresh emulator has no buckets.
pub async fn ensure_moto_bucket(bucket: &str) {
    let client = moto_client();
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return;
    }
    // Parallel tests may race to create it; losing the race is fine.
    let _ = client.create_bucket().bucket(bucket).send().await;
    client
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create bucket {bucket} on the emulator: {e:?}"));
}

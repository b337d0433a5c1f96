//! The HTTPS client for the few calls a function makes itself (Better Auth's JWKS, a
//! presigned S3 `DELETE`): hyper over rustls on ring with the webpki roots, all of which
//! the Lambda runtime and sqlx link anyway, rather than an HTTP client library of its
//! own. HTTP/1.1 only; plain `http://` is allowed for emulators and providers on
//! loopback in development and tests.

use std::sync::Arc;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// A client whose requests carry bodies of type `B` (none by default: GET, DELETE).
/// Cheap to clone.
pub type HttpsClient<B = Empty<Bytes>> = Client<hyper_rustls::HttpsConnector<HttpConnector>, B>;

/// Builds the client; no I/O until the first request.
pub fn https_client<B>() -> HttpsClient<B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
        // ring's provider supports every protocol version; this cannot fail.
        .expect("ring supports TLS 1.2 and 1.3")
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

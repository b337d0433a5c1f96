//! A small Stripe client of our own: the five calls the platform makes (create, retrieve
//! and cancel a PaymentIntent; create and retrieve a refund), form-encoded over the hyper
//! and rustls stack the functions link anyway, `Stripe-Version` pinned, a timeout, typed
//! errors. The generated SDK crates are far larger than five calls.
//!
//! Every POST carries an `Idempotency-Key` built from our own ids, so a Lambda retried
//! after a timeout never creates a second intent or refund: Stripe answers the same
//! object again. [`Gateway`] is the seam the functions hold (`Arc<dyn Gateway>`).

use std::{collections::HashMap, future::Future, pin::Pin, time::Duration};

use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, de::DeserializeOwned};

use crate::outbound::{HttpsClient, https_client};

/// The API version every request pins, so a change of the account's default cannot
/// change the shapes we parse.
pub const API_VERSION: &str = "2024-06-20";

/// How long one call may take before it counts as unavailable.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A PaymentIntent, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    /// `pi_...`
    pub id: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
    /// `processing`, `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    /// In minor units.
    pub amount: i64,
    /// Lowercase ISO 4217.
    pub currency: String,
    /// Given to the buyer's browser, which confirms the payment with it.
    pub client_secret: Option<String>,
    /// Ours: `order_id`.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Why the last attempt failed.
    pub last_payment_error: Option<PaymentError>,
}

impl PaymentIntent {
    /// The order this intent pays for, if it is one of ours.
    pub fn order_id(&self) -> Option<uuid::Uuid> {
        self.metadata.get("order_id")?.parse().ok()
    }
}

/// A failed attempt's reason, as Stripe words it for the buyer.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentError {
    /// E.g. `card_declined`.
    pub code: Option<String>,
    /// A sentence for the buyer.
    pub message: Option<String>,
}

/// A refund, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    /// `re_...`
    pub id: String,
    /// In minor units.
    pub amount: i64,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// The intent refunded.
    pub payment_intent: Option<String>,
    /// Ours: `refund_id`.
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A call that did not return the object.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe could not be reached, timed out, or answered 429 or 5xx: try again later.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    /// Stripe refused the request (4xx): retrying it unchanged will not help.
    #[error("Stripe refused the request ({status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Stripe's error code, e.g. `resource_missing`.
        code: Option<String>,
        /// Stripe's message.
        message: String,
    },
}

impl StripeError {
    /// Stripe has no such object (404 `resource_missing`): asking again will not find it.
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Rejected { status: 404, .. })
    }
}

/// What a new PaymentIntent is for.
#[derive(Debug, Clone)]
pub struct NewIntent<'a> {
    /// In minor units, > 0.
    pub amount: i64,
    /// ISO 4217, any case.
    pub currency: &'a str,
    /// The order paid for (written to the intent's metadata).
    pub order_id: uuid::Uuid,
    /// Stripe's idempotency key: the same key returns the same intent.
    pub idempotency_key: &'a str,
}

/// A boxed future, so [`Gateway`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The Stripe calls the platform makes.
pub trait Gateway: Send + Sync {
    /// Creates a card PaymentIntent.
    fn create_intent<'a>(
        &'a self,
        new: NewIntent<'a>,
    ) -> BoxFuture<'a, Result<PaymentIntent, StripeError>>;
    /// Reads an intent (the authoritative state a webhook only hints at).
    fn retrieve_intent<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<PaymentIntent, StripeError>>;
    /// Cancels an intent that has not succeeded.
    fn cancel_intent<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<PaymentIntent, StripeError>>;
    /// Refunds `amount` (all if `None`) of an intent; `refund_id` is ours, and keys it.
    fn create_refund<'a>(
        &'a self,
        intent: &'a str,
        amount: Option<i64>,
        refund_id: uuid::Uuid,
    ) -> BoxFuture<'a, Result<Refund, StripeError>>;
    /// Reads a refund.
    fn retrieve_refund<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Refund, StripeError>>;
}

/// The HTTP client for Stripe's API (or a fake at `api_base`). Cheap to clone.
#[derive(Clone)]
pub struct StripeClient {
    http: HttpsClient<Full<Bytes>>,
    api_base: String,
    secret_key: SecretString,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// A client for `api_base` (e.g. `https://api.stripe.com`) with the secret key.
    pub fn new(api_base: &str, secret_key: SecretString) -> Self {
        Self {
            http: https_client(),
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, NON_ALPHANUMERIC),
                    utf8_percent_encode(v, NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api_base))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.secret_key.expose_secret()),
            )
            .header("Stripe-Version", API_VERSION)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| StripeError::Unavailable(format!("building the request: {e}")))?;
        let exchange = async {
            let response = self.http.request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| StripeError::Unavailable(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| StripeError::Unavailable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| StripeError::Unavailable(format!("an unreadable answer: {e}")));
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(StripeError::Unavailable(format!("HTTP {status}")));
        }
        #[derive(Deserialize)]
        struct Envelope {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            code: Option<String>,
            message: Option<String>,
        }
        let detail = serde_json::from_slice::<Envelope>(&bytes)
            .ok()
            .map(|e| e.error);
        Err(StripeError::Rejected {
            status: status.as_u16(),
            code: detail.as_ref().and_then(|d| d.code.clone()),
            message: detail
                .and_then(|d| d.message)
                .unwrap_or_else(|| format!("HTTP {status}")),
        })
    }
}

/// An id as a path segment: Stripe's ids are `[A-Za-z0-9_]`, anything else is refused
/// before it reaches a URL.
fn segment(id: &str) -> Result<&str, StripeError> {
    if !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id)
    } else {
        Err(StripeError::Rejected {
            status: 400,
            code: Some("invalid_id".into()),
            message: "not a Stripe id".into(),
        })
    }
}

impl Gateway for StripeClient {
    fn create_intent<'a>(
        &'a self,
        new: NewIntent<'a>,
    ) -> BoxFuture<'a, Result<PaymentIntent, StripeError>> {
        Box::pin(async move {
            let form = [
                ("amount", new.amount.to_string()),
                ("currency", new.currency.to_ascii_lowercase()),
                // Cards only: the fake knows no `automatic_payment_methods`, and the
                // hold is too short for delayed methods (bank debits) anyway.
                ("payment_method_types[]", "card".to_owned()),
                ("metadata[order_id]", new.order_id.to_string()),
            ];
            self.call(
                Method::POST,
                "/v1/payment_intents",
                &form,
                Some(new.idempotency_key),
            )
            .await
        })
    }

    fn retrieve_intent<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<PaymentIntent, StripeError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{}", segment(id)?);
            self.call(Method::GET, &path, &[], None).await
        })
    }

    fn cancel_intent<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<PaymentIntent, StripeError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{}/cancel", segment(id)?);
            let key = format!("cancel-{id}");
            self.call(Method::POST, &path, &[], Some(&key)).await
        })
    }

    fn create_refund<'a>(
        &'a self,
        intent: &'a str,
        amount: Option<i64>,
        refund_id: uuid::Uuid,
    ) -> BoxFuture<'a, Result<Refund, StripeError>> {
        Box::pin(async move {
            let mut form = vec![
                ("payment_intent", segment(intent)?.to_owned()),
                ("metadata[refund_id]", refund_id.to_string()),
            ];
            if let Some(amount) = amount {
                form.push(("amount", amount.to_string()));
            }
            let key = format!("refund-{refund_id}");
            self.call(Method::POST, "/v1/refunds", &form, Some(&key))
                .await
        })
    }

    fn retrieve_refund<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Refund, StripeError>> {
        Box::pin(async move {
            let path = format!("/v1/refunds/{}", segment(id)?);
            self.call(Method::GET, &path, &[], None).await
        })
    }
}

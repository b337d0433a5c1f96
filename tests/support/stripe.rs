//! The Stripe side of the tests: `localstripe`, a stateful Stripe fake on loopback
//! (started by `scripts/test` and `scripts/dev`, at `STRIPE_API_BASE`), and a webhook
//! endpoint per test that localstripe delivers its signed events to.
//!
//! [`Webhooks::start`] listens on a loopback port, registers it with localstripe under
//! the test database's name and a secret of its own, and turns each delivery into an API
//! Gateway event for the payments function's router (the path a deployed webhook takes).
//! localstripe sends every event to every registered endpoint, so a test also receives
//! other tests' events: the function answers those `not_ours`, as it would for another
//! system sharing a Stripe account.
//!
//! The buyer's browser is played by [`pay`]: what Stripe.js's `confirmPayment` does
//! (attach a test card, confirm).

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use http::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use shared::payments::StripeConfig;
use sqlx::PgPool;

use crate::lambda;

/// Where localstripe listens unless `STRIPE_API_BASE` says otherwise.
pub const DEFAULT_API_BASE: &str = "http://127.0.0.1:8420";
/// The webhook's route.
pub const WEBHOOK: &str = "/api/v1/payments/stripe/webhook";
/// The secret key the tests use (localstripe takes any `sk_test_` key).
pub const SECRET_KEY: &str = "sk_test_backend_tests";
/// The publishable key the tests use.
pub const PUBLISHABLE_KEY: &str = "pk_test_backend_tests";

/// localstripe's address.
pub fn api_base() -> String {
    std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| DEFAULT_API_BASE.to_owned())
}

/// The functions' Stripe settings in tests.
pub fn config() -> StripeConfig {
    StripeConfig {
        api_base: api_base(),
        secret_key: SecretString::from(SECRET_KEY.to_owned()),
        publishable_key: PUBLISHABLE_KEY.to_owned(),
    }
}

/// The webhook signing secret of the test on `db` (each test has its own).
pub fn webhook_secret(db: &PgPool) -> SecretString {
    let name = db
        .connect_options()
        .get_database()
        .unwrap_or("backend")
        .to_owned();
    SecretString::from(format!("whsec_{name}"))
}

/// A call to localstripe's API as the platform makes it (form-encoded, secret key).
pub async fn api(method: Method, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", api_base()))
        .bearer_auth(SECRET_KEY)
        .form(form)
        .send()
        .await
        .expect("localstripe answers (scripts/test starts it)");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Pays an intent with a test card as the buyer's browser would (`pm_card_visa` pays,
/// `pm_card_chargeCustomerFail` is declined); returns the intent after confirming.
pub async fn pay(intent_id: &str, card: &str) -> Value {
    let (status, body) = api(
        Method::POST,
        &format!("/v1/payment_intents/{intent_id}"),
        &[("payment_method", card)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "attaching the card: {body}");
    let (_, body) = api(
        Method::POST,
        &format!("/v1/payment_intents/{intent_id}/confirm"),
        &[],
    )
    .await;
    body
}

/// One delivery localstripe made to this test's endpoint, and the function's answer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event's type.
    pub kind: String,
    /// The id of the object it is about.
    pub object: String,
    /// The payments function's status.
    pub status: StatusCode,
    /// The payments function's body (`{received, outcome}` or a problem).
    pub answer: Value,
    /// The event as delivered (to send again).
    pub body: String,
    /// Its `Stripe-Signature`.
    pub signature: String,
}

/// This test's webhook endpoint, registered with localstripe.
pub struct Webhooks {
    /// Every delivery so far, in arrival order.
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Receiver {
    payments: Router,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

async fn deliver(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let text = String::from_utf8_lossy(&body).into_owned();
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let forwarded: Vec<(&str, &str)> = ["stripe-signature", "content-type"]
        .into_iter()
        .filter_map(|name| Some((name, headers.get(name)?.to_str().ok()?)))
        .collect();
    let event = lambda::api_gateway_event(Method::POST, WEBHOOK, &forwarded, Some(&text));
    // The Lambda adapter's future is not Send; the runtime's own thread drives it (a
    // test's runtime is running the test meanwhile, so I/O and timers progress).
    let router = receiver.payments.clone();
    let runtime = tokio::runtime::Handle::current();
    let response =
        tokio::task::spawn_blocking(move || runtime.block_on(lambda::invoke_http(router, event)))
            .await
            .expect("the webhook invocation does not panic");
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    receiver
        .deliveries
        .lock()
        .expect("the deliveries lock is never poisoned")
        .push(Delivery {
            kind: parsed["type"].as_str().unwrap_or_default().to_owned(),
            object: parsed["data"]["object"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            status: response.status,
            answer: serde_json::from_slice(&response.body).unwrap_or(Value::Null),
            body: text,
            signature,
        });
    response.status
}

/// A Stripe event about `object` (e.g. an intent as Stripe shows it), as Stripe's
/// libraries' tests build one.
pub fn event(id: &str, kind: &str, object: &Value) -> String {
    serde_json::json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "data": {"object": object},
    })
    .to_string()
}

/// A `Stripe-Signature` for `body` signed now with the test's secret.
pub fn signed(db: &PgPool, body: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    shared::payments::signature::sign(&webhook_secret(db), now, body.as_bytes())
}

impl Webhooks {
    /// Starts the endpoint for `payments` (the payments function's router) and
    /// registers it with localstripe under `db`'s name with `db`'s secret.
    pub async fn start(db: &PgPool, payments: Router) -> Self {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/webhook", post(deliver))
            .with_state(Receiver {
                payments,
                deliveries: deliveries.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the webhook endpoint");
        let url = format!(
            "http://{}/webhook",
            listener.local_addr().expect("its address")
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let name = db
            .connect_options()
            .get_database()
            .unwrap_or("backend")
            .to_owned();
        let secret = secrecy::ExposeSecret::expose_secret(&webhook_secret(db)).to_owned();
        let response = reqwest::Client::new()
            .post(format!("{}/_config/webhooks/{name}", api_base()))
            .form(&[("url", url.as_str()), ("secret", secret.as_str())])
            .send()
            .await
            .expect("localstripe answers (scripts/test starts it)");
        assert!(response.status().is_success(), "registering the webhook");
        Self { deliveries, server }
    }

    /// Pays `intent` with `card` as Stripe.js would ([`pay`]), then waits for the
    /// webhook that follows (`payment_intent.succeeded` for `pm_card_visa`, else
    /// `payment_intent.payment_failed`) and returns the function's answer to it.
    pub async fn pay_and_wait(&self, intent: &str, card: &str) -> Delivery {
        pay(intent, card).await;
        let kind = if card == "pm_card_visa" {
            "payment_intent.succeeded"
        } else {
            "payment_intent.payment_failed"
        };
        let delivery = self.wait_for(kind, intent).await;
        assert_eq!(delivery.status, StatusCode::OK, "{}", delivery.answer);
        delivery
    }

    /// Waits (up to 60 s) for a delivery of `kind` about `object` and returns it.
    /// localstripe delivers about a second after the change; the margin is for a full
    /// run, where it rewrites its whole store on its event loop after every write and a
    /// storm of payments makes deliveries queue.
    pub async fn wait_for(&self, kind: &str, object: &str) -> Delivery {
        for _ in 0..1200 {
            let found = self
                .deliveries
                .lock()
                .expect("the deliveries lock is never poisoned")
                .iter()
                .find(|d| d.kind == kind && d.object == object)
                .cloned();
            if let Some(found) = found {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("localstripe delivered no {kind} for {object}");
    }
}

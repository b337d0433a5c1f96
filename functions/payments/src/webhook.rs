//! `POST /api/v1/payments/stripe/webhook`: Stripe's deliveries.
//!
//! 1. The raw body's `Stripe-Signature` is verified against every current secret
//!    (400 when missing, stale or wrong: Stripe shows the answer in its dashboard).
//! 2. The body is parsed for the event's id, type and object id only (400 if it is not
//!    an event); an event already recorded is answered 200 at once.
//! 3. The object is re-read from Stripe: the event is a hint, the intent or refund as
//!    Stripe holds it now is the truth, so late and out-of-order deliveries are harmless.
//! 4. One transaction records the event id (a concurrent duplicate finds it taken) and
//!    settles the object into the order; 200 only after it committed.
//! 5. After commit: the buyer's notification is relayed, and refunds the settlement
//!    requested are sent to Stripe (a failure there leaves the refund `requested` for
//!    the reconciliation run to finish).

use axum::{body::Bytes, extract::State, http::HeaderMap};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::Json,
    },
    messaging::outbox,
    payments::{
        settle::{self, Applied, Outcome},
        signature,
    },
    telemetry::metrics,
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

/// The part of a Stripe event we read: the rest comes from Stripe itself.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: EventObject,
}

#[derive(Debug, Deserialize)]
struct EventObject {
    id: String,
}

/// The answer Stripe gets.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Received {
    /// Always true: the event is recorded (now or before).
    pub received: bool,
    /// What it did: `confirmed`, `refunding`, `recorded`, `already_settled`,
    /// `duplicate` (the event was seen before), `not_ours` (not an order's),
    /// `unknown_object` (Stripe has no such object) or `ignored` (a type we do not act
    /// on).
    #[schema(example = "confirmed")]
    pub outcome: String,
}

/// Receives one Stripe event.
#[utoipa::path(
    post,
    path = "/api/v1/payments/stripe/webhook",
    operation_id = "stripe_webhook",
    tag = "payments",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix time>,v1=<HMAC-SHA256 hex>`, one `v1` per signing secret")),
    request_body(content = String, content_type = "application/json", description = "A Stripe event (`payment_intent.*`, `refund.*`), as Stripe sends it"),
    responses(
        (status = 200, description = "Recorded (now or before) and settled", body = Received),
        (status = 400, description = "A missing, stale or wrong signature, or a body that is not a Stripe event", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe or the database could not be reached: Stripe delivers again later", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Received>> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    signature::verify(header, &body, &state.webhook_secrets, now)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let event: Event = serde_json::from_slice(&body)
        .map_err(|_| ApiError::BadRequest("the body is not a Stripe event".into()))?;
    tracing::info!(event_id = %event.id, kind = %event.kind, object = %event.data.object.id, "stripe event");

    let seen = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM stripe_events WHERE id = $1) AS "seen!""#,
        event.id
    )
    .fetch_one(&state.db)
    .await?;
    if seen {
        return Ok(answer("duplicate"));
    }
    let unavailable = |e: settle::SettleError| {
        tracing::error!(event_id = %event.id, error = %e, "could not settle the event");
        ApiError::Unavailable("Stripe or the database; the event will be delivered again")
    };
    let object = &event.data.object.id;
    let (applied, outcome) = if event.kind.starts_with("payment_intent.") {
        let intent = match state.stripe.retrieve_intent(object).await {
            Ok(intent) => intent,
            Err(e) if e.is_missing() => return forget(&state.db, &event).await,
            Err(e) => return Err(unavailable(e.into())),
        };
        let mut tx = state.db.begin().await?;
        if !record(&mut tx, &event).await? {
            return Ok(answer("duplicate"));
        }
        let applied = settle::apply_intent(&mut tx, &intent)
            .await
            .map_err(unavailable)?;
        tx.commit().await?;
        match (intent.status.as_str(), applied.outcome) {
            (_, Outcome::Confirmed) => metrics::count("PaymentsSucceeded"),
            ("requires_payment_method", Outcome::Recorded) => metrics::count("PaymentsFailed"),
            _ => {}
        }
        let outcome = outcome_name(applied.outcome);
        (applied, outcome)
    } else if event.kind.starts_with("refund.") {
        let refund = match state.stripe.retrieve_refund(object).await {
            Ok(refund) => refund,
            Err(e) if e.is_missing() => return forget(&state.db, &event).await,
            Err(e) => return Err(unavailable(e.into())),
        };
        let ours: Option<Uuid> = refund
            .metadata
            .get("refund_id")
            .and_then(|id| id.parse().ok());
        let mut tx = state.db.begin().await?;
        if !record(&mut tx, &event).await? {
            return Ok(answer("duplicate"));
        }
        let applied = match ours {
            Some(refund_id) => Applied {
                outbox: settle::record_refund(&mut tx, refund_id, &refund.id, &refund.status)
                    .await
                    .map_err(unavailable)?,
                outcome: Outcome::Recorded,
                refunds: Vec::new(),
            },
            None => Applied::default(),
        };
        tx.commit().await?;
        let outcome = outcome_name(applied.outcome);
        (applied, outcome)
    } else {
        // Recorded so a redelivery is a duplicate; nothing else to do.
        let mut tx = state.db.begin().await?;
        record(&mut tx, &event).await?;
        tx.commit().await?;
        (Applied::default(), "ignored")
    };

    outbox::relay(&state.db, &state.publisher, applied.outbox).await;
    for refund_id in applied.refunds {
        match settle::execute_refund(&state.db, state.stripe.as_ref(), refund_id).await {
            Ok(messages) => outbox::relay(&state.db, &state.publisher, messages).await,
            Err(e) => {
                tracing::error!(%refund_id, error = %e, "refund not sent; the reconciliation run retries it");
            }
        }
    }
    Ok(answer(outcome))
}

/// An event about an object Stripe does not have (deleted test data, another mode's
/// object): recorded and answered 200, since redelivering it cannot help; the error log
/// is what someone looks into.
async fn forget(db: &sqlx::PgPool, event: &Event) -> ApiResult<Json<Received>> {
    tracing::error!(event_id = %event.id, kind = %event.kind, object = %event.data.object.id,
        "Stripe has no such object; event recorded and not acted on");
    let mut tx = db.begin().await?;
    record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(answer("unknown_object"))
}

/// Records the event id; false if it was recorded already (a concurrent delivery).
async fn record(tx: &mut PgConnection, event: &Event) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO stripe_events (id, type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        event.id,
        event.kind,
    )
    .execute(tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::NotOurs => "not_ours",
        Outcome::Recorded => "recorded",
        Outcome::AlreadySettled => "already_settled",
        Outcome::Confirmed => "confirmed",
        Outcome::Refunding => "refunding",
    }
}

fn answer(outcome: &str) -> Json<Received> {
    Json(Received {
        received: true,
        outcome: outcome.to_owned(),
    })
}

//! Where a payment changes an order: opening an order's PaymentIntent, applying an
//! intent's authoritative state (from Stripe, never from a webhook's body), and
//! executing refunds. Exactly-once comes from the database, not from delivery: a charge
//! is one `ledger_entries` row keyed by the intent id, so however often (and in whatever
//! order) Stripe reports a payment, the order is confirmed and its tickets issued once.
//!
//! A payment that arrives after its order's hold ran out takes the tickets if they are
//! still there (under the event's lock, like any order) and is refunded if not: we never
//! oversell to honour it, and never keep money for tickets we did not issue. A second
//! successful payment of an already paid order is refunded the same way.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::stripe::{Gateway, NewIntent, PaymentIntent, StripeError};
use crate::{
    identity::UserId,
    messaging::{messages::NotificationMessage, outbox, outbox::Pending},
    ticketing::{self, Movement},
};

/// Why settling could not finish (the caller answers so that it is tried again).
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// Stripe could not be reached or refused.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    /// The database failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for SettleError {
    fn from(e: sqlx::Error) -> Self {
        Self::Other(e.into())
    }
}

/// An order's current payment, as its buyer's views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// `pi_...`
    pub intent_id: String,
    /// 1 for the order's first intent; a buyer who starts over gets the next.
    pub attempt: i32,
    /// For Stripe.js.
    pub client_secret: String,
    /// Stripe's status as last read.
    pub status: String,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl Payment {
    /// Money is moving or has moved: nothing may replace this intent.
    pub fn is_settling(&self) -> bool {
        matches!(
            self.status.as_str(),
            "succeeded" | "processing" | "requires_capture"
        )
    }

    /// Cancelled, or declined and waiting for another card: a new attempt may replace it.
    pub fn has_failed(&self) -> bool {
        self.status == "canceled" || (!self.is_settling() && self.last_error.is_some())
    }
}

/// The order's latest payment, if it has one.
pub async fn current(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as!(
        Payment,
        "SELECT intent_id, attempt, client_secret, status, last_error FROM payments
         WHERE order_id = $1 ORDER BY attempt DESC LIMIT 1",
        order_id,
    )
    .fetch_optional(conn)
    .await
}

/// A pending order's amount, if it may be paid now (its hold is live and it costs
/// something).
async fn payable(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    let order = sqlx::query!(
        r#"SELECT o.total_minor, o.currency,
                  (o.status = 'pending' AND o.hold_expires_at > now()) AS "payable!"
           FROM orders o WHERE o.id = $1"#,
        order_id,
    )
    .fetch_optional(conn)
    .await?;
    Ok(order
        .filter(|o| o.payable && o.total_minor > 0)
        .map(|o| (o.total_minor, o.currency)))
}

/// Opens the PaymentIntent of a pending, paid order whose hold is live, or returns the
/// one it has. The Stripe call happens outside any transaction (no lock is held across
/// the network) and is keyed by order and attempt, so two concurrent callers get the
/// same intent from Stripe and the second insert changes nothing.
pub async fn open_intent(
    db: &PgPool,
    gateway: &dyn Gateway,
    order_id: Uuid,
) -> Result<Option<Payment>, SettleError> {
    let mut conn = db.acquire().await?;
    if let Some(payment) = current(&mut conn, order_id).await? {
        return Ok(Some(payment));
    }
    let Some(amount) = payable(&mut conn, order_id).await? else {
        return Ok(None);
    };
    drop(conn);
    open_attempt(db, gateway, order_id, 1, amount)
        .await
        .map(Some)
}

/// What a buyer's request to pay (again) found.
#[derive(Debug)]
pub enum NextAttempt {
    /// A payment the buyer can confirm: the current one if it has not failed, else a
    /// new attempt that replaced it.
    Open(Payment),
    /// The current payment succeeded or is processing: its webhook settles the order.
    Settling(Payment),
    /// The order is not pending on a live hold, or is free.
    NotPayable,
}

/// Lets a buyer start over after a declined or cancelled payment, while the hold lasts:
/// the failed intent is cancelled at Stripe first (so it can never be charged alongside
/// its replacement), then attempt `n + 1` is opened, keyed by order and attempt, so
/// concurrent or repeated requests open one. A payment that has not failed is returned
/// as it is: the buyer can still confirm it with another card.
pub async fn next_attempt(
    db: &PgPool,
    gateway: &dyn Gateway,
    order_id: Uuid,
) -> Result<NextAttempt, SettleError> {
    let mut conn = db.acquire().await?;
    let Some(amount) = payable(&mut conn, order_id).await? else {
        return Ok(NextAttempt::NotPayable);
    };
    let previous = current(&mut conn, order_id).await?;
    drop(conn);
    let attempt = match previous {
        None => 1,
        Some(p) if p.is_settling() => return Ok(NextAttempt::Settling(p)),
        Some(p) if !p.has_failed() => return Ok(NextAttempt::Open(p)),
        Some(p) => {
            if p.status != "canceled" {
                let intent = match gateway.cancel_intent(&p.intent_id).await {
                    Ok(intent) => intent,
                    // Refused: it moved on meanwhile (the buyer confirmed it after all);
                    // what Stripe says now decides.
                    Err(StripeError::Rejected { .. }) => {
                        gateway.retrieve_intent(&p.intent_id).await?
                    }
                    Err(e) => return Err(e.into()),
                };
                let now = Payment {
                    status: intent.status,
                    ..p
                };
                if now.is_settling() {
                    return Ok(NextAttempt::Settling(now));
                }
                if now.status != "canceled" {
                    return Err(anyhow::anyhow!(
                        "Stripe would not cancel intent {} ({})",
                        now.intent_id,
                        now.status
                    )
                    .into());
                }
                sqlx::query!(
                    "UPDATE payments SET status = 'canceled', updated_at = now() WHERE intent_id = $1",
                    now.intent_id,
                )
                .execute(db)
                .await?;
            }
            p.attempt + 1
        }
    };
    let payment = open_attempt(db, gateway, order_id, attempt, amount).await?;
    Ok(NextAttempt::Open(payment))
}

/// Opens attempt `attempt` at Stripe (its idempotency key makes a repeat return the same
/// intent) and records it; returns the order's current payment.
async fn open_attempt(
    db: &PgPool,
    gateway: &dyn Gateway,
    order_id: Uuid,
    attempt: i32,
    (amount, currency): (i64, String),
) -> Result<Payment, SettleError> {
    let key = format!("order-{order_id}-attempt-{attempt}");
    let intent = gateway
        .create_intent(NewIntent {
            amount,
            currency: &currency,
            order_id,
            idempotency_key: &key,
        })
        .await?;
    let client_secret = intent
        .client_secret
        .clone()
        .ok_or_else(|| anyhow::anyhow!("intent {} came without a client secret", intent.id))?;
    let mut conn = db.acquire().await?;
    sqlx::query!(
        "INSERT INTO payments (intent_id, order_id, attempt, amount_minor, currency, client_secret, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        intent.id,
        order_id,
        attempt,
        amount,
        currency,
        client_secret,
        intent.status,
    )
    .execute(&mut *conn)
    .await?;
    tracing::info!(%order_id, attempt, intent_id = %intent.id, "payment intent opened");
    current(&mut conn, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order {order_id}'s payment vanished").into())
}

/// What applying an intent did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Messages to relay after commit.
    pub outbox: Vec<Pending>,
    /// Refunds requested in this transaction, to execute after commit.
    pub refunds: Vec<Uuid>,
    /// What happened to the order.
    pub outcome: Outcome,
}

/// What happened to the order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not an intent of ours (another system on the same Stripe account).
    #[default]
    NotOurs,
    /// The intent's state was recorded; the order did not change (a failure, a
    /// cancellation, still processing).
    Recorded,
    /// The payment was already settled before.
    AlreadySettled,
    /// The order is confirmed and its tickets issued.
    Confirmed,
    /// The money could not buy the tickets (gone, the order cancelled, the event
    /// cancelled, or paid twice): a refund is requested.
    Refunding,
}

/// Applies `intent` (as just read from Stripe) to its order, in the caller's
/// transaction.
pub async fn apply_intent(
    tx: &mut PgConnection,
    intent: &PaymentIntent,
) -> Result<Applied, SettleError> {
    let last_error = intent
        .last_payment_error
        .as_ref()
        .and_then(|e| e.message.clone().or_else(|| e.code.clone()));
    let Some(payment) = sqlx::query!(
        "UPDATE payments SET status = $2, last_error = $3, updated_at = now()
         WHERE intent_id = $1 RETURNING order_id, amount_minor, currency",
        intent.id,
        intent.status,
        last_error,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Applied::default());
    };
    if intent.status != "succeeded" {
        return Ok(Applied {
            outcome: Outcome::Recorded,
            ..Applied::default()
        });
    }
    // The charge, once: a second report of the same payment stops here.
    let charged = sqlx::query!(
        "INSERT INTO ledger_entries (id, order_id, kind, amount_minor, currency, stripe_id)
         VALUES ($1, $2, 'charge', $3, $4, $5) ON CONFLICT (stripe_id) DO NOTHING",
        Uuid::now_v7(),
        payment.order_id,
        intent.amount,
        intent.currency.to_ascii_uppercase(),
        intent.id,
    )
    .execute(&mut *tx)
    .await?;
    if charged.rows_affected() == 0 {
        return Ok(Applied {
            outcome: Outcome::AlreadySettled,
            ..Applied::default()
        });
    }
    let order_id = payment.order_id;
    // The event's lock first, as every inventory decision takes it, then the order's.
    let event = sqlx::query!(
        r#"SELECT e.id, e.status::text AS "status!" FROM events e
           WHERE e.id = (SELECT event_id FROM orders WHERE id = $1) FOR NO KEY UPDATE"#,
        order_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let order = sqlx::query!(
        r#"SELECT status::text AS "status!", hold_expires_at > clock_timestamp() AS "live!"
           FROM orders WHERE id = $1 FOR UPDATE"#,
        order_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let refund_reason = match (order.status.as_str(), order.live) {
        _ if event.status == "cancelled" => Some("event_cancelled"),
        ("pending", true) => {
            ticketing::record(tx, order_id, Movement::Confirm).await?;
            None
        }
        ("confirmed" | "refunded", _) => Some("duplicate_payment"),
        ("cancelled", _) => Some("order_cancelled"),
        // Paid after the hold ran out: the tickets again if they are still there.
        _ => {
            ticketing::release_lapsed(tx, event.id).await?;
            if ticketing::fits(tx, event.id, order_id).await? {
                ticketing::record(tx, order_id, Movement::Sell).await?;
                None
            } else {
                Some("paid_after_hold")
            }
        }
    };
    if let Some(reason) = refund_reason {
        let refund =
            super::refunds::request(tx, order_id, &intent.id, intent.amount, reason, None).await?;
        tracing::warn!(%order_id, intent_id = %intent.id, reason, "payment refunded: it bought no tickets");
        return Ok(Applied {
            outbox: Vec::new(),
            refunds: vec![refund],
            outcome: Outcome::Refunding,
        });
    }
    sqlx::query!(
        "UPDATE orders SET status = 'confirmed', confirmed_at = now(), paid_at = now(),
                           updated_at = now()
         WHERE id = $1",
        order_id,
    )
    .execute(&mut *tx)
    .await?;
    let outbox = ticketing::issue_tickets(tx, order_id).await?;
    tracing::info!(%order_id, intent_id = %intent.id, "order paid");
    Ok(Applied {
        outbox,
        refunds: Vec::new(),
        outcome: Outcome::Confirmed,
    })
}

/// Sends a requested refund to Stripe (keyed by its id: a retry returns the same
/// refund) and records what Stripe says; a succeeded refund enters the ledger once and
/// the buyer is told. Returns the messages to relay.
pub async fn execute_refund(
    db: &PgPool,
    gateway: &dyn Gateway,
    refund_id: Uuid,
) -> Result<Vec<Pending>, SettleError> {
    let Some(refund) = sqlx::query!(
        r#"SELECT intent_id, amount_minor, status::text AS "status!" FROM refunds WHERE id = $1"#,
        refund_id,
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(Vec::new());
    };
    if refund.status == "succeeded" || refund.status == "failed" {
        return Ok(Vec::new());
    }
    let stripe_refund = match gateway
        .create_refund(&refund.intent_id, Some(refund.amount_minor), refund_id)
        .await
    {
        Ok(stripe_refund) => stripe_refund,
        // Refused for good (e.g. more than the charge): retrying will not help; the
        // error log is what someone acts on.
        Err(StripeError::Rejected {
            status, message, ..
        }) => {
            tracing::error!(%refund_id, status, %message, "Stripe refused a refund; marked failed");
            sqlx::query!(
                "UPDATE refunds SET status = 'failed', updated_at = now() WHERE id = $1",
                refund_id
            )
            .execute(db)
            .await?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let mut tx = db.begin().await?;
    let outbox =
        record_refund(&mut tx, refund_id, &stripe_refund.id, &stripe_refund.status).await?;
    tx.commit().await?;
    Ok(outbox)
}

/// Records Stripe's state of one of our refunds, in the caller's transaction.
pub async fn record_refund(
    tx: &mut PgConnection,
    refund_id: Uuid,
    stripe_refund_id: &str,
    stripe_status: &str,
) -> Result<Vec<Pending>, SettleError> {
    let status = match stripe_status {
        "succeeded" => "succeeded",
        "failed" | "canceled" => "failed",
        _ => "pending",
    };
    let Some(refund) = sqlx::query!(
        r#"UPDATE refunds SET status = $2::text::refund_status, stripe_refund_id = $3, updated_at = now()
           WHERE id = $1 AND status <> 'succeeded'
           RETURNING order_id, amount_minor, reason"#,
        refund_id,
        status,
        stripe_refund_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Vec::new());
    };
    if status != "succeeded" {
        return Ok(Vec::new());
    }
    let entered = sqlx::query!(
        "INSERT INTO ledger_entries (id, order_id, kind, amount_minor, currency, stripe_id)
         SELECT $1, id, 'refund', $2, currency, $3 FROM orders WHERE id = $4
         ON CONFLICT (stripe_id) DO NOTHING",
        Uuid::now_v7(),
        refund.amount_minor,
        stripe_refund_id,
        refund.order_id,
    )
    .execute(&mut *tx)
    .await?;
    if entered.rows_affected() == 0 {
        return Ok(Vec::new());
    }
    let order = sqlx::query!(
        "SELECT o.buyer_id, o.currency, e.title FROM orders o JOIN events e ON e.id = o.event_id
         WHERE o.id = $1",
        refund.order_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let Some(buyer) = order.buyer_id else {
        return Ok(Vec::new());
    };
    let message = NotificationMessage::payment_refunded(
        UserId(buyer),
        &order.title,
        &money(refund.amount_minor, &order.currency),
        why(&refund.reason),
    );
    Ok(vec![outbox::enqueue(tx, &message).await?])
}

/// Minor units as the buyer reads them: "20.00 EUR" (two decimals; the currencies we
/// sell in have them).
fn money(minor: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", minor / 100, minor % 100)
}

fn why(reason: &str) -> &'static str {
    match reason {
        "paid_after_hold" => {
            "your payment arrived after your reservation ran out and the tickets were sold."
        }
        "duplicate_payment" => "this order had already been paid.",
        "order_cancelled" => "the order had been cancelled.",
        "event_cancelled" => "the event has been cancelled.",
        _ => "the organizer refunded your order.",
    }
}

//! Refund requests: decided in the transaction that decides them, sent to Stripe after
//! commit (`settle::execute_refund`, or the reconciliation run), so a crash between the
//! two is finished later and never refunds twice. Built without the Stripe client, so
//! a function that only decides refunds (cancelling an event) does not link it.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::identity::UserId;

/// Writes a refund request of `amount` against `intent_id`.
pub async fn request(
    tx: &mut PgConnection,
    order_id: Uuid,
    intent_id: &str,
    amount: i64,
    reason: &str,
    requested_by: Option<UserId>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO refunds (id, order_id, intent_id, amount_minor, reason, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        order_id,
        intent_id,
        amount,
        reason,
        requested_by.map(|u| u.0),
    )
    .execute(tx)
    .await?;
    Ok(id)
}

/// Requests a refund of everything not yet refunded (or being refunded) of each paid,
/// confirmed order of a cancelled event, and marks those orders `refunded`. Call it in
/// the transaction that cancels the event, under its lock; the requests are sent by the
/// reconciliation run. Returns how many orders it refunds.
pub async fn refund_event(tx: &mut PgConnection, event_id: Uuid) -> Result<u64, sqlx::Error> {
    let requested = sqlx::query!(
        "WITH owed AS (
             SELECT o.id, p.intent_id,
                    c.charged - coalesce((SELECT sum(amount_minor) FROM refunds r
                                          WHERE r.order_id = o.id AND r.status <> 'failed'), 0) AS amount
             FROM orders o
             JOIN LATERAL (SELECT intent_id FROM payments
                           WHERE order_id = o.id AND status = 'succeeded'
                           ORDER BY attempt DESC LIMIT 1) p ON true
             JOIN LATERAL (SELECT sum(amount_minor) AS charged FROM ledger_entries
                           WHERE order_id = o.id AND kind = 'charge') c ON true
             WHERE o.event_id = $1 AND o.status = 'confirmed'),
         requested AS (
             INSERT INTO refunds (id, order_id, intent_id, amount_minor, reason)
             SELECT gen_random_uuid(), id, intent_id, amount, 'event_cancelled'
             FROM owed WHERE amount > 0
             RETURNING order_id)
         UPDATE orders SET status = 'refunded', refunded_at = now(), updated_at = now()
         WHERE id IN (SELECT order_id FROM requested)",
        event_id,
    )
    .execute(tx)
    .await?;
    Ok(requested.rows_affected())
}

//! The reconciliation run: what a lost webhook or a crash after commit would leave
//! undone, found from our own tables and finished from Stripe's state. Webhooks can be
//! disabled, misconfigured or days late; this run makes the outcome not depend on them.
//!
//! Each run, in small bounded batches:
//! 1. refunds still `requested` (decided, never sent: a crash between commit and the
//!    Stripe call, or Stripe was down) are sent, keyed by their id so none is sent twice;
//!    refunds `pending` at Stripe are read again;
//! 2. payments of orders that are no longer live (the hold ran out, the order or its event
//!    was cancelled) and are not final at Stripe are cancelled, so nobody pays for a hold
//!    that is gone (one that succeeded meanwhile is settled, and refunded if it bought
//!    nothing);
//! 3. payments not final after `settle_after` are read from Stripe and applied as their
//!    webhook would have.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{
    settle::{self, SettleError},
    stripe::Gateway,
};
use crate::messaging::outbox::Pending;

/// Most rows each step takes per run; the next run takes the rest.
pub const BATCH: i64 = 50;

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Refunds sent or read again.
    pub refunds: u32,
    /// Payments of dead holds cancelled at Stripe.
    pub cancelled: u32,
    /// Payments read from Stripe and applied.
    pub settled: u32,
    /// Steps that failed (Stripe down): tried again next run.
    pub failed: u32,
}

/// Runs the three steps; returns the report and the messages to relay.
pub async fn run(
    db: &PgPool,
    gateway: &dyn Gateway,
    settle_after: Duration,
) -> Result<(Report, Vec<Pending>), sqlx::Error> {
    let mut report = Report::default();
    let mut outbox = Vec::new();

    let refunds = sqlx::query!(
        r#"SELECT id, status::text AS "status!", stripe_refund_id FROM refunds
           WHERE status IN ('requested', 'pending') ORDER BY created_at LIMIT $1"#,
        BATCH,
    )
    .fetch_all(db)
    .await?;
    for refund in refunds {
        let done = match (refund.status.as_str(), refund.stripe_refund_id) {
            (_, Some(stripe_id)) => reread_refund(db, gateway, refund.id, &stripe_id).await,
            _ => settle::execute_refund(db, gateway, refund.id).await,
        };
        tally(
            &mut report.refunds,
            &mut report.failed,
            &mut outbox,
            done,
            refund.id,
        );
    }

    // Payments whose order holds nothing any more, not final at Stripe.
    let dead = sqlx::query_scalar!(
        r#"SELECT p.intent_id FROM payments p JOIN orders o ON o.id = p.order_id
           JOIN events e ON e.id = o.event_id
           WHERE p.status NOT IN ('succeeded', 'canceled')
             AND (o.status IN ('expired', 'cancelled')
                  OR (o.status = 'pending' AND o.hold_expires_at <= now())
                  OR e.status = 'cancelled')
           ORDER BY p.updated_at LIMIT $1"#,
        BATCH,
    )
    .fetch_all(db)
    .await?;
    for intent_id in dead {
        let applied = cancel_and_apply(db, gateway, &intent_id).await;
        follow_up(
            db,
            gateway,
            &mut report,
            &mut outbox,
            applied,
            Step::Cancel,
            &intent_id,
        )
        .await;
    }

    // Payments not final for a while: their webhook may never come.
    let stale = sqlx::query_scalar!(
        "SELECT intent_id FROM payments
         WHERE status NOT IN ('succeeded', 'canceled') AND updated_at <= now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT $2",
        settle_after.as_secs_f64(),
        BATCH,
    )
    .fetch_all(db)
    .await?;
    for intent_id in stale {
        let applied = reread_intent(db, gateway, &intent_id).await;
        follow_up(
            db,
            gateway,
            &mut report,
            &mut outbox,
            applied,
            Step::Settle,
            &intent_id,
        )
        .await;
    }
    Ok((report, outbox))
}

/// Which step applied a payment.
#[derive(Clone, Copy)]
enum Step {
    Cancel,
    Settle,
}

/// Counts a payment a step applied, keeps its messages and sends the refunds it
/// requested (a failure is counted and left for the next run).
async fn follow_up(
    db: &PgPool,
    gateway: &dyn Gateway,
    report: &mut Report,
    outbox: &mut Vec<Pending>,
    applied: Result<(Vec<Pending>, Vec<Uuid>), SettleError>,
    step: Step,
    intent_id: &str,
) {
    match applied {
        Ok((messages, requested)) => {
            match step {
                Step::Cancel => report.cancelled += 1,
                Step::Settle => report.settled += 1,
            }
            outbox.extend(messages);
            for refund in requested {
                let sent = settle::execute_refund(db, gateway, refund).await;
                tally(
                    &mut report.refunds,
                    &mut report.failed,
                    outbox,
                    sent,
                    refund,
                );
            }
        }
        Err(e) => {
            report.failed += 1;
            tracing::warn!(%intent_id, error = %e, "could not bring a payment up to date with Stripe");
        }
    }
}

fn tally(
    done: &mut u32,
    failed: &mut u32,
    outbox: &mut Vec<Pending>,
    result: Result<Vec<Pending>, SettleError>,
    refund: Uuid,
) {
    match result {
        Ok(messages) => {
            *done += 1;
            outbox.extend(messages);
        }
        Err(e) => {
            *failed += 1;
            tracing::warn!(%refund, error = %e, "refund not finished; the next run tries again");
        }
    }
}

async fn reread_refund(
    db: &PgPool,
    gateway: &dyn Gateway,
    refund_id: Uuid,
    stripe_id: &str,
) -> Result<Vec<Pending>, SettleError> {
    let refund = gateway.retrieve_refund(stripe_id).await?;
    let mut tx = db.begin().await?;
    let messages = settle::record_refund(&mut tx, refund_id, &refund.id, &refund.status).await?;
    tx.commit().await?;
    Ok(messages)
}

/// Reads an intent from Stripe and applies it; returns the messages and the refunds it
/// requested.
async fn reread_intent(
    db: &PgPool,
    gateway: &dyn Gateway,
    intent_id: &str,
) -> Result<(Vec<Pending>, Vec<Uuid>), SettleError> {
    let intent = gateway.retrieve_intent(intent_id).await?;
    let mut tx = db.begin().await?;
    let applied = settle::apply_intent(&mut tx, &intent).await?;
    tx.commit().await?;
    Ok((applied.outbox, applied.refunds))
}

/// Cancels a dead hold's intent; if Stripe says it cannot (it succeeded meanwhile), the
/// payment is applied instead (and refunded, having bought nothing).
async fn cancel_and_apply(
    db: &PgPool,
    gateway: &dyn Gateway,
    intent_id: &str,
) -> Result<(Vec<Pending>, Vec<Uuid>), SettleError> {
    let intent = match gateway.cancel_intent(intent_id).await {
        Ok(intent) => intent,
        Err(_) => gateway.retrieve_intent(intent_id).await?,
    };
    let mut tx = db.begin().await?;
    let applied = settle::apply_intent(&mut tx, &intent).await?;
    tx.commit().await?;
    Ok((applied.outbox, applied.refunds))
}

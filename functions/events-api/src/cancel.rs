//! Cancelling an event, and telling its ticket holders about it (and about a change of
//! time or venue).
//!
//! Cancelling is one transaction under the event's lock (so no order slips in): the
//! event becomes `cancelled`, every ticket void, every pending order cancelled, and each
//! buyer with tickets gets a notification through the outbox (inbox and email, sent by
//! the notifications worker). Each paid order gets a refund of what is left of its
//! charge, requested in the same transaction (the order becomes `refunded`) and sent to
//! Stripe by the `payments-reconcile` run, so a crash halfway refunds each order once.
//! Cancelling again changes nothing.

use axum::{extract::State, http::StatusCode, response::Response};
use shared::{
    http::{
        error::{ApiResult, Problem},
        extract::Path,
    },
    identity::{UserId, guard::Organizer},
    messaging::{messages::NotificationMessage, outbox},
    payments::refunds,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    AppState,
    event::{Event, EventStatus},
    manage::{event_response, organizers_event, set_status},
};

/// Cancels one of the caller's events.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event}/cancel",
    operation_id = "cancel_event",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled event: its tickets are void, its pending orders cancelled, its paid orders refunded, its ticket holders told", body = Event),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn cancel(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let mut tx = state.db.begin().await?;
    let event = organizers_event(&mut tx, &user, &key, true).await?;
    if event.status == EventStatus::Cancelled {
        return Ok(event_response(StatusCode::OK, event, false));
    }
    let cancelled = set_status(&mut tx, event.id, EventStatus::Cancelled).await?;
    let holders = ticket_holders(&mut tx, event.id).await?;
    // Every paid order gets its money back: decided here, sent by the reconciliation run
    // (each request once, whenever this transaction committed).
    let refunding = refunds::refund_event(&mut tx, event.id).await?;
    let voided = sqlx::query!(
        "UPDATE tickets SET status = 'void', voided_at = now()
         WHERE event_id = $1 AND status = 'valid'",
        event.id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let released = sqlx::query!(
        "UPDATE orders SET status = 'cancelled', cancelled_at = now(), updated_at = now()
         WHERE event_id = $1 AND status = 'pending'",
        event.id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Every pending order (lapsed or live) is cancelled: nothing is held any more.
    sqlx::query!(
        "UPDATE ticket_types SET held = 0 WHERE event_id = $1",
        event.id
    )
    .execute(&mut *tx)
    .await?;
    let mut pending = Vec::with_capacity(holders.len());
    for buyer in &holders {
        let message = NotificationMessage::event_cancelled(UserId(*buyer), &event.title);
        pending.push(outbox::enqueue(&mut tx, &message).await?);
    }
    tx.commit().await?;
    tracing::info!(event_id = %event.id, voided, released, refunding, told = holders.len(), "event cancelled");
    outbox::relay(&state.db, &state.publisher, pending).await;
    Ok(event_response(StatusCode::OK, cancelled, false))
}

/// The buyers who hold valid tickets of the event (each once).
pub(crate) async fn ticket_holders(
    conn: &mut PgConnection,
    event_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT o.buyer_id AS "buyer!"
           FROM tickets t JOIN orders o ON o.id = t.order_id
           WHERE t.event_id = $1 AND t.status = 'valid' AND o.buyer_id IS NOT NULL"#,
        event_id
    )
    .fetch_all(conn)
    .await
}

/// Tells the ticket holders that the event moved in time or place, when it did: the
/// messages to relay after commit.
pub(crate) async fn tell_of_change(
    conn: &mut PgConnection,
    before: &Event,
    after: &Event,
) -> anyhow::Result<Vec<outbox::Pending>> {
    let moved = before.starts_at != after.starts_at || before.ends_at != after.ends_at;
    let relocated = before.venue != after.venue;
    if !(moved || relocated) || after.status != EventStatus::Published {
        return Ok(Vec::new());
    }
    let when = after
        .starts_at
        .format(&time::format_description::well_known::Rfc3339)?;
    let change = match (moved, relocated) {
        (true, true) => format!(
            "{} now starts at {when} ({}) at {}, {}.",
            after.title, after.timezone, after.venue.name, after.venue.city
        ),
        (true, false) => format!("{} now starts at {when} ({}).", after.title, after.timezone),
        _ => format!(
            "{} has moved to {}, {}, {}.",
            after.title, after.venue.name, after.venue.address, after.venue.city
        ),
    };
    let mut pending = Vec::new();
    for buyer in ticket_holders(conn, after.id).await? {
        let message = NotificationMessage::event_changed(UserId(buyer), &after.title, &change);
        pending.push(outbox::enqueue(conn, &message).await?);
    }
    Ok(pending)
}

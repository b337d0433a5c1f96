//! Placing an order: one transaction that claims the `Idempotency-Key`, locks the event,
//! checks every rule against what is sold and held right now, and writes the order.
//!
//! The event's row lock serialises every decision about its inventory (orders here,
//! quantity changes and cancellation in the events function), so two buyers can never
//! both take the last ticket, and a discount code's last use goes to one of them. What
//! is taken is counted from the orders themselves (`shared::ticketing::taken`): an
//! expired hold stops counting the moment it expires.
//!
//! A free order (total 0) is confirmed at once: tickets issued, the buyer notified
//! through the outbox. A paid one stays `pending` on its hold, and once committed gets
//! its Stripe PaymentIntent (`shared::payments::settle::open_intent`); the payment's
//! webhook confirms it the same way (`shared::ticketing::issue_tickets`).

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use shared::{
    http::{
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::Json,
        idempotency::{IDEMPOTENT_REPLAYED, IdempotencyKey, Keyed, Stored},
    },
    identity::{UserId, guard::CurrentUser},
    messaging::outbox::{self, Pending},
    payments::settle,
    telemetry::metrics,
    ticketing::{self, Movement, OrderStatus},
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    AppState,
    discount::{self, Discount},
    order::{self, CheckedOrder, CreateOrder, Order},
};

/// The idempotency scope of this operation.
const SCOPE: &str = "create_order";

/// Places an order: reserves its tickets atomically and holds them for the hold period.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    operation_id = "create_order",
    tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "A fresh UUID per order attempt; a retry sends the same one")),
    request_body = CreateOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The order: `confirmed` with its tickets when free, else `pending` until `hold_expires_at` with its `payment` (the PaymentIntent's client secret and the publishable key, for Stripe.js). A replay shows the order as it is now and carries `Idempotent-Replayed: true`.", body = Order),
        (status = 400, description = "Malformed JSON, or a missing or malformed `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such published event", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Sold out (or not enough left), the discount code is used up, the event is cancelled, or the same key is still being processed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines (unknown, hidden or off-sale types, quantities outside the limits), an invalid discount code or attendee names, or the key was used for another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order is placed but Stripe could not be reached to open its payment: retry with the same key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this user's budget of writes; `Retry-After` says when to retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    key: IdempotencyKey,
    Json(request): Json<CreateOrder>,
) -> ApiResult<Response> {
    state.writes.hit(&state.db, user.id).await?;
    let keyed = Keyed::new(user.id.0, SCOPE, &key, &request)?;
    let checked = request.check().map_err(ApiError::Validation)?;
    let mut tx = state.db.begin().await?;
    // A replay shows the order as it is now (paid, expired, ...), with its payment.
    let (order_id, pending, replayed) = match keyed.claim_stored(&mut tx).await? {
        Some(stored) => match stored_order(&stored) {
            Some(id) => (id, Vec::new(), true),
            None => return Ok(stored.into_response()),
        },
        None => {
            let (order_id, pending) = reserve(&mut tx, user.id, &checked, state.hold).await?;
            let order = order::load(&mut tx, order_id, None, &state.publishable_key)
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("order {order_id} vanished")))?;
            keyed.record(&mut tx, StatusCode::CREATED, &order).await?;
            tracing::info!(%order_id, status = ?order.status, total = order.total_minor, "order placed");
            (order_id, pending, false)
        }
    };
    tx.commit().await?;
    if !replayed {
        metrics::count("OrdersPlaced");
    }
    outbox::relay(&state.db, &state.publisher, pending).await;
    // A paid order's PaymentIntent, opened after commit (no lock is held across Stripe)
    // and keyed by the order, so a replay returns the same one, or opens it if the first
    // attempt could not reach Stripe.
    settle::open_intent(&state.db, state.stripe.as_ref(), order_id)
        .await
        .map_err(|e| {
            tracing::error!(%order_id, error = %e, "could not open the payment intent");
            ApiError::Unavailable("the payment provider; retry with the same Idempotency-Key")
        })?;
    let mut conn = state.db.acquire().await?;
    let order = order::load(&mut conn, order_id, None, &state.publishable_key)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("order {order_id} vanished")))?;
    let mut response = (StatusCode::CREATED, Json(&order)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/orders/{}", order.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The order a stored 201 created.
fn stored_order(stored: &Stored) -> Option<Uuid> {
    (stored.status == StatusCode::CREATED)
        .then(|| stored.body.get("id")?.as_str()?.parse().ok())
        .flatten()
}

/// The event as an order needs it, locked.
struct LockedEvent {
    id: Uuid,
    status: String,
    starts_at: OffsetDateTime,
    capacity: Option<i32>,
}

/// A ticket type as an order needs it.
struct TypeRow {
    id: Uuid,
    name: String,
    price_minor: i64,
    currency: String,
    quantity: i32,
    sales_start: Option<OffsetDateTime>,
    sales_end: Option<OffsetDateTime>,
    min_per_order: i32,
    max_per_order: i32,
    hidden: bool,
}

/// Reserves the order's tickets and writes it; returns its id and the messages to relay.
async fn reserve(
    tx: &mut PgConnection,
    buyer: UserId,
    order: &CheckedOrder,
    hold: Duration,
) -> ApiResult<(Uuid, Vec<Pending>)> {
    // The lock every inventory decision about this event takes (see the module docs).
    let event = sqlx::query_as!(
        LockedEvent,
        r#"SELECT id, status::text AS "status!", starts_at, capacity
           FROM events WHERE id = $1 FOR NO KEY UPDATE"#,
        order.event_id,
    )
    .fetch_optional(&mut *tx)
    .await?
    // A draft is invisible to buyers, as on the public page.
    .filter(|e| e.status != "draft")
    .ok_or(ApiError::NotFound("event"))?;
    if event.status == "cancelled" {
        return Err(ApiError::Conflict("this event is cancelled".into()));
    }
    let types = sqlx::query_as!(
        TypeRow,
        "SELECT id, name, price_minor, currency, quantity, sales_start, sales_end,
                min_per_order, max_per_order, hidden
         FROM ticket_types WHERE event_id = $1",
        event.id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let now = OffsetDateTime::now_utc();
    let lines = match_lines(order, &types, &event, now)?;

    ticketing::release_lapsed(tx, event.id).await?;
    let taken = ticketing::taken(tx, event.id).await?;
    let event_taken: i64 = taken.values().map(|t| t.total()).sum();
    for (ty, quantity) in &lines {
        let left = ticketing::remaining(
            ty.quantity,
            taken.get(&ty.id).copied().unwrap_or_default(),
            None,
            0,
        );
        if *quantity > left {
            return Err(ApiError::Conflict(sold_out(&ty.name, left)));
        }
    }
    let wanted: i64 = lines.iter().map(|(_, q)| i64::from(*q)).sum();
    if let Some(capacity) = event.capacity
        && event_taken + wanted > i64::from(capacity)
    {
        return Err(ApiError::Conflict(
            match (i64::from(capacity) - event_taken).max(0) {
                0 => "the event is sold out".to_owned(),
                1 => "only 1 ticket remains for this event".to_owned(),
                n => format!("only {n} tickets remain for this event"),
            },
        ));
    }

    let priced: Vec<(Uuid, i32, i64)> = lines
        .iter()
        .map(|(t, q)| (t.id, *q, t.price_minor))
        .collect();
    let discount = match &order.discount_code {
        Some(code) => Some(discount::apply(tx, event.id, code, &priced, now).await?),
        None => None,
    };
    let line_discounts = discount
        .as_ref()
        .map_or_else(|| vec![0; priced.len()], |d: &Discount| d.per_line.clone());
    let subtotal: i64 = priced.iter().map(|(_, q, p)| i64::from(*q) * p).sum();
    let discount_total: i64 = line_discounts.iter().sum();
    let total = subtotal - discount_total;
    let currency = lines
        .first()
        .map(|(t, _)| t.currency.clone())
        .unwrap_or_default();

    let id = Uuid::now_v7();
    let status = if total == 0 {
        OrderStatus::Confirmed
    } else {
        OrderStatus::Pending
    };
    sqlx::query!(
        // Stamped with the time of the decision (under the lock), not the transaction's
        // start: a buyer who queued for the lock still gets the whole hold, and orders'
        // creation times follow the order in which they were decided.
        "INSERT INTO orders (id, event_id, buyer_id, status, currency, subtotal_minor,
                             discount_minor, total_minor, discount_code_id, created_at,
                             updated_at, hold_expires_at, confirmed_at, attendee_names)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, at, at, at + make_interval(secs => $10),
                CASE WHEN $4 = 'confirmed'::order_status THEN at END, $11
         FROM (SELECT clock_timestamp() AS at) decided",
        id,
        event.id,
        buyer.0,
        status as OrderStatus,
        currency,
        subtotal,
        discount_total,
        total,
        discount.as_ref().map(|d| d.id),
        hold.as_secs_f64(),
        order.attendees.as_deref(),
    )
    .execute(&mut *tx)
    .await?;
    let type_ids: Vec<Uuid> = priced.iter().map(|(t, _, _)| *t).collect();
    let quantities: Vec<i32> = priced.iter().map(|(_, q, _)| *q).collect();
    let prices: Vec<i64> = priced.iter().map(|(_, _, p)| *p).collect();
    sqlx::query!(
        "INSERT INTO order_lines (order_id, ticket_type_id, quantity, unit_price_minor,
                                  discount_minor, position)
         SELECT $1, t, q, p, d, (n - 1)::smallint
         FROM unnest($2::uuid[], $3::int[], $4::bigint[], $5::bigint[])
              WITH ORDINALITY AS l (t, q, p, d, n)",
        id,
        &type_ids,
        &quantities,
        &prices,
        &line_discounts,
    )
    .execute(&mut *tx)
    .await?;
    let pending = if status == OrderStatus::Confirmed {
        ticketing::record(tx, id, Movement::Sell).await?;
        ticketing::issue_tickets(tx, id).await?
    } else {
        ticketing::record(tx, id, Movement::Hold).await?;
        Vec::new()
    };
    Ok((id, pending))
}

/// Pairs each line with its ticket type and checks the type may be sold now in that
/// quantity; every failing line at once.
fn match_lines<'t>(
    order: &CheckedOrder,
    types: &'t [TypeRow],
    event: &LockedEvent,
    now: OffsetDateTime,
) -> ApiResult<Vec<(&'t TypeRow, i32)>> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    for (i, (type_id, quantity)) in order.lines.iter().enumerate() {
        // A hidden type is sold to nobody; to a buyer it does not exist.
        let Some(ty) = types.iter().find(|t| t.id == *type_id && !t.hidden) else {
            errors.push(FieldError::new(
                format!("lines[{i}].ticket_type_id"),
                "unknown_ticket_type",
                "not a ticket type on sale for this event",
            ));
            continue;
        };
        if ty.sales_start.is_some_and(|s| now < s) {
            errors.push(FieldError::new(
                format!("lines[{i}].ticket_type_id"),
                "sales_not_open",
                format!("sales of {} have not opened yet", ty.name),
            ));
        } else if now >= ty.sales_end.unwrap_or(event.starts_at) {
            errors.push(FieldError::new(
                format!("lines[{i}].ticket_type_id"),
                "sales_closed",
                format!("sales of {} have closed", ty.name),
            ));
        }
        if !(ty.min_per_order..=ty.max_per_order).contains(quantity) {
            errors.push(FieldError::new(
                format!("lines[{i}].quantity"),
                "out_of_range",
                format!(
                    "{} is sold {} to {} per order",
                    ty.name, ty.min_per_order, ty.max_per_order
                ),
            ));
        }
        lines.push((ty, *quantity));
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn sold_out(name: &str, left: i32) -> String {
    match left {
        0 => format!("{name} is sold out"),
        1 => format!("only 1 {name} ticket remains"),
        n => format!("only {n} {name} tickets remain"),
    }
}

//! `POST /api/v1/orders/{id}/payment`: the buyer starts the payment over after a declined
//! card or a cancelled payment, while the hold lasts.
//!
//! Stripe.js can retry a declined PaymentIntent with another card by itself; this route
//! is for when that intent cannot be used any more (cancelled, or the frontend chose to
//! start afresh) and for a paid order whose intent could not be opened when it was
//! placed. `shared::payments::settle::next_attempt` cancels the failed intent before it
//! opens the next attempt, so two intents of one order are never payable at once (and a
//! payment that slips through anyway is refunded as a duplicate when it is settled).
//! Asking again returns the same payment until it fails too: no `Idempotency-Key` needed.

use axum::extract::State;
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path},
    },
    identity::guard::CurrentUser,
    payments::settle::{self, NextAttempt},
    ticketing::OrderStatus,
};
use uuid::Uuid;

use crate::{
    AppState,
    order::{self, Order},
};

/// Pay for a pending order (again): returns the order with a payment to confirm.
///
/// The current payment if it can still be confirmed; after a decline or a cancellation, a
/// new one (the failed intent is cancelled first). 409 if the order is not pending on a
/// live hold, is free, or its payment already succeeded or is processing.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/payment",
    operation_id = "retry_order_payment",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order, with a payment to confirm with Stripe.js", body = Order),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not payable: not pending, hold expired, free, or already paying", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Stripe could not be reached; retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn retry(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    let mut conn = state.db.acquire().await?;
    let status = sqlx::query!(
        r#"SELECT status AS "status: OrderStatus", hold_expires_at, total_minor FROM orders
           WHERE id = $1 AND buyer_id = $2"#,
        id,
        user.id.0,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    if status.total_minor == 0 {
        return Err(ApiError::Conflict(
            "this order is free: there is nothing to pay".into(),
        ));
    }
    drop(conn);
    let next = settle::next_attempt(&state.db, state.stripe.as_ref(), id)
        .await
        .map_err(|e| {
            tracing::error!(order_id = %id, error = %e, "could not open a new payment attempt");
            ApiError::Unavailable("the payment provider; retry")
        })?;
    match next {
        NextAttempt::Open(_) => {}
        NextAttempt::Settling(_) => {
            return Err(ApiError::Conflict(
                "this order's payment already succeeded or is processing; its confirmation follows"
                    .into(),
            ));
        }
        NextAttempt::NotPayable => {
            let now = time::OffsetDateTime::now_utc();
            let why = match status.status.at(status.hold_expires_at, now) {
                OrderStatus::Expired => "this order's hold has expired; place a new order",
                OrderStatus::Cancelled => "this order was cancelled",
                OrderStatus::Confirmed => "this order is paid",
                OrderStatus::Refunded => "this order has been refunded",
                OrderStatus::Pending => "this order cannot be paid now",
            };
            return Err(ApiError::Conflict(why.into()));
        }
    }
    let mut conn = state.db.acquire().await?;
    let order = order::load(&mut conn, id, Some(user.id.0), &state.publishable_key)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    Ok(Json(order))
}

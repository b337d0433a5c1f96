//! The buyer's orders: the list, one order, and cancelling one while it is pending. An
//! order is its buyer's: anyone else gets 404.

use axum::extract::State;
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path, Query},
        pagination::{self, CreatedKey, Page, PageParams},
    },
    identity::guard::CurrentUser,
    ticketing::{self, Movement, OrderStatus},
};
use uuid::Uuid;

use crate::{
    AppState,
    order::{self, Order},
};

/// Lists the caller's orders, newest first (lines and tickets included).
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    operation_id = "list_my_orders",
    tag = "orders",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's orders", body = Page<Order>),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<Order>>> {
    let (size, after): (_, Option<CreatedKey>) = params.parse()?;
    let mut conn = state.db.acquire().await?;
    let ids = sqlx::query_scalar!(
        "SELECT id FROM orders
         WHERE buyer_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC
         LIMIT $4",
        user.id.0,
        after.map(|k| k.t),
        after.map(|k| k.id),
        size.fetch(),
    )
    .fetch_all(&mut *conn)
    .await?;
    // A page is at most 100 small orders; three indexed reads each keeps one shape of
    // order everywhere.
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(order) =
            order::load(&mut conn, id, Some(user.id.0), &state.publishable_key).await?
        {
            orders.push(order);
        }
    }
    Ok(Json(pagination::page(orders, size, |o| CreatedKey {
        t: o.created_at,
        id: o.id,
    })))
}

/// One of the caller's orders.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    operation_id = "get_order",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn fetch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    let mut conn = state.db.acquire().await?;
    order::load(&mut conn, id, Some(user.id.0), &state.publishable_key)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("order"))
}

/// Cancels one of the caller's pending orders, releasing its hold at once. Cancelling a
/// cancelled order again is harmless (200).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/cancel",
    operation_id = "cancel_order",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled order", body = Order),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Confirmed (ask the organizer for a refund) or its hold expired", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Order>> {
    let mut tx = state.db.begin().await?;
    // Only a live hold is cancelled; the row lock keeps a concurrent confirmation (the
    // payments step) from crossing it.
    let current = sqlx::query!(
        r#"SELECT status AS "status: OrderStatus", hold_expires_at FROM orders
           WHERE id = $1 AND buyer_id = $2 FOR UPDATE"#,
        id,
        user.id.0,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    match current
        .status
        .at(current.hold_expires_at, time::OffsetDateTime::now_utc())
    {
        OrderStatus::Pending => {
            sqlx::query!(
                "UPDATE orders SET status = 'cancelled', cancelled_at = now(), updated_at = now()
                 WHERE id = $1",
                id
            )
            .execute(&mut *tx)
            .await?;
            ticketing::record(&mut tx, id, Movement::Release).await?;
            tracing::info!(order_id = %id, "order cancelled by its buyer");
        }
        OrderStatus::Cancelled => {}
        OrderStatus::Confirmed => {
            return Err(ApiError::Conflict(
                "a confirmed order cannot be cancelled; ask the organizer for a refund".into(),
            ));
        }
        OrderStatus::Expired => {
            return Err(ApiError::Conflict(
                "this order's hold has expired; it holds nothing to release".into(),
            ));
        }
        OrderStatus::Refunded => {
            return Err(ApiError::Conflict("this order has been refunded".into()));
        }
    }
    let order = order::load(&mut tx, id, Some(user.id.0), &state.publishable_key)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    tx.commit().await?;
    // Its payment can no longer be taken. Best effort: a payment that succeeds anyway
    // (the buyer confirmed at the same moment) is refunded when it is settled.
    if let Some(payment) = order
        .payment
        .as_ref()
        .filter(|p| p.status != "succeeded" && p.status != "canceled")
        && let Err(e) = state.stripe.cancel_intent(&payment.intent_id).await
    {
        tracing::warn!(order_id = %id, error = %e, "could not cancel the order's payment intent");
    }
    Ok(Json(order))
}

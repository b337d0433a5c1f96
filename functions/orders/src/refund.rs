//! `POST /api/v1/orders/{id}/refunds`: the event's organizer (or an admin) gives money
//! back, in full or in part.
//!
//! One transaction, under the order's row lock, checks what is left to refund (charged
//! less refunded less refunds still in flight, so two concurrent refunds cannot exceed
//! the charge), writes the refund request and, for a full refund, voids the tickets and
//! puts them back on sale (under the event's lock, like every inventory change). After
//! commit the request goes to Stripe keyed by its id (`shared::payments::settle::
//! execute_refund`); if Stripe is down it stays `requested` and the reconciliation run
//! sends it. An `Idempotency-Key` makes a retried click one refund.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::{Json, Path},
        idempotency::{IdempotencyKey, Keyed},
    },
    identity::{Role, guard::CurrentUser},
    messaging::outbox,
    payments::{refunds, settle},
    ticketing::{self, Movement},
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

const SCOPE: &str = "refund_order";

/// A refund to make.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Minor units; default: all that is left to refund (a full refund voids the tickets).
    #[schema(example = 2500)]
    pub amount_minor: Option<i64>,
    /// Why, for the buyer and the books (1 to 500 characters).
    #[schema(example = "Double booking")]
    pub reason: String,
}

/// A refund as the organizer sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    /// Its id (also Stripe's idempotency key for it).
    pub id: Uuid,
    /// The order.
    pub order_id: Uuid,
    /// Minor units.
    pub amount_minor: i64,
    /// `requested` (not sent yet: the reconciliation run sends it), `pending` at Stripe,
    /// `succeeded` or `failed`.
    pub status: String,
    /// Whether it refunded all that was left (the tickets are void).
    pub full: bool,
}

/// Refunds a paid order in full or in part.
#[utoipa::path(
    post,
    path = "/api/v1/orders/{id}/refunds",
    operation_id = "refund_order",
    tag = "orders",
    params(
        ("id" = Uuid, Path, description = "The order's id"),
        ("Idempotency-Key" = String, Header, description = "A fresh UUID per refund; a retry sends the same one"),
    ),
    request_body = CreateRefund,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The refund, sent to Stripe (or queued for the next reconciliation run if Stripe is down)", body = RefundView),
        (status = 400, description = "Malformed JSON, or a missing or malformed `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of an event the caller organizes", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing to refund: unpaid, free or already refunded in full", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An amount outside 1 to what is left, an empty or long reason, or the key was used for another request", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    key: IdempotencyKey,
    Json(request): Json<CreateRefund>,
) -> ApiResult<Response> {
    let keyed = Keyed::new(user.id.0, SCOPE, &key, &(id, &request))?;
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::Validation(vec![FieldError::new(
            "reason",
            "length",
            "1 to 500 characters",
        )]));
    }
    let mut tx = state.db.begin().await?;
    if let Some(mut stored) = keyed.claim_stored(&mut tx).await? {
        // The refund as it is now (Stripe may have settled it since the first answer).
        if let Some(refund) = stored.body["id"]
            .as_str()
            .and_then(|id| id.parse::<Uuid>().ok())
        {
            let status: Option<String> = sqlx::query_scalar!(
                r#"SELECT status::text AS "status!" FROM refunds WHERE id = $1"#,
                refund
            )
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(status) = status {
                stored.body["status"] = status.into();
            }
        }
        return Ok(stored.into_response());
    }
    // The event's lock first (a full refund puts tickets back on sale), then the order's.
    let order = sqlx::query!(
        r#"SELECT o.id, o.event_id, o.status::text AS "status!"
           FROM orders o JOIN events e ON e.id = o.event_id
           WHERE o.id = $1 AND (e.organizer_id = $2 OR $3)
           FOR NO KEY UPDATE OF e"#,
        id,
        user.id.0,
        user.role == Role::Admin,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("order"))?;
    let money = sqlx::query!(
        r#"SELECT
             coalesce((SELECT sum(amount_minor) FROM ledger_entries WHERE order_id = o.id AND kind = 'charge'), 0)::bigint AS "charged!",
             coalesce((SELECT sum(amount_minor) FROM refunds WHERE order_id = o.id AND status <> 'failed'), 0)::bigint AS "refunding!",
             (SELECT intent_id FROM payments WHERE order_id = o.id AND status = 'succeeded'
              ORDER BY attempt DESC LIMIT 1) AS intent_id
           FROM orders o WHERE o.id = $1 FOR UPDATE"#,
        order.id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let left = money.charged - money.refunding;
    let intent = match (&money.intent_id, order.status.as_str()) {
        (Some(intent), "confirmed") if left > 0 => intent.clone(),
        _ => {
            return Err(ApiError::Conflict(
                "nothing to refund: the order is unpaid, free or already refunded in full".into(),
            ));
        }
    };
    let amount = request.amount_minor.unwrap_or(left);
    if !(1..=left).contains(&amount) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "amount_minor",
            "out_of_range",
            format!("1 to {left} (what is left to refund)"),
        )]));
    }
    let full = amount == left;
    let refund_id = refunds::request(
        &mut tx,
        order.id,
        &intent,
        amount,
        "requested_by_organizer",
        Some(user.id),
    )
    .await?;
    if full {
        sqlx::query!(
            "UPDATE orders SET status = 'refunded', refunded_at = now(), updated_at = now() WHERE id = $1",
            order.id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE tickets SET status = 'void', voided_at = now() WHERE order_id = $1 AND status = 'valid'",
            order.id
        )
        .execute(&mut *tx)
        .await?;
        ticketing::record(&mut tx, order.id, Movement::Unsell).await?;
    }
    let mut view = RefundView {
        id: refund_id,
        order_id: order.id,
        amount_minor: amount,
        status: "requested".into(),
        full,
    };
    keyed.record(&mut tx, StatusCode::CREATED, &view).await?;
    tx.commit().await?;
    tracing::info!(order_id = %order.id, %refund_id, amount, full, "refund requested");

    match settle::execute_refund(&state.db, state.stripe.as_ref(), refund_id).await {
        Ok(messages) => outbox::relay(&state.db, &state.publisher, messages).await,
        Err(e) => {
            tracing::warn!(%refund_id, error = %e, "refund not sent yet; the reconciliation run sends it")
        }
    }
    view.status = sqlx::query_scalar!(
        r#"SELECT status::text AS "status!" FROM refunds WHERE id = $1"#,
        refund_id
    )
    .fetch_one(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

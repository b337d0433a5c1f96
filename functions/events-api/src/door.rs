//! At the door: the organizer's scanner checks a ticket in by its code.
//!
//! The first scan admits (201, with who and what). A second scan of the same code is
//! refused with when it was first scanned, unless it carries the first scan's `nonce`:
//! then it is that scan retried over flaky venue Wi-Fi and gets the first answer again.
//! The `check_ins` row's primary key (the ticket) makes "first" exact when two doors
//! scan one code at once.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path},
    },
    identity::guard::Organizer,
    ticketing::{OrderStatus, TicketCode, TicketStatus},
};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AppState, event::EventStatus, manage::organizers_event};

/// A scan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    /// The ticket's code, as scanned from its QR code or typed (case and surrounding
    /// space do not matter).
    #[schema(example = "MFRGGZDFMZTWQ2LKNNWG23TPOA")]
    pub code: String,
    /// The scanner's id for this scan (1 to 100 characters); a retry sends the same.
    #[schema(example = "door-1-000042")]
    pub nonce: String,
}

/// An admitted ticket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckIn {
    /// The ticket.
    pub ticket_id: Uuid,
    /// Who it admits.
    pub attendee_name: String,
    /// Its ticket type.
    pub ticket_type_id: Uuid,
    /// The type's name.
    pub ticket_type_name: String,
    /// When it was admitted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub checked_in_at: OffsetDateTime,
}

/// Checks a ticket in at the door of one of the caller's events.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event}/check-ins",
    operation_id = "check_in",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    request_body = CheckInRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Admitted (or this scan's retry: the same answer)", body = CheckIn),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's, or no ticket has this code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused, with the reason: already checked in (and when), void, unpaid, for another event, or the event is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid nonce", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn check_in(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
    Json(scan): Json<CheckInRequest>,
) -> ApiResult<(StatusCode, Json<CheckIn>)> {
    let nonce = scan.nonce.trim();
    if nonce.is_empty() || nonce.chars().count() > 100 || nonce.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "nonce",
            "invalid",
            "1 to 100 characters, no control characters",
        ));
    }
    let mut tx = state.db.begin().await?;
    let event = organizers_event(&mut tx, &user, &key, false).await?;
    if event.status == EventStatus::Cancelled {
        return Err(ApiError::Conflict("this event is cancelled".into()));
    }
    let code = TicketCode::parse(&scan.code).ok_or(ApiError::NotFound("ticket"))?;
    let ticket = sqlx::query!(
        r#"SELECT t.id, t.event_id, t.attendee_name, t.ticket_type_id, tt.name AS type_name,
                  t.status AS "status: TicketStatus", o.status AS "order_status: OrderStatus"
           FROM tickets t
           JOIN orders o ON o.id = t.order_id
           JOIN ticket_types tt ON tt.id = t.ticket_type_id
           WHERE t.code = $1"#,
        code.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("ticket"))?;
    if ticket.event_id != event.id {
        return Err(ApiError::Conflict(
            "this ticket is for another event".into(),
        ));
    }
    if ticket.status == TicketStatus::Void {
        return Err(ApiError::Conflict("this ticket is void".into()));
    }
    if ticket.order_status != OrderStatus::Confirmed {
        return Err(ApiError::Conflict("this ticket's order is not paid".into()));
    }
    // Inserted: the first scan. Not: someone scanned it first (maybe this scanner).
    let admitted = sqlx::query_scalar!(
        "INSERT INTO check_ins (ticket_id, event_id, nonce, scanned_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (ticket_id) DO NOTHING
         RETURNING scanned_at",
        ticket.id,
        event.id,
        nonce,
        user.id.0,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let checked_in_at = match admitted {
        Some(at) => at,
        None => {
            let first = sqlx::query!(
                "SELECT nonce, scanned_at FROM check_ins WHERE ticket_id = $1",
                ticket.id
            )
            .fetch_one(&mut *tx)
            .await?;
            if first.nonce != nonce {
                let at = first
                    .scanned_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(anyhow::Error::from)?;
                return Err(ApiError::Conflict(format!("already checked in at {at}")));
            }
            first.scanned_at
        }
    };
    tx.commit().await?;
    if admitted.is_some() {
        tracing::info!(event_id = %event.id, ticket_id = %ticket.id, "checked in");
    }
    Ok((
        StatusCode::CREATED,
        Json(CheckIn {
            ticket_id: ticket.id,
            attendee_name: ticket.attendee_name,
            ticket_type_id: ticket.ticket_type_id,
            ticket_type_name: ticket.type_name,
            checked_in_at,
        }),
    ))
}

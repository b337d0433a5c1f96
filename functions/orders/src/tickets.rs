//! The buyer's tickets: the list (with each ticket's event), one ticket, and its QR code
//! as SVG for the attendee's phone. A ticket is its buyer's: anyone else gets 404.
//!
//! The code is the credential the door admits: 128 random bits, shown only to the buyer.

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use qrcode::{EcLevel, QrCode, render::svg};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path, Query},
        pagination::{self, CreatedKey, Page, PageParams},
    },
    identity::guard::CurrentUser,
    ticketing::TicketStatus,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;

/// A ticket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    /// Its id.
    pub id: Uuid,
    /// The order that issued it.
    pub order_id: Uuid,
    /// Its ticket type.
    pub ticket_type_id: Uuid,
    /// The type's name.
    pub ticket_type_name: String,
    /// Who it admits.
    pub attendee_name: String,
    /// What the door scans: 26 characters (the QR code encodes it).
    #[schema(example = "MFRGGZDFMZTWQ2LKNNWG23TPOA")]
    pub code: String,
    /// `valid` or `void`.
    pub status: TicketStatus,
    /// When it was scanned at the door.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_in_at: Option<OffsetDateTime>,
    /// Issued.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The event a ticket is for, as the ticket list shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketEvent {
    /// Its id.
    pub id: Uuid,
    /// Its slug.
    pub slug: String,
    /// Its title.
    pub title: String,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    /// IANA time zone.
    pub timezone: String,
    /// The venue's name.
    pub venue_name: String,
    /// The venue's city.
    pub city: String,
    /// `published` or `cancelled`.
    pub status: String,
}

/// A ticket with its event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketWithEvent {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// Its event.
    pub event: TicketEvent,
}

/// The selected columns of a ticket and its event.
struct Row {
    id: Uuid,
    order_id: Uuid,
    ticket_type_id: Uuid,
    ticket_type_name: String,
    attendee_name: String,
    code: String,
    status: TicketStatus,
    checked_in_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    event_id: Uuid,
    slug: String,
    title: String,
    starts_at: OffsetDateTime,
    timezone: String,
    venue_name: String,
    city: String,
    event_status: String,
}

impl From<Row> for TicketWithEvent {
    fn from(r: Row) -> Self {
        Self {
            ticket: Ticket {
                id: r.id,
                order_id: r.order_id,
                ticket_type_id: r.ticket_type_id,
                ticket_type_name: r.ticket_type_name,
                attendee_name: r.attendee_name,
                code: r.code,
                status: r.status,
                checked_in_at: r.checked_in_at,
                created_at: r.created_at,
            },
            event: TicketEvent {
                id: r.event_id,
                slug: r.slug,
                title: r.title,
                starts_at: r.starts_at,
                timezone: r.timezone,
                venue_name: r.venue_name,
                city: r.city,
                status: r.event_status,
            },
        }
    }
}

/// An order's tickets, in order of issue.
pub async fn of_order(conn: &mut PgConnection, order_id: Uuid) -> Result<Vec<Ticket>, sqlx::Error> {
    sqlx::query_as!(
        Ticket,
        r#"SELECT t.id, t.order_id, t.ticket_type_id, tt.name AS ticket_type_name,
                  t.attendee_name, t.code, t.status AS "status: TicketStatus",
                  c.scanned_at AS "checked_in_at?", t.created_at
           FROM tickets t
           JOIN ticket_types tt ON tt.id = t.ticket_type_id
           LEFT JOIN check_ins c ON c.ticket_id = t.id
           WHERE t.order_id = $1
           ORDER BY t.created_at, t.id"#,
        order_id,
    )
    .fetch_all(conn)
    .await
}

/// The buyer's tickets with their events, newest first: one (`only`), or a page after
/// the `after` key. One query serves both, so the list and the ticket show the same.
async fn select(
    conn: &mut PgConnection,
    buyer: Uuid,
    only: Option<Uuid>,
    after: Option<CreatedKey>,
    limit: i64,
) -> Result<Vec<TicketWithEvent>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT t.id, t.order_id, t.ticket_type_id, tt.name AS ticket_type_name,
                  t.attendee_name, t.code, t.status AS "status: TicketStatus",
                  c.scanned_at AS "checked_in_at?", t.created_at,
                  e.id AS event_id, e.slug, e.title, e.starts_at, e.timezone, e.venue_name,
                  e.city, e.status::text AS "event_status!"
           FROM tickets t
           JOIN orders o ON o.id = t.order_id
           JOIN ticket_types tt ON tt.id = t.ticket_type_id
           JOIN events e ON e.id = t.event_id
           LEFT JOIN check_ins c ON c.ticket_id = t.id
           WHERE o.buyer_id = $1
             AND ($2::uuid IS NULL OR t.id = $2)
             AND ($3::timestamptz IS NULL OR (t.created_at, t.id) < ($3, $4))
           ORDER BY t.created_at DESC, t.id DESC
           LIMIT $5"#,
        buyer,
        only,
        after.map(|k| k.t),
        after.map(|k| k.id),
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(TicketWithEvent::from).collect())
}

/// The caller's ticket, with its event; 404 for anyone else's.
async fn own_ticket(conn: &mut PgConnection, buyer: Uuid, id: Uuid) -> ApiResult<TicketWithEvent> {
    select(conn, buyer, Some(id), None, 1)
        .await?
        .pop()
        .ok_or(ApiError::NotFound("ticket"))
}

/// Lists the caller's tickets with their events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    operation_id = "list_my_tickets",
    tag = "orders",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's tickets", body = Page<TicketWithEvent>),
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
) -> ApiResult<Json<Page<TicketWithEvent>>> {
    let (size, after): (_, Option<CreatedKey>) = params.parse()?;
    let mut conn = state.db.acquire().await?;
    let tickets = select(&mut conn, user.id.0, None, after, size.fetch()).await?;
    Ok(Json(pagination::page(tickets, size, |t| CreatedKey {
        t: t.ticket.created_at,
        id: t.ticket.id,
    })))
}

/// One of the caller's tickets, with its event.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}",
    operation_id = "get_ticket",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The ticket's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket", body = TicketWithEvent),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn fetch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<TicketWithEvent>> {
    let mut conn = state.db.acquire().await?;
    Ok(Json(own_ticket(&mut conn, user.id.0, id).await?))
}

/// The ticket's code as a QR code (SVG), for the attendee to show at the door.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/qr",
    operation_id = "get_ticket_qr",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The ticket's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The QR code of the ticket's code", content_type = "image/svg+xml", body = String),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn qr(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let mut conn = state.db.acquire().await?;
    let ticket = own_ticket(&mut conn, user.id.0, id).await?.ticket;
    let svg = qr_svg(&ticket.code)?;
    Ok((
        // The router marks it `no-store`: the code is a credential.
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        svg,
    )
        .into_response())
}

/// Renders `code` as an SVG QR code (medium error correction: survives a cracked
/// screen, stays small).
fn qr_svg(code: &str) -> ApiResult<String> {
    let qr = QrCode::with_error_correction_level(code.as_bytes(), EcLevel::M)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR encoding failed: {e}")))?;
    Ok(qr
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_renders_as_svg() {
        let svg = qr_svg("MFRGGZDFMZTWQ2LKNNWG23TPOA").unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.contains("<svg") && svg.contains("<path"));
    }
}

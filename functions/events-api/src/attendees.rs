//! What the organizer knows about who comes: the attendee list (keyset pages as JSON, or
//! the whole list as CSV for a spreadsheet) and the sales summary per ticket type.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiResult, Problem},
        extract::{Json, Path, Query},
        pagination::{self, CreatedKey, Page, PageParams},
    },
    identity::guard::Organizer,
    ticketing::{self, TicketStatus},
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{AppState, manage::organizers_event};

/// The most rows one CSV export holds.
const CSV_MAX_ROWS: i64 = 100_000;

/// One ticket holder.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Attendee {
    /// The ticket.
    pub ticket_id: Uuid,
    /// Who it admits.
    pub attendee_name: String,
    /// Its type.
    pub ticket_type_id: Uuid,
    /// The type's name.
    pub ticket_type_name: String,
    /// The order.
    pub order_id: Uuid,
    /// The buyer's email (none once the buyer deleted their account).
    pub buyer_email: Option<String>,
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

/// The event's tickets in order of issue, after `after`, at most `limit`.
async fn attendees(
    conn: &mut PgConnection,
    event_id: Uuid,
    after: Option<CreatedKey>,
    limit: i64,
) -> Result<Vec<Attendee>, sqlx::Error> {
    sqlx::query_as!(
        Attendee,
        r#"SELECT t.id AS ticket_id, t.attendee_name, t.ticket_type_id,
                  tt.name AS ticket_type_name, t.order_id, u.email AS "buyer_email?",
                  t.status AS "status: TicketStatus", c.scanned_at AS "checked_in_at?",
                  t.created_at
           FROM tickets t
           JOIN ticket_types tt ON tt.id = t.ticket_type_id
           JOIN orders o ON o.id = t.order_id
           LEFT JOIN users u ON u.id = o.buyer_id
           LEFT JOIN check_ins c ON c.ticket_id = t.id
           WHERE t.event_id = $1
             AND ($2::timestamptz IS NULL OR (t.created_at, t.id) > ($2, $3))
           ORDER BY t.created_at, t.id
           LIMIT $4"#,
        event_id,
        after.map(|k| k.t),
        after.map(|k| k.id),
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Lists the attendees of one of the caller's events: JSON pages, or with
/// `Accept: text/csv` the whole list as CSV.
#[utoipa::path(
    get,
    path = "/api/v1/events/{event}/attendees",
    operation_id = "list_attendees",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug"), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tickets in order of issue (or, for `Accept: text/csv`, all of them)",
         content((Page<Attendee> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
    Query(params): Query<PageParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (size, after): (_, Option<CreatedKey>) = params.parse()?;
    let mut conn = state.db.acquire().await?;
    let event = organizers_event(&mut conn, &user, &key, false).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        let rows = attendees(&mut conn, event.id, None, CSV_MAX_ROWS).await?;
        let disposition = format!("attachment; filename=\"attendees-{}.csv\"", event.slug);
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition).map_err(anyhow::Error::from)?,
                ),
            ],
            csv(&rows),
        )
            .into_response());
    }
    let rows = attendees(&mut conn, event.id, after, size.fetch()).await?;
    Ok(Json(pagination::page(rows, size, |a| CreatedKey {
        t: a.created_at,
        id: a.ticket_id,
    }))
    .into_response())
}

/// The attendee list as RFC 4180 CSV.
fn csv(rows: &[Attendee]) -> String {
    let mut out = String::from(
        "ticket_id,attendee_name,ticket_type,buyer_email,status,checked_in_at,issued_at\r\n",
    );
    let time = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    for a in rows {
        let fields = [
            a.ticket_id.to_string(),
            a.attendee_name.clone(),
            a.ticket_type_name.clone(),
            a.buyer_email.clone().unwrap_or_default(),
            match a.status {
                TicketStatus::Valid => "valid".into(),
                TicketStatus::Void => "void".into(),
            },
            a.checked_in_at.map(time).unwrap_or_default(),
            time(a.created_at),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field: quoted when it holds a separator, a quote or a line break; and a
/// leading `=`, `+`, `-`, `@` (or tab, CR) defused with a `'`, so a name a buyer typed
/// cannot run as a formula in the organizer's spreadsheet.
fn csv_field(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// Sales of one ticket type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TypeSales {
    /// The ticket type.
    pub ticket_type_id: Uuid,
    /// Its name.
    pub name: String,
    /// How many exist.
    pub quantity: i32,
    /// In confirmed orders.
    pub sold: i64,
    /// In pending orders whose hold is live.
    pub held: i64,
    /// Still for sale (after the event's capacity too).
    pub remaining: i32,
    /// What its tickets in confirmed orders sold for, after discounts, minor units.
    pub gross_minor: i64,
    /// Admitted at the door.
    pub checked_in: i64,
}

/// An event's sales.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SalesSummary {
    /// ISO 4217 code of every amount (none before the first ticket type).
    pub currency: Option<String>,
    /// Per ticket type, in the order they were added.
    pub ticket_types: Vec<TypeSales>,
    /// Sold across types.
    pub sold: i64,
    /// Money taken: every charge in the ledger, minor units (refunded ones included).
    pub gross_minor: i64,
    /// Money given back: every refund in the ledger, minor units.
    pub refunded_minor: i64,
    /// Gross less refunded.
    pub net_minor: i64,
    /// Admitted across types.
    pub checked_in: i64,
}

/// The sales summary of one of the caller's events, per ticket type.
#[utoipa::path(
    get,
    path = "/api/v1/events/{event}/sales",
    operation_id = "get_event_sales",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Sold, held, remaining, gross and checked in, per ticket type; money taken, refunded and net for the event", body = SalesSummary),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn sales(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
) -> ApiResult<Json<SalesSummary>> {
    let mut conn = state.db.acquire().await?;
    let event = organizers_event(&mut conn, &user, &key, false).await?;
    let rows = sqlx::query!(
        r#"SELECT tt.id, tt.name, tt.quantity, tt.currency,
                  coalesce((SELECT sum(l.quantity * l.unit_price_minor - l.discount_minor)
                            FROM order_lines l JOIN orders o ON o.id = l.order_id
                            WHERE l.ticket_type_id = tt.id AND o.status = 'confirmed'), 0)::bigint AS "gross!",
                  (SELECT count(*) FROM tickets t JOIN check_ins c ON c.ticket_id = t.id
                   WHERE t.ticket_type_id = tt.id) AS "checked_in!"
           FROM ticket_types tt WHERE tt.event_id = $1
           ORDER BY tt.created_at, tt.id"#,
        event.id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let money = sqlx::query!(
        r#"SELECT coalesce(sum(m.amount_minor) FILTER (WHERE m.kind = 'charge'), 0)::bigint AS "gross!",
                  coalesce(sum(m.amount_minor) FILTER (WHERE m.kind = 'refund'), 0)::bigint AS "refunded!"
           FROM ledger_entries m JOIN orders o ON o.id = m.order_id WHERE o.event_id = $1"#,
        event.id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let taken = ticketing::taken(&mut conn, event.id).await?;
    let event_taken = taken.values().map(|t| t.total()).sum();
    let ticket_types: Vec<TypeSales> = rows
        .iter()
        .map(|r| {
            let t = taken.get(&r.id).copied().unwrap_or_default();
            TypeSales {
                ticket_type_id: r.id,
                name: r.name.clone(),
                quantity: r.quantity,
                sold: t.sold,
                held: t.held,
                remaining: ticketing::remaining(r.quantity, t, event.capacity, event_taken),
                gross_minor: r.gross,
                checked_in: r.checked_in,
            }
        })
        .collect();
    Ok(Json(SalesSummary {
        currency: rows.first().map(|r| r.currency.clone()),
        sold: ticket_types.iter().map(|t| t.sold).sum(),
        gross_minor: money.gross,
        refunded_minor: money.refunded,
        net_minor: money.gross - money.refunded,
        checked_in: ticket_types.iter().map(|t| t.checked_in).sum(),
        ticket_types,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("Ada"), "Ada");
        assert_eq!(csv_field("Lovelace, Ada"), "\"Lovelace, Ada\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}

//! The order model: the request a buyer sends (and the rules it follows before any
//! database work), and the order as shown, with its lines and tickets.

use serde::{Deserialize, Serialize};
use shared::{http::error::FieldError, payments::settle, ticketing::OrderStatus};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::tickets::{self, Ticket};

/// Most lines in one order.
const MAX_LINES: usize = 20;

/// A new order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// The (published) event.
    pub event_id: Uuid,
    /// What to buy: 1 to 20 lines, one per ticket type.
    pub lines: Vec<LineRequest>,
    /// A discount code of the event, in any case.
    #[serde(default)]
    #[schema(example = "EARLYBIRD")]
    pub discount_code: Option<String>,
    /// One name per ticket, in the order of the lines (a line of 2 takes two names);
    /// default: every ticket in the buyer's name.
    #[serde(default)]
    pub attendees: Option<Vec<String>>,
}

/// One line of a new order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// A visible ticket type of the event.
    pub ticket_type_id: Uuid,
    /// Within the type's per-order limits.
    #[schema(example = 2)]
    pub quantity: i32,
}

/// A request that passed the checks that need no database.
#[derive(Debug)]
pub struct CheckedOrder {
    /// The event.
    pub event_id: Uuid,
    /// Distinct types, positive quantities.
    pub lines: Vec<(Uuid, i32)>,
    /// Upper-cased.
    pub discount_code: Option<String>,
    /// Trimmed names, one per ticket.
    pub attendees: Option<Vec<String>>,
}

impl CheckedOrder {
    /// Tickets in the order.
    pub fn tickets(&self) -> i32 {
        self.lines.iter().map(|(_, q)| q).sum()
    }
}

impl CreateOrder {
    /// Checks the shape of the request; every failure at once.
    pub fn check(&self) -> Result<CheckedOrder, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            errors.push(FieldError::new(
                "lines",
                "out_of_range",
                format!("must have 1 to {MAX_LINES} lines"),
            ));
        }
        for (i, line) in self.lines.iter().enumerate().take(MAX_LINES) {
            if !(1..=100).contains(&line.quantity) {
                errors.push(FieldError::new(
                    format!("lines[{i}].quantity"),
                    "out_of_range",
                    "must be 1 to 100",
                ));
            }
            if self.lines[..i]
                .iter()
                .any(|l| l.ticket_type_id == line.ticket_type_id)
            {
                errors.push(FieldError::new(
                    format!("lines[{i}].ticket_type_id"),
                    "duplicate",
                    "each ticket type once; raise the quantity instead",
                ));
            }
        }
        let discount_code = self
            .discount_code
            .as_deref()
            .map(|c| c.trim().to_ascii_uppercase());
        if let Some(code) = &discount_code
            && !(1..=64).contains(&code.len())
        {
            errors.push(FieldError::new(
                "discount_code",
                "invalid",
                "must be 1 to 64 characters",
            ));
        }
        let tickets: i64 = self
            .lines
            .iter()
            .map(|l| i64::from(l.quantity.max(0)))
            .sum();
        let attendees = self.attendees.as_ref().map(|names| {
            names
                .iter()
                .map(|n| n.trim().to_owned())
                .collect::<Vec<_>>()
        });
        if let Some(names) = &attendees {
            if names.len() as i64 != tickets {
                errors.push(FieldError::new(
                    "attendees",
                    "count_mismatch",
                    format!("must name each of the {tickets} tickets once"),
                ));
            }
            for (i, name) in names.iter().enumerate().take(2000) {
                let n = name.chars().count();
                if n == 0 || n > 100 || name.chars().any(char::is_control) {
                    errors.push(FieldError::new(
                        format!("attendees[{i}]"),
                        "invalid",
                        "1 to 100 characters, no control characters",
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CheckedOrder {
            event_id: self.event_id,
            lines: self
                .lines
                .iter()
                .map(|l| (l.ticket_type_id, l.quantity))
                .collect(),
            discount_code,
            attendees,
        })
    }
}

/// An order as its buyer sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Order {
    /// Its id.
    pub id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Where it is; a pending order whose hold ran out reads `expired`.
    pub status: OrderStatus,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// Before discount, minor units.
    pub subtotal_minor: i64,
    /// Taken off by the discount code.
    pub discount_minor: i64,
    /// To pay: subtotal less discount.
    pub total_minor: i64,
    /// The code applied.
    pub discount_code: Option<String>,
    /// Until when a pending order holds its tickets.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub hold_expires_at: OffsetDateTime,
    /// Placed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Confirmed (paid, or free).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub confirmed_at: Option<OffsetDateTime>,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// Its tickets, once confirmed.
    pub tickets: Vec<Ticket>,
    /// Paid so far (charges in the ledger), minor units.
    pub paid_minor: i64,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// The card payment of a paid order, once opened: what Stripe.js needs to confirm it.
    pub payment: Option<OrderPayment>,
}

/// A paid order's card payment (a Stripe PaymentIntent).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPayment {
    /// Always `stripe`.
    #[schema(example = "stripe")]
    pub provider: String,
    /// The PaymentIntent's id.
    #[schema(example = "pi_3PqM2x")]
    pub intent_id: String,
    /// For `stripe.confirmPayment` in the buyer's browser; only the buyer sees it.
    pub client_secret: String,
    /// The key Stripe.js is loaded with.
    pub publishable_key: String,
    /// Stripe's status as last read (`requires_payment_method`, `processing`,
    /// `succeeded`, `canceled`, ...).
    pub status: String,
    /// Why the last attempt failed (e.g. the card was declined), to show the buyer.
    pub last_error: Option<String>,
}

/// One line of an order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    /// The ticket type.
    pub ticket_type_id: Uuid,
    /// Its name.
    pub name: String,
    /// How many.
    pub quantity: i32,
    /// Price of one, minor units, as it was when ordered.
    pub unit_price_minor: i64,
    /// Taken off this line by the discount code.
    pub discount_minor: i64,
}

/// Loads an order with its lines and tickets, if it is `buyer`'s (`None`: any buyer).
pub async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    buyer: Option<Uuid>,
    publishable_key: &str,
) -> Result<Option<Order>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT o.id, o.event_id, o.status AS "status: OrderStatus", o.currency,
                  o.subtotal_minor, o.discount_minor, o.total_minor, d.code AS "discount_code?",
                  o.hold_expires_at, o.created_at, o.confirmed_at,
                  coalesce((SELECT sum(amount_minor) FROM ledger_entries
                            WHERE order_id = o.id AND kind = 'charge'), 0)::bigint AS "paid_minor!",
                  coalesce((SELECT sum(amount_minor) FROM ledger_entries
                            WHERE order_id = o.id AND kind = 'refund'), 0)::bigint AS "refunded_minor!"
           FROM orders o LEFT JOIN discount_codes d ON d.id = o.discount_code_id
           WHERE o.id = $1 AND ($2::uuid IS NULL OR o.buyer_id = $2)"#,
        id,
        buyer,
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query_as!(
        OrderLine,
        "SELECT l.ticket_type_id, t.name, l.quantity, l.unit_price_minor, l.discount_minor
         FROM order_lines l JOIN ticket_types t ON t.id = l.ticket_type_id
         WHERE l.order_id = $1 ORDER BY l.position",
        id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let tickets = tickets::of_order(conn, id).await?;
    let payment = settle::current(conn, id).await?.map(|p| OrderPayment {
        provider: "stripe".into(),
        intent_id: p.intent_id,
        client_secret: p.client_secret,
        publishable_key: publishable_key.to_owned(),
        status: p.status,
        last_error: p.last_error,
    });
    Ok(Some(Order {
        id: row.id,
        event_id: row.event_id,
        status: row
            .status
            .at(row.hold_expires_at, OffsetDateTime::now_utc()),
        currency: row.currency,
        subtotal_minor: row.subtotal_minor,
        discount_minor: row.discount_minor,
        total_minor: row.total_minor,
        discount_code: row.discount_code,
        hold_expires_at: row.hold_expires_at,
        created_at: row.created_at,
        confirmed_at: row.confirmed_at,
        lines,
        tickets,
        paid_minor: row.paid_minor,
        refunded_minor: row.refunded_minor,
        payment,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lines: &[(Uuid, i32)], attendees: Option<&[&str]>) -> CreateOrder {
        CreateOrder {
            event_id: Uuid::now_v7(),
            lines: lines
                .iter()
                .map(|&(ticket_type_id, quantity)| LineRequest {
                    ticket_type_id,
                    quantity,
                })
                .collect(),
            discount_code: Some("  early ".into()),
            attendees: attendees.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn fields(result: Result<CheckedOrder, Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_good_order_is_normalised() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let checked = order(&[(a, 2), (b, 1)], Some(&[" Ada ", "Bo", "Cy"]))
            .check()
            .unwrap();
        assert_eq!(checked.tickets(), 3);
        assert_eq!(checked.discount_code.as_deref(), Some("EARLY"));
        assert_eq!(checked.attendees.unwrap()[0], "Ada");
    }

    #[test]
    fn every_bad_field_is_named() {
        let a = Uuid::now_v7();
        assert_eq!(fields(order(&[], None).check()), ["lines"]);
        assert_eq!(
            fields(order(&[(a, 0), (a, 101)], None).check()),
            [
                "lines[0].quantity",
                "lines[1].quantity",
                "lines[1].ticket_type_id"
            ]
        );
        assert_eq!(
            fields(order(&[(a, -1)], None).check()),
            ["lines[0].quantity"]
        );
        assert_eq!(
            fields(order(&[(a, 2)], Some(&["Ada"])).check()),
            ["attendees"]
        );
        assert_eq!(
            fields(order(&[(a, 2)], Some(&["Ada", "\u{0}"])).check()),
            ["attendees[1]"]
        );
        let many: Vec<(Uuid, i32)> = (0..21).map(|_| (Uuid::now_v7(), 1)).collect();
        assert_eq!(fields(order(&many, None).check()), ["lines"]);
    }
}

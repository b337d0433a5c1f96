//! Ticketing: what the events function (organizers, the door) and the orders function
//! (buyers) both need to agree on.
//!
//! - [`OrderStatus`] and [`TicketStatus`], as stored;
//! - [`taken`]: how many tickets of each type are sold and held right now, from the
//!   types' `sold` and `held` counters ([`record`] moves them in the transaction that
//!   changes an order) less the holds that lapsed and are not released yet, so an expired
//!   hold frees its tickets the instant it expires. Callers that decide on the counts (an
//!   order, a smaller quantity) hold the event's row lock, which serialises every such
//!   decision for one event, and first [`release_lapsed`] holds, so a decision costs
//!   the holds that lapsed since the last one, not every order the event ever had;
//! - [`TicketCode`]: the unguessable code a ticket is admitted by.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "order_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Holding its tickets until `hold_expires_at`, waiting for payment.
    Pending,
    /// Paid (or free): its tickets are issued.
    Confirmed,
    /// Cancelled by the buyer while pending, or with its event.
    Cancelled,
    /// Its hold ran out before payment.
    Expired,
    /// Paid, then refunded in full: its tickets are void.
    Refunded,
}

impl OrderStatus {
    /// The status as the buyer sees it at `now`: a pending order whose hold ran out is
    /// expired whether or not a sweep has written so yet.
    pub fn at(self, hold_expires_at: time::OffsetDateTime, now: time::OffsetDateTime) -> Self {
        if self == Self::Pending && hold_expires_at <= now {
            Self::Expired
        } else {
            self
        }
    }
}

/// Whether a ticket admits its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "ticket_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Admits its holder once.
    Valid,
    /// Voided (its event was cancelled, its order refunded).
    Void,
}

/// What is taken of one ticket type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    /// In confirmed orders.
    pub sold: i64,
    /// In pending orders whose hold has not run out.
    pub held: i64,
}

impl Taken {
    /// Sold and held together: what is not available.
    pub fn total(self) -> i64 {
        self.sold + self.held
    }
}

/// What is taken of each of the event's ticket types now: the types' counters, less
/// the holds that lapsed and are not released yet. Anyone may read it; decide on it only
/// under the event's row lock, after [`release_lapsed`].
pub async fn taken(
    conn: &mut PgConnection,
    event_id: Uuid,
) -> Result<HashMap<Uuid, Taken>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT t.id, t.sold::bigint AS "sold!", (t.held - coalesce(x.lapsed, 0))::bigint AS "held!"
           FROM ticket_types t
           LEFT JOIN (SELECT l.ticket_type_id, sum(l.quantity) AS lapsed
                      FROM orders o JOIN order_lines l ON l.order_id = o.id
                      WHERE o.event_id = $1 AND o.status = 'pending' AND o.hold_expires_at <= now()
                      GROUP BY l.ticket_type_id) x ON x.ticket_type_id = t.id
           WHERE t.event_id = $1"#,
        event_id,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.id,
                Taken {
                    sold: r.sold,
                    held: r.held,
                },
            )
        })
        .collect())
}

/// Marks the event's lapsed holds `expired` and takes them off the types' `held`. Each
/// order lapses once, so a decision pays only for the holds that lapsed since the last.
/// Concurrent callers cannot release one order twice: the second waits on its row and
/// then finds it no longer pending.
pub async fn release_lapsed(conn: &mut PgConnection, event_id: Uuid) -> Result<u64, sqlx::Error> {
    let released = sqlx::query!(
        "WITH lapsed AS (
             UPDATE orders SET status = 'expired', updated_at = now()
             WHERE event_id = $1 AND status = 'pending' AND hold_expires_at <= now()
             RETURNING id),
         lines AS (
             SELECT l.ticket_type_id, sum(l.quantity)::integer AS quantity
             FROM order_lines l JOIN lapsed ON lapsed.id = l.order_id
             GROUP BY l.ticket_type_id)
         UPDATE ticket_types t SET held = t.held - lines.quantity
         FROM lines WHERE t.id = lines.ticket_type_id",
        event_id,
    )
    .execute(conn)
    .await?;
    Ok(released.rows_affected())
}

/// How an order's lines move the types' counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// A new pending order holds them.
    Hold,
    /// A pending order gives them back (cancelled; a lapsed hold goes through
    /// [`release_lapsed`]).
    Release,
    /// A pending order is paid: held becomes sold.
    Confirm,
    /// A free order is confirmed as it is placed: sold, never held.
    Sell,
    /// A confirmed order is refunded in full: its tickets go back on sale.
    Unsell,
}

/// Moves the counters of an order's ticket types, in the transaction that changes the
/// order's status.
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    movement: Movement,
) -> Result<(), sqlx::Error> {
    let (held, sold): (i32, i32) = match movement {
        Movement::Hold => (1, 0),
        Movement::Release => (-1, 0),
        Movement::Confirm => (-1, 1),
        Movement::Sell => (0, 1),
        Movement::Unsell => (0, -1),
    };
    sqlx::query!(
        "UPDATE ticket_types t
         SET held = t.held + $2 * l.quantity, sold = t.sold + $3 * l.quantity
         FROM order_lines l WHERE l.order_id = $1 AND t.id = l.ticket_type_id",
        order_id,
        held,
        sold,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Issues a confirmed order's tickets (one per unit of each line, named after the
/// order's attendee names in line order, else after the buyer) and queues the buyer's
/// notification. Called once per order, in the transaction that confirms it (placing a
/// free order; settling a paid one, after [`record`] under the event's lock).
#[cfg(feature = "ticketing")]
pub async fn issue_tickets(
    tx: &mut PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Vec<crate::messaging::outbox::Pending>> {
    use crate::{
        identity::UserId,
        messaging::{messages::NotificationMessage, outbox},
    };
    let order = sqlx::query!(
        r#"SELECT o.event_id, o.buyer_id, o.attendee_names, e.title, u.name AS "buyer_name?"
           FROM orders o JOIN events e ON e.id = o.event_id
           LEFT JOIN users u ON u.id = o.buyer_id
           WHERE o.id = $1"#,
        order_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    let units = sqlx::query_scalar!(
        r#"SELECT l.ticket_type_id AS "id!"
           FROM order_lines l, generate_series(1, l.quantity)
           WHERE l.order_id = $1 ORDER BY l.position"#,
        order_id,
    )
    .fetch_all(&mut *tx)
    .await?;
    let fallback = order.buyer_name.unwrap_or_else(|| "Guest".to_owned());
    let names: Vec<String> = (0..units.len())
        .map(|i| {
            order
                .attendee_names
                .as_ref()
                .and_then(|a| a.get(i))
                .cloned()
                .unwrap_or_else(|| fallback.clone())
        })
        .collect();
    let ids: Vec<Uuid> = units.iter().map(|_| Uuid::now_v7()).collect();
    let codes: Vec<String> = units
        .iter()
        .map(|_| TicketCode::generate().as_str().to_owned())
        .collect();
    sqlx::query!(
        "INSERT INTO tickets (id, order_id, event_id, ticket_type_id, attendee_name, code)
         SELECT i, $1, $2, t, n, c
         FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[]) AS u (i, t, n, c)",
        order_id,
        order.event_id,
        &ids,
        &units,
        &names,
        &codes,
    )
    .execute(&mut *tx)
    .await?;
    let Some(buyer) = order.buyer_id else {
        return Ok(Vec::new());
    };
    let message = NotificationMessage::order_confirmed(UserId(buyer), &order.title, units.len());
    Ok(vec![outbox::enqueue(tx, &message).await?])
}

/// Whether an order that holds nothing (its hold lapsed and was released) could take its
/// tickets again now: every line within its type's remaining quantity, all of them
/// within the event's capacity. Decide on it only under the event's row lock, after
/// [`release_lapsed`].
pub async fn fits(
    conn: &mut PgConnection,
    event_id: Uuid,
    order_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let taken = taken(conn, event_id).await?;
    let lines = sqlx::query!(
        "SELECT l.ticket_type_id, l.quantity, t.quantity AS type_quantity, e.capacity
         FROM order_lines l
         JOIN ticket_types t ON t.id = l.ticket_type_id
         JOIN events e ON e.id = t.event_id
         WHERE l.order_id = $1",
        order_id,
    )
    .fetch_all(&mut *conn)
    .await?;
    let event_taken: i64 = taken.values().map(|t| t.total()).sum();
    let wanted: i64 = lines.iter().map(|l| i64::from(l.quantity)).sum();
    let types_fit = lines.iter().all(|l| {
        let left = remaining(
            l.type_quantity,
            taken.get(&l.ticket_type_id).copied().unwrap_or_default(),
            None,
            0,
        );
        l.quantity <= left
    });
    let capacity = lines.first().and_then(|l| l.capacity);
    Ok(types_fit && capacity.is_none_or(|c| event_taken + wanted <= i64::from(c)))
}

/// How many of `quantity` remain given what is taken of the type and of the whole event
/// (its `capacity`, shared by all types).
pub fn remaining(quantity: i32, taken: Taken, capacity: Option<i32>, event_taken: i64) -> i32 {
    let of_type = i64::from(quantity) - taken.total();
    let of_event = capacity.map_or(i64::MAX, |c| i64::from(c) - event_taken);
    // Both bounds fit an i32 (quantity does); a negative one (a lowered capacity) is 0.
    i32::try_from(of_type.min(of_event).max(0)).unwrap_or(0)
}

/// A ticket's admission code: 128 random bits in RFC 4648 base32 without padding (26
/// characters of `A-Z2-7`, which a QR code's alphanumeric mode packs densely and a
/// person can read out at the door).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCode(String);

/// The RFC 4648 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl TicketCode {
    /// A fresh code from the OS generator.
    #[cfg(feature = "ticketing")]
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; 16]) -> Self {
        let n = u128::from_be_bytes(bytes);
        // 26 digits of 5 bits = 130 bits: the 128 bits, then two zero bits.
        let code = (0..26)
            .map(|i| {
                let shift = 128i32 - 5 * (i + 1);
                let digit = if shift >= 0 { n >> shift } else { n << -shift };
                char::from(BASE32[(digit & 31) as usize])
            })
            .collect();
        Self(code)
    }

    /// Reads a code as typed or scanned: surrounding space and lower case are forgiven;
    /// anything but 26 base32 characters is no code.
    pub fn parse(raw: &str) -> Option<Self> {
        let code = raw.trim().to_ascii_uppercase();
        (code.len() == 26 && code.bytes().all(|b| BASE32.contains(&b))).then_some(Self(code))
    }

    /// The code as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_26_base32_characters_of_all_128_bits() {
        assert_eq!(TicketCode::from_bytes([0; 16]).as_str(), "A".repeat(26));
        assert_eq!(
            TicketCode::from_bytes([0xff; 16]).as_str(),
            format!("{}4", "7".repeat(25))
        );
        // The low bit lands in the last character (two zero bits follow it).
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(
            TicketCode::from_bytes(one).as_str(),
            format!("{}E", "A".repeat(25))
        );
    }

    #[test]
    fn parse_forgives_case_and_space_only() {
        let code = TicketCode::from_bytes([0x5a; 16]);
        let typed = format!("  {}\n", code.as_str().to_ascii_lowercase());
        assert_eq!(TicketCode::parse(&typed), Some(code.clone()));
        assert_eq!(TicketCode::parse(&code.as_str()[..25]), None);
        assert_eq!(
            TicketCode::parse(&format!("{}1", &code.as_str()[..25])),
            None
        );
        assert_eq!(TicketCode::parse("ÄÄÄÄÄÄÄÄÄÄÄÄÄ"), None);
    }

    #[test]
    fn remaining_is_the_tighter_of_type_and_event() {
        let taken = Taken { sold: 3, held: 2 };
        assert_eq!(remaining(10, taken, None, 0), 5);
        assert_eq!(remaining(10, taken, Some(8), 6), 2);
        assert_eq!(remaining(10, taken, Some(4), 6), 0);
        assert_eq!(remaining(4, taken, None, 5), 0);
    }

    #[test]
    fn a_lapsed_hold_reads_as_expired() {
        let now = time::OffsetDateTime::now_utc();
        let past = now - time::Duration::seconds(1);
        assert_eq!(OrderStatus::Pending.at(past, now), OrderStatus::Expired);
        assert_eq!(
            OrderStatus::Pending.at(now + time::Duration::minutes(1), now),
            OrderStatus::Pending
        );
        assert_eq!(OrderStatus::Confirmed.at(past, now), OrderStatus::Confirmed);
    }
}

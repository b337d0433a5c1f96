//! Applying a discount code to an order being placed (the organizer creates codes in
//! the events function). Runs under the event's row lock, so counting the code's uses
//! and taking one is a single step: its last use cannot go to two buyers.
//!
//! A use is an order that holds it: confirmed, or pending with a live hold. A cancelled
//! or expired order gives its use back.

use shared::http::error::{ApiError, ApiResult};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A code applied to an order.
#[derive(Debug, Clone)]
pub struct Discount {
    /// The code's id.
    pub id: Uuid,
    /// What it takes off each line, in the order's line order.
    pub per_line: Vec<i64>,
}

/// Finds `code` for the event, checks it may be used now on these lines
/// (`(ticket_type_id, quantity, unit_price_minor)`), and works out what it takes off.
pub async fn apply(
    tx: &mut PgConnection,
    event_id: Uuid,
    code: &str,
    lines: &[(Uuid, i32, i64)],
    now: OffsetDateTime,
) -> ApiResult<Discount> {
    let invalid = |reason: &'static str, message: &str| {
        ApiError::invalid("discount_code", reason, message.to_owned())
    };
    let found = sqlx::query!(
        r#"SELECT id, percent_off, amount_off_minor, max_uses, valid_from, valid_until,
                  ticket_type_ids,
                  (SELECT count(*) FROM orders o
                   WHERE o.discount_code_id = d.id
                     AND (o.status = 'confirmed'
                          OR (o.status = 'pending' AND o.hold_expires_at > now()))) AS "uses!"
           FROM discount_codes d WHERE event_id = $1 AND code = $2"#,
        event_id,
        code,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| invalid("unknown_code", "no such discount code for this event"))?;
    if found.valid_from.is_some_and(|from| now < from) {
        return Err(invalid(
            "not_yet_valid",
            "this discount code is not valid yet",
        ));
    }
    if found.valid_until.is_some_and(|until| now >= until) {
        return Err(invalid("expired", "this discount code has expired"));
    }
    let applies = |type_id: &Uuid| {
        found
            .ticket_type_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(type_id))
    };
    if !lines.iter().any(|(t, _, _)| applies(t)) {
        return Err(invalid(
            "not_applicable",
            "this discount code does not apply to these tickets",
        ));
    }
    if found
        .max_uses
        .is_some_and(|max| found.uses >= i64::from(max))
    {
        return Err(ApiError::Conflict(
            "this discount code has been used up".into(),
        ));
    }
    let per_line = split(
        lines
            .iter()
            .map(|(t, q, p)| if applies(t) { i64::from(*q) * p } else { 0 }),
        found.percent_off,
        found.amount_off_minor,
    );
    Ok(Discount {
        id: found.id,
        per_line,
    })
}

/// What a discount takes off each line, given the lines' discountable amounts: a
/// percentage off each (rounded down, in the buyer's favour never past the price), or a
/// fixed amount once per order, taken from the lines in order until it is used up.
/// Neither takes a line below zero.
fn split(
    amounts: impl Iterator<Item = i64>,
    percent_off: Option<i32>,
    amount_off: Option<i64>,
) -> Vec<i64> {
    let mut left = amount_off.unwrap_or(0);
    amounts
        .map(|amount| match percent_off {
            Some(p) => amount * i64::from(p) / 100,
            None => {
                let off = amount.min(left);
                left -= off;
                off
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_down_per_line() {
        assert_eq!(
            split([999, 0, 1000].into_iter(), Some(15), None),
            [149, 0, 150]
        );
        assert_eq!(split([999].into_iter(), Some(100), None), [999]);
    }

    #[test]
    fn a_fixed_amount_is_taken_once_never_past_the_lines() {
        assert_eq!(
            split([300, 0, 500].into_iter(), None, Some(500)),
            [300, 0, 200]
        );
        assert_eq!(split([300].into_iter(), None, Some(5000)), [300]);
    }
}

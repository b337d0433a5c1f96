//! Discount codes: the organizer creates them for an event (a percentage or a fixed
//! amount off, a number of uses, a validity window, some ticket types or all) and lists
//! them with how often each is used. Buyers apply them in the orders function, which
//! counts a use for every order that holds one (confirmed, or pending on a live hold).

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::{Json, Path},
        timestamp::Timestamp,
    },
    identity::guard::Organizer,
};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AppState,
    manage::{organizers_event, own_event},
};

/// A discount code as the organizer sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DiscountCode {
    /// Its id.
    pub id: Uuid,
    /// The code (upper case; buyers type it in any case).
    pub code: String,
    /// Percent off each applicable line (rounded down), or none.
    pub percent_off: Option<i32>,
    /// Minor units off the order once, or none.
    pub amount_off_minor: Option<i64>,
    /// Most uses; none: unlimited.
    pub max_uses: Option<i32>,
    /// Orders holding it now (confirmed, or pending on a live hold).
    pub uses: i64,
    /// Valid from; none: at once.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<OffsetDateTime>,
    /// Valid until; none: as long as tickets sell.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<OffsetDateTime>,
    /// The ticket types it applies to; none: all.
    pub ticket_type_ids: Option<Vec<Uuid>>,
}

/// A new discount code: exactly one of `percent_off` and `amount_off_minor`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDiscountCode {
    /// 3 to 32 of `A-Z`, `0-9`, `_`, `-` (stored upper case).
    #[schema(example = "EARLYBIRD")]
    pub code: String,
    /// 1 to 100.
    pub percent_off: Option<i32>,
    /// 1 to 100,000,000 minor units, in the event's currency.
    pub amount_off_minor: Option<i64>,
    /// 1 to 1,000,000; default unlimited.
    pub max_uses: Option<i32>,
    /// Default: at once.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<Timestamp>,
    /// Default: as long as tickets sell.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<Timestamp>,
    /// Ticket types of this event it applies to; default all.
    pub ticket_type_ids: Option<Vec<Uuid>>,
}

impl CreateDiscountCode {
    /// Checks the fields that need no database; every failure at once.
    fn check(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.code = self.code.trim().to_ascii_uppercase();
        if !(3..=32).contains(&self.code.len())
            || !self
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            errors.push(FieldError::new(
                "code",
                "invalid",
                "3 to 32 letters, digits, '_' or '-'",
            ));
        }
        match (self.percent_off, self.amount_off_minor) {
            (Some(p), None) if !(1..=100).contains(&p) => errors.push(FieldError::new(
                "percent_off",
                "out_of_range",
                "must be 1 to 100",
            )),
            (None, Some(a)) if !(1..=100_000_000).contains(&a) => errors.push(FieldError::new(
                "amount_off_minor",
                "out_of_range",
                "must be 1 to 100000000",
            )),
            (Some(_), None) | (None, Some(_)) => {}
            _ => errors.push(FieldError::new(
                "percent_off",
                "one_of",
                "give exactly one of percent_off and amount_off_minor",
            )),
        }
        if self.max_uses.is_some_and(|m| !(1..=1_000_000).contains(&m)) {
            errors.push(FieldError::new(
                "max_uses",
                "out_of_range",
                "must be 1 to 1000000",
            ));
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until.get() <= from.get()
        {
            errors.push(FieldError::new(
                "valid_until",
                "before_start",
                "must be after valid_from",
            ));
        }
        if self
            .ticket_type_ids
            .as_ref()
            .is_some_and(|ids| ids.is_empty() || ids.len() > 100)
        {
            errors.push(FieldError::new(
                "ticket_type_ids",
                "out_of_range",
                "omit it for all types, or list 1 to 100",
            ));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// Adds a discount code to one of the caller's events.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event}/discount-codes",
    operation_id = "create_discount_code",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    request_body = CreateDiscountCode,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The code", body = DiscountCode),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is cancelled, or already has this code", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or ticket types of another event", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
    Json(request): Json<CreateDiscountCode>,
) -> ApiResult<(StatusCode, Json<DiscountCode>)> {
    let new = request.check().map_err(ApiError::Validation)?;
    let mut tx = state.db.begin().await?;
    let event = own_event(&mut tx, &user, &key).await?;
    if let Some(ids) = &new.ticket_type_ids {
        let ours = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM ticket_types WHERE event_id = $1 AND id = ANY($2)"#,
            event.id,
            ids,
        )
        .fetch_one(&mut *tx)
        .await?;
        let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len();
        if ours != distinct as i64 {
            return Err(ApiError::invalid(
                "ticket_type_ids",
                "unknown_ticket_type",
                "every id must be a ticket type of this event",
            ));
        }
    }
    let created = sqlx::query_as!(
        DiscountCode,
        r#"INSERT INTO discount_codes (id, event_id, code, percent_off, amount_off_minor,
                                     max_uses, valid_from, valid_until, ticket_type_ids)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (event_id, code) DO NOTHING
           RETURNING id, code, percent_off, amount_off_minor, max_uses, 0::bigint AS "uses!",
                     valid_from, valid_until, ticket_type_ids"#,
        Uuid::now_v7(),
        event.id,
        new.code,
        new.percent_off,
        new.amount_off_minor,
        new.max_uses,
        new.valid_from.map(Timestamp::get),
        new.valid_until.map(Timestamp::get),
        new.ticket_type_ids.as_deref(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::Conflict(format!("this event already has the code {}", new.code)))?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists the discount codes of one of the caller's events, with their uses.
#[utoipa::path(
    get,
    path = "/api/v1/events/{event}/discount-codes",
    operation_id = "list_discount_codes",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event's codes, oldest first", body = Vec<DiscountCode>),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
) -> ApiResult<Json<Vec<DiscountCode>>> {
    let mut conn = state.db.acquire().await?;
    let event = organizers_event(&mut conn, &user, &key, false).await?;
    let codes = sqlx::query_as!(
        DiscountCode,
        r#"SELECT id, code, percent_off, amount_off_minor, max_uses,
                  (SELECT count(*) FROM orders o
                   WHERE o.discount_code_id = d.id
                     AND (o.status = 'confirmed'
                          OR (o.status = 'pending' AND o.hold_expires_at > now()))) AS "uses!",
                  valid_from, valid_until, ticket_type_ids
           FROM discount_codes d WHERE event_id = $1
           ORDER BY created_at, id"#,
        event.id,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(codes))
}

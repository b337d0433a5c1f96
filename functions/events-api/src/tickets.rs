//! Ticket types: what an event sells. The organizer adds them (one currency per event,
//! checked under the event's row lock so two concurrent additions cannot disagree); the
//! public event shows the visible ones with their sales state. Publishing needs one.

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
        timestamp::Timestamp,
    },
    identity::guard::Organizer,
    ticketing,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AppState,
    event::{Event, EventStatus},
    manage::{event_response, own_event, set_status},
};

/// Where a ticket type is in its sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SalesState {
    /// Its sales window has not opened.
    Upcoming,
    /// On sale now.
    OnSale,
    /// None left.
    SoldOut,
    /// Its window closed (or the event started).
    Ended,
}

/// A ticket type as shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TicketType {
    /// Its id.
    pub id: Uuid,
    /// Name (`Full pass`).
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in minor units of `currency` (cents): 2500 is 25.00.
    pub price_minor: i64,
    /// ISO 4217 code, the same for every type of the event.
    pub currency: String,
    /// How many exist.
    pub quantity: i32,
    /// How many can still be bought.
    pub remaining: i32,
    /// Sales open (RFC 3339); none: at once.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sales_start: Option<OffsetDateTime>,
    /// Sales close; none: when the event starts.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sales_end: Option<OffsetDateTime>,
    /// Fewest per order.
    pub min_per_order: i32,
    /// Most per order.
    pub max_per_order: i32,
    /// Hidden from the public page (organizers still see it).
    pub hidden: bool,
    /// Where its sales are now.
    pub sales_state: SalesState,
}

/// A new ticket type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketType {
    /// 1 to 100 characters.
    #[schema(example = "Full pass")]
    pub name: String,
    /// Up to 2,000 characters.
    #[serde(default)]
    pub description: String,
    /// Minor units, 0 (free) to 100,000,000.
    #[schema(example = 2500)]
    pub price_minor: i64,
    /// ISO 4217 code; every type of an event has the same.
    #[schema(example = "EUR")]
    pub currency: String,
    /// 0 to 1,000,000.
    #[schema(example = 100)]
    pub quantity: i32,
    /// Sales open; default at once.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sales_start: Option<Timestamp>,
    /// Sales close; default when the event starts.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sales_end: Option<Timestamp>,
    /// Default 1.
    #[serde(default = "one")]
    pub min_per_order: i32,
    /// Default 10, at most 100.
    #[serde(default = "ten")]
    pub max_per_order: i32,
    /// Default false.
    #[serde(default)]
    pub hidden: bool,
}

fn one() -> i32 {
    1
}

fn ten() -> i32 {
    10
}

impl CreateTicketType {
    /// Normalises and checks the fields; every failure at once.
    fn check(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.name = self.name.trim().to_owned();
        let n = self.name.chars().count();
        if n == 0 || n > 100 || self.name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "name",
                "invalid",
                "1 to 100 characters, no control characters",
            ));
        }
        self.description = self.description.trim().to_owned();
        if self.description.chars().count() > 2000 {
            errors.push(FieldError::new(
                "description",
                "too_long",
                "must be at most 2000 characters",
            ));
        }
        if !(0..=100_000_000).contains(&self.price_minor) {
            errors.push(FieldError::new(
                "price_minor",
                "out_of_range",
                "must be 0 to 100000000",
            ));
        }
        self.currency = self.currency.trim().to_ascii_uppercase();
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            errors.push(FieldError::new(
                "currency",
                "invalid_format",
                "must be an ISO 4217 code such as EUR",
            ));
        }
        if !(0..=1_000_000).contains(&self.quantity) {
            errors.push(FieldError::new(
                "quantity",
                "out_of_range",
                "must be 0 to 1000000",
            ));
        }
        if let (Some(start), Some(end)) = (self.sales_start, self.sales_end)
            && end.get() <= start.get()
        {
            errors.push(FieldError::new(
                "sales_end",
                "before_start",
                "must be after sales_start",
            ));
        }
        if self.min_per_order < 1 {
            errors.push(FieldError::new(
                "min_per_order",
                "too_small",
                "must be at least 1",
            ));
        }
        if self.max_per_order < self.min_per_order.max(1) || self.max_per_order > 100 {
            errors.push(FieldError::new(
                "max_per_order",
                "out_of_range",
                "must be at least min_per_order and at most 100",
            ));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// A `ticket_types` row.
struct TypeRow {
    id: Uuid,
    name: String,
    description: String,
    price_minor: i64,
    currency: String,
    quantity: i32,
    sales_start: Option<OffsetDateTime>,
    sales_end: Option<OffsetDateTime>,
    min_per_order: i32,
    max_per_order: i32,
    hidden: bool,
}

impl TypeRow {
    /// The type as shown, with `remaining` left of it, its state at `now` for an event
    /// starting at `starts_at`.
    fn view(self, remaining: i32, now: OffsetDateTime, starts_at: OffsetDateTime) -> TicketType {
        let closes = self.sales_end.unwrap_or(starts_at);
        let sales_state = if now >= closes {
            SalesState::Ended
        } else if self.sales_start.is_some_and(|s| now < s) {
            SalesState::Upcoming
        } else if remaining == 0 {
            SalesState::SoldOut
        } else {
            SalesState::OnSale
        };
        TicketType {
            id: self.id,
            name: self.name,
            description: self.description,
            price_minor: self.price_minor,
            currency: self.currency,
            quantity: self.quantity,
            remaining,
            sales_start: self.sales_start,
            sales_end: self.sales_end,
            min_per_order: self.min_per_order,
            max_per_order: self.max_per_order,
            hidden: self.hidden,
            sales_state,
        }
    }
}

/// The event's ticket types, oldest first, with what remains of each (after what is
/// sold and held, of the type and of the event's capacity); hidden ones only when
/// `with_hidden`.
pub async fn of_event(
    conn: &mut PgConnection,
    event: &Event,
    with_hidden: bool,
) -> Result<Vec<TicketType>, sqlx::Error> {
    let rows = sqlx::query_as!(
        TypeRow,
        "SELECT id, name, description, price_minor, currency, quantity, sales_start, sales_end,
                min_per_order, max_per_order, hidden
         FROM ticket_types WHERE event_id = $1 AND ($2 OR NOT hidden)
         ORDER BY created_at, id",
        event.id,
        with_hidden,
    )
    .fetch_all(&mut *conn)
    .await?;
    let taken = ticketing::taken(conn, event.id).await?;
    let event_taken = taken.values().map(|t| t.total()).sum();
    let now = OffsetDateTime::now_utc();
    Ok(rows
        .into_iter()
        .map(|r| {
            let of_type = taken.get(&r.id).copied().unwrap_or_default();
            let remaining = ticketing::remaining(r.quantity, of_type, event.capacity, event_taken);
            r.view(remaining, now, event.starts_at)
        })
        .collect())
}

/// Adds a ticket type to one of the caller's events.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event}/ticket-types",
    operation_id = "create_ticket_type",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    request_body = CreateTicketType,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The ticket type", body = TicketType),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or another currency than the event's other types", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
    Json(request): Json<CreateTicketType>,
) -> ApiResult<Response> {
    let new = request.check().map_err(ApiError::Validation)?;
    let mut tx = state.db.begin().await?;
    // The event row lock makes the currency check and the insert one step.
    let event = own_event(&mut tx, &user, &key).await?;
    let currency = sqlx::query_scalar!(
        "SELECT currency FROM ticket_types WHERE event_id = $1 LIMIT 1",
        event.id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(currency) = currency.filter(|c| *c != new.currency) {
        return Err(ApiError::invalid(
            "currency",
            "currency_mismatch",
            format!("this event's tickets are sold in {currency}"),
        ));
    }
    let row = sqlx::query_as!(
        TypeRow,
        "INSERT INTO ticket_types (id, event_id, name, description, price_minor, currency, quantity,
                                   sales_start, sales_end, min_per_order, max_per_order, hidden)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING id, name, description, price_minor, currency, quantity, sales_start, sales_end,
                   min_per_order, max_per_order, hidden",
        Uuid::now_v7(),
        event.id,
        new.name,
        new.description,
        new.price_minor,
        new.currency,
        new.quantity,
        new.sales_start.map(Timestamp::get),
        new.sales_end.map(Timestamp::get),
        new.min_per_order,
        new.max_per_order,
        new.hidden,
    )
    .fetch_one(&mut *tx)
    .await?;
    bump(&mut tx, event.id).await?;
    // A new type has sold nothing; the event's capacity may still bound it.
    let taken = ticketing::taken(&mut tx, event.id).await?;
    let event_taken = taken.values().map(|t| t.total()).sum();
    let remaining = ticketing::remaining(
        row.quantity,
        Default::default(),
        event.capacity,
        event_taken,
    );
    tx.commit().await?;
    let view = row.view(remaining, OffsetDateTime::now_utc(), event.starts_at);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Publishes one of the caller's draft events: it needs a ticket type and a start in the
/// future. Publishing again is harmless (200, unchanged).
#[utoipa::path(
    post,
    path = "/api/v1/events/{event}/publish",
    operation_id = "publish_event",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The published event, with its new `ETag`", body = Event),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Cancelled, already started, or without a ticket type", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn publish(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
) -> ApiResult<Response> {
    let mut tx = state.db.begin().await?;
    let event = own_event(&mut tx, &user, &key).await?;
    if event.status == EventStatus::Published {
        return Ok(event_response(StatusCode::OK, event, false));
    }
    if event.starts_at <= OffsetDateTime::now_utc() {
        return Err(ApiError::Conflict(
            "an event that has started cannot be published".into(),
        ));
    }
    let types = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM ticket_types WHERE event_id = $1"#,
        event.id
    )
    .fetch_one(&mut *tx)
    .await?;
    if types == 0 {
        return Err(ApiError::Conflict(
            "add a ticket type before publishing".into(),
        ));
    }
    let published = set_status(&mut tx, event.id, EventStatus::Published).await?;
    tx.commit().await?;
    tracing::info!(event_id = %event.id, "event published");
    Ok(event_response(StatusCode::OK, published, false))
}

/// A change to a ticket type (JSON merge patch); its currency is the event's and stays.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTicketType {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// Up to 2,000 characters.
    pub description: Option<String>,
    /// Minor units; orders already placed keep the price they were placed at.
    pub price_minor: Option<i64>,
    /// Not below what is sold and held.
    pub quantity: Option<i32>,
    /// `null` clears it (sales open at once).
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sales_start: Option<Option<Timestamp>>,
    /// `null` clears it (sales close when the event starts).
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sales_end: Option<Option<Timestamp>>,
    /// At least 1.
    pub min_per_order: Option<i32>,
    /// At least `min_per_order`, at most 100.
    pub max_per_order: Option<i32>,
    /// Hide it from buyers (the way to retire a type that has sales).
    pub hidden: Option<bool>,
}

/// One of the event's ticket types, with the event locked; 404 otherwise.
async fn own_type(
    conn: &mut PgConnection,
    user: &Organizer,
    key: &str,
    type_id: Uuid,
) -> ApiResult<(Event, TypeRow)> {
    let event = own_event(conn, user, key).await?;
    let row = sqlx::query_as!(
        TypeRow,
        "SELECT id, name, description, price_minor, currency, quantity, sales_start, sales_end,
                min_per_order, max_per_order, hidden
         FROM ticket_types WHERE id = $1 AND event_id = $2",
        type_id,
        event.id,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound("ticket type"))?;
    Ok((event, row))
}

/// Changes a ticket type of one of the caller's events. Under the event's lock, so the
/// quantity check and the orders the orders function places take turns.
#[utoipa::path(
    patch,
    path = "/api/v1/events/{event}/ticket-types/{ticket_type}",
    operation_id = "update_ticket_type",
    tag = "events",
    params(
        ("event" = String, Path, description = "The event's id or slug"),
        ("ticket_type" = Uuid, Path, description = "The ticket type's id"),
    ),
    request_body(content = PatchTicketType, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed ticket type", body = TicketType),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket type of the caller's events", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a quantity below what is sold and held", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn update(
    State(state): State<AppState>,
    user: Organizer,
    Path((key, type_id)): Path<(String, Uuid)>,
    Json(patch): Json<PatchTicketType>,
) -> ApiResult<Json<TicketType>> {
    let mut tx = state.db.begin().await?;
    let (event, current) = own_type(&mut tx, &user, &key, type_id).await?;
    let merged = CreateTicketType {
        name: patch.name.unwrap_or(current.name),
        description: patch.description.unwrap_or(current.description),
        price_minor: patch.price_minor.unwrap_or(current.price_minor),
        currency: current.currency,
        quantity: patch.quantity.unwrap_or(current.quantity),
        sales_start: patch
            .sales_start
            .unwrap_or(current.sales_start.and_then(Timestamp::stored)),
        sales_end: patch
            .sales_end
            .unwrap_or(current.sales_end.and_then(Timestamp::stored)),
        min_per_order: patch.min_per_order.unwrap_or(current.min_per_order),
        max_per_order: patch.max_per_order.unwrap_or(current.max_per_order),
        hidden: patch.hidden.unwrap_or(current.hidden),
    }
    .check()
    .map_err(ApiError::Validation)?;
    ticketing::release_lapsed(&mut tx, event.id).await?;
    let taken = ticketing::taken(&mut tx, event.id).await?;
    let of_type = taken.get(&type_id).copied().unwrap_or_default();
    if i64::from(merged.quantity) < of_type.total() {
        return Err(ApiError::invalid(
            "quantity",
            "below_taken",
            format!(
                "{} are sold and {} held: the quantity cannot be lower",
                of_type.sold, of_type.held
            ),
        ));
    }
    let row = sqlx::query_as!(
        TypeRow,
        "UPDATE ticket_types
         SET name = $2, description = $3, price_minor = $4, quantity = $5, sales_start = $6,
             sales_end = $7, min_per_order = $8, max_per_order = $9, hidden = $10
         WHERE id = $1
         RETURNING id, name, description, price_minor, currency, quantity, sales_start,
                   sales_end, min_per_order, max_per_order, hidden",
        type_id,
        merged.name,
        merged.description,
        merged.price_minor,
        merged.quantity,
        merged.sales_start.map(Timestamp::get),
        merged.sales_end.map(Timestamp::get),
        merged.min_per_order,
        merged.max_per_order,
        merged.hidden,
    )
    .fetch_one(&mut *tx)
    .await?;
    bump(&mut tx, event.id).await?;
    tx.commit().await?;
    let event_taken = taken.values().map(|t| t.total()).sum();
    let remaining = ticketing::remaining(row.quantity, of_type, event.capacity, event_taken);
    Ok(Json(row.view(
        remaining,
        OffsetDateTime::now_utc(),
        event.starts_at,
    )))
}

/// Deletes a ticket type that has never been ordered; one with orders is hidden instead
/// (409 says so), so every order keeps what it bought.
#[utoipa::path(
    delete,
    path = "/api/v1/events/{event}/ticket-types/{ticket_type}",
    operation_id = "delete_ticket_type",
    tag = "events",
    params(
        ("event" = String, Path, description = "The event's id or slug"),
        ("ticket_type" = Uuid, Path, description = "The ticket type's id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket type of the caller's events", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has orders (hide it instead), or the event is cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn remove(
    State(state): State<AppState>,
    user: Organizer,
    Path((key, type_id)): Path<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let (event, _) = own_type(&mut tx, &user, &key, type_id).await?;
    let ordered = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM order_lines WHERE ticket_type_id = $1) AS "ordered!""#,
        type_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if ordered {
        return Err(ApiError::Conflict(
            "this ticket type has orders: hide it instead (\"hidden\": true)".into(),
        ));
    }
    sqlx::query!("DELETE FROM ticket_types WHERE id = $1", type_id)
        .execute(&mut *tx)
        .await?;
    bump(&mut tx, event.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A change to what the event sells changes its public page: its version moves.
async fn bump(conn: &mut PgConnection, event_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE events SET version = version + 1, updated_at = now() WHERE id = $1",
        event_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

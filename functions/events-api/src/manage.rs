//! The organizer's side: create a draft, list one's own events (drafts included), and
//! change one with `If-Match`. Organizers (and admins) only; an organizer reaches only
//! their own events, whatever id or slug they send (404 otherwise).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use shared::{
    http::{
        conditional::{self, IfMatch},
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::{Json, Path, Query},
        pagination::{self, CreatedKey, Page, PageParams},
    },
    identity::{Role, UserId, guard::Organizer},
    messaging::outbox,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    AppState,
    event::{CreateEvent, Event, EventFields, EventStatus, PatchEvent, slug_of},
    public::{EventRow, Key},
};

/// An event response: the event with its `ETag` (and `Location` when created).
pub(crate) fn event_response(status: StatusCode, event: Event, location: bool) -> Response {
    let mut response = (status, Json(&event)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, conditional::etag_header(event.version));
    if location && let Ok(value) = format!("/api/v1/events/{}", event.id).parse() {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// The caller's event (an admin's: any), whatever its status, locked for the
/// transaction when `for_update`; 404 for anyone else's.
pub(crate) async fn organizers_event(
    conn: &mut PgConnection,
    user: &Organizer,
    key: &str,
    for_update: bool,
) -> ApiResult<Event> {
    let key = Key::parse(key).ok_or(ApiError::NotFound("event"))?;
    Ok(Event::from(
        key.find(conn, for_update)
            .await?
            .filter(|e| e.organizer_id == user.id.0 || user.role == Role::Admin)
            .ok_or(ApiError::NotFound("event"))?,
    ))
}

/// The caller's event to change: locked; 404 for anyone else's, 409 when cancelled.
pub(crate) async fn own_event(
    conn: &mut PgConnection,
    user: &Organizer,
    key: &str,
) -> ApiResult<Event> {
    let event = organizers_event(conn, user, key, true).await?;
    if event.status == EventStatus::Cancelled {
        return Err(ApiError::Conflict("a cancelled event cannot change".into()));
    }
    Ok(event)
}

/// Moves a locked event to `status` (publishing or cancelling), stamping when, with a
/// new version.
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: EventStatus,
) -> Result<Event, sqlx::Error> {
    let row = sqlx::query_as!(
        EventRow,
        r#"UPDATE events
           SET status = $2,
               published_at = CASE WHEN $2 = 'published'::event_status THEN now() ELSE published_at END,
               cancelled_at = CASE WHEN $2 = 'cancelled'::event_status THEN now() ELSE cancelled_at END,
               version = version + 1, updated_at = now()
           WHERE id = $1
           RETURNING id, slug, organizer_id, title, description, category, venue_name,
                     venue_address, city, region, country, starts_at, ends_at, timezone,
                     cover_upload_id, capacity, status AS "status: EventStatus", version,
                     created_at, updated_at"#,
        id,
        status as EventStatus,
    )
    .fetch_one(conn)
    .await?;
    Ok(Event::from(row))
}

/// Checks what only the database knows: the time zone is one it knows, and the cover is
/// an `event_image` upload of the organizer's that is `ready`.
async fn check_references(
    conn: &mut PgConnection,
    organizer: UserId,
    fields: &EventFields,
) -> ApiResult<()> {
    let found = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS "zone!",
                  EXISTS (SELECT 1 FROM uploads
                          WHERE id = $2 AND owner_id = $3 AND purpose = 'event_image'
                            AND status = 'ready') AS "cover!""#,
        fields.timezone,
        fields.cover_upload_id,
        organizer.0,
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut errors = Vec::new();
    if !found.zone {
        errors.push(FieldError::new(
            "timezone",
            "unknown_timezone",
            "must be an IANA time zone such as Europe/Madrid",
        ));
    }
    if fields.cover_upload_id.is_some() && !found.cover {
        errors.push(FieldError::new(
            "cover_upload_id",
            "invalid_upload",
            "must be one of your event_image uploads, ready",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Creates a draft event for the caller, with a slug made from its title.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "create_event",
    tag = "events",
    request_body = CreateEvent,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The draft; `Location` and `ETag` set", body = Event),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: Organizer,
    Json(request): Json<CreateEvent>,
) -> ApiResult<Response> {
    let fields = EventFields::from(request)
        .check()
        .map_err(ApiError::Validation)?;
    let mut tx = state.db.begin().await?;
    check_references(&mut tx, user.id, &fields).await?;
    let id = Uuid::now_v7();
    let base = slug_of(&fields.title);
    // The title's slug, else `-2` ... `-9`, else one no other event can have (the id's).
    let candidates = std::iter::once(base.clone())
        .chain((2..10).map(|n| format!("{base}-{n}")))
        .chain(std::iter::once(format!(
            "{base}-{}",
            &id.simple().to_string()[24..]
        )));
    let mut created = None;
    for slug in candidates {
        created = sqlx::query_as!(
            EventRow,
            r#"INSERT INTO events (id, organizer_id, slug, title, description, category,
                                   venue_name, venue_address, city, region, country,
                                   starts_at, ends_at, timezone, cover_upload_id, capacity)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
               ON CONFLICT (slug) DO NOTHING
               RETURNING id, slug, organizer_id, title, description, category, venue_name,
                         venue_address, city, region, country, starts_at, ends_at, timezone,
                         cover_upload_id, capacity, status AS "status: EventStatus", version,
                         created_at, updated_at"#,
            id,
            user.id.0,
            slug,
            fields.title,
            fields.description,
            fields.category,
            fields.venue.name,
            fields.venue.address,
            fields.venue.city,
            fields.venue.region,
            fields.venue.country,
            fields.starts_at,
            fields.ends_at,
            fields.timezone,
            fields.cover_upload_id,
            fields.capacity,
        )
        .fetch_optional(&mut *tx)
        .await?;
        if created.is_some() {
            break;
        }
    }
    let event = Event::from(created.ok_or_else(|| no_free_slug(&base))?);
    tx.commit().await?;
    tracing::info!(event_id = %event.id, "event created");
    Ok(event_response(StatusCode::CREATED, event, true))
}

/// Every candidate taken, the last one made from this event's own new id: a bug or an
/// attack on the slug space, worth a 500 and a log line rather than a guess.
fn no_free_slug(base: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("no free slug for {base}"))
}

/// Lists the caller's own events, drafts included, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/events/mine",
    operation_id = "list_my_events",
    tag = "events",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's events", body = Page<Event>),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn mine(
    State(state): State<AppState>,
    user: Organizer,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<Event>>> {
    let (size, after): (_, Option<CreatedKey>) = params.parse()?;
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT id, slug, organizer_id, title, description, category, venue_name,
                  venue_address, city, region, country, starts_at, ends_at, timezone,
                  cover_upload_id, capacity, status AS "status: EventStatus", version,
                  created_at, updated_at
           FROM events
           WHERE organizer_id = $1
             AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        user.id.0,
        after.map(|k| k.t),
        after.map(|k| k.id),
        size.fetch(),
    )
    .fetch_all(&state.db)
    .await?;
    let events: Vec<Event> = rows.into_iter().map(Event::from).collect();
    Ok(Json(pagination::page(events, size, |e| CreatedKey {
        t: e.created_at,
        id: e.id,
    })))
}

/// Changes an event (JSON merge patch). A cancelled event is final (409).
#[utoipa::path(
    patch,
    path = "/api/v1/events/{event}",
    operation_id = "update_event",
    tag = "events",
    params(
        ("event" = String, Path, description = "The event's id or slug"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on"),
    ),
    request_body(content = PatchEvent, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed event, with its new `ETag`", body = Event),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an organizer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The event changed since the `If-Match` tag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn update(
    State(state): State<AppState>,
    user: Organizer,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(patch): Json<PatchEvent>,
) -> ApiResult<Response> {
    let precondition = IfMatch::from_headers(&headers);
    let mut tx = state.db.begin().await?;
    // Locked: the version check and the write see the same version.
    let current = own_event(&mut tx, &user, &key).await?;
    precondition.check(current.version, "event")?;
    let fields = patch
        .apply(EventFields::from(&current))
        .check()
        .map_err(ApiError::Validation)?;
    check_references(&mut tx, UserId(current.organizer_id), &fields).await?;
    let row = sqlx::query_as!(
        EventRow,
        r#"UPDATE events
           SET title = $2, description = $3, category = $4, venue_name = $5, venue_address = $6,
               city = $7, region = $8, country = $9, starts_at = $10, ends_at = $11,
               timezone = $12, cover_upload_id = $13, capacity = $14,
               version = version + 1, updated_at = now()
           WHERE id = $1
           RETURNING id, slug, organizer_id, title, description, category, venue_name,
                     venue_address, city, region, country, starts_at, ends_at, timezone,
                     cover_upload_id, capacity, status AS "status: EventStatus", version,
                     created_at, updated_at"#,
        current.id,
        fields.title,
        fields.description,
        fields.category,
        fields.venue.name,
        fields.venue.address,
        fields.venue.city,
        fields.venue.region,
        fields.venue.country,
        fields.starts_at,
        fields.ends_at,
        fields.timezone,
        fields.cover_upload_id,
        fields.capacity,
    )
    .fetch_one(&mut *tx)
    .await?;
    let updated = Event::from(row);
    let told = crate::cancel::tell_of_change(&mut tx, &current, &updated).await?;
    tx.commit().await?;
    outbox::relay(&state.db, &state.publisher, told).await;
    Ok(event_response(StatusCode::OK, updated, false))
}

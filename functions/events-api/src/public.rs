//! One event, by id or slug: a published or cancelled event to anyone (no token needed),
//! a draft to its organizer or an admin only (a 404 to everyone else, as if it did not
//! exist). Responses carry the `ETag` (304 on `If-None-Match`); a public answer may be
//! kept a minute by browsers and CDNs, a draft never.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        conditional,
        error::{ApiError, ApiResult, Problem},
        extract::Path,
    },
    identity::{Role, guard::CurrentUser},
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AppState,
    event::{Event, EventStatus, Venue, is_slug},
    tickets::{self, TicketType},
};

/// An `events` row as selected (the venue flattened).
pub struct EventRow {
    pub(crate) id: Uuid,
    pub(crate) slug: String,
    pub(crate) organizer_id: Uuid,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) category: String,
    pub(crate) venue_name: String,
    pub(crate) venue_address: String,
    pub(crate) city: String,
    pub(crate) region: String,
    pub(crate) country: String,
    pub(crate) starts_at: OffsetDateTime,
    pub(crate) ends_at: OffsetDateTime,
    pub(crate) timezone: String,
    pub(crate) cover_upload_id: Option<Uuid>,
    pub(crate) capacity: Option<i32>,
    pub(crate) status: EventStatus,
    pub(crate) version: i64,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Self {
            id: r.id,
            slug: r.slug,
            organizer_id: r.organizer_id,
            title: r.title,
            description: r.description,
            category: r.category,
            venue: Venue {
                name: r.venue_name,
                address: r.venue_address,
                city: r.city,
                region: r.region,
                country: r.country,
            },
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            timezone: r.timezone,
            cover_upload_id: r.cover_upload_id,
            capacity: r.capacity,
            status: r.status,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// How a path names an event: its id, or its slug.
pub enum Key {
    /// `/api/v1/events/0190...`.
    Id(Uuid),
    /// `/api/v1/events/salsa-night`.
    Slug(String),
}

impl Key {
    /// The key in a path segment; `None` when it can name no event (a 404).
    pub fn parse(raw: &str) -> Option<Self> {
        match Uuid::parse_str(raw) {
            Ok(id) => Some(Self::Id(id)),
            Err(_) if is_slug(raw) && raw.len() <= 90 => Some(Self::Slug(raw.to_owned())),
            Err(_) => None,
        }
    }

    /// The event, locked for the transaction when `for_update`.
    pub async fn find(
        &self,
        conn: &mut PgConnection,
        for_update: bool,
    ) -> Result<Option<EventRow>, sqlx::Error> {
        let (id, slug) = match self {
            Self::Id(id) => (Some(*id), None),
            Self::Slug(slug) => (None, Some(slug.as_str())),
        };
        // One statement for both keys (NULL never matches); FOR UPDATE only when asked.
        if for_update {
            sqlx::query_as!(
                EventRow,
                r#"SELECT id, slug, organizer_id, title, description, category, venue_name,
                          venue_address, city, region, country, starts_at, ends_at, timezone,
                          cover_upload_id, capacity, status AS "status: EventStatus", version,
                          created_at, updated_at
                   FROM events WHERE id = $1 OR slug = $2
                   FOR UPDATE"#,
                id,
                slug,
            )
            .fetch_optional(conn)
            .await
        } else {
            sqlx::query_as!(
                EventRow,
                r#"SELECT id, slug, organizer_id, title, description, category, venue_name,
                          venue_address, city, region, country, starts_at, ends_at, timezone,
                          cover_upload_id, capacity, status AS "status: EventStatus", version,
                          created_at, updated_at
                   FROM events WHERE id = $1 OR slug = $2"#,
                id,
                slug,
            )
            .fetch_optional(conn)
            .await
        }
    }
}

/// An event with what it sells: the public page's content.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventDetail {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Its ticket types (the hidden ones only for its organizer).
    pub ticket_types: Vec<TicketType>,
}

/// How long browsers and CDNs may keep a public event page.
const PUBLIC_CACHE: &str = "public, max-age=60";
/// Drafts are for their organizer's eyes: never kept by a shared cache.
const PRIVATE_CACHE: &str = "private, no-cache";

/// Shows an event by id or slug.
#[utoipa::path(
    get,
    path = "/api/v1/events/{event}",
    operation_id = "get_event",
    tag = "events",
    params(("event" = String, Path, description = "The event's id or slug")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The event and its ticket types, with its `ETag`", body = EventDetail),
        (status = 304, description = "Unchanged since the `If-None-Match` tag"),
        (status = 404, description = "No such event (or a draft of someone else's)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    viewer: Option<CurrentUser>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = Key::parse(&key).ok_or(ApiError::NotFound("event"))?;
    let mut conn = state.db.acquire().await?;
    let event = Event::from(
        key.find(&mut conn, false)
            .await?
            .ok_or(ApiError::NotFound("event"))?,
    );
    let public = event.status != EventStatus::Draft;
    let allowed = public
        || viewer
            .as_ref()
            .is_some_and(|v| v.id.0 == event.organizer_id || v.role == Role::Admin);
    if !allowed {
        return Err(ApiError::NotFound("event"));
    }
    let cache = HeaderValue::from_static(if public { PUBLIC_CACHE } else { PRIVATE_CACHE });
    // Hidden types are for the organizer's eyes (and an admin's) only.
    let organizer = viewer
        .as_ref()
        .is_some_and(|v| v.id.0 == event.organizer_id || v.role == Role::Admin);
    let ticket_types = tickets::of_event(&mut conn, &event, organizer).await?;
    let version = event.version;
    let body = serde_json::to_vec(&EventDetail {
        event,
        ticket_types,
    })
    .map_err(anyhow::Error::from)?;
    // What remains changes with every order, not the event's version: the tag is the
    // view's, so a revalidation never keeps stale availability.
    let tag = conditional::view_etag(version, &body);
    let etag = [(
        header::ETAG,
        HeaderValue::from_str(&tag).map_err(anyhow::Error::from)?,
    )];
    let mut response = if conditional::none_match(&headers, &tag) {
        (StatusCode::NOT_MODIFIED, etag).into_response()
    } else {
        let json = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        (StatusCode::OK, etag, json, body).into_response()
    };
    response.headers_mut().insert(header::CACHE_CONTROL, cache);
    // The answer depends on the token only for drafts; say so for any shared cache.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("authorization"));
    Ok(response)
}

//! The public catalogue: published events that have not ended, soonest first, for anyone
//! (no token). Filters: words (`q`), city, category, a start window and an organizer.
//! Keyset pages like every list; each page carries an `ETag` of its content (304 on
//! `If-None-Match`) and a short public `Cache-Control`, so bursts of the same listing are
//! answered by browsers and CDNs.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::http::{
    conditional,
    error::{ApiResult, Problem},
    extract::Query,
    pagination::{self, CreatedKey, Page, PageParams},
    timestamp::Timestamp,
};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    AppState,
    event::{Event, EventStatus},
    public::EventRow,
};

/// How long browsers and CDNs may keep a catalogue page.
const CATALOGUE_CACHE: &str = "public, max-age=30";

/// The catalogue's filters; every one optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogueParams {
    /// Words to find in the title, description, category, venue or city (web-search
    /// syntax: `salsa -bachata`, `"west coast"`).
    pub q: Option<String>,
    /// Only events in this city (any case).
    pub city: Option<String>,
    /// Only events of this category (`salsa`).
    pub category: Option<String>,
    /// Only events starting at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Only events starting before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Only this organizer's events.
    pub organizer: Option<Uuid>,
}

/// Lists published events that have not ended, soonest first.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(CatalogueParams, PageParams),
    security(()),
    responses(
        (status = 200, description = "A page of events, with an `ETag`", body = Page<Event>),
        (status = 304, description = "Unchanged since the `If-None-Match` tag"),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter that does not parse (named)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Query(filters): Query<CatalogueParams>,
    Query(paging): Query<PageParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // The key is (starts_at, id): the next page starts after the last event shown.
    let (size, after): (_, Option<CreatedKey>) = paging.parse()?;
    let q = filters
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT id, slug, organizer_id, title, description, category, venue_name,
                  venue_address, city, region, country, starts_at, ends_at, timezone,
                  cover_upload_id, capacity, status AS "status: EventStatus", version,
                  created_at, updated_at
           FROM events
           WHERE status = 'published' AND ends_at > now()
             AND ($1::text IS NULL OR search @@ websearch_to_tsquery('simple', $1))
             AND ($2::text IS NULL OR lower(city) = lower($2))
             AND ($3::text IS NULL OR category = lower($3))
             AND ($4::timestamptz IS NULL OR starts_at >= $4)
             AND ($5::timestamptz IS NULL OR starts_at < $5)
             AND ($6::uuid IS NULL OR organizer_id = $6)
             AND ($7::timestamptz IS NULL OR (starts_at, id) > ($7, $8))
           ORDER BY starts_at, id
           LIMIT $9"#,
        q,
        filters.city.as_deref().map(str::trim),
        filters.category.as_deref().map(str::trim),
        filters.from.map(Timestamp::get),
        filters.to.map(Timestamp::get),
        filters.organizer,
        after.map(|k| k.t),
        after.map(|k| k.id),
        size.fetch(),
    )
    .fetch_all(&state.db)
    .await?;
    let events: Vec<Event> = rows.into_iter().map(Event::from).collect();
    let page = pagination::page(events, size, |e| CreatedKey {
        t: e.starts_at,
        id: e.id,
    });
    // A strong tag of exactly the bytes sent.
    let body = serde_json::to_vec(&page).map_err(anyhow::Error::from)?;
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", hex(&digest[..12]));
    let mut response = if conditional::none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CATALOGUE_CACHE),
    );
    Ok(response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! An event: its JSON view, the bodies that create and change it, and the rules its
//! fields follow ([`EventFields::check`], which reports every bad field at once).

use serde::{Deserialize, Serialize};
use shared::http::{error::FieldError, timestamp::Timestamp};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "event_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Seen by its organizer (and admins) only.
    Draft,
    /// In the catalogue.
    Published,
    /// Called off; still shown, with its tickets void.
    Cancelled,
}

/// Where an event takes place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Venue {
    /// The venue's name.
    #[schema(example = "Salón Buenos Aires")]
    pub name: String,
    /// Street address.
    #[schema(example = "Calle Mayor 1")]
    pub address: String,
    /// City.
    #[schema(example = "Madrid")]
    pub city: String,
    /// Region or state; may be empty.
    #[serde(default)]
    pub region: String,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(example = "ES")]
    pub country: String,
}

/// An event as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Its id.
    pub id: Uuid,
    /// Its readable, unique address part (`/api/v1/events/{slug}` works too).
    #[schema(example = "salsa-night-madrid")]
    pub slug: String,
    /// Who organizes it.
    pub organizer_id: Uuid,
    /// Title.
    pub title: String,
    /// Description (plain text).
    pub description: String,
    /// Category, lower-case words joined by `-` (`salsa`, `west-coast-swing`).
    pub category: String,
    /// Where.
    pub venue: Venue,
    /// Start (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    /// End (RFC 3339), after the start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: OffsetDateTime,
    /// The IANA time zone the event's times are shown in (`Europe/Madrid`).
    pub timezone: String,
    /// The cover image (an `event_image` upload).
    pub cover_upload_id: Option<Uuid>,
    /// Tickets of all types together, if the event caps them.
    pub capacity: Option<i32>,
    /// Draft, published or cancelled.
    pub status: EventStatus,
    /// The version (its `ETag` is `"<version>"`).
    pub version: i64,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A new event (a draft).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    /// 1 to 200 characters.
    #[schema(example = "Salsa night")]
    pub title: String,
    /// Up to 20,000 characters.
    #[serde(default)]
    pub description: String,
    /// Lower-case words joined by `-`, up to 40 characters.
    #[schema(example = "salsa")]
    pub category: String,
    /// Where.
    pub venue: Venue,
    /// Start (RFC 3339).
    #[schema(value_type = String, format = DateTime, example = "2027-03-06T20:00:00+01:00")]
    pub starts_at: Timestamp,
    /// End (RFC 3339), after the start.
    #[schema(value_type = String, format = DateTime, example = "2027-03-07T02:00:00+01:00")]
    pub ends_at: Timestamp,
    /// IANA time zone.
    #[schema(example = "Europe/Madrid")]
    pub timezone: String,
    /// An `event_image` upload of the caller's that is `ready`.
    pub cover_upload_id: Option<Uuid>,
    /// Tickets of all types together, at least 1.
    pub capacity: Option<i32>,
}

/// A JSON merge patch of an event: an absent field is kept, `null` clears an optional one
/// (`cover_upload_id`, `capacity`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEvent {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New category.
    pub category: Option<String>,
    /// New venue (whole).
    pub venue: Option<Venue>,
    /// New start.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<Timestamp>,
    /// New end.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<Timestamp>,
    /// New time zone.
    pub timezone: Option<String>,
    /// New cover image; `null` removes it.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<Uuid>)]
    pub cover_upload_id: Option<Option<Uuid>>,
    /// New capacity; `null` removes the cap.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<i32>)]
    pub capacity: Option<Option<i32>>,
}

/// The editable fields of an event, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFields {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Venue.
    pub venue: Venue,
    /// Start.
    pub starts_at: OffsetDateTime,
    /// End.
    pub ends_at: OffsetDateTime,
    /// IANA zone name (checked against the database's list by the handler).
    pub timezone: String,
    /// Cover image (checked against the uploads by the handler).
    pub cover_upload_id: Option<Uuid>,
    /// Capacity.
    pub capacity: Option<i32>,
}

impl From<CreateEvent> for EventFields {
    fn from(c: CreateEvent) -> Self {
        Self {
            title: c.title,
            description: c.description,
            category: c.category,
            venue: c.venue,
            starts_at: c.starts_at.get(),
            ends_at: c.ends_at.get(),
            timezone: c.timezone,
            cover_upload_id: c.cover_upload_id,
            capacity: c.capacity,
        }
    }
}

impl From<&Event> for EventFields {
    fn from(e: &Event) -> Self {
        Self {
            title: e.title.clone(),
            description: e.description.clone(),
            category: e.category.clone(),
            venue: e.venue.clone(),
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            timezone: e.timezone.clone(),
            cover_upload_id: e.cover_upload_id,
            capacity: e.capacity,
        }
    }
}

impl PatchEvent {
    /// `current` with this patch's fields put in (unchecked: [`EventFields::check`] next).
    pub fn apply(self, current: EventFields) -> EventFields {
        EventFields {
            title: self.title.unwrap_or(current.title),
            description: self.description.unwrap_or(current.description),
            category: self.category.unwrap_or(current.category),
            venue: self.venue.unwrap_or(current.venue),
            starts_at: self.starts_at.map_or(current.starts_at, Timestamp::get),
            ends_at: self.ends_at.map_or(current.ends_at, Timestamp::get),
            timezone: self.timezone.unwrap_or(current.timezone),
            cover_upload_id: self.cover_upload_id.unwrap_or(current.cover_upload_id),
            capacity: self.capacity.unwrap_or(current.capacity),
        }
    }
}

/// A text field trimmed and within `min..=max` characters, without control characters
/// (a description may hold line breaks).
fn text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &mut String,
    min: usize,
    max: usize,
    multiline: bool,
) {
    *value = value.trim().to_owned();
    let n = value.chars().count();
    if n < min {
        errors.push(FieldError::new(field, "required", "must not be empty"));
    } else if n > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ));
    } else if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        errors.push(FieldError::new(
            field,
            "invalid_characters",
            "must not contain control characters",
        ));
    }
}

impl EventFields {
    /// Normalises the fields (trimmed text, lower-case category, upper-case country) and
    /// checks every rule the database cannot phrase for a client; every failure at once.
    pub fn check(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        text(&mut errors, "title", &mut self.title, 1, 200, false);
        text(
            &mut errors,
            "description",
            &mut self.description,
            0,
            20_000,
            true,
        );
        text(
            &mut errors,
            "venue/name",
            &mut self.venue.name,
            1,
            200,
            false,
        );
        text(
            &mut errors,
            "venue/address",
            &mut self.venue.address,
            1,
            300,
            true,
        );
        text(
            &mut errors,
            "venue/city",
            &mut self.venue.city,
            1,
            100,
            false,
        );
        text(
            &mut errors,
            "venue/region",
            &mut self.venue.region,
            0,
            100,
            false,
        );
        self.category = self.category.trim().to_lowercase();
        if !is_slug(&self.category) || self.category.len() > 40 {
            errors.push(FieldError::new(
                "category",
                "invalid_format",
                "must be lower-case letters and digits joined by `-`, up to 40 characters",
            ));
        }
        self.venue.country = self.venue.country.trim().to_ascii_uppercase();
        if self.venue.country.len() != 2
            || !self.venue.country.bytes().all(|b| b.is_ascii_uppercase())
        {
            errors.push(FieldError::new(
                "venue/country",
                "invalid_format",
                "must be an ISO 3166-1 alpha-2 code such as ES",
            ));
        }
        if self.ends_at <= self.starts_at {
            errors.push(FieldError::new(
                "ends_at",
                "before_start",
                "must be after starts_at",
            ));
        }
        self.timezone = self.timezone.trim().to_owned();
        if self.timezone.is_empty() || self.timezone.len() > 64 {
            errors.push(FieldError::new(
                "timezone",
                "unknown_timezone",
                "must be an IANA time zone such as Europe/Madrid",
            ));
        }
        if self.capacity.is_some_and(|c| c < 1) {
            errors.push(FieldError::new(
                "capacity",
                "too_small",
                "must be at least 1",
            ));
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }
}

/// Lower-case ASCII letters and digits in groups joined by single `-`.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Slugs that name routes, never events.
pub const RESERVED_SLUGS: &[&str] = &["mine"];

/// A slug made from a title: ASCII letters and digits lower-cased, everything else a
/// single `-`, at most 80 characters; `event` when nothing is left.
pub fn slug_of(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 80 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() || RESERVED_SLUGS.contains(&slug.as_str()) {
        format!("event-{slug}").trim_end_matches('-').to_owned()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_readable_and_valid() {
        assert_eq!(
            slug_of("Salsa Night: Madrid 2027!"),
            "salsa-night-madrid-2027"
        );
        assert_eq!(slug_of("  --Tango--  "), "tango");
        assert_eq!(slug_of("¡Fiesta!"), "fiesta");
        assert_eq!(slug_of("💃🕺"), "event");
        assert_eq!(slug_of("mine"), "event-mine");
        let long = slug_of(&"a b ".repeat(100));
        assert!(long.len() <= 80 && is_slug(&long), "{long}");
        for title in ["x", "A-B", "é è", "1 2 3", "a\u{0}b"] {
            assert!(is_slug(&slug_of(title)), "{title}");
        }
    }

    fn fields() -> EventFields {
        EventFields {
            title: " Salsa night ".into(),
            description: "Line one\nline two".into(),
            category: "Salsa".into(),
            venue: Venue {
                name: "Hall".into(),
                address: "Street 1".into(),
                city: "Madrid".into(),
                region: String::new(),
                country: "es".into(),
            },
            starts_at: OffsetDateTime::UNIX_EPOCH,
            ends_at: OffsetDateTime::UNIX_EPOCH + time::Duration::hours(4),
            timezone: "Europe/Madrid".into(),
            cover_upload_id: None,
            capacity: Some(100),
        }
    }

    #[test]
    fn fields_are_normalised_and_every_bad_one_reported() {
        let ok = fields().check().unwrap();
        assert_eq!(
            (ok.title.as_str(), ok.category.as_str()),
            ("Salsa night", "salsa")
        );
        assert_eq!(ok.venue.country, "ES");
        let mut bad = fields();
        bad.title = " ".into();
        bad.category = "salsa & bachata".into();
        bad.venue.country = "ESP".into();
        bad.ends_at = bad.starts_at;
        bad.capacity = Some(0);
        bad.venue.city = "Ma\u{7}drid".into();
        let fields: Vec<String> = bad
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "title",
                "venue/city",
                "category",
                "venue/country",
                "ends_at",
                "capacity"
            ]
        );
    }
}

//! The task: its JSON shape, its enums, and a parser for every field a client sends.
//!
//! Parse, don't validate: [`NewTask`] and [`TaskChanges`] can only be built from a
//! request by parsers that report every invalid field at once (a 422 with `errors`).

use serde::{Deserialize, Serialize};
use shared::http::{
    error::{ApiError, FieldError},
    timestamp::Timestamp,
};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a task stands.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema,
)]
#[sqlx(type_name = "task_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started.
    #[default]
    Todo,
    /// Started.
    InProgress,
    /// Finished.
    Done,
}

/// How important a task is. Ordered low < medium < high.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    sqlx::Type,
    ToSchema,
)]
#[sqlx(type_name = "task_priority", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Whenever.
    Low,
    /// Soon.
    #[default]
    Medium,
    /// Now.
    High,
}

/// A task as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Task {
    /// Its id.
    pub id: Uuid,
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 10,000 characters.
    pub description: Option<String>,
    /// `todo`, `in_progress` or `done`.
    pub status: Status,
    /// `low`, `medium` or `high`.
    pub priority: Priority,
    /// When it is due (RFC 3339), if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<OffsetDateTime>,
    /// Up to 10 tags of 1 to 32 characters.
    pub tags: Vec<String>,
    /// Bumped by every change; the `ETag` is `"<version>"`.
    pub version: i64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A request to create a task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// 1 to 200 characters.
    #[schema(example = "Write the quarterly report")]
    pub title: String,
    /// Up to 10,000 characters.
    pub description: Option<String>,
    /// Default `todo`.
    #[serde(default)]
    pub status: Status,
    /// Default `medium`.
    #[serde(default)]
    pub priority: Priority,
    /// RFC 3339.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Timestamp>,
    /// Up to 10 tags of 1 to 32 characters.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A JSON merge patch (RFC 7396) of a task: an absent field is kept, `null` clears an
/// optional one (`description`, `due_at`, `tags`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTask {
    /// New title.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New status.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<Status>)]
    pub status: Option<Option<Status>>,
    /// New priority.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<Priority>)]
    pub priority: Option<Option<Priority>>,
    /// New due date; `null` clears it.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Option<Timestamp>>,
    /// New tags; `null` clears them.
    #[serde(default, deserialize_with = "shared::http::extract::present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Option<Vec<String>>>,
}

/// The editable fields of a task, every one valid.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// Trimmed, 1 to 200 characters.
    pub title: String,
    /// At most 10,000 characters.
    pub description: Option<String>,
    /// Status.
    pub status: Status,
    /// Priority.
    pub priority: Priority,
    /// Due date.
    pub due_at: Option<OffsetDateTime>,
    /// Trimmed, de-duplicated tags.
    pub tags: Vec<String>,
}

/// Longest title, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_MAX: usize = 10_000;
/// Most tags on a task.
pub const TAGS_MAX: usize = 10;
/// Longest tag, in characters.
pub const TAG_MAX: usize = 32;

/// Parses a title: trimmed, 1 to 200 characters, no control characters.
pub fn parse_title(raw: &str) -> Result<String, FieldError> {
    let title = raw.trim();
    let n = title.chars().count();
    if n == 0 {
        Err(FieldError::new("title", "required", "must not be empty"))
    } else if n > TITLE_MAX {
        Err(FieldError::new(
            "title",
            "too_long",
            "must be at most 200 characters",
        ))
    } else if title.chars().any(char::is_control) {
        Err(FieldError::new(
            "title",
            "invalid_characters",
            "must not contain control characters",
        ))
    } else {
        Ok(title.to_owned())
    }
}

/// Parses a description: at most 10,000 characters; empty means none.
pub fn parse_description(raw: Option<String>) -> Result<Option<String>, FieldError> {
    match raw {
        Some(d) if d.chars().count() > DESCRIPTION_MAX => Err(FieldError::new(
            "description",
            "too_long",
            "must be at most 10000 characters",
        )),
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Parses tags: at most 10, each trimmed and 1 to 32 characters; duplicates dropped.
pub fn parse_tags(raw: Vec<String>) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if raw.len() > TAGS_MAX {
        errors.push(FieldError::new("tags", "too_many", "at most 10 tags"));
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for (i, tag) in raw.iter().enumerate() {
        let t = tag.trim();
        let n = t.chars().count();
        if n == 0 || n > TAG_MAX || t.chars().any(char::is_control) {
            errors.push(FieldError::new(
                format!("tags/{i}"),
                "invalid_tag",
                "each tag must be 1 to 32 characters without control characters",
            ));
        } else if !tags.iter().any(|existing| existing == t) {
            tags.push(t.to_owned());
        }
    }
    if errors.is_empty() {
        Ok(tags)
    } else {
        Err(errors)
    }
}

impl CreateTask {
    /// Parses every field, reporting all failures at once.
    pub fn parse(self) -> Result<NewTask, ApiError> {
        let mut errors = Vec::new();
        let title = parse_title(&self.title).map_err(|e| errors.push(e)).ok();
        let description = parse_description(self.description)
            .map_err(|e| errors.push(e))
            .ok();
        let tags = parse_tags(self.tags).map_err(|e| errors.extend(e)).ok();
        match (title, description, tags) {
            (Some(title), Some(description), Some(tags)) => Ok(NewTask {
                title,
                description,
                status: self.status,
                priority: self.priority,
                due_at: self.due_at.map(Timestamp::get),
                tags,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

impl PatchTask {
    /// Applies the patch to `current`, parsing every present field.
    pub fn apply(self, current: NewTask) -> Result<NewTask, ApiError> {
        let mut errors = Vec::new();
        let mut next = current;
        let null = |field: &str| FieldError::new(field, "required", "cannot be null");
        match self.title {
            None => {}
            Some(None) => errors.push(null("title")),
            Some(Some(t)) => match parse_title(&t) {
                Ok(t) => next.title = t,
                Err(e) => errors.push(e),
            },
        }
        if let Some(d) = self.description {
            match parse_description(d) {
                Ok(d) => next.description = d,
                Err(e) => errors.push(e),
            }
        }
        match self.status {
            None => {}
            Some(None) => errors.push(null("status")),
            Some(Some(s)) => next.status = s,
        }
        match self.priority {
            None => {}
            Some(None) => errors.push(null("priority")),
            Some(Some(p)) => next.priority = p,
        }
        if let Some(due) = self.due_at {
            next.due_at = due.map(Timestamp::get);
        }
        if let Some(tags) = self.tags {
            match parse_tags(tags.unwrap_or_default()) {
                Ok(t) => next.tags = t,
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

impl From<&Task> for NewTask {
    fn from(task: &Task) -> Self {
        Self {
            title: task.title.clone(),
            description: task.description.clone(),
            status: task.status,
            priority: task.priority,
            due_at: task.due_at,
            tags: task.tags.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(parse_title("  Buy milk ").unwrap(), "Buy milk");
        assert!(parse_title("   ").is_err());
        assert!(parse_title(&"é".repeat(200)).is_ok());
        assert!(parse_title(&"é".repeat(201)).is_err());
        assert!(parse_title("a\u{0}b").is_err());
        assert_eq!(
            parse_title("'; DROP TABLE tasks; --").unwrap(),
            "'; DROP TABLE tasks; --"
        );
    }

    #[test]
    fn tags_are_bounded_and_deduplicated() {
        let tags = parse_tags(vec!["a".into(), " a ".into(), "b".into()]).unwrap();
        assert_eq!(tags, ["a", "b"]);
        assert!(parse_tags((0..11).map(|i| i.to_string()).collect()).is_err());
        let errors = parse_tags(vec!["ok".into(), "".into(), "x".repeat(33)]).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["tags/1", "tags/2"]);
    }

    #[test]
    fn descriptions_are_bounded_and_blank_means_none() {
        assert_eq!(parse_description(Some("  ".into())).unwrap(), None);
        assert!(parse_description(Some("x".repeat(10_001))).is_err());
        assert!(parse_description(Some("x".repeat(10_000))).is_ok());
    }

    #[test]
    fn merge_patch_keeps_absent_fields_and_clears_nulls() {
        let current = NewTask {
            title: "t".into(),
            description: Some("d".into()),
            status: Status::Todo,
            priority: Priority::High,
            due_at: Some(OffsetDateTime::UNIX_EPOCH),
            tags: vec!["x".into()],
        };
        let patch: PatchTask =
            serde_json::from_str(r#"{"description": null, "tags": null, "status": "done"}"#)
                .unwrap();
        let next = patch.apply(current.clone()).unwrap();
        assert_eq!(next.title, "t");
        assert_eq!(next.description, None);
        assert_eq!(next.tags, Vec::<String>::new());
        assert_eq!(next.status, Status::Done);
        assert_eq!(next.priority, Priority::High);
        assert_eq!(next.due_at, current.due_at);

        let patch: PatchTask =
            serde_json::from_str(r#"{"title": null, "priority": null}"#).unwrap();
        let Err(ApiError::Validation(errors)) = patch.apply(current) else {
            panic!("null title must be refused");
        };
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn unknown_fields_and_bad_enums_do_not_parse() {
        assert!(serde_json::from_str::<PatchTask>(r#"{"owner_id": "x"}"#).is_err());
        assert!(
            serde_json::from_str::<CreateTask>(r#"{"title": "t", "status": "later"}"#).is_err()
        );
        assert!(
            serde_json::from_str::<CreateTask>(r#"{"title": "t", "due_at": "tomorrow"}"#).is_err()
        );
    }
}

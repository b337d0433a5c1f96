//! The listing's query parameters, parsed into a [`ListRequest`] whose every part is
//! valid: filters, sort and page size. Every bad parameter is reported in one 422.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use shared::http::{
    error::{ApiError, FieldError},
    pagination::PageSize,
    timestamp,
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::task::{Priority, Status, TAG_MAX};

/// Query parameters of the listing. Every one is optional. The fields stay text so that
/// one parser can report every bad one at once; `value_type` tells clients the types it
/// accepts.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Comma-separated statuses, e.g. `todo,in_progress`.
    #[param(value_type = Option<Vec<Status>>, style = Form, explode = false)]
    pub status: Option<String>,
    /// Comma-separated priorities, e.g. `high`.
    #[param(value_type = Option<Vec<Priority>>, style = Form, explode = false)]
    pub priority: Option<String>,
    /// Only tasks carrying this tag.
    pub tag: Option<String>,
    /// Only tasks due before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub due_before: Option<String>,
    /// Only tasks due after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub due_after: Option<String>,
    /// `true`: only tasks past due and not done; `false`: only the others.
    #[param(value_type = Option<bool>)]
    pub overdue: Option<String>,
    /// Full-text search over title and description (web-search syntax).
    pub q: Option<String>,
    /// `created_at`, `due_at`, `priority` or `title`; prefix `-` for descending.
    /// Default `-created_at` (newest first).
    #[param(value_type = Option<SortParam>)]
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What a list may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortField {
    /// Creation time.
    CreatedAt,
    /// Due date; tasks without one sort last ascending, first descending.
    DueAt,
    /// Priority (low < medium < high).
    Priority,
    /// Title.
    Title,
}

impl SortField {
    /// The SQL expression the index on this key is built on.
    pub(super) fn expr(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::DueAt => "coalesce(due_at, 'infinity'::timestamptz)",
            Self::Priority => "priority",
            Self::Title => "title",
        }
    }
}

/// The `sort` values [`Sort::parse`] accepts, as the OpenAPI document lists them.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum SortParam {
    /// Oldest first.
    #[serde(rename = "created_at")]
    CreatedAt,
    /// Newest first (the default).
    #[serde(rename = "-created_at")]
    CreatedAtDescending,
    /// Soonest due first, undated last.
    #[serde(rename = "due_at")]
    DueAt,
    /// Latest due first, undated first.
    #[serde(rename = "-due_at")]
    DueAtDescending,
    /// Low to high.
    #[serde(rename = "priority")]
    Priority,
    /// High to low.
    #[serde(rename = "-priority")]
    PriorityDescending,
    /// A to Z.
    #[serde(rename = "title")]
    Title,
    /// Z to A.
    #[serde(rename = "-title")]
    TitleDescending,
}

/// A sort: a field and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub field: SortField,
    /// Descending?
    pub descending: bool,
}

impl Default for Sort {
    /// Newest first.
    fn default() -> Self {
        Self {
            field: SortField::CreatedAt,
            descending: true,
        }
    }
}

impl Sort {
    /// Parses `created_at`, `-due_at`, ...
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldError> {
        let raw = raw
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("-created_at");
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        let field = match name {
            "created_at" => SortField::CreatedAt,
            "due_at" => SortField::DueAt,
            "priority" => SortField::Priority,
            "title" => SortField::Title,
            _ => {
                return Err(FieldError::new(
                    "sort",
                    "invalid_sort",
                    "must be one of created_at, due_at, priority, title, optionally prefixed with -",
                ));
            }
        };
        Ok(Self { field, descending })
    }

    pub(super) fn label(self) -> String {
        format!("{}{:?}", if self.descending { "-" } else { "" }, self.field)
    }
}

/// The filters of a list, every one valid.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<Status>,
    /// Any of these priorities (empty: any).
    pub priorities: Vec<Priority>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Due strictly before.
    pub due_before: Option<OffsetDateTime>,
    /// Due strictly after.
    pub due_after: Option<OffsetDateTime>,
    /// Past due and not done (or the opposite).
    pub overdue: Option<bool>,
    /// Full-text query.
    pub q: Option<String>,
}

impl Filter {
    /// A short digest of the filter, carried by cursors.
    pub(super) fn fingerprint(&self) -> String {
        let digest = Sha256::digest(format!("{self:?}").as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..12])
    }
}

/// A parsed list request.
#[derive(Debug)]
pub struct ListRequest {
    /// Filters.
    pub filter: Filter,
    /// Sort.
    pub sort: Sort,
    /// Page size.
    pub size: PageSize,
}

fn parse_list<T>(
    raw: Option<&str>,
    field: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, FieldError> {
    raw.map(|r| r.split(',').map(str::trim).filter(|s| !s.is_empty()))
        .into_iter()
        .flatten()
        .map(|s| {
            parse(s).ok_or_else(|| {
                FieldError::new(field, "invalid_value", format!("unknown value `{s}`"))
            })
        })
        .collect()
}

fn instant(raw: Option<&str>, field: &'static str) -> Result<Option<OffsetDateTime>, FieldError> {
    raw.map(|r| timestamp::parse(r).map_err(|why| FieldError::new(field, "invalid_datetime", why)))
        .transpose()
}

impl ListParams {
    /// Parses every parameter, reporting all failures at once.
    pub fn parse(&self) -> Result<ListRequest, ApiError> {
        let mut ok = Errors::default();
        let filter = Filter {
            statuses: ok.take(parse_list(self.status.as_deref(), "status", enum_value)),
            priorities: ok.take(parse_list(self.priority.as_deref(), "priority", enum_value)),
            tag: ok.take(bounded(self.tag.as_deref(), "tag", TAG_MAX)),
            due_before: ok.take(instant(self.due_before.as_deref(), "due_before")),
            due_after: ok.take(instant(self.due_after.as_deref(), "due_after")),
            overdue: ok.take(boolean(self.overdue.as_deref(), "overdue")),
            q: ok.take(bounded(self.q.as_deref(), "q", 200)),
        };
        let sort = ok.take(Sort::parse(self.sort.as_deref()));
        let size = ok.take(page_size(self.limit.as_deref()));
        ok.finish(ListRequest { filter, sort, size })
    }
}

/// Collects the failures of several parsers: each failed field is recorded and stands
/// in as its default, and [`Errors::finish`] refuses the whole request if any failed.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn take<T: Default>(&mut self, result: Result<T, FieldError>) -> T {
        result.unwrap_or_else(|e| {
            self.0.push(e);
            T::default()
        })
    }

    fn finish<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// A lower-case enum name (`in_progress`) as its Rust value.
fn enum_value<T: DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(raw.into())).ok()
}

/// Optional text of at most `max` characters; blank counts as absent.
fn bounded(
    raw: Option<&str>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.chars().count() > max => Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        )),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// `true` or `false`; blank counts as absent.
fn boolean(raw: Option<&str>, field: &'static str) -> Result<Option<bool>, FieldError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(FieldError::new(
            field,
            "invalid_boolean",
            "must be true or false",
        )),
    }
}

/// The `limit` parameter: a whole number from 1 to 100, default 20.
fn page_size(raw: Option<&str>) -> Result<PageSize, FieldError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(PageSize::default()),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .and_then(|n| PageSize::parse(Some(n)).ok())
            .ok_or_else(|| {
                FieldError::new(
                    "limit",
                    "out_of_range",
                    "must be a whole number from 1 to 100",
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use shared::identity::UserId;

    use super::*;

    #[test]
    fn every_documented_sort_key_is_accepted_and_every_accepted_one_documented() {
        use SortParam::*;
        let documented = [
            CreatedAt,
            CreatedAtDescending,
            DueAt,
            DueAtDescending,
            Priority,
            PriorityDescending,
            Title,
            TitleDescending,
        ];
        let mut fields = std::collections::HashSet::new();
        for key in documented {
            let value = serde_json::to_value(key).unwrap();
            let raw = value.as_str().unwrap();
            let sort = Sort::parse(Some(raw)).unwrap();
            assert_eq!(sort.descending, raw.starts_with('-'), "{raw}");
            fields.insert(sort.label());
        }
        // Four fields, two directions each: all of them, none twice.
        assert_eq!(fields.len(), 8);
    }
    use crate::listing::list_query;

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let query: String = pairs.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        serde_urlencoded_like(&query)
    }

    fn serde_urlencoded_like(query: &str) -> ListParams {
        let value: serde_json::Map<String, serde_json::Value> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(value)).unwrap()
    }

    #[test]
    fn sorts_parse_with_direction_and_refuse_others() {
        assert_eq!(
            Sort::parse(None).unwrap(),
            Sort {
                field: SortField::CreatedAt,
                descending: true
            }
        );
        assert_eq!(
            Sort::parse(Some("due_at")).unwrap(),
            Sort {
                field: SortField::DueAt,
                descending: false
            }
        );
        assert_eq!(
            Sort::parse(Some("-title")).unwrap(),
            Sort {
                field: SortField::Title,
                descending: true
            }
        );
        for bad in ["owner_id", "--title", "title;drop", "1"] {
            assert!(Sort::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_parameter_is_reported() {
        let bad = params(&[
            ("status", "todo,later"),
            ("priority", "urgent"),
            ("due_before", "tomorrow"),
            ("overdue", "yes"),
            ("sort", "owner_id"),
            ("limit", "500"),
        ]);
        let Err(ApiError::Validation(errors)) = bad.parse() else {
            panic!("expected a validation error")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "status",
                "priority",
                "due_before",
                "overdue",
                "sort",
                "limit"
            ]
        );
    }

    #[test]
    fn good_parameters_parse() {
        let ok = params(&[
            ("status", "todo,in_progress"),
            ("priority", "high"),
            ("overdue", "true"),
            ("limit", "5"),
        ])
        .parse()
        .unwrap();
        assert_eq!(ok.filter.statuses, [Status::Todo, Status::InProgress]);
        assert_eq!(ok.filter.priorities, [Priority::High]);
        assert_eq!(ok.filter.overdue, Some(true));
        assert_eq!(ok.size.get(), 5);
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let request = params(&[
            ("tag", "x'); DROP TABLE tasks; --"),
            ("q", "' OR 1=1"),
            ("sort", "title"),
        ])
        .parse()
        .unwrap();
        let sql = list_query("", UserId::new(), &request, None).into_sql();
        assert!(!sql.contains("DROP") && !sql.contains("OR 1=1"), "{sql}");
        assert!(sql.contains("ORDER BY title ASC, id ASC"), "{sql}");
    }

    #[test]
    fn filter_fingerprints_differ_by_filter() {
        let a = Filter::default();
        let b = Filter {
            tag: Some("x".into()),
            ..Filter::default()
        };
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), Filter::default().fingerprint());
    }
}

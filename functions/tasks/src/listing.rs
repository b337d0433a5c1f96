//! `GET /api/v1/tasks`: filters, sorting and keyset pagination.
//!
//! Each sort has an index `(owner_id, key, id)`; the query seeks to the cursor with a
//! row comparison `(key, id) > (last key, last id)` (or `<` descending) and reads one
//! page, so the cost of a page does not grow with its depth, and a walk over the pages
//! never repeats an item nor skips one that existed for the whole walk, whatever is
//! inserted or deleted meanwhile.
//!
//! The query is assembled with `QueryBuilder` because its ORDER BY and its filters vary;
//! every value is a bound parameter, and only fixed SQL fragments from this file are
//! ever pushed as text. Cursors are signed and carry the sort and a fingerprint of the
//! filters, so a cursor edited by hand, or reused with another query, is a 400.

use axum::extract::State;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::{
    http::{
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::{Json, Query},
        pagination::{self, Page, PageSize},
    },
    identity::{UserId, guard::CurrentUser},
};
use sqlx::{Postgres, QueryBuilder};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    AppState,
    task::{Priority, Status, Task},
};

/// Query parameters of the listing. Every one is optional.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Comma-separated statuses, e.g. `todo,in_progress`.
    pub status: Option<String>,
    /// Comma-separated priorities, e.g. `high`.
    pub priority: Option<String>,
    /// Only tasks carrying this tag.
    pub tag: Option<String>,
    /// Only tasks due before this instant (RFC 3339).
    pub due_before: Option<String>,
    /// Only tasks due after this instant (RFC 3339).
    pub due_after: Option<String>,
    /// `true`: only tasks past due and not done; `false`: only the others.
    pub overdue: Option<String>,
    /// Full-text search over title and description (web-search syntax).
    pub q: Option<String>,
    /// `created_at`, `due_at`, `priority` or `title`; prefix `-` for descending.
    /// Default `-created_at` (newest first).
    pub sort: Option<String>,
    /// Page size, 1 to 100 (default 20).
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
    fn expr(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::DueAt => "coalesce(due_at, 'infinity'::timestamptz)",
            Self::Priority => "priority",
            Self::Title => "title",
        }
    }
}

/// A sort: a field and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub field: SortField,
    /// Descending?
    pub descending: bool,
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

    fn label(self) -> String {
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
    fn fingerprint(&self) -> String {
        let digest = Sha256::digest(format!("{self:?}").as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..12])
    }
}

/// The key of the last item of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortKey {
    /// Creation time.
    CreatedAt(#[serde(with = "time::serde::rfc3339")] OffsetDateTime),
    /// Due date (none sorts as infinity).
    DueAt(#[serde(with = "time::serde::rfc3339::option")] Option<OffsetDateTime>),
    /// Priority.
    Priority(Priority),
    /// Title.
    Title(String),
}

impl SortKey {
    fn of(field: SortField, task: &Task) -> Self {
        match field {
            SortField::CreatedAt => Self::CreatedAt(task.created_at),
            SortField::DueAt => Self::DueAt(task.due_at),
            SortField::Priority => Self::Priority(task.priority),
            SortField::Title => Self::Title(task.title.clone()),
        }
    }
}

/// What a cursor holds: where the last page ended, for which query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct After {
    /// The sort it was made for.
    pub s: String,
    /// The filters it was made for.
    pub f: String,
    /// The last item's key.
    pub k: SortKey,
    /// The last item's id.
    pub id: Uuid,
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
    raw.map(|r| {
        OffsetDateTime::parse(r.trim(), &Rfc3339).map_err(|_| {
            FieldError::new(field, "invalid_datetime", "must be an RFC 3339 date-time")
        })
    })
    .transpose()
}

impl ListParams {
    /// Parses every parameter, reporting all failures at once.
    pub fn parse(&self) -> Result<ListRequest, ApiError> {
        let mut ok = Errors::default();
        let statuses = ok.take(parse_list(self.status.as_deref(), "status", |s| {
            serde_json::from_value(serde_json::Value::String(s.into())).ok()
        }));
        let priorities = ok.take(parse_list(self.priority.as_deref(), "priority", |s| {
            serde_json::from_value(serde_json::Value::String(s.into())).ok()
        }));
        let due_before = ok.take(instant(self.due_before.as_deref(), "due_before"));
        let due_after = ok.take(instant(self.due_after.as_deref(), "due_after"));
        let overdue = ok.take(match self.overdue.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(FieldError::new(
                "overdue",
                "invalid_boolean",
                "must be true or false",
            )),
        });
        let q = ok.take(match self.q.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(q) if q.chars().count() > 200 => Err(FieldError::new(
                "q",
                "too_long",
                "must be at most 200 characters",
            )),
            Some(q) => Ok(Some(q.to_owned())),
        });
        let tag = ok.take(match self.tag.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) if t.chars().count() > crate::task::TAG_MAX => Err(FieldError::new(
                "tag",
                "too_long",
                "must be at most 32 characters",
            )),
            Some(t) => Ok(Some(t.to_owned())),
        });
        let sort = ok.take(Sort::parse(self.sort.as_deref()));
        let size = ok.take(match self.limit.as_deref().map(str::trim) {
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
        });
        match (
            statuses, priorities, due_before, due_after, overdue, q, tag, sort, size,
        ) {
            (
                Some(statuses),
                Some(priorities),
                Some(due_before),
                Some(due_after),
                Some(overdue),
                Some(q),
                Some(tag),
                Some(sort),
                Some(size),
            ) => Ok(ListRequest {
                filter: Filter {
                    statuses,
                    priorities,
                    tag,
                    due_before,
                    due_after,
                    overdue,
                    q,
                },
                sort,
                size,
            }),
            _ => Err(ApiError::Validation(ok.0)),
        }
    }
}

/// Collects the failures of several parsers.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn take<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

/// Builds the list query: `prefix` (e.g. `EXPLAIN `) then the SELECT.
pub fn list_query<'a>(
    prefix: &str,
    owner: UserId,
    request: &'a ListRequest,
    after: Option<&'a After>,
) -> QueryBuilder<'a, Postgres> {
    let filter = &request.filter;
    let mut q = QueryBuilder::new(prefix);
    q.push(
        "SELECT id, title, description, status, priority, due_at, tags, version, created_at, updated_at \
         FROM tasks WHERE owner_id = ",
    );
    q.push_bind(owner.0);
    if !filter.statuses.is_empty() {
        q.push(" AND status = ANY(")
            .push_bind(filter.statuses.clone())
            .push(")");
    }
    if !filter.priorities.is_empty() {
        q.push(" AND priority = ANY(")
            .push_bind(filter.priorities.clone())
            .push(")");
    }
    if let Some(tag) = &filter.tag {
        q.push(" AND tags @> ARRAY[")
            .push_bind(tag)
            .push("]::text[]");
    }
    if let Some(before) = filter.due_before {
        q.push(" AND due_at < ").push_bind(before);
    }
    if let Some(after_instant) = filter.due_after {
        q.push(" AND due_at > ").push_bind(after_instant);
    }
    match filter.overdue {
        Some(true) => {
            q.push(" AND due_at < now() AND status <> 'done'");
        }
        Some(false) => {
            q.push(" AND (due_at IS NULL OR due_at >= now() OR status = 'done')");
        }
        None => {}
    }
    if let Some(text) = &filter.q {
        q.push(" AND search @@ websearch_to_tsquery('simple', ")
            .push_bind(text)
            .push(")");
    }
    let expr = request.sort.field.expr();
    let (cmp, dir) = if request.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(after) = after {
        q.push(format_args!(" AND ({expr}, id) {cmp} ("));
        match &after.k {
            SortKey::CreatedAt(t) => {
                q.push_bind(*t);
            }
            SortKey::DueAt(Some(t)) => {
                q.push_bind(*t);
            }
            SortKey::DueAt(None) => {
                q.push("'infinity'::timestamptz");
            }
            SortKey::Priority(p) => {
                q.push_bind(*p);
            }
            SortKey::Title(t) => {
                q.push_bind(t);
            }
        }
        q.push(", ").push_bind(after.id).push(")");
    }
    q.push(format_args!(" ORDER BY {expr} {dir}, id {dir} LIMIT "));
    q.push_bind(request.size.fetch());
    q
}

/// Lists the caller's tasks.
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    tag = "tasks",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tasks", body = Page<Task>),
        (status = 400, description = "Invalid, edited or mismatched cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter, sort or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Page<Task>>> {
    let request = params.parse()?;
    let label = request.sort.label();
    let fingerprint = request.filter.fingerprint();
    let after: Option<After> = params
        .cursor
        .as_deref()
        .map(|c| state.cursors.verify(c))
        .transpose()?;
    if let Some(a) = &after {
        let key_matches = matches!(
            (&a.k, request.sort.field),
            (SortKey::CreatedAt(_), SortField::CreatedAt)
                | (SortKey::DueAt(_), SortField::DueAt)
                | (SortKey::Priority(_), SortField::Priority)
                | (SortKey::Title(_), SortField::Title)
        );
        if a.s != label || a.f != fingerprint || !key_matches {
            return Err(ApiError::BadRequest(
                "the cursor belongs to another sort or filter; start again without it".into(),
            ));
        }
    }
    let rows: Vec<Task> = list_query("", user.id, &request, after.as_ref())
        .build_query_as()
        .fetch_all(&state.db)
        .await?;
    let field = request.sort.field;
    let page = pagination::page_with(rows, request.size, |last| {
        state.cursors.sign(&After {
            s: label.clone(),
            f: fingerprint.clone(),
            k: SortKey::of(field, last),
            id: last.id,
        })
    });
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

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

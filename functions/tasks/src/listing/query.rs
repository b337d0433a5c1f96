//! The list query: filters, keyset seek and order, assembled with `QueryBuilder`. Every
//! value is a bound parameter; only fixed SQL fragments from this module are ever pushed
//! as text.

use shared::identity::UserId;
use sqlx::{Postgres, QueryBuilder};

use super::{
    cursor::{After, SortKey},
    params::ListRequest,
};

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

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

//!
//! Layout: [`params`] parses the query string into a valid request, [`query`] builds the
//! SQL, [`cursor`] opens and makes the signed cursors; [`list`] ties them together.

pub mod cursor;
pub mod params;
pub mod query;

use axum::extract::State;
use shared::{
    http::{
        error::{ApiResult, Problem},
        extract::{Json, Query},
        pagination::Page,
    },
    identity::guard::CurrentUser,
};

pub use cursor::{After, SortKey};
pub use params::{ListParams, ListRequest};
pub use query::list_query;

use crate::{AppState, task::Task};

/// Lists the caller's tasks.
#[utoipa::path(
    get,
    path = "/api/v1/tasks",
    operation_id = "list_tasks",
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
    let after = cursor::open(&state.cursors, params.cursor.as_deref(), &request)?;
    let rows: Vec<Task> = list_query("", user.id, &request, after.as_ref())
        .build_query_as()
        .fetch_all(&state.db)
        .await?;
    Ok(Json(cursor::page(&state.cursors, rows, &request)))
}

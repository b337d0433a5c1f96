//! One task: create, fetch, patch and delete, with optimistic concurrency.
//!
//! Every response carrying a task sends its `ETag` (its version). `PATCH` and `DELETE`
//! honour `If-Match`: when the task changed since the client read it, the answer is 412
//! and nothing is written. `GET` honours `If-None-Match` (304). The rules are
//! `shared::http::conditional`'s.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use shared::{
    http::{
        conditional::{self, IfMatch},
        error::{ApiError, ApiResult, Problem},
        extract::{Json, Path},
    },
    identity::{UserId, guard::CurrentUser},
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    AppState,
    task::{CreateTask, NewTask, PatchTask, Priority, Status, Task},
};

/// A task response: the task as JSON with its `ETag` (and `Location` when created).
struct TaskResponse {
    status: StatusCode,
    task: Task,
    location: bool,
}

impl IntoResponse for TaskResponse {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, conditional::etag_header(self.task.version));
        if self.location
            && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/tasks/{}", self.task.id))
        {
            headers.insert(header::LOCATION, location);
        }
        (self.status, headers, Json(self.task)).into_response()
    }
}

/// Creates a task.
#[utoipa::path(
    post,
    path = "/api/v1/tasks",
    operation_id = "create_task",
    tag = "tasks",
    request_body = CreateTask,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `Location` and `ETag` headers set", body = Task),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this user's budget of writes; `Retry-After` says when to retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(request): Json<CreateTask>,
) -> ApiResult<impl IntoResponse> {
    state.writes.hit(&state.db, user.id).await?;
    let new = request.parse()?;
    let task = sqlx::query_as!(
        Task,
        r#"INSERT INTO tasks (id, owner_id, title, description, status, priority, due_at, tags)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           RETURNING id, title, description, status AS "status: Status", priority AS "priority: Priority",
                     due_at, tags, version, created_at, updated_at"#,
        Uuid::now_v7(),
        user.id.0,
        new.title,
        new.description,
        new.status as Status,
        new.priority as Priority,
        new.due_at,
        &new.tags,
    )
    .fetch_one(&state.db)
    .await?;
    Ok(TaskResponse {
        status: StatusCode::CREATED,
        task,
        location: true,
    })
}

/// Fetches one of the caller's tasks.
#[utoipa::path(
    get,
    path = "/api/v1/tasks/{id}",
    operation_id = "get_task",
    tag = "tasks",
    params(("id" = Uuid, Path, description = "Task id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task, with its `ETag`", body = Task),
        (status = 304, description = "Unchanged since the `If-None-Match` tag"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task for this user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, task_id = %id))]
pub async fn fetch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut conn = state.db.acquire().await?;
    let task = find(&mut conn, user.id, id, false).await?;
    if conditional::not_modified(&headers, task.version) {
        let etag = [(header::ETAG, conditional::etag_header(task.version))];
        return Ok((StatusCode::NOT_MODIFIED, etag).into_response());
    }
    Ok(TaskResponse {
        status: StatusCode::OK,
        task,
        location: false,
    }
    .into_response())
}

/// Changes some fields of a task (JSON merge patch).
#[utoipa::path(
    patch,
    path = "/api/v1/tasks/{id}",
    operation_id = "update_task",
    tag = "tasks",
    params(
        ("id" = Uuid, Path, description = "Task id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on"),
    ),
    request_body(content = PatchTask, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed task, with its new `ETag`", body = Task),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task for this user", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The task changed since the `If-Match` tag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this user's budget of writes; `Retry-After` says when to retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, task_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(patch): Json<PatchTask>,
) -> ApiResult<impl IntoResponse> {
    state.writes.hit(&state.db, user.id).await?;
    let precondition = IfMatch::from_headers(&headers);
    let mut tx = state.db.begin().await?;
    // Lock the row: the version check and the write see the same version.
    let current = find(&mut tx, user.id, id, true).await?;
    precondition.check(current.version, "task")?;
    let next: NewTask = patch.apply(NewTask::from(&current))?;
    let task = sqlx::query_as!(
        Task,
        r#"UPDATE tasks
           SET title = $3, description = $4, status = $5, priority = $6, due_at = $7, tags = $8,
               version = version + 1, updated_at = now()
           WHERE id = $1 AND owner_id = $2
           RETURNING id, title, description, status AS "status: Status", priority AS "priority: Priority",
                     due_at, tags, version, created_at, updated_at"#,
        id,
        user.id.0,
        next.title,
        next.description,
        next.status as Status,
        next.priority as Priority,
        next.due_at,
        &next.tags,
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(TaskResponse {
        status: StatusCode::OK,
        task,
        location: false,
    })
}

/// Deletes a task.
#[utoipa::path(
    delete,
    path = "/api/v1/tasks/{id}",
    operation_id = "delete_task",
    tag = "tasks",
    params(
        ("id" = Uuid, Path, description = "Task id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the deletion is based on"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task for this user", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The task changed since the `If-Match` tag", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over this user's budget of writes; `Retry-After` says when to retry", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id, task_id = %id))]
pub async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    state.writes.hit(&state.db, user.id).await?;
    let precondition = IfMatch::from_headers(&headers);
    let mut tx = state.db.begin().await?;
    let current = find(&mut tx, user.id, id, true).await?;
    precondition.check(current.version, "task")?;
    sqlx::query!(
        "DELETE FROM tasks WHERE id = $1 AND owner_id = $2",
        id,
        user.id.0
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One of `owner`'s tasks, or 404 (whether it is missing or someone else's).
async fn find(
    conn: &mut PgConnection,
    owner: UserId,
    id: Uuid,
    for_update: bool,
) -> ApiResult<Task> {
    let task = if for_update {
        sqlx::query_as!(
            Task,
            r#"SELECT id, title, description, status AS "status: Status", priority AS "priority: Priority",
                      due_at, tags, version, created_at, updated_at
               FROM tasks WHERE id = $1 AND owner_id = $2
               FOR UPDATE"#,
            id,
            owner.0,
        )
        .fetch_optional(&mut *conn)
        .await?
    } else {
        sqlx::query_as!(
            Task,
            r#"SELECT id, title, description, status AS "status: Status", priority AS "priority: Priority",
                      due_at, tags, version, created_at, updated_at
               FROM tasks WHERE id = $1 AND owner_id = $2"#,
            id,
            owner.0,
        )
        .fetch_optional(&mut *conn)
        .await?
    };
    task.ok_or(ApiError::NotFound("task"))
}

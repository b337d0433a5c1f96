//! The audit log, for admins: security events newest first, filtered and paginated.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::{
    http::{
        error::{ApiResult, Problem},
        extract::{Json, Query},
        pagination::{self, CreatedKey, Page, PageSize},
        timestamp::Timestamp,
    },
    identity::{audit::AuditKind, guard::Admin},
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;

/// One recorded event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Its id.
    pub id: Uuid,
    /// When it happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    /// What happened (`login_failed`, `role_changed`, ...).
    pub kind: String,
    /// Who did it, when known.
    pub actor_id: Option<Uuid>,
    /// Whom it was done to, when known.
    pub target_id: Option<Uuid>,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// Extra facts (a role change's `from` and `to`).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this kind of event.
    #[param(inline)]
    pub kind: Option<AuditKind>,
    /// Only events by this user.
    pub actor_id: Option<Uuid>,
    /// Only events about this user.
    pub target_id: Option<Uuid>,
    /// Only events at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists audit events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit-events",
    operation_id = "list_audit_events",
    tag = "users",
    params(AuditParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit events", body = Page<AuditEventView>),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %admin.id))]
pub async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<Page<AuditEventView>>> {
    let size = PageSize::parse(params.limit)?;
    let after: Option<CreatedKey> = params
        .cursor
        .as_deref()
        .map(pagination::decode_cursor)
        .transpose()?;
    let rows = sqlx::query_as!(
        AuditEventView,
        r#"SELECT id, occurred_at, kind, actor_id, target_id, ip, user_agent, request_id, details
           FROM audit_events
           WHERE ($1::text IS NULL OR kind = $1)
             AND ($2::uuid IS NULL OR actor_id = $2)
             AND ($3::uuid IS NULL OR target_id = $3)
             AND ($4::timestamptz IS NULL OR occurred_at >= $4)
             AND ($5::timestamptz IS NULL OR (occurred_at, id) < ($5, $6))
           ORDER BY occurred_at DESC, id DESC
           LIMIT $7"#,
        params.kind.map(AuditKind::as_str),
        params.actor_id,
        params.target_id,
        params.since.map(Timestamp::get),
        after.map(|k| k.t),
        after.map(|k| k.id),
        size.fetch(),
    )
    .fetch_all(&state.db)
    .await?;
    let page = pagination::page(rows, size, |e| CreatedKey {
        t: e.occurred_at,
        id: e.id,
    });
    Ok(Json(page))
}

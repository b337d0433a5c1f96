//! `GET /metrics`, for admins: a snapshot of the application's gauges (accounts, live
//! sessions, the outbox backlog and its oldest message, orders by state, open WebSocket
//! connections, and the queues' depths), as JSON, or in Prometheus' text format for
//! `Accept: text/plain`. CloudWatch has the functions' and queues' own metrics; this is
//! what only the database knows, in one read.

use std::fmt::Write;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use shared::{
    http::{
        error::{ApiResult, Problem},
        extract::Json,
    },
    identity::guard::Admin,
    messaging::QueueDepth,
};
use utoipa::ToSchema;

use crate::AppState;

/// The snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Metrics {
    /// Accounts.
    pub users: i64,
    /// Sessions neither revoked nor expired.
    pub live_sessions: i64,
    /// Outbox messages not sent yet.
    pub outbox_pending: i64,
    /// Age of the oldest of them, in seconds (none when there are none).
    pub outbox_oldest_seconds: Option<f64>,
    /// Orders by state (`pending` holds live, `expired` holds ran out).
    #[schema(value_type = Object)]
    pub orders: std::collections::BTreeMap<String, i64>,
    /// Open WebSocket connections.
    pub realtime_connections: i64,
    /// Queue depths, by queue (absent when SQS could not be asked).
    #[schema(value_type = Object)]
    pub queues: std::collections::BTreeMap<&'static str, Option<QueueDepthView>>,
}

/// One queue's depth.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDepthView {
    /// Waiting to be received.
    pub visible: u64,
    /// Being handled.
    pub in_flight: u64,
}

impl From<QueueDepth> for QueueDepthView {
    fn from(d: QueueDepth) -> Self {
        Self {
            visible: d.visible,
            in_flight: d.in_flight,
        }
    }
}

/// The application's gauges now (admins only).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The gauges, as JSON (or Prometheus text for `Accept: text/plain`)",
         content((Metrics = "application/json"), (String = "text/plain"))),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(admin_id = %admin.id))]
pub async fn show(
    State(state): State<AppState>,
    admin: Admin,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let row = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM users) AS "users!",
             (SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > now()) AS "live_sessions!",
             (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS "outbox_pending!",
             (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM outbox WHERE sent_at IS NULL) AS outbox_oldest_seconds,
             (SELECT count(*) FROM realtime_connections WHERE expires_at > now()) AS "realtime_connections!",
             (SELECT coalesce(jsonb_object_agg(state, n), '{}') FROM (
                 SELECT CASE WHEN status = 'pending' AND hold_expires_at <= now() THEN 'expired'
                             ELSE status::text END AS state, count(*) AS n
                 FROM orders GROUP BY 1) s) AS "orders!""#
    )
    .fetch_one(&state.db)
    .await?;
    let orders = serde_json::from_value(row.orders).unwrap_or_default();
    let mut queues = std::collections::BTreeMap::new();
    for (name, queue) in state.queues.iter() {
        let depth = match queue.depth().await {
            Ok(depth) => Some(depth.into()),
            Err(e) => {
                tracing::warn!(queue = name, error = %e, "queue depth unavailable");
                None
            }
        };
        queues.insert(*name, depth);
    }
    let metrics = Metrics {
        users: row.users,
        live_sessions: row.live_sessions,
        outbox_pending: row.outbox_pending,
        outbox_oldest_seconds: row.outbox_oldest_seconds,
        orders,
        realtime_connections: row.realtime_connections,
        queues,
    };
    let wants_text = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/plain"));
    if wants_text {
        let mut response = prometheus(&metrics).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return Ok(response);
    }
    Ok(Json(metrics).into_response())
}

/// The snapshot in Prometheus' text exposition format (version 0.0.4).
fn prometheus(m: &Metrics) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(
            out,
            "# HELP backend_{name} {help}\n# TYPE backend_{name} gauge"
        );
        for (labels, value) in samples {
            let _ = writeln!(out, "backend_{name}{labels} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    gauge("users", "Accounts.", &one(m.users as f64));
    gauge(
        "live_sessions",
        "Sessions neither revoked nor expired.",
        &one(m.live_sessions as f64),
    );
    gauge(
        "outbox_pending",
        "Outbox messages not sent yet.",
        &one(m.outbox_pending as f64),
    );
    gauge(
        "outbox_oldest_seconds",
        "Age of the oldest unsent outbox message (0 when none).",
        &one(m.outbox_oldest_seconds.unwrap_or(0.0)),
    );
    let orders: Vec<(String, f64)> = m
        .orders
        .iter()
        .map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n as f64))
        .collect();
    gauge("orders", "Orders by state.", &orders);
    gauge(
        "realtime_connections",
        "Open WebSocket connections.",
        &one(m.realtime_connections as f64),
    );
    let queues: Vec<(String, f64)> = m
        .queues
        .iter()
        .filter_map(|(queue, depth)| depth.as_ref().map(|d| (queue, d)))
        .flat_map(|(queue, d)| {
            [
                (
                    format!("{{queue=\"{queue}\",state=\"visible\"}}"),
                    d.visible as f64,
                ),
                (
                    format!("{{queue=\"{queue}\",state=\"in_flight\"}}"),
                    d.in_flight as f64,
                ),
            ]
        })
        .collect();
    gauge(
        "queue_messages",
        "Messages on each queue, by state.",
        &queues,
    );
    out
}

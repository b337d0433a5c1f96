//! `GET /health`: 200 when the database answers, 503 when it does not.

use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::http::extract::Json;
use sqlx::PgPool;
use utoipa::ToSchema;

/// How long the database may take to answer a health check. Neon can take a few
/// seconds to wake from scale-to-zero; beyond this we report it unavailable.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(3);

/// The health report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub status: String,
    /// `ok` or `unreachable`.
    #[schema(example = "ok")]
    pub database: String,
    /// The deployed version.
    pub version: String,
}

/// Reports the service's health.
#[utoipa::path(
    get,
    path = "/health",
    tag = "platform",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database is unreachable", body = Health),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn health(State(db): State<PgPool>) -> (StatusCode, Json<Health>) {
    let check = tokio::time::timeout(DATABASE_TIMEOUT, sqlx::query("SELECT 1").execute(&db)).await;
    let healthy = match check {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: database error");
            false
        }
        Err(_) => {
            tracing::warn!("health check: database timed out");
            false
        }
    };
    let (status, word, database) = if healthy {
        (StatusCode::OK, "ok", "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "unreachable",
        )
    };
    (
        status,
        Json(Health {
            status: word.into(),
            database: database.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
    )
}

//! The `migrate` function: applies `migrations/` to the database.
//!
//! It connects through `DATABASE_DIRECT_URL`, never the pooler: sqlx's migrator holds a
//! session-level advisory lock while it works, which a transaction-mode pooler would
//! hand to another client between statements. Outside Lambda the binary runs once and
//! exits, so `cargo run -p migrate` migrates a local database.
//!
//! After migrating, [`first_admin`] makes sure the configured first admin exists.

pub mod first_admin;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, migrate::Migrator};

use crate::first_admin::FirstAdmin;

/// The migrations, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// What a run needs; loaded once per cold start.
pub struct State {
    /// One connection on the direct (unpooled) URL: migrations hold a session advisory
    /// lock, which a transaction-mode pooler cannot keep.
    pub db: PgPool,
    /// The first admin to ensure, when configured.
    pub first_admin: Option<FirstAdmin>,
}

impl State {
    /// Loads `DATABASE_DIRECT_URL` (and the pool settings) and the first admin.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        let mut config = shared::db::DatabaseConfig::from_var("DATABASE_DIRECT_URL")?;
        config.max_connections = 1;
        Ok(Self {
            db: shared::db::pool(&config)?,
            first_admin: FirstAdmin::from_env()?,
        })
    }
}

/// What a run did.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Versions applied by this run.
    pub applied: Vec<i64>,
    /// The latest version now in the database.
    pub current: Option<i64>,
    /// What happened to the first admin's account, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_admin: Option<first_admin::Outcome>,
}

/// Handles one invocation (the event's content is ignored: `{}` will do).
pub async fn handle(
    db: &PgPool,
    admin: Option<&FirstAdmin>,
    event: LambdaEvent<Value>,
) -> Result<Report, lambda_runtime::Error> {
    tracing::debug!(request_id = %event.context.request_id, "migrate invoked");
    let report = run(db, admin).await?;
    tracing::info!(?report, "migrations applied");
    Ok(report)
}

/// Applies every pending migration, then ensures the first admin (if configured).
pub async fn run(db: &PgPool, admin: Option<&FirstAdmin>) -> anyhow::Result<Report> {
    let before = applied_versions(db).await?;
    MIGRATOR.run(db).await?;
    let after = applied_versions(db).await?;
    let applied = after
        .iter()
        .copied()
        .filter(|v| !before.contains(v))
        .collect();
    let first_admin = match admin {
        Some(admin) => Some(first_admin::ensure(db, admin).await?),
        None => None,
    };
    Ok(Report {
        applied,
        current: after.last().copied(),
        first_admin,
    })
}

async fn applied_versions(db: &PgPool) -> Result<Vec<i64>, sqlx::migrate::MigrateError> {
    // The table does not exist before the first run.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(db)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(db)
            .await?,
    )
}

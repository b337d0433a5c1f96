//! The first admin, without a SQL console (the FastAPI full-stack template's
//! convention): when `FIRST_ADMIN_EMAIL` and `FIRST_ADMIN_PASSWORD` are both set, each
//! migrate run makes sure that account exists and is an admin.
//!
//! Idempotent: an existing account is promoted if needed and otherwise left alone (its
//! password is never overwritten, so rotating the variable cannot take an account over).
//! An existing account is promoted only once its email is verified: otherwise whoever
//! registered the address first, without proving they own it, would become admin.

use serde::Serialize;
use shared::{
    config::{ConfigError, optional},
    http::client::ClientInfo,
    identity::{
        Email, Role, UserId,
        audit::{self, AuditEvent, AuditKind},
        password::{self, Password},
    },
};
use sqlx::PgPool;

/// The configured first admin (`Debug` shows the password redacted, as
/// `Password`'s own `Debug` does).
#[derive(Debug)]
pub struct FirstAdmin {
    email: Email,
    password: Password,
}

impl FirstAdmin {
    /// Reads `FIRST_ADMIN_EMAIL` and `FIRST_ADMIN_PASSWORD`: both or neither. The
    /// password must meet the same policy as every other password.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        match (
            optional("FIRST_ADMIN_EMAIL"),
            optional("FIRST_ADMIN_PASSWORD"),
        ) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::Missing("FIRST_ADMIN_PASSWORD")),
            (None, Some(_)) => Err(ConfigError::Missing("FIRST_ADMIN_EMAIL")),
            (Some(email), Some(password)) => Self::new(&email, password).map(Some),
        }
    }

    /// Validates a first admin's email and password.
    pub fn new(email: &str, password: String) -> Result<Self, ConfigError> {
        let email = Email::parse(email).map_err(|m| ConfigError::Invalid {
            name: "FIRST_ADMIN_EMAIL",
            reason: m.into(),
        })?;
        let password = Password::parse(password, &email).map_err(|v| ConfigError::Invalid {
            name: "FIRST_ADMIN_PASSWORD",
            reason: v.message.into(),
        })?;
        Ok(Self { email, password })
    }
}

/// What the run did to the first admin's account.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The account did not exist and was created as an admin.
    Created,
    /// The account existed with another role and is now an admin.
    Promoted,
    /// The account was already an admin.
    Unchanged,
    /// The account exists but its email is unverified: not promoted (verify it, then
    /// run migrate again).
    NotPromotedUnverified,
}

/// Makes sure the account exists and is an admin.
#[tracing::instrument(skip_all)]
pub async fn ensure(db: &PgPool, admin: &FirstAdmin) -> anyhow::Result<Outcome> {
    let hash = password::hash(admin.password.as_str().to_owned()).await?;
    let mut tx = db.begin().await?;
    let created = sqlx::query_scalar!(
        r#"INSERT INTO users (id, email, name, password_hash, role, email_verified_at)
           VALUES ($1, $2, 'Admin', $3, 'admin', now())
           ON CONFLICT ((lower(email))) DO NOTHING
           RETURNING id AS "id: UserId""#,
        UserId::new().0,
        admin.email.as_str(),
        hash,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let none = ClientInfo::default();
    let outcome = if let Some(id) = created {
        let event = AuditEvent::anonymous(AuditKind::Register, Some(id))
            .with(serde_json::json!({ "source": "first_admin" }));
        audit::record(&mut *tx, &none, event).await?;
        Outcome::Created
    } else {
        let existing = sqlx::query!(
            r#"SELECT id AS "id: UserId", role AS "role: Role",
                      email_verified_at IS NOT NULL AS "verified!"
               FROM users WHERE lower(email) = lower($1) FOR NO KEY UPDATE"#,
            admin.email.as_str(),
        )
        .fetch_one(&mut *tx)
        .await?;
        if existing.role == Role::Admin {
            Outcome::Unchanged
        } else if !existing.verified {
            tracing::warn!(
                user_id = %existing.id,
                "FIRST_ADMIN_EMAIL belongs to an account with an unverified email: not promoted"
            );
            Outcome::NotPromotedUnverified
        } else {
            sqlx::query!(
                "UPDATE users SET role = 'admin', updated_at = now() WHERE id = $1",
                existing.id.0
            )
            .execute(&mut *tx)
            .await?;
            let event = AuditEvent::anonymous(AuditKind::RoleChanged, Some(existing.id)).with(
                serde_json::json!({ "from": existing.role, "to": Role::Admin, "source": "first_admin" }),
            );
            audit::record(&mut *tx, &none, event).await?;
            Outcome::Promoted
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

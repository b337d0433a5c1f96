//! The security audit log: who did what to whom, from where.
//!
//! Events are written in the same transaction as the change they describe where there
//! is one (a role change and its audit row commit together or not at all). The table
//! is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE. Events name users by
//! id only and never carry passwords or tokens.

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{http::client::ClientInfo, identity::UserId, telemetry::current_request_id};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// An account was created.
    Register,
    /// A login succeeded.
    LoginSucceeded,
    /// A login failed (wrong password or unknown email).
    LoginFailed,
    /// Failed logins locked an email.
    Lockout,
    /// A used refresh token came back: the session was revoked.
    RefreshReuseDetected,
    /// A session was ended by its user.
    Logout,
    /// A user changed their password.
    PasswordChanged,
    /// A password was set through a reset token.
    PasswordReset,
    /// A user's email address was verified.
    EmailVerified,
    /// An admin changed a user's role.
    RoleChanged,
    /// An account was deleted (by its owner or an admin).
    AccountDeleted,
    /// A user was provisioned from an external identity (Better Auth).
    ExternalUserProvisioned,
}

impl AuditKind {
    /// The stored name (`login_failed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Lockout => "lockout",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::Logout => "logout",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::RoleChanged => "role_changed",
            Self::AccountDeleted => "account_deleted",
            Self::ExternalUserProvisioned => "external_user_provisioned",
        }
    }
}

/// One event about to be recorded.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// Who did it (none for anonymous callers, e.g. a failed login).
    pub actor: Option<UserId>,
    /// Whom it was done to.
    pub target: Option<UserId>,
    /// Extra facts (a role change's old and new role). Never secrets.
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// An event by `actor` on their own account.
    pub fn by(kind: AuditKind, actor: UserId) -> Self {
        Self {
            kind,
            actor: Some(actor),
            target: Some(actor),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// An event with no known actor.
    pub fn anonymous(kind: AuditKind, target: Option<UserId>) -> Self {
        Self {
            kind,
            actor: None,
            target,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Sets the target.
    pub fn on(mut self, target: UserId) -> Self {
        self.target = Some(target);
        self
    }

    /// Attaches details.
    pub fn with(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Appends an event, stamped with the caller's address, user agent and request id.
#[tracing::instrument(skip_all, fields(kind = event.kind.as_str()))]
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    client: &ClientInfo,
    event: AuditEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_events (id, kind, actor_id, target_id, ip, user_agent, request_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Uuid::now_v7(),
        event.kind.as_str(),
        event.actor.map(|u| u.0),
        event.target.map(|u| u.0),
        client.ip.as_deref(),
        client.user_agent.as_deref(),
        current_request_id(),
        event.details,
    )
    .execute(db)
    .await?;
    Ok(())
}

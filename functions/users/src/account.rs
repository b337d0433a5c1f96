//! One account as the API shows it, and the rules every change to accounts keeps:
//! there is always at least one admin.

use serde::{Deserialize, Serialize};
use shared::{
    http::error::ApiError,
    identity::{Role, UserId, UserName},
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A user account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Email address as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Whether the email address has been verified.
    pub email_verified: bool,
    /// When the account was created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the account last changed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Loads one account (optionally locking it for the rest of the transaction).
pub async fn find(
    conn: &mut PgConnection,
    id: UserId,
    lock: bool,
) -> Result<Option<User>, sqlx::Error> {
    // Two queries rather than string-built SQL: the lock is the only difference.
    if lock {
        sqlx::query_as!(
            User,
            r#"SELECT id AS "id: UserId", email, name, role AS "role: Role",
                      email_verified_at IS NOT NULL AS "email_verified!", created_at, updated_at
               FROM users WHERE id = $1 FOR NO KEY UPDATE"#,
            id.0,
        )
        .fetch_optional(conn)
        .await
    } else {
        sqlx::query_as!(
            User,
            r#"SELECT id AS "id: UserId", email, name, role AS "role: Role",
                      email_verified_at IS NOT NULL AS "email_verified!", created_at, updated_at
               FROM users WHERE id = $1"#,
            id.0,
        )
        .fetch_optional(conn)
        .await
    }
}

/// Locks every admin row (in id order) and returns their ids. `FOR NO KEY UPDATE`:
/// it excludes other admin changes but not the key-share locks that logins take when
/// they insert a session for an admin. Call it first in any
/// transaction that may demote or delete a user, before locking the target: everyone
/// takes the same locks in the same order, so two admins demoting each other at the
/// same moment serialise (the second then sees one admin left) instead of deadlocking.
pub async fn lock_admins(conn: &mut PgConnection) -> Result<Vec<UserId>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT id AS "id: UserId" FROM users WHERE role = 'admin' ORDER BY id FOR NO KEY UPDATE"#
    )
    .fetch_all(conn)
    .await
}

/// Refuses (409) demoting or deleting `target` when it is the only admin.
pub fn keep_an_admin(admins: &[UserId], target: &User) -> Result<(), ApiError> {
    if target.role == Role::Admin && admins.iter().all(|id| *id == target.id) {
        return Err(ApiError::Conflict(
            "the last admin cannot be demoted or deleted; make another admin first".into(),
        ));
    }
    Ok(())
}

/// Deletes an account. Its sessions, refresh tokens, tasks, notifications, uploads
/// records and external identities go with it (foreign keys cascade); the audit log
/// keeps the id.
pub async fn delete(conn: &mut PgConnection, id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM users WHERE id = $1", id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Parses an optional new name from a PATCH body (422 naming `name` when invalid).
pub fn parse_name(raw: Option<&str>) -> Result<Option<UserName>, ApiError> {
    raw.map(UserName::parse)
        .transpose()
        .map_err(|m| ApiError::invalid("name", "invalid_name", m))
}

/// Renames an account.
pub async fn rename(
    conn: &mut PgConnection,
    id: UserId,
    name: &UserName,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET name = $2, updated_at = now() WHERE id = $1",
        id.0,
        name.as_str(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

//! Accounts: the one view of a user every function shows, and the changes to accounts
//! that more than one function makes (create, rename, set a password, delete), with the
//! rule every change keeps: there is always at least one admin.
//!
//! Each function takes the caller's connection or transaction, so a change commits
//! together with its audit event and whatever else the caller writes.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Email, Role, SessionId, UserId, UserName, sessions};
use crate::http::error::ApiError;

/// A user account as the API shows it (to its owner and to admins).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
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
    /// Where the user's avatar downloads from, once one is ready.
    pub avatar_url: Option<String>,
    /// When the account was created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the account last changed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Loads one account, optionally locking it (`FOR NO KEY UPDATE`) for the rest of the
/// transaction.
#[tracing::instrument(skip(conn))]
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
                      email_verified_at IS NOT NULL AS "email_verified!",
                      '/api/v1/uploads/' || avatar_upload_id || '/download' AS avatar_url,
                      created_at, updated_at
               FROM users WHERE id = $1 FOR NO KEY UPDATE"#,
            id.0,
        )
        .fetch_optional(conn)
        .await
    } else {
        sqlx::query_as!(
            User,
            r#"SELECT id AS "id: UserId", email, name, role AS "role: Role",
                      email_verified_at IS NOT NULL AS "email_verified!",
                      '/api/v1/uploads/' || avatar_upload_id || '/download' AS avatar_url,
                      created_at, updated_at
               FROM users WHERE id = $1"#,
            id.0,
        )
        .fetch_optional(conn)
        .await
    }
}

/// Creates an account with a password hash; `None` when the address is taken (compared
/// case-insensitively). Registration answers both the same way, so a taken address is
/// not an error here.
#[tracing::instrument(skip_all)]
pub async fn create(
    tx: &mut PgConnection,
    email: &Email,
    name: &UserName,
    password_hash: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as!(
        User,
        r#"INSERT INTO users (id, email, name, password_hash)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT ((lower(email))) DO NOTHING
           RETURNING id AS "id: UserId", email, name, role AS "role: Role",
                     false AS "email_verified!", NULL::text AS avatar_url, created_at, updated_at"#,
        UserId::new().0,
        email.as_str(),
        name.as_str(),
        password_hash,
    )
    .fetch_optional(tx)
    .await
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

/// Why a password is being set; recorded as the reason the other sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSetBy {
    /// Through an emailed reset link: the link proves control of the address, so the
    /// address counts as verified too.
    Reset,
    /// By the signed-in user, who knew the current password.
    Changed,
}

/// Sets a new password hash. Every session of the account ends except `keep` (the one
/// that made the change, if any), and reset links mailed before the change stop
/// working, so neither an old session nor an old link can undo it.
#[tracing::instrument(skip(tx, hash))]
pub async fn set_password(
    tx: &mut PgConnection,
    user: UserId,
    hash: &str,
    why: PasswordSetBy,
    keep: Option<SessionId>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, updated_at = now(),
                email_verified_at = CASE WHEN $3 THEN COALESCE(email_verified_at, now())
                                         ELSE email_verified_at END
         WHERE id = $1",
        user.0,
        hash,
        why == PasswordSetBy::Reset,
    )
    .execute(&mut *tx)
    .await?;
    let reason = match why {
        PasswordSetBy::Reset => "password_reset",
        PasswordSetBy::Changed => "password_changed",
    };
    sessions::revoke_all(tx, user, reason, keep).await?;
    sqlx::query!(
        "UPDATE user_tokens SET used_at = now()
         WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL",
        user.0,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Locks every admin row (in id order) and returns their ids. `FOR NO KEY UPDATE`:
/// it excludes other admin changes but not the key-share locks that logins take when
/// they insert a session for an admin. Call it first in any transaction that may demote
/// or delete a user, before locking the target: everyone takes the same locks in the
/// same order, so two admins demoting each other at the same moment serialise (the
/// second then sees one admin left) instead of deadlocking.
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
/// keeps the id. An organizer's drafts go too (nobody else ever saw them), but events
/// that were published do not vanish with their account: 409 while it has any.
pub async fn delete(conn: &mut PgConnection, id: UserId) -> Result<(), ApiError> {
    sqlx::query!(
        "DELETE FROM events WHERE organizer_id = $1 AND status = 'draft'",
        id.0
    )
    .execute(&mut *conn)
    .await?;
    let deleted = sqlx::query!("DELETE FROM users WHERE id = $1", id.0)
        .execute(conn)
        .await;
    match deleted {
        Err(e) if crate::db::foreign_key_violation(&e) == Some("events_organizer_id_fkey") => {
            Err(ApiError::Conflict(
                "this account organizes published events: an admin must move them to another organizer first"
                    .into(),
            ))
        }
        other => other.map(drop).map_err(ApiError::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> User {
        User {
            id: UserId::new(),
            email: "a@b.co".into(),
            name: "A".into(),
            role,
            email_verified: true,
            avatar_url: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_last_admin_is_kept() {
        let only = user(Role::Admin);
        assert!(keep_an_admin(&[only.id], &only).is_err());
        assert!(keep_an_admin(&[only.id, UserId::new()], &only).is_ok());
        let ordinary = user(Role::User);
        assert!(keep_an_admin(&[only.id], &ordinary).is_ok());
    }
}

//! Accounts: registration and the current user.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use shared::{
    auth::CurrentUser,
    db::unique_violation,
    error::{ApiError, ApiResult, FieldError, Problem},
    extract::Json,
    identity::{Email, Role, UserId},
    messages::NotificationMessage,
    outbox, password,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;

/// The outbox queue name for in-app notifications.
pub const NOTIFICATIONS: &str = "notifications";

/// A registration request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// The email address to log in with (unique, compared case-insensitively).
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 12 to 128 characters.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    /// Display name, 1 to 100 characters.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
}

/// A password that meets the policy: 12 to 128 characters (NIST SP 800-63B lengths).
pub struct Password(String);

impl Password {
    /// Shortest accepted password, in characters.
    pub const MIN: usize = 12;
    /// Longest accepted password, in characters.
    pub const MAX: usize = 128;

    /// Checks the policy.
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        let n = raw.chars().count();
        if n < Self::MIN {
            Err("must be at least 12 characters")
        } else if n > Self::MAX {
            Err("must be at most 128 characters")
        } else {
            Ok(Self(raw))
        }
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
pub struct UserName(String);

impl UserName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            Err("is required")
        } else if name.chars().count() > 100 {
            Err("must be at most 100 characters")
        } else if name.chars().any(char::is_control) {
            Err("must not contain control characters")
        } else {
            Ok(Self(name.to_owned()))
        }
    }
}

/// A registration whose every field is valid.
struct NewUser {
    email: Email,
    password: Password,
    name: UserName,
}

impl RegisterRequest {
    /// Parses every field, reporting all failures at once.
    fn parse(self) -> Result<NewUser, ApiError> {
        let mut errors = Vec::new();
        let email = Email::parse(&self.email)
            .map_err(|m| errors.push(FieldError::new("email", "invalid_email", m)))
            .ok();
        let password = Password::parse(self.password)
            .map_err(|m| errors.push(FieldError::new("password", "invalid_password", m)))
            .ok();
        let name = UserName::parse(&self.name)
            .map_err(|m| errors.push(FieldError::new("name", "invalid_name", m)))
            .ok();
        match (email, password, name) {
            (Some(email), Some(password), Some(name)) => Ok(NewUser {
                email,
                password,
                name,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// A user as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    /// The user's id.
    pub id: UserId,
    /// Email address as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Where the user's avatar downloads from, once one is ready.
    pub avatar_url: Option<String>,
    /// When the account was created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Creates an account and queues the welcome notification.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let new = request.parse()?;
    // Hash before touching the database: the answer takes as long for a duplicate.
    let hash = password::hash(new.password.0).await?;

    let mut tx = state.db.begin().await?;
    let user = insert_user(&mut tx, &new.email, &new.name.0, &hash)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some("users_email_lower_key") => {
                ApiError::Conflict("an account with this email already exists".into())
            }
            _ => e.into(),
        })?;
    let welcome = NotificationMessage::welcome(user.id, &user.name);
    let pending = outbox::enqueue(&mut tx, NOTIFICATIONS, welcome.id, &welcome).await?;
    tx.commit().await?;

    tracing::info!(user_id = %user.id, "user registered");
    outbox::relay(&state.db, &state.publisher, vec![pending]).await;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn insert_user(
    tx: &mut PgConnection,
    email: &Email,
    name: &str,
    password_hash: &str,
) -> Result<UserResponse, sqlx::Error> {
    sqlx::query_as!(
        UserResponse,
        r#"INSERT INTO users (id, email, name, password_hash)
           VALUES ($1, $2, $3, $4)
           RETURNING id AS "id: UserId", email, name, role AS "role: Role", NULL::text AS avatar_url, created_at"#,
        UserId::new().0,
        email.as_str(),
        name,
        password_hash,
    )
    .fetch_one(tx)
    .await
}

/// The current user.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The authenticated user", body = UserResponse),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<UserResponse>> {
    let found = sqlx::query_as!(
        UserResponse,
        r#"SELECT id AS "id: UserId", email, name, role AS "role: Role",
                  '/api/v1/uploads/' || avatar_upload_id || '/download' AS avatar_url, created_at
           FROM users WHERE id = $1"#,
        user.id.0,
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
    Ok(Json(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_counts_characters_not_bytes() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("a".repeat(12)).is_ok());
        assert!(Password::parse("é".repeat(12)).is_ok());
        assert!(Password::parse("a".repeat(129)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().0, "Ada");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(UserName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn registration_reports_every_invalid_field() {
        let request = RegisterRequest {
            email: "nope".into(),
            password: "short".into(),
            name: "".into(),
        };
        let Err(ApiError::Validation(errors)) = request.parse() else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name"]);
    }
}

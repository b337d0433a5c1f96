//! Accounts: registration and the current user.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use shared::{
    http::{
        client::ClientInfo,
        error::{ApiError, ApiResult, FieldError, Problem},
        extract::Json,
    },
    identity::{
        Email, UserName,
        accounts::{self, User},
        audit::{self, AuditEvent, AuditKind},
        guard::CurrentUser,
        password::{self, Password},
        throttle,
    },
    messaging::{
        messages::{AccountEmailKind, AccountEmailMessage, NotificationMessage},
        outbox,
    },
    telemetry::metrics,
};
use utoipa::ToSchema;

use crate::AppState;

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
        // Without a valid email the local-part rule cannot be checked yet: the other
        // rules still are, against a placeholder address.
        let placeholder = Email::parse("x@invalid.invalid").map_err(anyhow::Error::msg)?;
        let password = Password::parse(self.password, email.as_ref().unwrap_or(&placeholder))
            .map_err(|v| errors.push(FieldError::new("password", v.code, v.message)))
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

/// Creates an account and queues the welcome notification and the verification email.
///
/// A taken address gets the same 202 after the same work (a password hash, one
/// transaction, queued mail), so the answer says nothing about which addresses have
/// accounts; the owner of the address is emailed that someone tried, with the way to
/// reset the password. Either way the next step is in the inbox.
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 202, description = "Accepted: a new address gets its account and a verification email; a taken one gets an email telling its owner (the answer is the same, so it reveals no accounts)"),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; a refused password names the rule (`too_short`, `common_password`, `contains_email`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many registrations from this address", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<StatusCode> {
    throttle::hit(
        &state.db,
        "register",
        client.rate_key(),
        state.limits.register,
    )
    .await?;
    let new = request.parse()?;
    // Hash before touching the database, taken address or not: the answer takes as long.
    let hash = password::hash(new.password.into_inner()).await?;

    let mut tx = state.db.begin().await?;
    let created = accounts::create(&mut tx, &new.email, &new.name, &hash).await?;
    let registered = created.is_some();
    let pending = match created {
        Some(user) => {
            let welcome = NotificationMessage::welcome(user.id, &user.name);
            let verify = AccountEmailMessage::new(AccountEmailKind::VerifyEmail, &user.email);
            audit::record(
                &mut *tx,
                &client,
                AuditEvent::by(AuditKind::Register, user.id),
            )
            .await?;
            tracing::info!(user_id = %user.id, "user registered");
            vec![
                outbox::enqueue(&mut tx, &welcome).await?,
                outbox::enqueue(&mut tx, &verify).await?,
            ]
        }
        None => {
            let notice =
                AccountEmailMessage::new(AccountEmailKind::RegistrationAttempt, new.email.as_str());
            tracing::info!("registration for a taken address; its owner is told");
            vec![outbox::enqueue(&mut tx, &notice).await?]
        }
    };
    tx.commit().await?;
    if registered {
        metrics::count("Registrations");
    }
    outbox::relay(&state.db, &state.publisher, pending).await;
    Ok(StatusCode::ACCEPTED)
}

/// The current user.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The authenticated user", body = User),
        (status = 401, description = "Missing, invalid or revoked token", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn me(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<User>> {
    let mut conn = state.db.acquire().await?;
    let found = accounts::find(&mut conn, user.id, false)
        .await?
        .ok_or(ApiError::Unauthorized("invalid or expired access token"))?;
    Ok(Json(found))
}

#[cfg(test)]
mod tests {
    use super::*;

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

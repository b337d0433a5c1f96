//! The `notify-worker` function: consumes the notifications queue. A notification is
//! written to its user's inbox; an account email (password reset, email verification)
//! gets its single-use token created here and is sent through [`mail::Mailer`].
//!
//! Each record is handled on its own, in its own transaction, and a failed record is
//! reported in `batchItemFailures`, so one bad message never makes SQS redeliver the
//! whole batch. Handling is idempotent: the message id is recorded in
//! `processed_messages` in the same transaction as the notification, so a redelivered
//! (or twice-relayed) message changes nothing.
//!
//! The batch loop and the failure classes are `shared::messaging::batch`'s: retryable
//! failures (the database is down, SES refused) come back after the visibility timeout;
//! poison (a body that is not a message of this queue) follows the redrive policy into
//! the dead-letter queue. A message for a user who has since been deleted is dropped:
//! there is nobody to tell.

pub mod mail;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::{
    identity::{UserId, tokens::RefreshToken},
    messaging::{
        batch::{self, RecordError},
        messages::{AccountEmailKind, AccountEmailMessage, NotificationMessage, QueueMessage},
    },
};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::mail::{Mail, MailConfig, Mailer};

/// What the worker needs; built once per cold start.
#[derive(Clone)]
pub struct State {
    /// The database.
    pub db: PgPool,
    /// Where account emails go.
    pub mailer: Mailer,
    /// Link base and token lifetime.
    pub mail: MailConfig,
}

/// This consumer's name in `processed_messages`.
pub const CONSUMER: &str = "notify-worker";

/// What happened to one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The notification was written.
    Delivered,
    /// The message had been handled before; nothing changed.
    Duplicate,
    /// The user no longer exists (or never did); the message was dropped.
    Orphaned,
    /// An account email that was no longer needed (the address is already verified).
    NotNeeded,
    /// An account email was sent.
    Sent,
}

/// Handles a batch: every record independently, failures reported per record.
pub async fn handle(
    state: &State,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(batch::for_each_record(&event.payload, |record| process(state, record)).await)
}

/// Handles one record.
#[tracing::instrument(skip_all, fields(message_id = record.message_id.as_deref().unwrap_or("")))]
pub async fn process(state: &State, record: &SqsMessage) -> Result<Outcome, RecordError> {
    match batch::parse_body(record)? {
        QueueMessage::Notification(message) => deliver(&state.db, message).await,
        QueueMessage::AccountEmail(message) => send_account_email(state, message).await,
    }
}

/// Marks a message handled; `false` when it had been handled before.
async fn first_time(tx: &mut PgConnection, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query!(
        "INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        CONSUMER,
        id,
    )
    .execute(tx)
    .await?
    .rows_affected()
        == 1)
}

async fn deliver(db: &PgPool, message: NotificationMessage) -> Result<Outcome, RecordError> {
    let mut tx = db.begin().await?;
    if !first_time(&mut tx, message.id).await? {
        return Ok(Outcome::Duplicate);
    }

    let inserted = sqlx::query!(
        "INSERT INTO notifications (id, user_id, kind, title, body)
         SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2
         ON CONFLICT (id) DO NOTHING",
        message.id,
        message.user_id.0,
        message.kind.as_str(),
        message.title,
        message.body,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(if inserted == 1 {
        Outcome::Delivered
    } else {
        Outcome::Orphaned
    })
}

/// Creates the single-use token and emails the link. The token row, the "handled" mark
/// and older tokens' invalidation commit only after the mail was handed over, so a
/// failed send leaves nothing behind and the retry starts afresh.
async fn send_account_email(
    state: &State,
    message: AccountEmailMessage,
) -> Result<Outcome, RecordError> {
    let mut tx = state.db.begin().await?;
    if !first_time(&mut tx, message.id).await? {
        return Ok(Outcome::Duplicate);
    }
    let Some(user) = sqlx::query!(
        r#"SELECT id AS "id: UserId", email, email_verified_at FROM users
           WHERE lower(email) = lower($1) FOR NO KEY UPDATE"#,
        message.email.trim(),
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        tx.commit().await?;
        return Ok(Outcome::Orphaned);
    };
    let (purpose, path, subject) = match message.kind {
        AccountEmailKind::PasswordReset => {
            ("password_reset", "reset-password", "Reset your password")
        }
        AccountEmailKind::VerifyEmail => (
            "email_verification",
            "verify-email",
            "Verify your email address",
        ),
    };
    if message.kind == AccountEmailKind::VerifyEmail && user.email_verified_at.is_some() {
        tx.commit().await?;
        return Ok(Outcome::NotNeeded);
    }

    // One live token per purpose: a new email makes the older links useless.
    sqlx::query!(
        "UPDATE user_tokens SET used_at = now()
         WHERE user_id = $1 AND purpose = $2::text::user_token_purpose AND used_at IS NULL",
        user.id.0,
        purpose,
    )
    .execute(&mut *tx)
    .await?;
    let token = RefreshToken::generate();
    let expires_at = OffsetDateTime::now_utc() + state.mail.token_ttl;
    sqlx::query!(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, email, expires_at)
         VALUES ($1, $2, $3::text::user_token_purpose, $4, $5)",
        token.hash,
        user.id.0,
        purpose,
        user.email,
        expires_at,
    )
    .execute(&mut *tx)
    .await?;

    let minutes = state.mail.token_ttl.as_secs().div_ceil(60);
    let link = format!("{}/{path}?token={}", state.mail.app_base_url, token.token);
    let text = match message.kind {
        AccountEmailKind::PasswordReset => format!(
            "Someone asked to reset the password of your account.\n\n\
             If it was you, open this link within {minutes} minutes:\n{link}\n\n\
             If it was not, ignore this email: your password has not changed."
        ),
        AccountEmailKind::VerifyEmail => format!(
            "Please confirm that this is your email address by opening this link within \
             {minutes} minutes:\n{link}\n\nIf you did not create an account, ignore this email."
        ),
    };
    let mail = Mail {
        to: user.email,
        subject: subject.into(),
        text,
    };
    state
        .mailer
        .send(message.id, &mail)
        .await
        .map_err(|e| RecordError::Retryable(e.context("sending the email failed")))?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, kind = ?message.kind, "account email sent");
    Ok(Outcome::Sent)
}

//! The `notify-worker` function: consumes the notifications queue. A notification is
//! written to its user's inbox; an account email (password reset, email verification,
//! the notice to the owner of an address someone tried to register) gets its single-use
//! token created here and is sent through [`mail::Mailer`].
//!
//! Each record is handled on its own, in its own transaction, and a failed record is
//! reported in `batchItemFailures`, so one bad message never makes SQS redeliver the
//! whole batch. Handling is idempotent: the message id is recorded in
//! `processed_messages` in the same transaction as the notification (for an email: after
//! the send), so a redelivered (or twice-relayed) message changes nothing.
//!
//! A notification written to the inbox is then pushed to the user's open tabs
//! (`shared::realtime`), after commit and best effort: a failed push never fails the
//! record, since the inbox already has it and clients catch up from there.
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
    realtime::{Frame, PushedNotification, connections, management::Management},
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
    /// The WebSocket API's Management API, to push to open tabs (none: no push).
    pub realtime: Option<Management>,
}

impl State {
    /// Loads the state from the environment, once per cold start.
    pub fn from_env() -> Result<Self, shared::BoxError> {
        let mail = MailConfig::from_env()?;
        Ok(Self {
            db: shared::db::pool(&shared::db::DatabaseConfig::from_env()?)?,
            mailer: Mailer::new(&mail.transport)?,
            mail,
            realtime: Management::from_env()?,
        })
    }
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
        QueueMessage::Notification(message) => deliver(state, message).await,
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

async fn deliver(state: &State, message: NotificationMessage) -> Result<Outcome, RecordError> {
    if message.kind.emailed() {
        return deliver_and_email(state, message).await;
    }
    let mut tx = state.db.begin().await?;
    if !first_time(&mut tx, message.id).await? {
        return Ok(Outcome::Duplicate);
    }
    let inserted = insert_notification(&mut tx, &message).await?;
    tx.commit().await?;
    let Some(created_at) = inserted else {
        return Ok(Outcome::Orphaned);
    };
    push(state, &message, created_at).await;
    Ok(Outcome::Delivered)
}

/// Writes the notification to its user's inbox (once: its id is the message's); its
/// creation time, or `None` when the user is gone or it was written before.
async fn insert_notification(
    tx: &mut PgConnection,
    message: &NotificationMessage,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO notifications (id, user_id, kind, title, body)
         SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2
         ON CONFLICT (id) DO NOTHING
         RETURNING created_at",
        message.id,
        message.user_id.0,
        message.kind.as_str(),
        message.title,
        message.body,
    )
    .fetch_optional(&mut *tx)
    .await
}

/// Nudges the user's open tabs about a notification just written (after commit, so a
/// client that fetches the inbox on the frame finds it).
async fn push(state: &State, message: &NotificationMessage, created_at: OffsetDateTime) {
    let Some(management) = &state.realtime else {
        return;
    };
    let frame = Frame::Notification {
        notification: PushedNotification {
            id: message.id,
            kind: message.kind.as_str().to_owned(),
            title: message.title.clone(),
            body: message.body.clone(),
            created_at,
        },
    };
    let pushed = connections::push(&state.db, management, message.user_id.0, &frame).await;
    if pushed != connections::Pushed::default() {
        tracing::info!(
            sent = pushed.sent,
            gone = pushed.gone,
            failed = pushed.failed,
            "notification pushed"
        );
    }
}

/// A notification that is also emailed (an order confirmed, an event cancelled or
/// changed): the inbox row is committed first (idempotent by id), the email sent, and
/// only then the message marked handled, so a failed send is retried with the inbox
/// untouched. A crash between the send and the mark may send the email twice; never
/// none.
async fn deliver_and_email(
    state: &State,
    message: NotificationMessage,
) -> Result<Outcome, RecordError> {
    let mut tx = state.db.begin().await?;
    if handled(&mut tx, message.id).await? {
        return Ok(Outcome::Duplicate);
    }
    let inserted = insert_notification(&mut tx, &message).await?;
    let email = sqlx::query_scalar!("SELECT email FROM users WHERE id = $1", message.user_id.0)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    if let Some(created_at) = inserted {
        push(state, &message, created_at).await;
    }
    let Some(to) = email else {
        first_time(&mut *state.db.acquire().await?, message.id).await?;
        return Ok(Outcome::Orphaned);
    };
    let mail = Mail {
        to,
        subject: message.title.clone(),
        text: format!(
            "{}\n\nYour tickets: {}/tickets",
            message.body, state.mail.app_base_url
        ),
    };
    state
        .mailer
        .send(message.id, &mail)
        .await
        .map_err(|err| RecordError::Retryable(err.context("sending the email failed")))?;
    first_time(&mut *state.db.acquire().await?, message.id).await?;
    tracing::info!(user_id = %message.user_id, kind = ?message.kind, "notification emailed");
    Ok(Outcome::Sent)
}

/// How long a delivery that committed its token may take to send the email before
/// another delivery of the same message may send one instead: over the function's
/// timeout (30 s), under the queue's visibility timeout (180 s), so a redelivery after a
/// crash never waits on it.
const SENDING_LEASE_SECONDS: f64 = 60.0;

/// What the first, transactional step decided.
enum Prepared {
    /// Nothing to send.
    Done(Outcome),
    /// Send this; its token (if any) is committed and valid.
    Send(Mail, UserId),
}

/// Emails an account link (or the registration notice). The token is committed before
/// the email goes out, so a link works the moment it arrives, and the message is marked
/// handled only after the send: a failed send is retried, and a retry sends a fresh link
/// (the older one void), never none. No transaction or row lock is held across the send.
async fn send_account_email(
    state: &State,
    message: AccountEmailMessage,
) -> Result<Outcome, RecordError> {
    let (mail, user) = match prepare_account_email(state, &message).await? {
        Prepared::Done(outcome) => return Ok(outcome),
        Prepared::Send(mail, user) => (mail, user),
    };
    if let Err(err) = state.mailer.send(message.id, &mail).await {
        // Nobody has this link: void it, which also frees the retry from waiting on the
        // sending lease. Best effort: an unsent token is useless without its plaintext.
        let voided = sqlx::query!(
            "UPDATE user_tokens SET used_at = now() WHERE message_id = $1 AND used_at IS NULL",
            message.id,
        )
        .execute(&state.db)
        .await;
        if let Err(void_err) = voided {
            tracing::warn!(error = %void_err, "could not void the unsent token");
        }
        return Err(RecordError::Retryable(
            err.context("sending the email failed"),
        ));
    }
    first_time(&mut *state.db.acquire().await?, message.id).await?;
    tracing::info!(user_id = %user, kind = ?message.kind, "account email sent");
    Ok(Outcome::Sent)
}

/// Looks the account up and, for a link, creates its single-use token (invalidating the
/// older ones of that purpose), in one short transaction.
async fn prepare_account_email(
    state: &State,
    message: &AccountEmailMessage,
) -> Result<Prepared, RecordError> {
    let mut tx = state.db.begin().await?;
    if handled(&mut tx, message.id).await? {
        return Ok(Prepared::Done(Outcome::Duplicate));
    }
    // Locked so that deliveries of messages for one account take turns here.
    let Some(user) = sqlx::query!(
        r#"SELECT id AS "id: UserId", email, email_verified_at FROM users
           WHERE lower(email) = lower($1) FOR NO KEY UPDATE"#,
        message.email.trim(),
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        first_time(&mut tx, message.id).await?;
        tx.commit().await?;
        return Ok(Prepared::Done(Outcome::Orphaned));
    };
    let base = &state.mail.app_base_url;
    let (purpose, path, subject) = match message.kind {
        AccountEmailKind::PasswordReset => {
            ("password_reset", "reset-password", "Reset your password")
        }
        AccountEmailKind::VerifyEmail => (
            "email_verification",
            "verify-email",
            "Verify your email address",
        ),
        AccountEmailKind::RegistrationAttempt => {
            let text = format!(
                "Someone tried to create an account with this email address, which already \
                 has one.\n\nIf it was you, log in at {base}/login, or set a new password at \
                 {base}/forgot-password if you have forgotten it.\n\n\
                 If it was not, ignore this email: nothing about your account has changed."
            );
            tx.commit().await?;
            let mail = Mail {
                to: user.email,
                subject: "Your email address already has an account".into(),
                text,
            };
            return Ok(Prepared::Send(mail, user.id));
        }
    };
    if message.kind == AccountEmailKind::VerifyEmail && user.email_verified_at.is_some() {
        first_time(&mut tx, message.id).await?;
        tx.commit().await?;
        return Ok(Prepared::Done(Outcome::NotNeeded));
    }
    // Another delivery of this message committed its token moments ago and is sending:
    // let it finish. SQS brings this one back after the visibility timeout, when it finds
    // the message handled (or, if that delivery died, sends a fresh link itself).
    if sending(&mut tx, message.id).await? {
        return Err(RecordError::Retryable(anyhow::anyhow!(
            "another delivery of this message is sending it"
        )));
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
        "INSERT INTO user_tokens (token_hash, user_id, purpose, email, expires_at, message_id)
         VALUES ($1, $2, $3::text::user_token_purpose, $4, $5, $6)",
        token.hash,
        user.id.0,
        purpose,
        user.email,
        expires_at,
        message.id,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let minutes = state.mail.token_ttl.as_secs().div_ceil(60);
    let link = format!("{base}/{path}?token={}", token.token);
    let text = match message.kind {
        AccountEmailKind::PasswordReset => format!(
            "Someone asked to reset the password of your account.\n\n\
             If it was you, open this link within {minutes} minutes:\n{link}\n\n\
             If it was not, ignore this email: your password has not changed."
        ),
        _ => format!(
            "Please confirm that this is your email address by opening this link within \
             {minutes} minutes:\n{link}\n\nIf you did not create an account, ignore this email."
        ),
    };
    let mail = Mail {
        to: user.email,
        subject: subject.into(),
        text,
    };
    Ok(Prepared::Send(mail, user.id))
}

/// Whether a message was handled before.
async fn handled(tx: &mut PgConnection, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM processed_messages
                          WHERE consumer = $1 AND message_id = $2) AS "handled!""#,
        CONSUMER,
        id,
    )
    .fetch_one(tx)
    .await
}

/// Whether a delivery of this message committed a token within the sending lease.
async fn sending(tx: &mut PgConnection, id: uuid::Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_tokens WHERE message_id = $1 AND used_at IS NULL
                          AND created_at > now() - make_interval(secs => $2)) AS "sending!""#,
        id,
        SENDING_LEASE_SECONDS,
    )
    .fetch_one(tx)
    .await
}

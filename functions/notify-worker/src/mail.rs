//! Sending email: Amazon SES in AWS, a directory of JSON files locally.
//!
//! The directory transport is what `scripts/dev` and the tests use: each message is one
//! `<id>.json` file (`{"to", "subject", "text"}`), written to a temporary name and
//! renamed, so a reader never sees half a message.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use serde::{Deserialize, Serialize};
use shared::{
    aws::LazyClient,
    config::{ConfigError, optional, parse_or, required},
};
use uuid::Uuid;

/// How account emails (password reset, verification) are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// Amazon SES (v2 API), from the given verified address.
    Ses {
        /// The sender, e.g. `no-reply@example.com`.
        from: String,
    },
    /// One JSON file per message in a directory, for local development and tests.
    Directory(std::path::PathBuf),
}

/// Settings for account emails.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Where messages go.
    pub transport: MailTransport,
    /// The frontend's base URL; links point at `<base>/reset-password?token=...` and
    /// `<base>/verify-email?token=...`.
    pub app_base_url: String,
    /// Lifetime of a reset or verification token.
    pub token_ttl: Duration,
}

impl MailConfig {
    /// Loads `MAIL_TRANSPORT` (`ses` or `directory`, default `directory`), `MAIL_FROM`
    /// (required for SES), `MAIL_DIR` (default `./.local/mail`), `APP_BASE_URL`
    /// (required) and `ACCOUNT_TOKEN_TTL_SECONDS` (default 1800: 30 minutes).
    pub fn from_env() -> Result<Self, ConfigError> {
        let transport = match optional("MAIL_TRANSPORT").as_deref().map(str::trim) {
            Some("ses") => MailTransport::Ses {
                from: required("MAIL_FROM")?,
            },
            None | Some("directory") => MailTransport::Directory(
                optional("MAIL_DIR")
                    .unwrap_or_else(|| ".local/mail".into())
                    .into(),
            ),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "MAIL_TRANSPORT",
                    reason: "must be ses or directory".into(),
                });
            }
        };
        let app_base_url = required("APP_BASE_URL")?;
        if !(app_base_url.starts_with("https://") || app_base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "APP_BASE_URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        let ttl: u64 = parse_or("ACCOUNT_TOKEN_TTL_SECONDS", 1800)?;
        if ttl == 0 {
            return Err(ConfigError::Invalid {
                name: "ACCOUNT_TOKEN_TTL_SECONDS",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(Self {
            transport,
            app_base_url: app_base_url.trim_end_matches('/').to_owned(),
            token_ttl: Duration::from_secs(ttl),
        })
    }
}

/// One plain-text email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Sends mail through the configured transport. Cheap to clone.
#[derive(Clone)]
pub enum Mailer {
    /// Amazon SES; the client is made on first use, not at cold start.
    Ses {
        /// The verified sender address.
        from: String,
        /// The SES client.
        client: LazyClient<aws_sdk_sesv2::Client>,
    },
    /// Files in a directory.
    Directory(PathBuf),
}

impl Mailer {
    /// The mailer for a transport; SES reads the AWS settings from the environment.
    pub fn new(transport: &MailTransport) -> Result<Self, ConfigError> {
        Ok(match transport {
            MailTransport::Ses { from } => {
                let sdk = shared::aws::sdk_config()?;
                Self::Ses {
                    from: from.clone(),
                    client: shared::aws::lazy(move || aws_sdk_sesv2::Client::new(&sdk)),
                }
            }
            MailTransport::Directory(dir) => Self::Directory(dir.clone()),
        })
    }

    /// Sends one message. `id` makes the file name (directory transport) unique.
    #[tracing::instrument(skip_all, fields(transport = self.name()))]
    pub async fn send(&self, id: Uuid, mail: &Mail) -> anyhow::Result<()> {
        match self {
            // Boxed: the SDK's future is deep enough to overflow the compiler's layout
            // query limit when inlined into the Lambda runtime's.
            Self::Ses { from, client } => Box::pin(send_ses(client, from, mail)).await,
            Self::Directory(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .with_context(|| format!("cannot create mail directory {}", dir.display()))?;
                let path = dir.join(format!("{id}.json"));
                let partial = dir.join(format!(".{id}.json.partial"));
                tokio::fs::write(&partial, serde_json::to_vec_pretty(mail)?).await?;
                tokio::fs::rename(&partial, &path).await?;
                Ok(())
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Ses { .. } => "ses",
            Self::Directory(_) => "directory",
        }
    }
}

async fn send_ses(client: &aws_sdk_sesv2::Client, from: &str, mail: &Mail) -> anyhow::Result<()> {
    let text = |s: &str| Content::builder().data(s).charset("UTF-8").build();
    let message = Message::builder()
        .subject(text(&mail.subject)?)
        .body(Body::builder().text(text(&mail.text)?).build())
        .build();
    client
        .send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses(&mail.to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .context("SES SendEmail failed")?;
    Ok(())
}

//! Sending email: Amazon SES in AWS, a directory of JSON files locally.
//!
//! The directory transport is what `scripts/dev` and the tests use: each message is one
//! `<id>.json` file (`{"to", "subject", "text"}`), written to a temporary name and
//! renamed, so a reader never sees half a message.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    aws::AwsClient,
    config::{ConfigError, optional, parse_or, required},
    sigv4::AwsAccess,
};
use uuid::Uuid;

/// How long one `SendEmail` may take; a failure is retried by the queue.
const SES_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Amazon SES.
    Ses {
        /// The verified sender address.
        from: String,
        /// Signs and sends the calls (boxed: the client is large beside a path).
        aws: Box<AwsClient>,
    },
    /// Files in a directory.
    Directory(PathBuf),
}

impl Mailer {
    /// The mailer for a transport; SES reads the AWS settings from the environment.
    pub fn new(transport: &MailTransport) -> Result<Self, ConfigError> {
        Ok(match transport {
            MailTransport::Ses { from } => Self::Ses {
                from: from.clone(),
                aws: Box::new(AwsClient::new(AwsAccess::from_env()?)),
            },
            MailTransport::Directory(dir) => Self::Directory(dir.clone()),
        })
    }

    /// Sends one message. `id` makes the file name (directory transport) unique.
    #[tracing::instrument(skip_all, fields(transport = self.name()))]
    pub async fn send(&self, id: Uuid, mail: &Mail) -> anyhow::Result<()> {
        match self {
            Self::Ses { from, aws } => send_ses(aws, from, mail).await,
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

/// SES v2 `SendEmail`, one REST call.
async fn send_ses(aws: &AwsClient, from: &str, mail: &Mail) -> anyhow::Result<()> {
    let text = |s: &str| json!({ "Data": s, "Charset": "UTF-8" });
    let request = json!({
        "FromEmailAddress": from,
        "Destination": { "ToAddresses": [mail.to] },
        "Content": { "Simple": {
            "Subject": text(&mail.subject),
            "Body": { "Text": text(&mail.text) },
        } },
    });
    let url = format!("{}/v2/email/outbound-emails", aws.endpoint("email"));
    aws.send(
        "ses",
        Method::POST,
        &url,
        &[("content-type", "application/json")],
        serde_json::to_vec(&request)?,
        SES_TIMEOUT,
    )
    .await
    .and_then(|answer| answer.success("SES SendEmail"))
    .context("SES SendEmail failed")?;
    Ok(())
}

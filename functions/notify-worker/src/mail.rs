//! Sending email: Amazon SES in AWS, a directory of JSON files locally.
//!
//! The directory transport is what `scripts/dev` and the tests use: each message is one
//! `<id>.json` file (`{"to", "subject", "text"}`), written to a temporary name and
//! renamed, so a reader never sees half a message.

use std::path::PathBuf;

use anyhow::Context;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use serde::{Deserialize, Serialize};
use shared::{
    aws::LazyClient,
    config::{ConfigError, MailTransport},
};
use uuid::Uuid;

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

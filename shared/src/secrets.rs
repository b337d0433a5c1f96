//! Secrets from AWS Secrets Manager, read once per cold start.
//!
//! No secret sits in a function's configuration in AWS, where anyone allowed
//! `lambda:GetFunctionConfiguration` could read it. Beside each secret-bearing variable
//! `NAME` (see [`SECRET_VARS`]) the template sets `NAME_SECRET_ARN`, and [`load`], the
//! first thing every `main` does after starting telemetry, fetches those secrets
//! (`GetSecretValue`, all at once) and installs their values where [`config::var`] reads
//! them. Locally and in tests the variables hold the values themselves: the same
//! `config::var` serves both, so exactly one code path decides, and a variable set both
//! ways is refused at start-up as ambiguous. Each function's role may read only the
//! secrets the template passes it.
//!
//! `JWT_SECRET` rotates through its secret's versions: `AWSCURRENT` signs, and
//! `AWSPREVIOUS` (installed as `JWT_PREVIOUS_SECRETS`) still verifies the tokens it
//! signed. `put-secret-value` makes the new key current and the old one previous; an
//! environment started before that learns the new key the first time a token names it
//! ([`KeySource`], used by `identity::tokens`), so nobody is logged out.

use std::{collections::HashMap, time::Duration};

use http::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::{
    aws::AwsClient,
    config::{self, ConfigError},
    sigv4::AwsAccess,
};

/// The variables that may come from Secrets Manager, with the variable naming each one's
/// secret.
pub const SECRET_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "DATABASE_URL_SECRET_ARN"),
    ("DATABASE_DIRECT_URL", "DATABASE_DIRECT_URL_SECRET_ARN"),
    ("JWT_SECRET", "JWT_SECRET_ARN"),
    ("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY_SECRET_ARN"),
    (
        "STRIPE_WEBHOOK_SECRETS",
        "STRIPE_WEBHOOK_SECRETS_SECRET_ARN",
    ),
    ("FIRST_ADMIN_PASSWORD", "FIRST_ADMIN_PASSWORD_SECRET_ARN"),
];

/// The variable `JWT_SECRET`'s previous version is installed as.
const JWT_PREVIOUS: &str = "JWT_PREVIOUS_SECRETS";

/// How long one `GetSecretValue` may take. A failure fails the cold start, which Lambda
/// retries with the next invocation.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads secrets from Secrets Manager. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SecretsClient {
    aws: AwsClient,
    endpoint: String,
}

impl SecretsClient {
    /// A client signing as `access` (its endpoint, if any, is an emulator's).
    pub fn new(access: AwsAccess) -> Self {
        let aws = AwsClient::new(access);
        Self {
            endpoint: aws.endpoint("secretsmanager"),
            aws,
        }
    }

    /// The value of the secret `id` (an ARN or a name) at `stage` (`AWSCURRENT` when
    /// none); `None` when the secret has no version at that stage (a secret never
    /// rotated has no `AWSPREVIOUS`).
    pub async fn get(&self, id: &str, stage: Option<&str>) -> anyhow::Result<Option<String>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "SecretString")]
            secret_string: Option<String>,
        }
        let mut request = json!({ "SecretId": id });
        if let Some(stage) = stage {
            request["VersionStage"] = json!(stage);
        }
        let answer = self
            .aws
            .send(
                "secretsmanager",
                Method::POST,
                &format!("{}/", self.endpoint),
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", "secretsmanager.GetSecretValue"),
                ],
                serde_json::to_vec(&request)?,
                CALL_TIMEOUT,
            )
            .await?;
        // AWS answers 400 (emulators 404) with this type when no version has the stage.
        if stage.is_some()
            && matches!(
                answer.status,
                StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
            )
            && answer
                .body
                .windows(25)
                .any(|w| w == b"ResourceNotFoundException")
        {
            return Ok(None);
        }
        let body = answer.success("Secrets Manager GetSecretValue")?;
        let answer: Answer = serde_json::from_slice(&body)?;
        let value = answer.secret_string.ok_or_else(|| {
            anyhow::anyhow!("the secret has no SecretString (binary secrets are not used)")
        })?;
        Ok(Some(value))
    }
}

/// A rotating key's secret: where an environment re-reads it when a token names a key
/// it does not know.
#[derive(Clone, Debug)]
pub struct KeySource {
    /// The secret's ARN.
    pub secret_id: String,
    /// The client that reads it.
    pub client: SecretsClient,
}

/// A key's versions: the current one, and the previous one if the secret was rotated.
pub struct KeyVersions {
    /// `AWSCURRENT`.
    pub current: SecretString,
    /// `AWSPREVIOUS`, if any.
    pub previous: Option<SecretString>,
}

impl KeySource {
    /// `JWT_SECRET_ARN` with this environment's AWS access, if set.
    pub fn jwt_from_env() -> Result<Option<Self>, ConfigError> {
        match config::optional("JWT_SECRET_ARN") {
            Some(arn) => Ok(Some(Self {
                secret_id: arn,
                client: SecretsClient::new(AwsAccess::from_env()?),
            })),
            None => Ok(None),
        }
    }

    /// Reads the current and the previous version.
    pub async fn read(&self) -> anyhow::Result<KeyVersions> {
        let (current, previous) = tokio::try_join!(
            self.client.get(&self.secret_id, None),
            self.client.get(&self.secret_id, Some("AWSPREVIOUS")),
        )?;
        Ok(KeyVersions {
            current: SecretString::from(current.unwrap_or_default()),
            previous: previous.map(SecretString::from),
        })
    }
}

/// The secrets this environment's configuration names: `(variable, secret ARN)` for each
/// `NAME_SECRET_ARN` set. Refuses a variable set both as a value and as a secret.
pub fn references() -> Result<Vec<(&'static str, String)>, ConfigError> {
    let mut refs = Vec::new();
    for &(name, arn_var) in SECRET_VARS {
        if let Some(arn) = config::optional(arn_var) {
            if config::optional(name).is_some() {
                return Err(ConfigError::Invalid {
                    name: arn_var,
                    reason: format!("{name} is set too; set one of them"),
                });
            }
            refs.push((name, arn));
        }
    }
    Ok(refs)
}

/// Fetches every referenced secret at once: the values by variable name (for
/// `JWT_SECRET`, also its previous version as `JWT_PREVIOUS_SECRETS`).
pub async fn fetch(
    client: &SecretsClient,
    refs: Vec<(&'static str, String)>,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let mut calls = tokio::task::JoinSet::new();
    for (name, arn) in refs {
        let client = client.clone();
        calls.spawn(async move {
            if name == "JWT_SECRET" {
                let source = KeySource {
                    secret_id: arn,
                    client,
                };
                let versions = source.read().await;
                (name, versions.map(|v| (v.current, v.previous)))
            } else {
                let value = client.get(&arn, None).await;
                let value = value.map(|v| (SecretString::from(v.unwrap_or_default()), None));
                (name, value)
            }
        });
    }
    let mut values = HashMap::new();
    while let Some(done) = calls.join_next().await {
        let (name, fetched) = done.map_err(|e| ConfigError::Invalid {
            name: "secrets",
            reason: e.to_string(),
        })?;
        let (current, previous) = fetched.map_err(|e| ConfigError::Invalid {
            name,
            // The error names the call and AWS's message, never a value.
            reason: format!("cannot read its secret: {e:#}"),
        })?;
        use secrecy::ExposeSecret;
        values.insert(name, current.expose_secret().to_owned());
        if let Some(previous) = previous {
            values.insert(JWT_PREVIOUS, previous.expose_secret().to_owned());
        }
    }
    Ok(values)
}

/// Fetches this environment's secrets and installs them for [`config::var`]; no I/O when
/// no `*_SECRET_ARN` is set (local development, tests).
pub async fn load() -> Result<(), ConfigError> {
    let refs = references()?;
    if refs.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let count = refs.len();
    let client = SecretsClient::new(AwsAccess::from_env()?);
    let values = fetch(&client, refs).await?;
    config::install_secrets(values);
    tracing::info!(
        secrets = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "secrets loaded"
    );
    Ok(())
}

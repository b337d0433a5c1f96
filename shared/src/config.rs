//! Configuration, read once per cold start from the environment.
//!
//! Each function loads only the sections it needs (`DatabaseConfig::from_env()`,
//! `TokenConfig::from_env()`, ...), so the platform function does not demand a JWT
//! secret it never uses. A missing or malformed variable stops start-up with an error
//! naming it; secrets are held in [`SecretString`] so they never reach a log.

use std::{str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// Why it was refused (never the value itself: it may be a secret).
        reason: String,
    },
}

/// Reads a required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// Reads an optional variable; empty counts as unset.
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads and parses a variable, falling back to `default` when unset.
pub fn parse_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

/// Where and how to reach Postgres.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// The variable the URL came from, for error messages.
    pub var: &'static str,
    /// Connection URL (with password): a secret.
    pub url: SecretString,
    /// Connections per execution environment. Lambda runs one request at a time per
    /// environment, so 1-2 is enough and keeps a burst of cold starts from exhausting
    /// the database's connection limit.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
}

impl DatabaseConfig {
    /// Loads the pooled URL from `DATABASE_URL` (what request paths use).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_var("DATABASE_URL")
    }

    /// Loads the URL from the named variable, e.g. `DATABASE_DIRECT_URL` for migrations.
    pub fn from_var(var: &'static str) -> Result<Self, ConfigError> {
        let url = required(var)?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                name: var,
                reason: "must start with postgres:// or postgresql://".into(),
            });
        }
        Ok(Self {
            var,
            url: SecretString::from(url),
            max_connections: parse_or("DATABASE_MAX_CONNECTIONS", 2)?,
            acquire_timeout: Duration::from_millis(parse_or("DATABASE_ACQUIRE_TIMEOUT_MS", 5_000)?),
        })
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("var", &self.var)
            .field("url", &"[redacted]")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// Settings for issuing and verifying our own tokens.
#[derive(Clone)]
pub struct TokenConfig {
    /// HMAC key that signs new access tokens (HS256). At least 32 bytes.
    pub jwt_secret: SecretString,
    /// Earlier keys, still accepted until the tokens they signed have expired, so a key
    /// rotates without logging anyone out. Each token names its key by `kid`.
    pub previous_secrets: Vec<SecretString>,
    /// `iss` claim we issue and require.
    pub issuer: String,
    /// `aud` claim we issue and require.
    pub audience: String,
    /// Lifetime of an access token.
    pub access_ttl: Duration,
    /// Lifetime of a refresh token (and so of an idle session).
    pub refresh_ttl: Duration,
    /// Better Auth, when its tokens are accepted too (`BETTER_AUTH_URL` set).
    pub better_auth: Option<crate::better_auth::BetterAuthConfig>,
}

impl TokenConfig {
    /// Loads `JWT_SECRET`, `JWT_PREVIOUS_SECRETS` (comma-separated, optional),
    /// `JWT_ISSUER`, `JWT_AUDIENCE`, `ACCESS_TOKEN_TTL_SECONDS`,
    /// `REFRESH_TOKEN_TTL_SECONDS` and the `BETTER_AUTH_*` settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        let secret = required("JWT_SECRET")?;
        if secret.len() < 32 {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: "must be at least 32 bytes".into(),
            });
        }
        let previous: Vec<SecretString> = optional("JWT_PREVIOUS_SECRETS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        if previous.iter().any(|s| s.expose_secret().len() < 32) {
            return Err(ConfigError::Invalid {
                name: "JWT_PREVIOUS_SECRETS",
                reason: "every key must be at least 32 bytes".into(),
            });
        }
        let access: u64 = parse_or("ACCESS_TOKEN_TTL_SECONDS", 900)?;
        let refresh: u64 = parse_or("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?;
        if access == 0 || refresh == 0 {
            return Err(ConfigError::Invalid {
                name: if access == 0 {
                    "ACCESS_TOKEN_TTL_SECONDS"
                } else {
                    "REFRESH_TOKEN_TTL_SECONDS"
                },
                reason: "must be greater than zero".into(),
            });
        }
        Ok(Self {
            jwt_secret: SecretString::from(secret),
            previous_secrets: previous,
            issuer: optional("JWT_ISSUER").unwrap_or_else(|| "backend".into()),
            audience: optional("JWT_AUDIENCE").unwrap_or_else(|| "backend-api".into()),
            access_ttl: Duration::from_secs(access),
            refresh_ttl: Duration::from_secs(refresh),
            better_auth: crate::better_auth::BetterAuthConfig::from_env()?,
        })
    }

    /// The secret's bytes, for building keys.
    pub fn secret_bytes(&self) -> &[u8] {
        self.jwt_secret.expose_secret().as_bytes()
    }
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("jwt_secret", &"[redacted]")
            .field("previous_secrets", &self.previous_secrets.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("better_auth", &self.better_auth)
            .finish()
    }
}

/// Where notification messages go.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// URL of the notifications SQS queue.
    pub notifications_url: String,
}

impl QueueConfig {
    /// Loads `NOTIFICATIONS_QUEUE_URL`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            notifications_url: required("NOTIFICATIONS_QUEUE_URL")?,
        })
    }
}

/// Where uploads live and how long signed URLs last.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The uploads bucket.
    pub bucket: String,
    /// Lifetime of a presigned upload URL (at most 15 minutes).
    pub upload_url_ttl: Duration,
    /// Lifetime of a presigned download URL.
    pub download_url_ttl: Duration,
    /// Address the bucket path-style (`host/bucket/key`), as local emulators need.
    pub force_path_style: bool,
}

impl StorageConfig {
    /// Loads `UPLOADS_BUCKET`, `UPLOAD_URL_TTL_SECONDS` (default 600, at most 900),
    /// `DOWNLOAD_URL_TTL_SECONDS` (default 300) and `S3_FORCE_PATH_STYLE` (default false).
    pub fn from_env() -> Result<Self, ConfigError> {
        let upload: u64 = parse_or("UPLOAD_URL_TTL_SECONDS", 600)?;
        if !(1..=900).contains(&upload) {
            return Err(ConfigError::Invalid {
                name: "UPLOAD_URL_TTL_SECONDS",
                reason: "must be between 1 and 900".into(),
            });
        }
        let download: u64 = parse_or("DOWNLOAD_URL_TTL_SECONDS", 300)?;
        if !(1..=3600).contains(&download) {
            return Err(ConfigError::Invalid {
                name: "DOWNLOAD_URL_TTL_SECONDS",
                reason: "must be between 1 and 3600".into(),
            });
        }
        Ok(Self {
            bucket: required("UPLOADS_BUCKET")?,
            upload_url_ttl: Duration::from_secs(upload),
            download_url_ttl: Duration::from_secs(download),
            force_path_style: parse_or("S3_FORCE_PATH_STYLE", false)?,
        })
    }
}

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

/// Browser origins allowed to call the API with credentials (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`); empty means no CORS headers at all.
    pub origins: Vec<String>,
}

impl CorsConfig {
    /// Loads `CORS_ALLOWED_ORIGINS` (comma-separated). In AWS, API Gateway's CORS
    /// configuration (the template's `CorsAllowedOrigins`, the same list) answers
    /// preflights and overrides these headers; locally this is what applies.
    pub fn from_env() -> Result<Self, ConfigError> {
        optional("CORS_ALLOWED_ORIGINS").map_or(Ok(Self::default()), |raw| Self::parse(&raw))
    }

    /// Parses a comma-separated list, refusing wildcards (never allowed together with
    /// credentials) and anything that is not a bare `scheme://host[:port]` origin.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "CORS_ALLOWED_ORIGINS",
            reason,
        };
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin.contains('*') {
                return Err(invalid("wildcards are not allowed with credentials".into()));
            }
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| invalid(format!("{origin} must start with http:// or https://")))?;
            if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') {
                return Err(invalid(format!("{origin} must be a bare origin (no path)")));
            }
            origins.push(origin.to_owned());
        }
        Ok(Self { origins })
    }
}

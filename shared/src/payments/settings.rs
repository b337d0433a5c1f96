//! Stripe's settings, read once per cold start.

use secrecy::SecretString;

use crate::config::{self, ConfigError};

/// Stripe's settings.
#[derive(Clone)]
pub struct StripeConfig {
    /// `STRIPE_API_BASE`: `https://api.stripe.com` unless a fake on loopback.
    pub api_base: String,
    /// `STRIPE_SECRET_KEY`.
    pub secret_key: SecretString,
    /// `STRIPE_PUBLISHABLE_KEY`: given to browsers with each intent's client secret.
    pub publishable_key: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("publishable_key", &self.publishable_key)
            .finish_non_exhaustive()
    }
}

/// Stripe's API.
pub const STRIPE_API: &str = "https://api.stripe.com";

impl StripeConfig {
    /// Reads the settings; the API base must be `https` except on loopback.
    pub fn from_env() -> Result<Self, ConfigError> {
        let api_base = config::optional("STRIPE_API_BASE").unwrap_or_else(|| STRIPE_API.to_owned());
        check_api_base(&api_base)?;
        Ok(Self {
            api_base,
            secret_key: SecretString::from(config::required("STRIPE_SECRET_KEY")?),
            publishable_key: config::required("STRIPE_PUBLISHABLE_KEY")?,
        })
    }

    /// The client these settings describe.
    pub fn client(&self) -> super::stripe::StripeClient {
        super::stripe::StripeClient::new(&self.api_base, self.secret_key.clone())
    }
}

/// `STRIPE_WEBHOOK_SECRETS`: the webhook signing secrets, comma-separated (the current
/// one and, while rotating, the previous).
pub fn webhook_secrets_from_env() -> Result<Vec<SecretString>, ConfigError> {
    let secrets: Vec<SecretString> = config::required("STRIPE_WEBHOOK_SECRETS")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect();
    if secrets.is_empty() {
        return Err(ConfigError::Missing("STRIPE_WEBHOOK_SECRETS"));
    }
    Ok(secrets)
}

fn check_api_base(base: &str) -> Result<(), ConfigError> {
    config::check_secure_url("STRIPE_API_BASE", base, "https", "http")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_base_is_https_except_on_loopback() {
        for ok in [
            "https://api.stripe.com",
            "http://127.0.0.1:8420",
            "http://localhost:8420/",
        ] {
            assert!(check_api_base(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.stripe.com",
            "ftp://127.0.0.1",
            "api.stripe.com",
            "",
        ] {
            assert!(check_api_base(bad).is_err(), "{bad}");
        }
    }
}

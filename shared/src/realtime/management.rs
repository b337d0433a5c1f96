//! API Gateway's Management API for WebSocket connections: `PostToConnection` and
//! `DeleteConnection`, two signed HTTP calls (SigV4, service `execute-api`) sent by
//! `shared::aws` rather than a whole SDK client for them.
//!
//! `REALTIME_MANAGEMENT_URL` is the stage's connection endpoint,
//! `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` (the template sets it);
//! locally it points at scripts/dev's WebSocket gateway. Unset, nothing is pushed or
//! closed (the inbox still works).

use std::time::Duration;

use http::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{
    aws::AwsClient,
    config::{self, ConfigError},
    sigv4::AwsAccess,
};

/// One call's bound: a push must not hold up the queue's batch.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// What a call to one connection found.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// 410: the connection is gone (closed, or never existed).
    #[error("the connection is gone")]
    Gone,
    /// Anything else (throttled, unreachable, refused).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The Management API of one stage. Cheap to clone.
#[derive(Clone)]
pub struct Management {
    base: String,
    aws: AwsClient,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Management")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Management {
    /// The stage at `base` (`https://...amazonaws.com/{stage}`; `http` on loopback only).
    pub fn new(base: &str, access: AwsAccess) -> Result<Self, ConfigError> {
        config::check_secure_url("REALTIME_MANAGEMENT_URL", base, "https", "http")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            aws: AwsClient::new(access),
        })
    }

    /// `REALTIME_MANAGEMENT_URL` with this environment's AWS credentials, if set.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        match config::optional("REALTIME_MANAGEMENT_URL") {
            Some(base) => Ok(Some(Self::new(&base, AwsAccess::from_env()?)?)),
            None => Ok(None),
        }
    }

    /// `PostToConnection`: sends one text frame.
    pub async fn post(&self, connection_id: &str, frame: &str) -> Result<(), ConnectionError> {
        self.call(Method::POST, connection_id, frame.as_bytes().to_vec())
            .await
    }

    /// `DeleteConnection`: closes the socket.
    pub async fn delete(&self, connection_id: &str) -> Result<(), ConnectionError> {
        self.call(Method::DELETE, connection_id, Vec::new()).await
    }

    async fn call(
        &self,
        method: Method,
        connection_id: &str,
        body: Vec<u8>,
    ) -> Result<(), ConnectionError> {
        let url = format!(
            "{}/@connections/{}",
            self.base,
            utf8_percent_encode(connection_id, NON_ALPHANUMERIC)
        );
        let answer = self
            .aws
            .send("execute-api", method, &url, &[], body, CALL_TIMEOUT)
            .await?;
        match answer.status {
            http::StatusCode::GONE => Err(ConnectionError::Gone),
            _ => {
                answer.success("the Management API")?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_credential_types::Credentials;

    use super::*;

    #[test]
    fn the_endpoint_is_https_except_on_loopback() {
        let access = || {
            AwsAccess::new(
                Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
                "eu-west-1",
                None,
            )
        };
        for ok in [
            "https://abc123.execute-api.eu-west-1.amazonaws.com/live",
            "http://127.0.0.1:9001/live",
            "http://localhost:9001",
        ] {
            assert!(Management::new(ok, access()).is_ok(), "{ok}");
        }
        for bad in [
            "http://abc123.execute-api.eu-west-1.amazonaws.com/live",
            "wss://x",
            "",
        ] {
            assert!(Management::new(bad, access()).is_err(), "{bad}");
        }
    }
}

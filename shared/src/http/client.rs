//! Who is calling, as far as the network can tell: the client's IP address and user
//! agent, for rate limits and the audit log.
//!
//! The address comes from API Gateway's request context (`sourceIp`), which API Gateway
//! sets from the TCP connection. `X-Forwarded-For` is never trusted: a client can write
//! anything there, and a limit keyed on it would be a limit the attacker chooses.

use std::convert::Infallible;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use lambda_http::{RequestExt, request::RequestContext};

/// The longest user agent kept; the rest is cut (at a character boundary).
const MAX_USER_AGENT: usize = 512;

/// The caller's address and user agent. Extracting it never fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The source IP API Gateway saw, if the request came through it.
    pub ip: Option<String>,
    /// The `User-Agent` header, cut to 512 bytes.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The key rate limits count under: the IP, or one shared bucket for requests
    /// without one (only possible outside API Gateway).
    pub fn rate_key(&self) -> &str {
        self.ip.as_deref().unwrap_or("unknown")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .request_context_ref()
            .and_then(|ctx| match ctx {
                RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
                RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
                #[allow(unreachable_patterns)]
                _ => None,
            })
            .filter(|ip| !ip.is_empty());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate(ua, MAX_USER_AGENT).to_owned());
        Ok(Self { ip, user_agent })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate(&"x".repeat(600), MAX_USER_AGENT).len(), 512);
    }

    #[tokio::test]
    async fn forwarded_for_is_ignored() {
        let request = axum::http::Request::builder()
            .header("x-forwarded-for", "203.0.113.9")
            .header("user-agent", "test/1")
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        let info = ClientInfo::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(info.ip, None);
        assert_eq!(info.rate_key(), "unknown");
        assert_eq!(info.user_agent.as_deref(), Some("test/1"));
    }
}

//! Our own tokens: short-lived JWT access tokens and opaque refresh tokens.
//!
//! Access tokens are HS256 JWTs whose algorithm, issuer and audience are pinned when
//! verifying, so `alg: none`, a token for another audience or one signed with another
//! algorithm is refused before its claims are read. Refresh tokens are 256 random bits;
//! the database stores only their SHA-256, so a leaked table cannot mint sessions.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    config::TokenConfig,
    error::ApiError,
    identity::{Role, SessionId, UserId},
};

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The session the token belongs to; checked on every request.
    pub sid: SessionId,
    /// The role when the token was issued (informational: the guard reads the live role).
    pub role: Role,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id.
    pub jti: Uuid,
}

/// A freshly issued access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The encoded JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Issues and verifies access tokens. Built once per cold start.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
}

impl AccessTokens {
    /// Builds the keys and the validation rules from configuration.
    pub fn new(config: &TokenConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(config.secret_bytes()),
            decoding: DecodingKey::from_secret(config.secret_bytes()),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_secs: config.access_ttl.as_secs(),
        }
    }

    /// Signs an access token for a user's session.
    pub fn issue(
        &self,
        user: UserId,
        session: SessionId,
        role: Role,
    ) -> anyhow::Result<AccessToken> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            sid: session,
            role,
            iat: now,
            exp: now + self.ttl_secs as i64,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl_secs,
        })
    }

    /// Verifies signature, algorithm, expiry, issuer and audience; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(reason = ?e.kind(), "access token refused");
                ApiError::Unauthorized("invalid or expired access token")
            })
    }
}

/// A new opaque token (refresh, password reset, email verification) and the hash to
/// store.
pub struct RefreshToken {
    /// What the client gets (base64url, 43 characters).
    pub token: String,
    /// What the database keeps.
    pub hash: Vec<u8>,
}

impl RefreshToken {
    /// Generates 256 random bits from the OS generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_refresh_token(&token);
        Self { token, hash }
    }
}

/// The stored form of an opaque token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;

    fn config(secret: &str, aud: &str) -> TokenConfig {
        TokenConfig {
            jwt_secret: SecretString::from(secret.to_owned()),
            issuer: "backend".into(),
            audience: aud.into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(3600),
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trips_claims() {
        let tokens = AccessTokens::new(&config(SECRET, "api"));
        let (user, session) = (UserId::new(), SessionId::new());
        let issued = tokens.issue(user, session, Role::User).unwrap();
        let claims = tokens.verify(&issued.token).unwrap();
        assert_eq!(
            (claims.sub, claims.sid, claims.role),
            (user, session, Role::User)
        );
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn refuses_other_secret_other_audience_and_garbage() {
        let ours = AccessTokens::new(&config(SECRET, "api"));
        let theirs = AccessTokens::new(&config("another-secret-that-is-long-enough!!", "api"));
        let other_aud = AccessTokens::new(&config(SECRET, "other"));
        let token = theirs
            .issue(UserId::new(), SessionId::new(), Role::Admin)
            .unwrap()
            .token;
        assert!(ours.verify(&token).is_err());
        let token = other_aud
            .issue(UserId::new(), SessionId::new(), Role::Admin)
            .unwrap()
            .token;
        assert!(ours.verify(&token).is_err());
        assert!(ours.verify("not.a.jwt").is_err());
        assert!(ours.verify("").is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert_eq!(a.hash, hash_refresh_token(&a.token));
        assert_eq!(a.hash.len(), 32);
    }
}

//! Our own tokens: short-lived JWT access tokens and opaque refresh tokens.
//!
//! Access tokens are HS256 JWTs whose algorithm, issuer and audience are pinned when
//! verifying, so `alg: none`, a token for another audience or one signed with another
//! algorithm is refused before its claims are read. Each token names its key in the
//! header's `kid` (derived from the key, so it needs no configuration): the current key
//! signs, previous keys still verify, so keys rotate without logging anyone out. In AWS
//! the keys are the versions of one Secrets Manager secret (`secrets::KeySource`): an
//! environment that meets a token naming a key it does not know re-reads the secret (at
//! most once per [`REFRESH_INTERVAL`]) and from then on signs with its current version
//! too. Refresh tokens are 256 random bits; the database stores only their SHA-256, so a
//! leaked table cannot mint sessions.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    config::{ConfigError, optional, parse_or, required},
    http::error::ApiError,
    identity::{Role, SessionId, UserId, better_auth::BetterAuthConfig},
    secrets::KeySource,
};

/// How often an environment may re-read its keys because a token named an unknown
/// `kid`: garbage kids cannot make it hammer Secrets Manager.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

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
    /// Better Auth, when its tokens are accepted too (`BETTER_AUTH_URL` set).
    pub better_auth: Option<BetterAuthConfig>,
    /// Where the keys are re-read when a token names an unknown `kid` (`JWT_SECRET_ARN`
    /// set); none where they are plain variables.
    pub key_source: Option<KeySource>,
}

impl TokenConfig {
    /// Loads `JWT_SECRET`, `JWT_PREVIOUS_SECRETS` (comma-separated, optional),
    /// `JWT_ISSUER`, `JWT_AUDIENCE`, `ACCESS_TOKEN_TTL_SECONDS` and the `BETTER_AUTH_*`
    /// settings. (Refresh tokens are the auth function's alone:
    /// [`super::sessions::SessionPolicy`].)
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
        if access == 0 {
            return Err(ConfigError::Invalid {
                name: "ACCESS_TOKEN_TTL_SECONDS",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(Self {
            jwt_secret: SecretString::from(secret),
            previous_secrets: previous,
            issuer: optional("JWT_ISSUER").unwrap_or_else(|| "backend".into()),
            audience: optional("JWT_AUDIENCE").unwrap_or_else(|| "backend-api".into()),
            access_ttl: Duration::from_secs(access),
            better_auth: BetterAuthConfig::from_env()?,
            key_source: KeySource::jwt_from_env()?,
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
            .field("better_auth", &self.better_auth)
            .field(
                "key_source",
                &self.key_source.as_ref().map(|s| &s.secret_id),
            )
            .finish()
    }
}

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
    keys: RwLock<Arc<Keys>>,
    source: Option<KeySource>,
    /// When the keys were last re-read (or tried), for [`REFRESH_INTERVAL`].
    refreshed: Mutex<Option<Instant>>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
}

/// The signing key and every accepted key.
struct Keys {
    encoding: EncodingKey,
    kid: String,
    /// Every accepted key by `kid`, the current one first.
    decoding: Vec<(String, DecodingKey)>,
}

impl Keys {
    fn new<'a>(current: &'a [u8], previous: impl Iterator<Item = &'a [u8]>) -> Self {
        let decoding = std::iter::once(current)
            .chain(previous)
            .map(|key| (key_id(key), DecodingKey::from_secret(key)))
            .collect();
        Self {
            encoding: EncodingKey::from_secret(current),
            kid: key_id(current),
            decoding,
        }
    }
}

/// Why a token was refused.
enum Refusal {
    /// Its `kid` names no key this environment knows (yet).
    UnknownKid,
    /// Anything else.
    Invalid,
}

impl AccessTokens {
    /// Builds the keys and the validation rules from configuration.
    pub fn new(config: &TokenConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let keys = Keys::new(
            config.secret_bytes(),
            config
                .previous_secrets
                .iter()
                .map(|s| s.expose_secret().as_bytes()),
        );
        Self {
            keys: RwLock::new(Arc::new(keys)),
            source: config.key_source.clone(),
            refreshed: Mutex::new(None),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_secs: config.access_ttl.as_secs(),
        }
    }

    fn keys(&self) -> Arc<Keys> {
        // A poisoned lock still holds a whole key set: writers only swap the Arc.
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
        let keys = self.keys();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &keys.encoding)?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl_secs,
        })
    }

    /// Verifies signature (with the key its `kid` names), algorithm, expiry, issuer and
    /// audience; returns the claims. A token without `kid` (issued before key ids
    /// existed) is checked against the current key only; an unknown `kid` is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.check(token).map_err(|_| Self::refused())
    }

    /// [`Self::verify`], but a token naming an unknown `kid` first makes this
    /// environment re-read its keys, when they come from Secrets Manager and were not
    /// re-read in the last [`REFRESH_INTERVAL`]: the key was rotated since it started.
    pub async fn verify_or_refresh(&self, token: &str) -> Result<Claims, ApiError> {
        match self.check(token) {
            Ok(claims) => Ok(claims),
            Err(Refusal::UnknownKid) if self.refresh().await => self.verify(token),
            Err(_) => Err(Self::refused()),
        }
    }

    fn refused() -> ApiError {
        ApiError::Unauthorized("invalid or expired access token")
    }

    fn check(&self, token: &str) -> Result<Claims, Refusal> {
        let refused = |reason: &dyn std::fmt::Debug| {
            tracing::debug!(?reason, "access token refused");
            Refusal::Invalid
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(e.kind()))?;
        let keys = self.keys();
        let key = match header.kid.as_deref() {
            None => keys.decoding.first().map(|(_, key)| key),
            Some(kid) => keys
                .decoding
                .iter()
                .find(|(id, _)| id == kid)
                .map(|(_, key)| key),
        }
        .ok_or(Refusal::UnknownKid)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| refused(e.kind()))
    }

    /// Re-reads the keys from their secret; true if they were replaced.
    async fn refresh(&self) -> bool {
        let Some(source) = &self.source else {
            return false;
        };
        {
            let mut last = self
                .refreshed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let versions = match source.read().await {
            Ok(versions) if versions.current.expose_secret().len() >= 32 => versions,
            Ok(_) => {
                tracing::error!("the access-token key's current version is shorter than 32 bytes");
                return false;
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot re-read the access-token keys"
                );
                return false;
            }
        };
        let keys = Keys::new(
            versions.current.expose_secret().as_bytes(),
            versions
                .previous
                .iter()
                .map(|s| s.expose_secret().as_bytes()),
        );
        tracing::info!(kid = keys.kid, "access-token keys re-read");
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        true
    }

    /// The `kid` new tokens carry.
    pub fn current_kid(&self) -> String {
        self.keys().kid.clone()
    }
}

/// A key's id: the first 8 bytes of SHA-256 over a label and the key, hex. It names
/// the key without revealing anything usable about a 32-byte random secret.
fn key_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"backend access-token key id\0")
        .chain_update(key)
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
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
    use super::*;

    fn config(secret: &str, aud: &str) -> TokenConfig {
        TokenConfig {
            jwt_secret: SecretString::from(secret.to_owned()),
            previous_secrets: Vec::new(),
            issuer: "backend".into(),
            audience: aud.into(),
            access_ttl: Duration::from_secs(900),
            better_auth: None,
            key_source: None,
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

    const OLD: &str = "an-older-secret-that-is-also-long-enough";
    const NEW: &str = "the-newer-secret-that-is-long-enough-too";

    #[test]
    fn keys_rotate_without_logging_anyone_out() {
        let before = AccessTokens::new(&config(OLD, "api"));
        let old_token = before
            .issue(UserId::new(), SessionId::new(), Role::User)
            .unwrap()
            .token;
        let header = jsonwebtoken::decode_header(&old_token).unwrap();
        assert_eq!(header.kid, Some(before.current_kid()));

        // Rotated: the new key signs, the old one still verifies.
        let mut rotated = config(NEW, "api");
        rotated.previous_secrets = vec![SecretString::from(OLD.to_owned())];
        let after = AccessTokens::new(&rotated);
        assert_ne!(after.current_kid(), before.current_kid());
        assert!(after.verify(&old_token).is_ok());
        let new_token = after
            .issue(UserId::new(), SessionId::new(), Role::User)
            .unwrap()
            .token;
        assert!(after.verify(&new_token).is_ok());
        assert!(
            before.verify(&new_token).is_err(),
            "the old deployment knows no new kid"
        );

        // Retired: the old key is gone, so are its tokens.
        let retired = AccessTokens::new(&config(NEW, "api"));
        assert!(retired.verify(&old_token).is_err());
        assert!(retired.verify(&new_token).is_ok());
    }

    #[test]
    fn a_kid_must_name_the_key_that_signed() {
        let mut rotated = config(NEW, "api");
        rotated.previous_secrets = vec![SecretString::from(OLD.to_owned())];
        let tokens = AccessTokens::new(&rotated);
        let claims = tokens
            .verify(
                &tokens
                    .issue(UserId::new(), SessionId::new(), Role::Admin)
                    .unwrap()
                    .token,
            )
            .unwrap();
        let sign = |secret: &str, kid: Option<String>| {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = kid;
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap()
        };
        // Signed with the old key but claiming the new kid: the signature fails.
        assert!(
            tokens
                .verify(&sign(OLD, Some(key_id(NEW.as_bytes()))))
                .is_err()
        );
        assert!(tokens.verify(&sign(NEW, Some("unknown".into()))).is_err());
        // Without a kid, only the current key is tried.
        assert!(tokens.verify(&sign(NEW, None)).is_ok());
        assert!(tokens.verify(&sign(OLD, None)).is_err());
        // An attacker's own key under any kid is refused.
        assert!(
            tokens
                .verify(&sign(
                    "attacker-key-attacker-key-attacker",
                    Some(key_id(NEW.as_bytes()))
                ))
                .is_err()
        );
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

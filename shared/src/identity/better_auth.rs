//! Access tokens from Better Auth (the TypeScript auth library a Next.js frontend often
//! uses), accepted alongside our own.
//!
//! Better Auth's JWT plugin signs with an asymmetric key (EdDSA/Ed25519 by default) and
//! publishes the public keys as a JWKS at `<BETTER_AUTH_URL>/api/auth/jwks`; `iss` and
//! `aud` are that base URL and `sub` is its user id. Verification here:
//! - the keys are fetched on first use and cached (refreshed after
//!   [`BetterAuthConfig::max_key_age`], 10 minutes, so a key the provider withdrew stops
//!   working). While the JWKS endpoint is down the cached keys stay in use, but only
//!   for [`BetterAuthConfig::max_stale`] (1 hour) after the provider last confirmed
//!   them: past that, Better Auth tokens are refused with 503 (fail closed) until it
//!   answers again, so a key withdrawn during an outage cannot work forever; a token
//!   naming an unknown `kid` triggers
//!   at most one refetch per [`BetterAuthConfig::refetch_interval`] (so garbage kids
//!   cannot make us hammer the JWKS endpoint);
//! - only asymmetric keys are loaded (a symmetric `oct` key in the set is ignored), and
//!   a token must use exactly the algorithm its key declares, so a token "signed" with
//!   HS256 using the public key as the secret is refused;
//! - `iss`, `aud`, `exp` and `sub` are required and checked.
//!
//! The first valid token of an identity links it to a local user, or provisions one
//! ([`link_or_provision`]), so every endpoint works for Better Auth users.
//!
//! The JWKS is fetched with `shared::outbound`'s HTTPS client. Redirects are not
//! followed, and the body is capped at [`MAX_JWKS_BYTES`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use http_body_util::{BodyExt, Limited};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm},
};
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::{
    config::{ConfigError, check_secure_url, optional, parse_or},
    db::unique_violation,
    http::{client::ClientInfo, error::ApiError},
    identity::{
        Email, Role, UserId, UserName,
        audit::{self, AuditEvent, AuditKind},
    },
    outbound::{HttpsClient, https_client},
};

const REFUSED: &str = "invalid or expired access token";

/// The largest JWKS document accepted; real ones are a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How long one JWKS fetch may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// Where Better Auth lives and what its tokens must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BetterAuthConfig {
    /// The JWKS URL (default `<BETTER_AUTH_URL>/api/auth/jwks`).
    pub jwks_url: String,
    /// The required `iss` (default `BETTER_AUTH_URL`).
    pub issuer: String,
    /// The required `aud` (default `BETTER_AUTH_URL`).
    pub audience: String,
    /// The shortest time between two JWKS fetches caused by unknown key ids.
    pub refetch_interval: Duration,
    /// How long fetched keys are trusted before the next token refetches them.
    pub max_key_age: Duration,
    /// How long cached keys keep working when refetching fails, counted from the last
    /// successful fetch; then Better Auth tokens get 503 until the provider answers.
    pub max_stale: Duration,
}

impl BetterAuthConfig {
    /// Loads `BETTER_AUTH_URL` (unset: the feature is off) and the optional overrides
    /// `BETTER_AUTH_JWKS_URL`, `BETTER_AUTH_ISSUER` and `BETTER_AUTH_AUDIENCE`.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(url) = optional("BETTER_AUTH_URL") else {
            return Ok(None);
        };
        let url = url.trim().trim_end_matches('/').to_owned();
        // The keys that vouch for every Better Auth token: never fetched in the clear
        // (a loopback provider in development and tests excepted).
        check_secure_url("BETTER_AUTH_URL", &url, "https", "http")?;
        let jwks_url =
            optional("BETTER_AUTH_JWKS_URL").unwrap_or_else(|| format!("{url}/api/auth/jwks"));
        check_secure_url("BETTER_AUTH_JWKS_URL", &jwks_url, "https", "http")?;
        Ok(Some(Self {
            jwks_url,
            issuer: optional("BETTER_AUTH_ISSUER").unwrap_or_else(|| url.clone()),
            audience: optional("BETTER_AUTH_AUDIENCE").unwrap_or_else(|| url.clone()),
            refetch_interval: Duration::from_secs(30),
            max_key_age: Duration::from_secs(10 * 60),
            max_stale: Duration::from_secs(parse_or("BETTER_AUTH_MAX_STALE_SECONDS", 3600)?),
        }))
    }
}

/// The claims we use from a Better Auth token (its payload is the user object).
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalClaims {
    /// Better Auth's user id.
    pub sub: String,
    /// The user's email.
    pub email: Option<String>,
    /// The user's name.
    pub name: Option<String>,
    /// Whether Better Auth has verified the email.
    #[serde(default, rename = "emailVerified")]
    pub email_verified: bool,
    /// When the user last authenticated (OpenID Connect's `auth_time`), if stated.
    pub auth_time: Option<i64>,
    /// When the token was issued.
    pub iat: Option<i64>,
}

impl ExternalClaims {
    /// When the user last proved who they are, as far as the token says: `auth_time`,
    /// else `iat` (Better Auth mints its JWTs from a live session, so a fresh one is as
    /// close to a fresh sign-in as it tells). `None` when the token states neither.
    pub fn authenticated_at(&self) -> Option<time::OffsetDateTime> {
        self.auth_time
            .or(self.iat)
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
    }
}

/// One usable public key.
struct Key {
    kid: String,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: Arc<Vec<Key>>,
    /// The last fetch attempt, successful or not (spaces out refetches).
    fetched_at: Option<Instant>,
    /// The last successful fetch (bounds how long keys outlive an outage).
    confirmed_at: Option<Instant>,
    /// Whether the last fetch failed: with no usable keys left that is an outage (503),
    /// not a bad token (401).
    failing: bool,
}

/// Verifies Better Auth tokens. Built once per cold start; fetches keys on first use.
pub struct BetterAuth {
    config: BetterAuthConfig,
    http: HttpsClient,
    cache: Mutex<Cache>,
}

impl BetterAuth {
    /// A verifier for `config`.
    pub fn new(config: BetterAuthConfig) -> Self {
        Self {
            config,
            http: https_client(),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The issuer tokens must carry (and the namespace of their subjects).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Verifies a token: its `kid` names a JWKS key, its `alg` is that key's, its
    /// signature, expiry, issuer and audience hold.
    pub async fn verify(&self, token: &str) -> Result<ExternalClaims, ApiError> {
        let refused = |why: &str| {
            tracing::debug!(reason = why, "better auth token refused");
            ApiError::Unauthorized(REFUSED)
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("header"))?;
        if !is_asymmetric(header.alg) {
            return Err(refused("symmetric algorithm"));
        }
        let kid = header.kid.ok_or_else(|| refused("no kid"))?;
        let keys = self.keys_with(&kid).await?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| refused("unknown kid"))?;
        if key.algorithm != header.alg {
            return Err(refused("algorithm differs from the key's"));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<ExternalClaims>(token, &key.decoding, &validation)
            .map_err(|e| {
                tracing::debug!(reason = ?e.kind(), "better auth token refused");
                ApiError::Unauthorized(REFUSED)
            })?
            .claims;
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(refused("subject"));
        }
        Ok(claims)
    }

    /// The cached keys, fetched first if there are none yet, or refetched if `kid` is
    /// unknown and the last fetch is older than the refetch interval.
    async fn keys_with(&self, kid: &str) -> Result<Arc<Vec<Key>>, ApiError> {
        // One lock for the check and the fetch: concurrent requests with a new kid
        // cause one fetch, not one each.
        let mut cache = self.cache.lock().await;
        let known = cache.keys.iter().any(|k| k.kid == kid);
        let age = cache.fetched_at.map(|at| at.elapsed());
        let may_refetch = age.is_none_or(|a| a >= self.config.refetch_interval);
        let expired = age.is_none_or(|a| a >= self.config.max_key_age);
        if expired || (!known && may_refetch) {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = Arc::new(keys);
                    cache.fetched_at = Some(Instant::now());
                    cache.confirmed_at = cache.fetched_at;
                    cache.failing = false;
                }
                Err(err) => {
                    // Remember the attempt too, so an outage is not retried per request;
                    // the keys we had stay in use for a while, but not for ever: a key
                    // withdrawn during the outage must stop working at some point.
                    cache.fetched_at = Some(Instant::now());
                    cache.failing = true;
                    tracing::warn!(error = %err, "fetching the Better Auth JWKS failed");
                    let stale = cache
                        .confirmed_at
                        .is_none_or(|at| at.elapsed() >= self.config.max_stale);
                    if stale && !cache.keys.is_empty() {
                        tracing::warn!(
                            "Better Auth keys unconfirmed for too long: refusing its tokens"
                        );
                        cache.keys = Arc::default();
                    }
                }
            }
        }
        if cache.failing && cache.keys.is_empty() {
            return Err(ApiError::Unavailable(
                "the identity provider's keys are unavailable; retry shortly",
            ));
        }
        Ok(Arc::clone(&cache.keys))
    }

    #[tracing::instrument(skip(self), fields(url = %self.config.jwks_url))]
    async fn fetch(&self) -> anyhow::Result<Vec<Key>> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let uri: hyper::Uri = self.config.jwks_url.parse().context("JWKS URL")?;
        let body = tokio::time::timeout(FETCH_TIMEOUT, async {
            let response = self.http.get(uri).await.context("JWKS request")?;
            anyhow::ensure!(
                response.status().is_success(),
                "JWKS answered {}",
                response.status()
            );
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("JWKS body: {e}"))?;
            Ok(body.to_bytes())
        })
        .await
        .context("JWKS fetch timed out")??;
        let set: Set = serde_json::from_slice(&body).context("JWKS is not a key set")?;
        let keys: Vec<Key> = set.keys.into_iter().filter_map(usable_key).collect();
        tracing::info!(keys = keys.len(), "fetched the Better Auth JWKS");
        Ok(keys)
    }
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// A JWKS entry we can verify with: asymmetric, with a `kid` and a definite algorithm
/// (declared, or the only one its key type allows). Anything else is skipped.
fn usable_key(value: serde_json::Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.common.key_id.clone()?;
    let implied = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
            Some(Algorithm::ES384)
        }
        AlgorithmParameters::RSA(_) => None,
        _ => return None, // symmetric (`oct`) or unsupported curves: never
    };
    let declared = jwk.common.key_algorithm.and_then(|a| match a {
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        _ => None,
    });
    let algorithm = match (declared, implied) {
        // A declared algorithm must fit the key type (an EdDSA key declared RS256 is junk).
        (Some(d), Some(i)) if d != i => return None,
        (Some(d), _) => d,
        (None, Some(i)) => i,
        (None, None) => return None,
    };
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid,
        algorithm,
        decoding,
    })
}

/// The local user of an external identity: the linked one, or one linked or created
/// now. Concurrent first requests of one identity serialise on a transaction-scoped
/// advisory lock (pooler-safe), and the `(issuer, subject)` primary key backs it up, so
/// exactly one local user results.
///
/// Only an identity whose provider verified the email may claim it: an unverified
/// address at one provider must neither take over nor squat an account here (403). An
/// existing local account is linked only when it verified the address too (else 409).
/// A deleted user's identity stays deleted (403), rather than quietly coming back.
pub async fn link_or_provision(
    db: &PgPool,
    issuer: &str,
    claims: &ExternalClaims,
) -> Result<(UserId, Role), ApiError> {
    if let Some(found) = linked(db, issuer, &claims.sub).await? {
        return found.ok_or(ApiError::NotAllowed(DELETED));
    }
    let mut tx = db.begin().await?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(10) || $2, 0))",
        issuer,
        claims.sub,
    )
    .execute(&mut *tx)
    .await?;
    if let Some(found) = linked(&mut *tx, issuer, &claims.sub).await? {
        return found.ok_or(ApiError::NotAllowed(DELETED));
    }
    if !claims.email_verified {
        return Err(ApiError::NotAllowed(
            "verify your email address with your sign-in provider first",
        ));
    }
    let email = claims
        .email
        .as_deref()
        .ok_or(ApiError::Unauthorized("the token carries no email"))
        .and_then(|e| {
            Email::parse(e).map_err(|_| ApiError::Unauthorized("the token's email is invalid"))
        })?;
    let existing = sqlx::query!(
        r#"SELECT id AS "id: UserId", role AS "role: Role", email_verified_at IS NOT NULL AS "verified!"
           FROM users WHERE lower(email) = lower($1) FOR NO KEY UPDATE"#,
        email.as_str(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (user, role, provisioned) = match existing {
        Some(local) if local.verified => (local.id, local.role, false),
        Some(_) => {
            return Err(ApiError::Conflict(
                "an account with this email exists here; verify its email to link them".into(),
            ));
        }
        None => {
            let name = claims
                .name
                .as_deref()
                .and_then(|n| UserName::parse(n).ok())
                .or_else(|| UserName::parse(email.local_part()).ok());
            let id = UserId::new();
            sqlx::query!(
                "INSERT INTO users (id, email, name, password_hash, email_verified_at)
                 VALUES ($1, $2, $3, NULL, now())",
                id.0,
                email.as_str(),
                name.as_ref().map_or("User", UserName::as_str),
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                // Someone registered the address in the meantime.
                Some("users_email_lower_key") => {
                    ApiError::Conflict("an account with this email exists here".into())
                }
                _ => e.into(),
            })?;
            (id, Role::User, true)
        }
    };
    sqlx::query!(
        "INSERT INTO external_identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
        issuer,
        claims.sub,
        user.0,
    )
    .execute(&mut *tx)
    .await?;
    let event = AuditEvent::anonymous(AuditKind::ExternalUserProvisioned, Some(user)).with(
        serde_json::json!({ "issuer": issuer, "subject": claims.sub, "linked_existing": !provisioned }),
    );
    audit::record(&mut *tx, &ClientInfo::default(), event).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user, linked_existing = !provisioned, "external identity linked");
    Ok((user, role))
}

const DELETED: &str = "this account has been deleted";

/// The identity's user: `None` if the identity is unknown, `Some(None)` if its user
/// was deleted (a tombstone), else the user and their live role.
async fn linked<'e>(
    db: impl sqlx::PgExecutor<'e>,
    issuer: &str,
    subject: &str,
) -> Result<Option<Option<(UserId, Role)>>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"SELECT u.id AS "id?: UserId", u.role AS "role?: Role"
           FROM external_identities e LEFT JOIN users u ON u.id = e.user_id
           WHERE e.issuer = $1 AND e.subject = $2"#,
        issuer,
        subject,
    )
    .fetch_optional(db)
    .await?
    .map(|r| r.id.zip(r.role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_keys_with_a_definite_algorithm_are_used() {
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "a"});
        assert_eq!(usable_key(ed.clone()).unwrap().algorithm, Algorithm::EdDSA);
        let mut declared = ed.clone();
        declared["alg"] = "EdDSA".into();
        assert!(usable_key(declared).is_some());
        let mut mismatched = ed.clone();
        mismatched["alg"] = "RS256".into();
        assert!(usable_key(mismatched).is_none());
        let mut no_kid = ed;
        no_kid.as_object_mut().unwrap().remove("kid");
        assert!(usable_key(no_kid).is_none());
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"});
        assert!(usable_key(oct).is_none());
        assert!(usable_key(serde_json::json!({"kty": "nonsense"})).is_none());
        assert!(!is_asymmetric(Algorithm::HS256) && is_asymmetric(Algorithm::EdDSA));
    }
}

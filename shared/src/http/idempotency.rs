//! `Idempotency-Key` for requests that must happen once however often a client retries
//! them (an order on flaky mobile data), after Stripe's and the IETF draft's semantics:
//!
//! - the first request with a key runs; its successful answer is stored with a digest
//!   of the request, in the same transaction as the work it describes;
//! - the same key and the same request again: the stored answer, with
//!   `Idempotent-Replayed: true`, and nothing runs twice;
//! - the same key with another request: 422;
//! - the same key while the first is still running: 409 at once (the first holds a
//!   transaction-scoped advisory lock on the key, which a transaction-mode pooler
//!   allows: nothing outlives the transaction).
//!
//! A refused request (a 4xx, a 5xx) stores nothing: fix the cause and retry with the
//! same key. Keys belong to one user and one operation (`scope`).

use axum::{
    extract::FromRequestParts,
    http::{HeaderName, HeaderValue, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::error::ApiError;

/// The request header.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters but the comma (a
/// UUID is usual). API Gateway joins repeated headers with commas, so a comma means two
/// keys. Required where extracted: a request without one is refused with 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Reads the key, if well-formed.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=255).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(&IDEMPOTENCY_KEY).iter();
        match (values.next(), values.next()) {
            (None, _) => Err(ApiError::BadRequest(
                "the Idempotency-Key header is required (a fresh UUID per order attempt)".into(),
            )),
            (Some(value), None) => value.to_str().ok().and_then(Self::parse).ok_or_else(|| {
                ApiError::BadRequest(
                    "send one Idempotency-Key of 1 to 255 visible ASCII characters, no commas"
                        .into(),
                )
            }),
            (Some(_), Some(_)) => Err(ApiError::BadRequest(
                "send one Idempotency-Key header".into(),
            )),
        }
    }
}

/// The answer stored for a key: what a replay returns.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The first answer's status.
    pub status: StatusCode,
    /// The first answer's JSON body.
    pub body: serde_json::Value,
}

impl Stored {
    /// The stored answer, marked `Idempotent-Replayed: true`.
    pub fn into_response(self) -> Response {
        let mut response = (self.status, super::Json(self.body)).into_response();
        response.headers_mut().insert(
            IDEMPOTENT_REPLAYED.clone(),
            HeaderValue::from_static("true"),
        );
        response
    }
}

/// One keyed request of one user, for one operation.
pub struct Keyed<'a> {
    user_id: Uuid,
    scope: &'static str,
    key: &'a IdempotencyKey,
    digest: Vec<u8>,
}

impl<'a> Keyed<'a> {
    /// The request as parsed (so spacing and field order do not make it another one).
    pub fn new<R: Serialize>(
        user_id: Uuid,
        scope: &'static str,
        key: &'a IdempotencyKey,
        request: &R,
    ) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(request).map_err(anyhow::Error::from)?;
        Ok(Self {
            user_id,
            scope,
            key,
            digest: Sha256::digest(&body).to_vec(),
        })
    }

    /// Claims the key inside the caller's transaction: `Ok(None)` when this request is
    /// the first and should run (then [`Keyed::record`] its answer before committing),
    /// `Ok(Some(answer))` to replay, 409 while another request with the key runs, 422
    /// when the key was used for another request.
    pub async fn claim(&self, tx: &mut PgConnection) -> Result<Option<Response>, ApiError> {
        Ok(self.claim_stored(tx).await?.map(Stored::into_response))
    }

    /// [`Keyed::claim`], with the stored answer as data rather than a response (for an
    /// operation whose replay shows the resource's current state).
    pub async fn claim_stored(&self, tx: &mut PgConnection) -> Result<Option<Stored>, ApiError> {
        let locked = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock($1) AS "locked!""#,
            self.lock_id()
        )
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still being processed; retry shortly"
                    .into(),
            ));
        }
        let stored = sqlx::query!(
            "SELECT request_hash, status_code, response FROM idempotency_keys
             WHERE user_id = $1 AND scope = $2 AND key = $3",
            self.user_id,
            self.scope,
            self.key.as_str(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        if stored.request_hash != self.digest {
            return Err(ApiError::Unprocessable(
                "this Idempotency-Key was used for a different request; use a new key".into(),
            ));
        }
        let status = u16::try_from(stored.status_code)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        Ok(Some(Stored {
            status,
            body: stored.response,
        }))
    }

    /// Stores the answer to replay, in the transaction that did the work.
    pub async fn record<T: Serialize>(
        &self,
        tx: &mut PgConnection,
        status: StatusCode,
        body: &T,
    ) -> Result<(), ApiError> {
        let body = serde_json::to_value(body).map_err(anyhow::Error::from)?;
        sqlx::query!(
            "INSERT INTO idempotency_keys (user_id, scope, key, request_hash, status_code, response)
             VALUES ($1, $2, $3, $4, $5, $6)",
            self.user_id,
            self.scope,
            self.key.as_str(),
            self.digest,
            status.as_u16() as i16,
            body,
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// The advisory lock's id: 64 bits of a digest of user, scope and key (a collision
    /// only makes one of two unrelated requests wait for a retry).
    fn lock_id(&self) -> i64 {
        let digest = Sha256::new()
            .chain_update(self.user_id.as_bytes())
            .chain_update(self.scope.as_bytes())
            .chain_update([0])
            .chain_update(self.key.as_str().as_bytes())
            .finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("0b6d7a4e-5c1f-4f6e-9d2a-3b8c1e7f9a10").is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("a key").is_none());
        assert!(IdempotencyKey::parse("a,b").is_none());
        assert!(IdempotencyKey::parse("schlüssel").is_none());
    }

    #[test]
    fn the_digest_is_of_the_parsed_request() {
        let key = IdempotencyKey::parse("k").unwrap();
        let user = Uuid::now_v7();
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1,  "b": [2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[2]}"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[3]}"#).unwrap();
        let digest = |v| Keyed::new(user, "s", &key, v).unwrap().digest;
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
        let other = Keyed::new(user, "t", &key, &a).unwrap();
        assert_ne!(
            Keyed::new(user, "s", &key, &a).unwrap().lock_id(),
            other.lock_id()
        );
    }
}

//! Keyset pagination: a page size, an opaque cursor, and the `{items, next_cursor}` page.
//!
//! A cursor is the sort key of the last item served, base64url-encoded JSON. It is
//! opaque to clients; a cursor that does not decode is a 400, never a 500. Where a
//! cursor steers a query the client could not otherwise write (a sort key, a filter
//! fingerprint), [`CursorSigner`] makes it tamper-evident with an HMAC.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::ApiError;

// Every list endpoint answers with one (`Page<Task>`, ...); in the OpenAPI document each
// is its own schema (`Page_Task`, ...).
/// A page of results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// How many items a page holds: 1 to 100, default 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u16);

impl Default for PageSize {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl PageSize {
    /// Default when the client does not say.
    pub const DEFAULT: u16 = 20;
    /// Largest page served.
    pub const MAX: u16 = 100;

    /// Parses the `limit` query parameter.
    pub fn parse(limit: Option<i64>) -> Result<Self, ApiError> {
        match limit {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (1..=i64::from(Self::MAX)).contains(&n) => Ok(Self(n as u16)),
            Some(_) => Err(ApiError::invalid(
                "limit",
                "out_of_range",
                "must be between 1 and 100",
            )),
        }
    }

    /// The size as a count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }

    /// One more than the size: fetching it tells whether another page exists.
    pub fn fetch(self) -> i64 {
        i64::from(self.0) + 1
    }
}

/// Encodes any serialisable sort key as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    // Serialising a plain struct of strings and numbers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    let bad = || ApiError::BadRequest("the cursor is invalid; start again without it".into());
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

type HmacSha256 = Hmac<sha2::Sha256>;

/// Signs cursors so that an edited one is refused (400) instead of steering a query.
pub struct CursorSigner {
    key: Vec<u8>,
}

impl CursorSigner {
    /// A signer whose key is derived from a secret and a purpose label, so one
    /// configured secret yields independent keys for independent uses.
    pub fn derived_from(secret: &[u8], purpose: &str) -> Self {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length
        let mut mac = HmacSha256::new_from_slice(secret).expect("any key length");
        mac.update(purpose.as_bytes());
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        #[allow(clippy::expect_used)]
        HmacSha256::new_from_slice(&self.key).expect("any key length")
    }

    /// Encodes `key` as `<payload>.<signature>`, both base64url.
    pub fn sign<K: Serialize>(&self, key: &K) -> String {
        let payload = encode_cursor(key);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Checks the signature (in constant time) and decodes the key.
    pub fn verify<K: DeserializeOwned>(&self, cursor: &str) -> Result<K, ApiError> {
        let bad = || ApiError::BadRequest("the cursor is invalid; start again without it".into());
        let (payload, signature) = cursor.split_once('.').ok_or_else(bad)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature.as_bytes())
            .map_err(|_| bad())?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).map_err(|_| bad())?;
        decode_cursor(payload)
    }
}

/// The most common key: newest first on `(created_at, id)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatedKey {
    /// The last item's creation time.
    #[serde(with = "crate::http::timestamp::rfc3339")]
    pub t: OffsetDateTime,
    /// The last item's id (tie-breaker).
    pub id: Uuid,
}

/// The query parameters of a list that has no filters: page size and cursor.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size and the decoded cursor (400 when it was edited).
    pub fn parse<K: DeserializeOwned>(&self) -> Result<(PageSize, Option<K>), ApiError> {
        let size = PageSize::parse(self.limit)?;
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok((size, after))
    }
}

/// Splits a `limit + 1` fetch into a page, building the cursor from the last item kept.
pub fn page<T, K: Serialize>(rows: Vec<T>, size: PageSize, key: impl Fn(&T) -> K) -> Page<T> {
    page_with(rows, size, |last| encode_cursor(&key(last)))
}

/// Like [`page`], with the cursor made by `cursor` (e.g. a signed one).
pub fn page_with<T>(mut rows: Vec<T>, size: PageSize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if rows.len() > size.get() {
        rows.truncate(size.get());
        rows.last().map(cursor)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_bounds() {
        assert_eq!(PageSize::parse(None).unwrap().get(), 20);
        assert_eq!(PageSize::parse(Some(100)).unwrap().get(), 100);
        assert!(PageSize::parse(Some(0)).is_err());
        assert!(PageSize::parse(Some(101)).is_err());
        assert!(PageSize::parse(Some(-5)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let key = CreatedKey {
            t: OffsetDateTime::UNIX_EPOCH,
            id: Uuid::nil(),
        };
        let c = encode_cursor(&key);
        assert_eq!(decode_cursor::<CreatedKey>(&c).unwrap(), key);
        for bad in ["", "!!!", "e30", "bm90IGpzb24", "' OR 1=1 --"] {
            assert!(decode_cursor::<CreatedKey>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signed_cursors_refuse_edits_and_other_keys() {
        let signer = CursorSigner::derived_from(b"secret", "test");
        let cursor = signer.sign(&42_i64);
        assert_eq!(signer.verify::<i64>(&cursor).unwrap(), 42);
        // An edited payload with the old signature.
        let (_, sig) = cursor.split_once('.').unwrap();
        let forged = format!("{}.{sig}", encode_cursor(&43_i64));
        assert!(signer.verify::<i64>(&forged).is_err());
        // A cursor signed for another purpose.
        let other = CursorSigner::derived_from(b"secret", "other").sign(&42_i64);
        assert!(signer.verify::<i64>(&other).is_err());
        for bad in ["", ".", "abc", "abc.def", &format!("{cursor}x")] {
            assert!(signer.verify::<i64>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_sets_cursor_only_when_more_rows_exist() {
        let size = PageSize::parse(Some(2)).unwrap();
        let p = page(vec![1, 2, 3], size, |n| *n);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(
            decode_cursor::<i32>(p.next_cursor.as_deref().unwrap()).unwrap(),
            2
        );
        let p = page(vec![1, 2], size, |n| *n);
        assert!(p.next_cursor.is_none());
    }
}

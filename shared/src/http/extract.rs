//! Drop-in replacements for axum's `Json`, `Query` and `Path` whose rejections come
//! back as problem+json: malformed JSON is a 400, JSON of the wrong shape a 422, a
//! body that is not JSON a 415, an oversized one a 413. Never a 500.
//!
//! Text containing NUL (U+0000) is refused here, for every route at once: Postgres
//! cannot store or compare it in `text` (SQLSTATE 22021), so it would otherwise fail
//! deep in a query. A JSON string or key holding `\u0000` is a 422 naming the field; a
//! query parameter holding `%00` a 422 naming the parameter.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, OptionalFromRequest, Request,
        rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use percent_encoding::percent_decode_str;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::http::error::ApiError;

/// JSON body extractor and response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(too_large)?;
        Self::parse(&bytes)
    }
}

/// `Option<Json<T>>`: an optional body. An empty (or all-whitespace) body is `None`,
/// whatever its headers; any other body must be JSON of the right shape, as for
/// [`Json`].
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(too_large)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !json {
            return Err(not_json());
        }
        Self::parse(&bytes).map(Some)
    }
}

impl<T: DeserializeOwned> Json<T> {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        // The escape is the only way a NUL can appear in valid JSON, so the scan for
        // the offending field runs only when the raw bytes hold it.
        if contains(bytes, br"\u0000")
            && let Some(field) = serde_json::from_slice(bytes)
                .ok()
                .and_then(|v| nul_path(&v))
        {
            return Err(nul_rejection(field));
        }
        let axum::Json(value) = axum::Json::from_bytes(bytes)?;
        Ok(Self(value))
    }
}

fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType(
        "expected a request body with `Content-Type: application/json`".into(),
    )
}

/// For JSON merge patch (RFC 7396) fields: with `#[serde(default, deserialize_with =
/// "shared::http::extract::present")]` on an `Option<Option<T>>`, an absent field stays
/// `None` and a present `null` becomes `Some(None)` ("clear it").
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// `application/json` or any `application/*+json`, as axum accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(mime) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let mime = mime.trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn too_large(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The path (`tags/3`, `title`) of the first string or key holding a NUL.
fn nul_path(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item).map(|rest| join(&i.to_string(), &rest))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(key.replace('\0', "\\u0000"))
            } else {
                nul_path(item).map(|rest| join(key, &rest))
            }
        }),
        _ => None,
    }
}

fn join(head: &str, rest: &str) -> String {
    if rest.is_empty() {
        head.to_owned()
    } else {
        format!("{head}/{rest}")
    }
}

fn nul_rejection(field: String) -> ApiError {
    ApiError::invalid(
        &field,
        "invalid_character",
        "must not contain the NUL character (U+0000)",
    )
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(name) = parts.uri.query().and_then(nul_parameter) {
            return Err(nul_rejection(name));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The name of the first query parameter whose name or value decodes to a NUL.
fn nul_parameter(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let name = decode(name);
        (name.contains('\0') || decode(value).contains('\0')).then(|| name.replace('\0', "%00"))
    })
}

/// Path-parameter extractor.
#[derive(Debug, Clone, Copy, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "expected a request body with `Content-Type: application/json`".into(),
            ),
            JsonRejection::BytesRejection(e) => too_large(e),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        match rejection {
            // Every parameter is optional text to the parser: one it cannot use is a
            // well-formed request with an invalid field, as in a JSON body.
            QueryRejection::FailedToDeserializeQueryString(e) => {
                ApiError::Unprocessable(e.body_text())
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            // A path segment that is not even the right type (not a UUID) names no
            // resource: answer like an unknown id rather than leaking the parser's words.
            PathRejection::FailedToDeserializePathParams(_) => ApiError::NotFound("resource"),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nul_paths_name_the_field() {
        assert_eq!(
            nul_path(&json!({"title": "a\u{0}b"})).as_deref(),
            Some("title")
        );
        assert_eq!(
            nul_path(&json!({"title": "ok", "tags": ["x", "\u{0}"]})).as_deref(),
            Some("tags/1")
        );
        assert_eq!(
            nul_path(&json!({"a": {"b\u{0}": 1}})).as_deref(),
            Some("a/b\\u0000")
        );
        assert_eq!(nul_path(&json!({"title": "a\\u0000"})), None);
        assert_eq!(nul_path(&json!([1, null, true])), None);
    }

    #[test]
    fn nul_parameters_are_named() {
        assert_eq!(nul_parameter("q=a%00b").as_deref(), Some("q"));
        assert_eq!(nul_parameter("limit=2&tag=%00").as_deref(), Some("tag"));
        assert_eq!(nul_parameter("x%00=1").as_deref(), Some("x%00"));
        assert_eq!(nul_parameter("q=a%2500b&limit=3"), None);
        assert_eq!(nul_parameter(""), None);
    }

    #[test]
    fn json_content_types() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }

    proptest! {
        // Any query string: the scan never panics, and names a parameter exactly when
        // some name or value decodes to a NUL.
        #[test]
        fn query_scan_agrees_with_decoding(query in "[a-z=&%0-9+]{0,30}") {
            let decoded_has_nul = query.split('&').any(|pair| {
                percent_decode_str(pair).decode_utf8_lossy().contains('\0')
            });
            prop_assert_eq!(nul_parameter(&query).is_some(), decoded_has_nul);
        }

        // Any JSON text: the scan finds a NUL exactly when the document holds one.
        #[test]
        fn json_scan_agrees_with_the_document(text in any::<String>(), key in any::<String>()) {
            let doc = json!({"outer": [{ key.clone(): text.clone() }]});
            let has = text.contains('\0') || key.contains('\0');
            prop_assert_eq!(nul_path(&doc).is_some(), has);
        }
    }
}

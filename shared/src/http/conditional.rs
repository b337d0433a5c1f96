//! Conditional requests (RFC 9110 section 13) on versioned resources: a row's `version`
//! column is its strong entity tag (`"3"`). Reads answer 304 when `If-None-Match` holds
//! the current tag; writes with `If-Match` answer 412 when the resource changed since the
//! client read it, and write nothing.

use axum::http::{HeaderMap, HeaderValue, header};

use super::error::ApiError;

/// The strong entity tag of a resource's `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// [`etag`] as a header value.
pub fn etag_header(version: i64) -> HeaderValue {
    // Digits in quotes: always a valid header value.
    HeaderValue::from_str(&etag(version)).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The strong entity tag of a view of a versioned resource that also shows what changes
/// without a new version (what remains of a ticket type): `"<version>-<digest>"`, a
/// digest of the view's bytes. `If-Match` reads the version part, so a client may send
/// back either tag when it writes.
pub fn view_etag(version: i64, view: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(view);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{version}-{hex}\"")
}

/// Whether `If-None-Match` names the current version (or `*`): the client's copy is
/// current, answer 304. Weak tags compare as their strong form, as RFC 9110 asks of GET.
pub fn not_modified(headers: &HeaderMap, version: i64) -> bool {
    none_match(headers, &etag(version))
}

/// Whether `If-None-Match` names `current` (a quoted tag, e.g. a digest of the body) or
/// `*`: answer 304. Weak tags compare as their strong form.
pub fn none_match(headers: &HeaderMap, current: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == current)
}

/// What an `If-Match` header asks of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: write unconditionally.
    Absent,
    /// `*`: the resource must exist (it does, or the handler answered 404 first).
    Any,
    /// One of these versions (empty when no tag in the header is one of ours).
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Reads the `If-Match` headers. It uses the strong comparison: weak tags (`W/".."`)
    /// and anything that is not one of our tags never match, so a malformed header fails
    /// safe (412).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        if headers.get(header::IF_MATCH).is_none() {
            return Self::Absent;
        }
        let values: Vec<&str> = headers
            .get_all(header::IF_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if values.contains(&"*") {
            return Self::Any;
        }
        Self::Versions(
            values
                .iter()
                .filter_map(|v| {
                    let tag = v.strip_prefix('"')?.strip_suffix('"')?;
                    // A view's tag (`"3-9f86d081"`) names version 3.
                    tag.split_once('-')
                        .map_or(tag, |(version, _)| version)
                        .parse()
                        .ok()
                })
                .collect(),
        )
    }

    /// `Ok` when a write to a resource now at `version` may go ahead; else 412 saying
    /// that `what` changed.
    pub fn check(&self, version: i64, what: &str) -> Result<(), ApiError> {
        match self {
            Self::Absent | Self::Any => Ok(()),
            Self::Versions(v) if v.contains(&version) => Ok(()),
            Self::Versions(_) => Err(ApiError::PreconditionFailed(format!(
                "the {what} changed since you read it; fetch it again"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name.clone(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn if_match_takes_strong_tags_of_ours_and_fails_safe() {
        let read = |v: &[&str]| IfMatch::from_headers(&headers(header::IF_MATCH, v));
        assert_eq!(IfMatch::from_headers(&HeaderMap::new()), IfMatch::Absent);
        assert_eq!(read(&["*"]), IfMatch::Any);
        assert_eq!(
            read(&["\"1\", \"3\"", "\"4\""]),
            IfMatch::Versions(vec![1, 3, 4])
        );
        let view = view_etag(7, b"{}");
        assert!(view.starts_with("\"7-") && view.len() == 20, "{view}");
        assert_eq!(read(&[&view]), IfMatch::Versions(vec![7]));
        // Weak, unquoted, foreign or empty: nothing matches, so the write is refused.
        for odd in [&["W/\"3\""][..], &["3"], &["\"abc\""], &[""], &[" , "]] {
            let condition = read(odd);
            assert!(condition.check(3, "task").is_err(), "{odd:?}");
        }
        assert!(read(&["\"3\""]).check(3, "task").is_ok());
        assert!(read(&["\"2\""]).check(3, "task").is_err());
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_any() {
        let read = |v: &[&str]| headers(header::IF_NONE_MATCH, v);
        assert!(not_modified(&read(&["\"3\""]), 3));
        assert!(not_modified(&read(&["W/\"3\""]), 3));
        assert!(not_modified(&read(&["\"1\", \"3\""]), 3));
        assert!(not_modified(&read(&["*"]), 3));
        assert!(!not_modified(&read(&["\"2\""]), 3));
        assert!(!not_modified(&HeaderMap::new(), 3));
    }
}

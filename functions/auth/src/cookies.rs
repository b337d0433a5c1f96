//! The refresh-token cookie, for browser clients.
//!
//! `HttpOnly` keeps it away from scripts (an XSS cannot steal it), `Secure` off plain
//! HTTP, `SameSite=Strict` off cross-site requests (so no CSRF can refresh or log out),
//! and `Path=/api/v1/auth` keeps it off every other route. Browsers treat
//! `http://localhost` as secure, so the same cookie works in local development.

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookie's name.
pub const NAME: &str = "refresh_token";
/// The only path it is sent to.
const PATH: &str = "/api/v1/auth";

/// `Set-Cookie` for a new refresh token that lives `max_age` seconds.
pub fn set(token: &str, max_age: u64) -> HeaderValue {
    let value = format!(
        "{NAME}={token}; Path={PATH}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    );
    // A refresh token is base64url: always a valid header value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| clear())
}

/// `Set-Cookie` that deletes the cookie.
pub fn clear() -> HeaderValue {
    HeaderValue::from_static(
        "refresh_token=; Path=/api/v1/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    )
}

/// The refresh token from the request's cookies, if any.
pub fn read(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == NAME)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; refresh_token=abc"),
        );
        assert_eq!(read(&headers).as_deref(), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("xrefresh_token=abc; refresh_token="),
        );
        assert_eq!(read(&headers), None);
    }

    #[test]
    fn the_cookie_is_locked_down() {
        let v = set("tok", 60);
        let v = v.to_str().unwrap();
        for part in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/api/v1/auth",
            "Max-Age=60",
        ] {
            assert!(v.contains(part), "{v}");
        }
    }
}

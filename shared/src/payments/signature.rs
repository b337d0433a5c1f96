//! Verifying a Stripe webhook's `Stripe-Signature` header: `t=<unix time>,v1=<hex>,...`,
//! where each `v1` is HMAC-SHA256 of `"<t>.<raw body>"` under a signing secret. Any `v1`
//! matching any of our secrets passes (Stripe sends one per active secret while a secret
//! rotates, and we accept the previous secret during ours); the comparison is the MAC
//! library's constant-time one; a timestamp further than the tolerance from now is
//! refused, so a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How far a signature's timestamp may be from now (Stripe's libraries use 300 s).
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signature was refused (the webhook answers 400 with it; Stripe shows it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, no `t=` or no `v1=` in it.
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("the Stripe-Signature timestamp is too old or in the future")]
    Stale,
    /// No `v1` matches any secret.
    #[error("no Stripe-Signature matches the payload")]
    Mismatch,
}

/// Checks `header` against `body` at unix time `now` with any of `secrets`.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex(v)),
            // v0 (test mode's legacy scheme) and future schemes are ignored.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let matches = secrets.iter().any(|secret| {
        signatures
            .iter()
            .any(|signature| mac(secret, timestamp, body).verify_slice(signature).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `body` at `timestamp` under `secret` (tests and
/// local tooling sign events the fake cannot produce with it).
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn mac(secret: &SecretString, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Decodes lowercase or uppercase hex; `None` for anything else.
fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signature_from_any_current_secret_passes() {
        let old = secret("whsec_old");
        let new = secret("whsec_new");
        let header = sign(&new, 1_000, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &[old.clone(), new.clone()], 1_000),
            Ok(())
        );
        // One valid v1 among several (Stripe signs with every secret while rotating).
        let other = sign(&secret("whsec_unknown"), 1_000, BODY);
        let v1 = |h: &str| h.split_once(",v1=").unwrap().1.to_owned();
        let both = format!("t=1000,v1={},v1={}", v1(&other), v1(&header));
        assert_eq!(verify(Some(&both), BODY, &[new], 1_200), Ok(()));
    }

    #[test]
    fn a_wrong_secret_a_changed_body_or_a_stale_time_is_refused() {
        let key = secret("whsec_key");
        let header = sign(&key, 1_000, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &[secret("whsec_other")], 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", std::slice::from_ref(&key), 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, std::slice::from_ref(&key), 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), BODY, std::slice::from_ref(&key), 699),
            Err(SignatureError::Stale)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replacen("t=1000", "t=1001", 1);
        assert_eq!(
            verify(Some(&moved), BODY, std::slice::from_ref(&key), 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let key = [secret("whsec_key")];
        for header in [
            None,
            Some(""),
            Some("t=1000"),
            Some("v1=00"),
            Some("t=x,v1=00"),
            Some("t=1000,v1=zz"),
        ] {
            assert_eq!(
                verify(header, BODY, &key, 1_000),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }
}

//! Password hashing with argon2id at the OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! Hashing takes tens of milliseconds of CPU, so it runs on the blocking pool, never on
//! the async runtime. [`verify_or_dummy`] spends the same time whether or not the
//! account exists, so a login's timing does not reveal which emails are registered.

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};

/// OWASP's recommended argon2id parameters (Password Storage Cheat Sheet).
fn hasher() -> Argon2<'static> {
    #[allow(clippy::unwrap_used)] // constant, valid parameters
    let params = Params::new(19 * 1024, 2, 1, None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .context("password hashing task failed")?
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("failed to hash password: {e}"))
}

/// What an unknown email's password is verified against: the hash, at the current
/// parameters, of a random password that was thrown away. Made once, ahead of time, so
/// no cold start pays ~40 ms of CPU and 19 MiB to make it (as computing it at start-up
/// did); verifying against it costs exactly what verifying a real hash costs. Knowing it
/// reveals nothing, and it can never match: the account does not exist either way.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$JKxOyxLCplNlFcmy72tvxQ$Q6PUn2gW3mUSfc/mQ3TwBLVELnxIIewDNFVMCvJRhNo";

/// Verifies `password` against `stored`, or against a dummy hash when there is no
/// stored hash, taking about the same time either way. Returns whether it matched.
pub async fn verify_or_dummy(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match &stored {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let parsed = PasswordHash::new(hash)
            .map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
        // Verify with the hash's own parameters (so old hashes keep working after a change).
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(real && ok)
    })
    .await
    .context("password verification task failed")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let h = hash("correct horse battery staple".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify_or_dummy("correct horse battery staple".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_or_dummy("wrong".into(), Some(h)).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_uses_the_current_parameters() {
        // If the parameters change, regenerate DUMMY_HASH, or unknown emails verify
        // faster (or slower) than real ones.
        let h = hash_blocking("x").unwrap();
        let prefix = |s: &str| s.rsplitn(3, '$').nth(2).unwrap().to_owned();
        assert_eq!(prefix(DUMMY_HASH), prefix(&h));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn missing_account_never_verifies() {
        assert!(!verify_or_dummy("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn malformed_stored_hash_is_an_error_not_a_match() {
        assert!(
            verify_or_dummy("x".into(), Some("not-a-hash".into()))
                .await
                .is_err()
        );
    }
}

//! Passwords: the policy every new password must meet, and hashing with argon2id at the
//! OWASP parameters (m = 19 MiB, t = 2, p = 1).
//!
//! The policy follows NIST SP 800-63B: length matters (12 to 128 characters, any
//! characters), composition rules do not; a password is refused when it is a known
//! common or breached one (30,000 entries shipped in `common-passwords.txt`, from the
//! zxcvbn frequency lists, MIT licence), such a word dressed up with digits or symbols
//! (`Password2024!`), too repetitive, or contains the email's local part.
//!
//! Hashing takes tens of milliseconds of CPU, so it runs on the blocking pool, never on
//! the async runtime. [`verify_or_dummy`] spends the same time whether or not the
//! account exists, so a login's timing does not reveal which emails are registered.

use crate::identity::Email;
use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};

/// Common and breached passwords (`common-passwords.txt`: lower-case, one per line, most
/// common first), as the build script stores them: the sorted FNV-1a hashes of the
/// entries, 4 little-endian bytes each. Half the size of the text (the list was the largest
/// single thing in the auth binary) and a lookup in 15 steps instead of a 240 KB scan. A
/// collision only refuses one more password as common: about 1 in 140,000 at random.
static COMMON_HASHES: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/common-password-hashes.bin"));

/// 32-bit FNV-1a, as `build.rs` hashes the list.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The `i`th hash of [`COMMON_HASHES`].
fn common_hash(i: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&COMMON_HASHES[4 * i..4 * i + 4]);
    u32::from_le_bytes(word)
}

/// Whether `entry` (lower-case) is on the list: a binary search of the sorted hashes.
fn listed(entry: &str) -> bool {
    let wanted = fnv1a(entry.as_bytes());
    let (mut low, mut high) = (0, COMMON_HASHES.len() / 4);
    while low < high {
        let mid = low + (high - low) / 2;
        match common_hash(mid).cmp(&wanted) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Which rule a refused password broke: a stable code and a sentence for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyViolation {
    /// Machine-readable (`too_short`, `too_long`, `common_password`, `too_repetitive`,
    /// `contains_email`).
    pub code: &'static str,
    /// What to do about it.
    pub message: &'static str,
}

/// A password that meets the policy. Only [`Password::parse`] makes one, and it never
/// prints (`Debug` is redacted).
pub struct Password(String);

impl Password {
    /// Shortest accepted password, in characters.
    pub const MIN: usize = 12;
    /// Longest accepted password, in characters.
    pub const MAX: usize = 128;

    /// Checks the policy for an account with the given email address.
    pub fn parse(raw: String, email: &Email) -> Result<Self, PolicyViolation> {
        let n = raw.chars().count();
        let fail = |code, message| Err(PolicyViolation { code, message });
        if n < Self::MIN {
            return fail("too_short", "must be at least 12 characters");
        }
        if n > Self::MAX {
            return fail("too_long", "must be at most 128 characters");
        }
        let lower = raw.to_lowercase();
        if is_common(&lower) {
            return fail(
                "common_password",
                "is a commonly used or breached password; choose another",
            );
        }
        let mut distinct: Vec<char> = lower.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 4 {
            return fail(
                "too_repetitive",
                "must use more than three different characters",
            );
        }
        let local = email.local_part().to_lowercase();
        if local.chars().count() >= 3 && lower.contains(&local) {
            return fail("contains_email", "must not contain your email address");
        }
        Ok(Self(raw))
    }

    /// The password, to hash.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The password, borrowed (to hash a copy).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Whether a lower-cased password is on the list, as is or wrapped in digits and
/// symbols (`!!monkey2024`). Two binary searches; no start-up cost or allocation.
fn is_common(lower: &str) -> bool {
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    let core = if core.chars().count() >= 4 {
        core
    } else {
        lower
    };
    listed(lower) || listed(core)
}

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

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn code(pw: &str, mail: &str) -> Option<&'static str> {
        Password::parse(pw.into(), &email(mail))
            .err()
            .map(|v| v.code)
    }

    /// The list itself, which only the build script and these tests read.
    const COMMON: &str = include_str!("common-passwords.txt");

    #[test]
    fn every_listed_password_is_found_and_the_table_is_sorted() {
        let count = COMMON_HASHES.len() / 4;
        // Distinct entries can share a hash; the table keeps one of each.
        assert!(count <= COMMON.lines().count() && count + 5 >= COMMON.lines().count());
        assert!((1..count).all(|i| common_hash(i - 1) < common_hash(i)));
        assert!(COMMON.lines().all(listed));
        let unlisted = [
            "correct horse battery staple",
            "zq8#unlisted-passphrase",
            "",
        ];
        assert!(unlisted.iter().all(|p| !listed(p)));
    }

    #[test]
    fn the_list_is_big_enough_and_normalised() {
        assert!(COMMON.lines().count() >= 10_000);
        assert!(
            COMMON
                .lines()
                .all(|l| !l.is_empty() && l == l.to_lowercase())
        );
    }

    #[test]
    fn policy_says_which_rule_failed() {
        let ada = "ada.lovelace@example.com";
        assert_eq!(code("short", ada), Some("too_short"));
        assert_eq!(code(&"é".repeat(11), ada), Some("too_short"));
        assert_eq!(code(&"ab1!".repeat(33), ada), Some("too_long"));
        assert_eq!(code("1qaz2wsx3edc", ada), Some("common_password"));
        assert_eq!(code("QWERTY123456", ada), Some("common_password"));
        assert_eq!(code("Password2024!", ada), Some("common_password"));
        assert_eq!(code("!!monkey12345678", ada), Some("common_password"));
        assert_eq!(code("aaaaaaaaaaaaaaaa", ada), Some("too_repetitive"));
        assert_eq!(code("abababababab", ada), Some("too_repetitive"));
        assert_eq!(code("my Ada.Lovelace pass", ada), Some("contains_email"));
        // Accepted: long, uncommon, any characters (counted as characters, not bytes).
        assert_eq!(code("correct horse battery staple", ada), None);
        assert_eq!(code("éàüö ß ŋ ðæ ħ ł", ada), None);
        assert_eq!(code(&"abc1".repeat(32), ada), None);
        // A one- or two-letter local part does not ban every password containing it.
        assert_eq!(code("a pleasant evening walk", "al@example.com"), None);
    }

    #[test]
    fn passwords_never_print() {
        let pw = Password::parse("correct horse battery staple".into(), &email("a@b.co")).unwrap();
        assert!(!format!("{pw:?}").contains("horse"));
    }

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

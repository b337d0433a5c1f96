//! Identity: who people are and how they prove it.
//!
//! This module's own types (typed ids, roles, email addresses, names) are always built,
//! since every domain refers to users. With the `identity` feature:
//! - [`accounts`]: the one user view, and creating, renaming, re-passwording and
//!   deleting accounts (there is always an admin);
//! - [`sessions`]: checking credentials, opening sessions, rotating refresh tokens with
//!   reuse detection, ending one or all sessions;
//! - [`password`]: the password policy and argon2id hashing (off the async runtime);
//! - [`tokens`]: access tokens (JWT) and opaque refresh/link tokens, and their settings;
//! - [`guard`]: the `CurrentUser` extractor (token + live session) and the role guard;
//! - [`better_auth`]: Better Auth tokens verified against its JWKS, linked to users;
//! - [`throttle`], [`audit`]: rate limits and lockout kept in Postgres; the audit log.
//!
//! Parse, don't validate: an [`Email`] can only be built by [`Email::parse`], so a
//! handler that holds one knows it is well-formed.

#[cfg(feature = "identity")]
pub mod accounts;
#[cfg(feature = "identity")]
pub mod audit;
#[cfg(feature = "identity")]
pub mod better_auth;
#[cfg(feature = "identity")]
pub mod guard;
#[cfg(feature = "identity")]
pub mod password;
#[cfg(feature = "identity")]
pub mod sessions;
#[cfg(feature = "identity")]
pub mod throttle;
#[cfg(feature = "identity")]
pub mod tokens;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id: inserts stay at the right edge of the index.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// A user's id.
    UserId
);
typed_id!(
    /// A session's id: one login and the rotation family of its refresh tokens.
    SessionId
);

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ordinary account.
    User,
    /// May manage events.
    Organizer,
    /// May manage everything.
    Admin,
}

impl Role {
    fn rank(self) -> u8 {
        match self {
            Self::User => 0,
            Self::Organizer => 1,
            Self::Admin => 2,
        }
    }

    /// Whether this role may do what `required` may: admin includes organizer includes user.
    pub fn includes(self, required: Role) -> bool {
        self.rank() >= required.rank()
    }
}

/// A display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            Err("is required")
        } else if name.chars().count() > 100 {
            Err("must be at most 100 characters")
        } else if name.chars().any(char::is_control) {
            Err("must not contain control characters")
        } else {
            Ok(Self(name.to_owned()))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically valid email address, trimmed. Compared case-insensitively by the
/// database (a unique index on `lower(email)`), stored as the user typed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Longest address SMTP allows (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses an address: one `@`, a non-empty local part of at most 64 bytes, a domain
    /// with a dot and no empty labels, no whitespace or control characters.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("is required");
        }
        if s.len() > Self::MAX_LEN {
            return Err("must be at most 254 characters");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters");
        }
        let Some((local, domain)) = s.split_once('@') else {
            return Err("must contain @");
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err("is not a valid email address");
        }
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err("is not a valid email address");
        }
        Ok(Self(s.to_owned()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@` (password rules refuse passwords containing it).
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(UserName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.includes(Role::Organizer) && Role::Admin.includes(Role::User));
        assert!(Role::Organizer.includes(Role::User) && !Role::Organizer.includes(Role::Admin));
        assert!(!Role::User.includes(Role::Organizer));
    }

    #[test]
    fn accepts_ordinary_addresses_and_trims() {
        assert_eq!(
            Email::parse("  Ada@Example.com ").unwrap().as_str(),
            "Ada@Example.com"
        );
        assert_eq!(
            Email::parse("a.b+tag@sub.example.co.uk")
                .unwrap()
                .local_part(),
            "a.b+tag"
        );
    }

    #[test]
    fn refuses_hostile_and_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa mple.com",
            "ada@example..com",
            "ada@-example.com",
            "ada\n@example.com",
            "ada@example.com\u{0}",
            "' OR 1=1 --@x",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&long_local).is_err());
    }
}

//! Configuration, read once per cold start from the environment.
//!
//! This module holds only the helpers that read variables; each layer or domain owns
//! its settings next to the code that uses them (`db::DatabaseConfig`,
//! `identity::tokens::TokenConfig`, `uploads::StorageConfig`, ...), so a function loads
//! only the sections it needs and the platform function does not demand a JWT secret it
//! never uses. A missing or malformed variable stops start-up with an error naming it;
//! secrets are held in `secrecy::SecretString` so they never reach a log.
//!
//! Every read goes through [`var`], which also serves the secrets fetched from Secrets
//! Manager at cold start (`secrets::load`) under the names of the variables they stand for. Tests load a function's whole configuration from a
//! map of their own with [`with_vars`] (no process-wide environment to race on), which
//! also reports each variable the loading looked at: that is how the README's table of
//! variables is checked against what each function really reads.

use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    str::FromStr,
    sync::OnceLock,
};

/// The variables a [`with_vars`] scope serves, and the names looked up in it.
struct Scope {
    vars: HashMap<String, String>,
    read: BTreeSet<&'static str>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// The values `secrets::load` fetched from Secrets Manager at cold start, by variable.
static SECRETS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();

/// Reads a variable: a secret fetched at cold start, else the process environment; or
/// the current [`with_vars`] scope.
pub fn var(name: &'static str) -> Option<String> {
    SCOPE.with_borrow_mut(|scope| match scope {
        Some(scope) => {
            scope.read.insert(name);
            scope.vars.get(name).cloned()
        }
        None => SECRETS
            .get()
            .and_then(|secrets| secrets.get(name).cloned())
            .or_else(|| std::env::var(name).ok()),
    })
}

/// Installs the secrets fetched at cold start; [`var`] serves them from then on. Once
/// per process: a second call changes nothing and returns false.
pub fn install_secrets(values: HashMap<&'static str, String>) -> bool {
    SECRETS.set(values).is_ok()
}

/// Runs `load` on this thread with `vars` as the whole environment, and returns what it
/// returned with the name of every variable it looked up. Loading is synchronous, so a
/// thread-local scope sees all of it.
pub fn with_vars<T>(
    vars: impl IntoIterator<Item = (String, String)>,
    load: impl FnOnce() -> T,
) -> (T, BTreeSet<&'static str>) {
    /// Ends the scope even if `load` panics.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            SCOPE.with_borrow_mut(Option::take);
        }
    }
    SCOPE.with_borrow_mut(|scope| {
        *scope = Some(Scope {
            vars: vars.into_iter().collect(),
            read: BTreeSet::new(),
        });
    });
    let reset = Reset;
    let value = load();
    let read = SCOPE
        .with_borrow_mut(Option::take)
        .map(|scope| scope.read)
        .unwrap_or_default();
    drop(reset);
    (value, read)
}

/// A configuration problem, naming the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// Why it was refused (never the value itself: it may be a secret).
        reason: String,
    },
}

/// Reads a required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}

/// Reads an optional variable; empty counts as unset.
pub fn optional(name: &'static str) -> Option<String> {
    var(name).filter(|v| !v.trim().is_empty())
}

/// The host of a `scheme://[user@]host[:port]/...` URL (IPv6 hosts keep their
/// brackets), if it has one.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        &host_port[..=host_port.find(']')?]
    } else {
        host_port.split(':').next()?
    };
    Some(host).filter(|h| !h.is_empty())
}

/// Whether `url`'s host is this machine (where emulators and fakes listen in
/// development and tests).
pub fn is_loopback(url: &str) -> bool {
    matches!(url_host(url), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// Checks that `url` (variable `name`) uses the `secure` scheme (`https`, `wss`), or the
/// `plain` one (`http`, `ws`) on loopback only.
pub fn check_secure_url(
    name: &'static str,
    url: &str,
    secure: &str,
    plain: &str,
) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let ok = url_host(url).is_some()
        && match scheme.as_deref() {
            Some(s) if s == secure => true,
            Some(s) if s == plain => is_loopback(url),
            _ => false,
        };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("must be a {secure}:// URL ({plain}:// only on loopback)"),
        })
    }
}

/// Reads and parses a variable, falling back to `default` when unset.
pub fn parse_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_urls_are_required_except_on_loopback() {
        assert_eq!(
            url_host("https://user:pw@db.example.com:5432/app?x=1"),
            Some("db.example.com")
        );
        assert_eq!(url_host("http://[::1]:8420/v1"), Some("[::1]"));
        assert_eq!(url_host("postgres:///app"), None);
        for ok in [
            "https://api.stripe.com",
            "http://127.0.0.1:8420",
            "http://localhost:9001/live",
            "http://[::1]:80",
            "HTTPS://auth.example.com",
        ] {
            assert!(check_secure_url("X", ok, "https", "http").is_ok(), "{ok}");
        }
        for bad in [
            "http://api.stripe.com",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example/",
            "http://evil.example/?127.0.0.1",
            "http://127.0.0.1@evil.example",
            "ftp://127.0.0.1",
            "api.stripe.com",
            "https://",
            "",
        ] {
            assert!(
                check_secure_url("X", bad, "https", "http").is_err(),
                "{bad}"
            );
        }
        assert!(check_secure_url("X", "wss://a.example/live", "wss", "ws").is_ok());
        assert!(check_secure_url("X", "ws://a.example/live", "wss", "ws").is_err());
    }

    #[test]
    fn installed_secrets_are_read_before_the_environment_once_per_process() {
        // Names no other test reads: the secrets stay installed for this process.
        const NAME: &str = "CONFIG_TEST_INSTALLED_SECRET";
        assert_eq!(optional(NAME), None);
        assert!(install_secrets(HashMap::from([(
            NAME,
            "from-the-secret".to_owned()
        )])));
        assert_eq!(required(NAME).unwrap(), "from-the-secret");
        assert!(!install_secrets(HashMap::new()), "installed once");
        assert_eq!(optional(NAME).as_deref(), Some("from-the-secret"));
        // A test's scope is still the whole environment.
        let (value, _) = with_vars(Vec::new(), || optional(NAME));
        assert_eq!(value, None);
    }

    #[test]
    fn a_scope_serves_its_own_variables_and_records_what_was_read() {
        let vars = [("A_SET".to_owned(), "1".to_owned())];
        let (value, read) = with_vars(vars, || {
            (
                parse_or::<u32>("A_SET", 0),
                optional("AN_UNSET"),
                required("PATH"),
            )
        });
        assert_eq!(value.0.unwrap(), 1);
        assert_eq!(value.1, None);
        // PATH is in the process environment, not in the scope.
        assert!(matches!(value.2, Err(ConfigError::Missing("PATH"))));
        assert_eq!(
            read.into_iter().collect::<Vec<_>>(),
            ["AN_UNSET", "A_SET", "PATH"]
        );
        // Outside the scope, the process environment again.
        assert!(optional("PATH").is_some());
    }
}

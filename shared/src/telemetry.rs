//! Structured logging: one JSON object a line, which CloudWatch (with the function's
//! `LogFormat: JSON`) indexes field by field. Each line carries the spans it was
//! logged in, so the `request` span's `request_id` is on every line of a request; the
//! same id is kept in a task-local ([`current_request_id`]) for error bodies and the
//! audit log.

use tracing_subscriber::{filter::Targets, fmt, layer::SubscriberExt, util::SubscriberInitExt};

tokio::task_local! {
    /// The id of the request being handled; `shared::http` scopes each request in it.
    pub static REQUEST_ID: String;
}

/// The id of the request being handled, if called inside one (errors and audit events
/// quote it).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The filter when `RUST_LOG` is unset or unusable: info, with the chatty SDK and sqlx
/// targets held at warn (the template's `LogLevel` default is the same).
const DEFAULT_FILTER: &str = "info,aws_smithy_runtime=warn,sqlx=warn";

/// How to log: the filter from `RUST_LOG` (default [`DEFAULT_FILTER`]) and the format
/// from `LOG_FORMAT` (`text` for human-readable lines in local work, else JSON).
///
/// `RUST_LOG` takes `level` and `target=level` entries (`info,sqlx=debug`). That is
/// `Targets`, not `EnvFilter`: span and field filters are not supported, and in
/// exchange no regex engine is linked or compiled at cold start.
pub struct LogSettings {
    filter: Targets,
    text: bool,
    /// `RUST_LOG` was set but could not be used (said once the subscriber is up).
    unusable: bool,
}

impl LogSettings {
    /// Reads `RUST_LOG` and `LOG_FORMAT`. Never fails: logging must come up whatever
    /// they say.
    pub fn from_env() -> Self {
        let parsed = crate::config::optional("RUST_LOG").map(|r| r.parse::<Targets>());
        let unusable = matches!(parsed, Some(Err(_)));
        let filter = parsed
            .and_then(Result::ok)
            .unwrap_or_else(|| DEFAULT_FILTER.parse().unwrap_or_default());
        let text =
            crate::config::optional("LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
        Self {
            filter,
            text,
            unusable,
        }
    }
}

/// Installs the global subscriber with the environment's [`LogSettings`]. Every
/// function's `main` calls it first.
pub fn init() {
    let settings = LogSettings::from_env();
    let registry = tracing_subscriber::registry().with(settings.filter);
    let result = if settings.text {
        registry.with(fmt::layer().with_target(false)).try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_target(false)
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .try_init()
    };
    // A second init (tests calling it twice) is harmless; keep the first subscriber.
    if result.is_ok() && settings.unusable {
        // Said once, so that a span or field filter copied from EnvFilter's syntax does
        // not silently log at the default level.
        tracing::warn!(
            default = DEFAULT_FILTER,
            "RUST_LOG is not a list of level and target=level entries; using the default"
        );
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn the_default_filter_parses_and_quiets_the_sdk() {
        let filter: Targets = DEFAULT_FILTER.parse().unwrap();
        assert!(filter.would_enable("auth::sessions", &Level::INFO));
        assert!(!filter.would_enable("auth::sessions", &Level::DEBUG));
        assert!(!filter.would_enable("sqlx::query", &Level::INFO));
        assert!(filter.would_enable("sqlx::query", &Level::WARN));
        assert!(!filter.would_enable("aws_smithy_runtime::client", &Level::INFO));
    }
}

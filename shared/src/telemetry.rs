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

/// CloudWatch Embedded Metric Format: a metric is one JSON line on stdout, which
/// CloudWatch Logs turns into a metric (no API call, no client, nothing to wait on).
/// Namespace `Backend`, one dimension `Function` (the Lambda function's name, or
/// `local`).
pub mod metrics {
    use serde_json::{Map, Value, json};

    /// The namespace every metric of this application is in.
    pub const NAMESPACE: &str = "Backend";

    /// A metric's unit, as CloudWatch names it.
    #[derive(Debug, Clone, Copy)]
    pub enum Unit {
        /// A count of things.
        Count,
        /// A duration in seconds.
        Seconds,
        /// A duration in milliseconds.
        Milliseconds,
    }

    impl Unit {
        fn as_str(self) -> &'static str {
            match self {
                Self::Count => "Count",
                Self::Seconds => "Seconds",
                Self::Milliseconds => "Milliseconds",
            }
        }
    }

    /// The EMF line for these values (`[(name, value, unit)]`), with `extra` dimensions
    /// beside `Function`.
    pub fn line(values: &[(&str, f64, Unit)], extra: &[(&str, &str)]) -> String {
        // Read once: the name does not change for the environment's life.
        static FUNCTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let function = FUNCTION.get_or_init(|| {
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into())
        });
        let mut dimensions = vec!["Function".to_owned()];
        let mut root = Map::new();
        root.insert("Function".into(), Value::String(function.clone()));
        for (name, value) in extra {
            dimensions.push((*name).to_owned());
            root.insert((*name).to_owned(), Value::String((*value).to_owned()));
        }
        let metrics: Vec<Value> = values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        for (name, value, _) in values {
            root.insert((*name).to_owned(), json!(value));
        }
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp as i64,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimensions],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(root).to_string()
    }

    /// Writes the EMF line to stdout (where Lambda sends it to CloudWatch Logs).
    pub fn emit(values: &[(&str, f64, Unit)], extra: &[(&str, &str)]) {
        let line = line(values, extra);
        if let Some(captured) = CAPTURE.get() {
            captured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line.clone());
        }
        println!("{line}");
    }

    /// A business event happened (`Registrations`, `Logins`, `OrdersPlaced`, ...): a
    /// count of one, after the transaction that made it true committed.
    pub fn count(name: &str) {
        emit(&[(name, 1.0, Unit::Count)], &[]);
    }

    /// Every line emitted from now on, also kept in memory (tests read what a function
    /// really emitted; in Lambda nothing calls this).
    static CAPTURE: std::sync::OnceLock<std::sync::Mutex<Vec<String>>> = std::sync::OnceLock::new();

    /// Starts keeping emitted lines (for the whole process); returns how many were
    /// kept before, so a test reads only what came after with [`captured_since`].
    pub fn capture() -> usize {
        CAPTURE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// The lines kept since [`capture`] returned `mark`.
    pub fn captured_since(mark: usize) -> Vec<String> {
        CAPTURE
            .get()
            .map(|c| {
                c.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(mark..)
                    .map(<[String]>::to_vec)
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_line_is_embedded_metric_format() {
            let line: Value = serde_json::from_str(&line(
                &[
                    ("RecordsProcessed", 9.0, Unit::Count),
                    ("RecordsFailed", 1.0, Unit::Count),
                ],
                &[("Queue", "notifications")],
            ))
            .unwrap();
            assert_eq!(line["RecordsProcessed"], 9.0);
            assert_eq!(line["Queue"], "notifications");
            let spec = &line["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(spec["Namespace"], "Backend");
            assert_eq!(spec["Dimensions"], json!([["Function", "Queue"]]));
            assert_eq!(
                spec["Metrics"][1],
                json!({"Name": "RecordsFailed", "Unit": "Count"})
            );
            assert!(line["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
            assert!(line["Function"].is_string());
        }
    }
}

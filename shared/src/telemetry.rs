//! Structured logging: one JSON object a line, which CloudWatch (with the function's
//! `LogFormat: JSON`) indexes field by field. Each line carries the spans it was
//! logged in, so the `request` span's `request_id` is on every line of a request.

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. The level comes from `RUST_LOG` (default `info`);
/// `LOG_FORMAT=text` gives human-readable lines for local work.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,sqlx=warn")
    });
    let text = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    let result = if text {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    };
    // A second init (tests calling it twice) is harmless; keep the first subscriber.
    drop(result);
}

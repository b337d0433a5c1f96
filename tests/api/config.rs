//! Start-up configuration, loaded the way each function's `main` loads it (its
//! `from_env`), from variables of the test's own (`shared::config::with_vars`): what each
//! function reads is what the README's table says, the template gives every function
//! what it needs and nothing it ignores, a bad value stops start-up naming the variable,
//! and the deployed router's CORS and database settings come from the environment.

use std::collections::{BTreeMap, BTreeSet};

use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use shared::config::with_vars;
use tower::ServiceExt;

use api_tests::START_UPS as FUNCTIONS;

/// A valid value for every variable any function reads.
fn valid(name: &str) -> &'static str {
    match name {
        "DATABASE_URL" | "DATABASE_DIRECT_URL" => {
            "postgres://app:secret@db.example.com/app?sslmode=verify-full"
        }
        "DATABASE_MAX_CONNECTIONS" => "2",
        "DATABASE_ACQUIRE_TIMEOUT_MS" => "5000",
        "JWT_SECRET" => api_tests::JWT_SECRET,
        "DATABASE_URL_SECRET_ARN"
        | "DATABASE_DIRECT_URL_SECRET_ARN"
        | "JWT_SECRET_ARN"
        | "STRIPE_SECRET_KEY_SECRET_ARN"
        | "STRIPE_WEBHOOK_SECRETS_SECRET_ARN"
        | "FIRST_ADMIN_PASSWORD_SECRET_ARN" => {
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/example-AbCdEf"
        }
        "JWT_PREVIOUS_SECRETS" => "an-older-secret-an-older-secret-0123456",
        "JWT_ISSUER" => "backend",
        "JWT_AUDIENCE" => "backend-api",
        "ACCESS_TOKEN_TTL_SECONDS" => "900",
        "REFRESH_TOKEN_TTL_SECONDS" => "604800",
        "SESSION_MAX_LIFETIME_SECONDS" => "2592000",
        "REFRESH_REUSE_WINDOW_SECONDS" => "10",
        "BETTER_AUTH_URL" => "https://auth.example.com",
        "BETTER_AUTH_JWKS_URL" => "https://auth.example.com/api/auth/jwks",
        "BETTER_AUTH_ISSUER" | "BETTER_AUTH_AUDIENCE" => "https://auth.example.com",
        "BETTER_AUTH_MAX_STALE_SECONDS" => "3600",
        "CORS_ALLOWED_ORIGINS" => "https://app.example.com",
        "NOTIFICATIONS_QUEUE_URL" => "https://sqs.us-east-1.amazonaws.com/123456789012/notes",
        "NOTIFICATIONS_DLQ_URL" => "https://sqs.us-east-1.amazonaws.com/123456789012/notes-dlq",
        "UPLOAD_EVENTS_QUEUE_URL" => "https://sqs.us-east-1.amazonaws.com/123456789012/uploads",
        "UPLOAD_EVENTS_DLQ_URL" => "https://sqs.us-east-1.amazonaws.com/123456789012/uploads-dlq",
        "UPLOADS_BUCKET" => "uploads",
        "UPLOAD_URL_TTL_SECONDS" => "600",
        "DOWNLOAD_URL_TTL_SECONDS" => "300",
        "S3_FORCE_PATH_STYLE" => "false",
        "RATE_LIMIT_LOGIN" => "30/60",
        "RATE_LIMIT_REGISTER" => "10/3600",
        "RATE_LIMIT_REFRESH" => "120/60",
        "RATE_LIMIT_PASSWORD_RESET" => "10/3600",
        "RATE_LIMIT_TASK_WRITES" => "120/60",
        "RATE_LIMIT_UPLOADS" => "30/60",
        "RATE_LIMIT_ORDERS" => "20/60",
        "FIRST_ADMIN_EMAIL" => "root@example.com",
        "FIRST_ADMIN_PASSWORD" => api_tests::PASSWORD,
        "MAIL_TRANSPORT" => "ses",
        "MAIL_FROM" => "no-reply@example.com",
        "MAIL_DIR" => "/tmp/mail",
        "APP_BASE_URL" => "https://app.example.com",
        "ACCOUNT_TOKEN_TTL_SECONDS" => "1800",
        "ORDER_HOLD_SECONDS" => "900",
        "STRIPE_SECRET_KEY" => "sk_test_example",
        "STRIPE_PUBLISHABLE_KEY" => "pk_test_example",
        "STRIPE_API_BASE" => "https://api.stripe.com",
        "STRIPE_WEBHOOK_SECRETS" => "whsec_current,whsec_previous",
        "REALTIME_URL" => "wss://abc123.execute-api.us-east-1.amazonaws.com/live",
        "REALTIME_MANAGEMENT_URL" => "https://abc123.execute-api.us-east-1.amazonaws.com/live",
        "AWS_REGION" | "AWS_DEFAULT_REGION" => "us-east-1",
        "AWS_ACCESS_KEY_ID" => "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN" => "example",
        "AWS_ENDPOINT_URL" => "http://127.0.0.1:5000",
        "RUST_LOG" => "info",
        "LOG_FORMAT" => "text",
        // Read by lambda_http, not by our code.
        "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH" => "true",
        other => panic!("no sample value for {other}: add one"),
    }
}

/// Every variable with a valid value, with each optional path taken (Better Auth on,
/// SES mail, a first admin).
fn full() -> BTreeMap<String, String> {
    [
        "DATABASE_URL",
        "DATABASE_DIRECT_URL",
        "DATABASE_MAX_CONNECTIONS",
        "DATABASE_ACQUIRE_TIMEOUT_MS",
        "JWT_SECRET",
        "JWT_PREVIOUS_SECRETS",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "ACCESS_TOKEN_TTL_SECONDS",
        "REFRESH_TOKEN_TTL_SECONDS",
        "SESSION_MAX_LIFETIME_SECONDS",
        "REFRESH_REUSE_WINDOW_SECONDS",
        "BETTER_AUTH_URL",
        "BETTER_AUTH_JWKS_URL",
        "BETTER_AUTH_ISSUER",
        "BETTER_AUTH_AUDIENCE",
        "BETTER_AUTH_MAX_STALE_SECONDS",
        "CORS_ALLOWED_ORIGINS",
        "NOTIFICATIONS_QUEUE_URL",
        "NOTIFICATIONS_DLQ_URL",
        "UPLOAD_EVENTS_QUEUE_URL",
        "UPLOAD_EVENTS_DLQ_URL",
        "UPLOADS_BUCKET",
        "UPLOAD_URL_TTL_SECONDS",
        "DOWNLOAD_URL_TTL_SECONDS",
        "S3_FORCE_PATH_STYLE",
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_REGISTER",
        "RATE_LIMIT_REFRESH",
        "RATE_LIMIT_PASSWORD_RESET",
        "RATE_LIMIT_TASK_WRITES",
        "RATE_LIMIT_UPLOADS",
        "RATE_LIMIT_ORDERS",
        "FIRST_ADMIN_EMAIL",
        "FIRST_ADMIN_PASSWORD",
        "MAIL_TRANSPORT",
        "MAIL_FROM",
        "APP_BASE_URL",
        "ACCOUNT_TOKEN_TTL_SECONDS",
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "STRIPE_API_BASE",
        "STRIPE_WEBHOOK_SECRETS",
        "REALTIME_URL",
        "REALTIME_MANAGEMENT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "RUST_LOG",
        "LOG_FORMAT",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), valid(name).to_owned()))
    .collect()
}

/// The other branches: local mail without Better Auth, and the region under its older
/// name.
fn alternatives() -> [BTreeMap<String, String>; 2] {
    let mut local = full();
    for name in ["BETTER_AUTH_URL", "MAIL_FROM"] {
        local.remove(name);
    }
    local.insert("MAIL_TRANSPORT".into(), "directory".into());
    local.insert("MAIL_DIR".into(), valid("MAIL_DIR").into());
    let mut region = full();
    region.remove("AWS_REGION");
    region.insert(
        "AWS_DEFAULT_REGION".into(),
        valid("AWS_DEFAULT_REGION").into(),
    );
    [local, region]
}

/// Loads `function` from `vars` as its `main` does: the logging settings first
/// (`telemetry::init`), then the secrets named by ARN (`secrets::load`; here each stands
/// in for its variable with a sample value instead of a fetch), then its settings. Returns
/// the result and the variables it looked at, a variable read counting its
/// `*_SECRET_ARN` as read too.
fn load(function: &str, vars: &BTreeMap<String, String>) -> (Result<(), String>, BTreeSet<String>) {
    let (_, loader) = FUNCTIONS
        .iter()
        .find(|(name, _)| *name == function)
        .unwrap();
    let main = std::fs::read_to_string(format!(
        "{}/../functions/{function}/src/main.rs",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(
        main.contains("shared::telemetry::init();"),
        "{function}'s main starts logging first"
    );
    let (references, _) = with_vars(vars.clone(), shared::secrets::references);
    let references = match references {
        Ok(references) => references,
        Err(e) => return (Err(e.to_string()), BTreeSet::new()),
    };
    let mut fetched = vars.clone();
    for (name, _) in references {
        fetched.insert(name.to_owned(), valid(name).to_owned());
        if name == "JWT_SECRET" {
            fetched.insert(
                "JWT_PREVIOUS_SECRETS".into(),
                valid("JWT_PREVIOUS_SECRETS").into(),
            );
        }
    }
    let (result, read) = with_vars(fetched, || {
        shared::telemetry::LogSettings::from_env();
        loader().map_err(|e| e.to_string())
    });
    let mut read: BTreeSet<String> = read.into_iter().map(str::to_owned).collect();
    for (name, arn) in shared::secrets::SECRET_VARS {
        if read.contains(*name) {
            read.insert((*arn).to_owned());
        }
    }
    (result, read)
}

/// `variable -> functions` from the README's configuration table (rows used by functions;
/// `all` is every function).
fn readme_table() -> BTreeMap<String, BTreeSet<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table = readme
        .split("| variable | used by | default | meaning |")
        .nth(1)
        .expect("README has the configuration table");
    let all: BTreeSet<String> = FUNCTIONS.iter().map(|(f, _)| (*f).to_owned()).collect();
    let mut used = BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, users) = (cells[1], cells[2]);
        let functions: BTreeSet<String> = if users == "all" {
            all.clone()
        } else {
            users.split(", ").map(str::to_owned).collect()
        };
        if !functions.is_subset(&all) {
            continue; // scripts/dev's own settings
        }
        for name in names.split('`').skip(1).step_by(2) {
            used.insert(name.to_owned(), functions.clone());
        }
    }
    used
}

#[tokio::test]
async fn the_readme_table_says_what_each_function_reads() {
    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (function, _) in FUNCTIONS {
        let [local, region] = alternatives();
        for vars in [full(), local, region] {
            let (result, read) = load(function, &vars);
            assert!(result.is_ok(), "{function}: {result:?}");
            for name in read {
                actual
                    .entry(name)
                    .or_default()
                    .insert((*function).to_owned());
            }
        }
    }
    let documented = readme_table();
    let names: BTreeSet<&String> = actual.keys().chain(documented.keys()).collect();
    let wrong: Vec<String> = names
        .into_iter()
        .filter(|name| actual.get(*name) != documented.get(*name))
        .map(|name| {
            format!(
                "{name}: read by {:?}, README says {:?}",
                actual.get(name),
                documented.get(name)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "README configuration table:\n{}",
        wrong.join("\n")
    );
}

/// `binary -> variable names` of each function's own `Environment` in `template.yaml`,
/// with the `Globals` under `""`.
fn template_variables() -> BTreeMap<String, BTreeSet<String>> {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut function = String::new();
    let mut block: Option<usize> = None;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if block.is_some_and(|b| indent <= b && !text.is_empty()) {
            block = None;
        }
        if let Some(binary) = text.strip_prefix("Binary: ") {
            function = binary.to_owned();
        } else if text == "Variables:" {
            block = Some(indent);
        } else if block.is_some()
            && let Some((name, _)) = text.split_once(':')
            && !name.starts_with('#')
        {
            found
                .entry(function.clone())
                .or_default()
                .insert(name.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn the_template_gives_each_function_what_it_needs_and_nothing_it_ignores() {
    let template = template_variables();
    let globals = template.get("").cloned().unwrap_or_default();
    let mut read_by_any = BTreeSet::new();
    for (function, _) in FUNCTIONS {
        let own = template.get(*function).cloned().unwrap_or_default();
        // What Lambda itself sets, plus the template's variables for this function.
        let lambda = [
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ];
        let vars: BTreeMap<String, String> = own
            .iter()
            .chain(&globals)
            .map(String::as_str)
            .chain(lambda)
            .map(|name| (name.to_owned(), valid(name).to_owned()))
            .collect();
        let (result, read) = load(function, &vars);
        assert!(
            result.is_ok(),
            "{function} starts with the template's variables: {result:?}"
        );
        let (_, read_full) = load(function, &full());
        let ignored: Vec<&String> = own
            .iter()
            .filter(|name| !read.contains(*name) && !read_full.contains(*name))
            .filter(|name| *name != "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH")
            .collect();
        assert!(
            ignored.is_empty(),
            "{function} is given {ignored:?} and never reads them"
        );
        read_by_any.extend(read);
    }
    for name in &globals {
        assert!(
            read_by_any.contains(name),
            "the global {name} is read by no function"
        );
    }
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_variable() {
    for (function, _) in FUNCTIONS {
        let (result, _) = load(function, &full());
        assert!(result.is_ok(), "{function}: {result:?}");
    }
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("auth", "DATABASE_URL", None),
        ("auth", "DATABASE_URL", Some("mysql://nope")),
        // Another host in the clear, or over TLS that checks nothing.
        (
            "auth",
            "DATABASE_URL",
            Some("postgres://app:secret@db.example.com/app"),
        ),
        (
            "tasks",
            "DATABASE_URL",
            Some("postgres://app:secret@db.example.com/app?sslmode=require"),
        ),
        (
            "migrate",
            "DATABASE_DIRECT_URL",
            Some("postgres://app:secret@db.example.com/app?sslmode=prefer"),
        ),
        ("auth", "BETTER_AUTH_URL", Some("http://auth.example.com")),
        (
            "users",
            "BETTER_AUTH_JWKS_URL",
            Some("http://auth.example.com/api/auth/jwks"),
        ),
        (
            "notifications",
            "REALTIME_URL",
            Some("ws://abc.example.com/live"),
        ),
        (
            "notify-worker",
            "REALTIME_MANAGEMENT_URL",
            Some("http://abc.example.com/live"),
        ),
        ("auth", "JWT_SECRET", Some("too-short")),
        ("auth", "REFRESH_REUSE_WINDOW_SECONDS", Some("61")),
        ("auth", "SESSION_MAX_LIFETIME_SECONDS", Some("0")),
        ("auth", "RATE_LIMIT_LOGIN", Some("lots")),
        ("tasks", "RATE_LIMIT_TASK_WRITES", Some("0/60")),
        ("orders", "RATE_LIMIT_ORDERS", Some("ten")),
        ("auth", "NOTIFICATIONS_QUEUE_URL", None),
        ("users", "JWT_SECRET", None),
        ("users", "JWT_PREVIOUS_SECRETS", Some("short")),
        ("tasks", "CORS_ALLOWED_ORIGINS", Some("*")),
        ("tasks", "ACCESS_TOKEN_TTL_SECONDS", Some("0")),
        (
            "notifications",
            "BETTER_AUTH_MAX_STALE_SECONDS",
            Some("soon"),
        ),
        ("notifications", "DATABASE_ACQUIRE_TIMEOUT_MS", Some("-1")),
        ("uploads", "UPLOADS_BUCKET", None),
        ("uploads", "UPLOAD_URL_TTL_SECONDS", Some("3600")),
        ("platform", "DATABASE_MAX_CONNECTIONS", Some("many")),
        ("upload-processor", "AWS_ACCESS_KEY_ID", None),
        ("notify-worker", "APP_BASE_URL", None),
        ("notify-worker", "MAIL_FROM", None),
        ("notify-worker", "MAIL_TRANSPORT", Some("carrier-pigeon")),
        ("outbox-relay", "NOTIFICATIONS_QUEUE_URL", None),
        ("orders", "STRIPE_SECRET_KEY", None),
        ("orders", "STRIPE_API_BASE", Some("http://api.stripe.com")),
        ("payments", "STRIPE_WEBHOOK_SECRETS", None),
        ("payments", "STRIPE_WEBHOOK_SECRETS", Some(" , ")),
        ("payments", "STRIPE_PUBLISHABLE_KEY", None),
        ("migrate", "DATABASE_DIRECT_URL", None),
        ("migrate", "FIRST_ADMIN_PASSWORD", Some("password")),
        // A secret both in the environment and behind an ARN: which one is meant?
        (
            "tasks",
            "DATABASE_URL_SECRET_ARN",
            Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
        ),
    ];
    for (function, name, value) in cases {
        let mut vars = full();
        match value {
            Some(value) => vars.insert((*name).to_owned(), (*value).to_owned()),
            None => vars.remove(*name),
        };
        let (result, _) = load(function, &vars);
        let error = result.expect_err(&format!("{function} starts with {name}={value:?}"));
        assert!(
            error.contains(name),
            "{function}, {name}={value:?}: {error}"
        );
        if let Some(value) = value {
            assert!(
                value.len() < 8 || !error.contains(value),
                "the error quotes the value: {error}"
            );
        }
    }
}

#[tokio::test]
async fn the_deployed_router_takes_cors_from_the_environment() {
    let (app, _) = with_vars(full(), auth::from_env);
    let app = app.unwrap();
    let preflight = |origin: &'static str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/auth/login")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let allowed = app
        .clone()
        .oneshot(preflight("https://app.example.com"))
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let foreign = app
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{:?}",
        foreign.headers()
    );
}

#[tokio::test]
async fn a_database_that_never_answers_is_a_503_after_the_acquire_timeout() {
    let (address, _holder) = api_tests::stalled_listener().await;
    let mut vars = full();
    vars.insert(
        "DATABASE_URL".into(),
        format!("postgres://app@{address}/app"),
    );
    vars.insert("DATABASE_ACQUIRE_TIMEOUT_MS".into(), "300".into());
    let (app, _) = with_vars(vars, tasks::from_env);
    let config = api_tests::token_config();
    let token = shared::identity::tokens::AccessTokens::new(&config)
        .issue(
            shared::identity::UserId::new(),
            shared::identity::SessionId::new(),
            shared::identity::Role::User,
        )
        .unwrap()
        .token;
    let request = Request::builder()
        .uri("/api/v1/tasks")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.unwrap().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 503, "{problem}");
}

//! Security headers on every response, no-store on credentials, CORS from the list.

use api_tests::{Function, PASSWORD, TestApp, lambda};
use http::{Method, StatusCode};
use serde_json::json;
use shared::http::CorsConfig;
use sqlx::PgPool;

fn assert_security_headers(response: &api_tests::Response, what: &str) {
    assert_eq!(
        response.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains"),
        "{what}"
    );
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(response.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        response.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert!(
        response.header("content-security-policy").is_some(),
        "{what}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn every_response_carries_the_security_headers(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = app.user("ada@example.com").await;
    let responses = [
        ("login", app.login("ada@example.com", PASSWORD).await),
        (
            "refused login",
            app.login("ada@example.com", "not the password").await,
        ),
        (
            "tasks",
            app.get("/api/v1/tasks", Some(&tokens.access_token)).await,
        ),
        (
            "no route",
            app.get("/api/v1/tasks/nothing/here", None).await,
        ),
        ("health", app.get("/health", None).await),
        ("openapi", app.get("/openapi.json", None).await),
        (
            "users/me",
            app.get("/api/v1/users/me", Some(&tokens.access_token))
                .await,
        ),
    ];
    for (what, response) in &responses {
        assert_security_headers(response, what);
        assert_eq!(
            response.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
            "{what}"
        );
    }
    // Auth and user responses are never cached; task lists may revalidate.
    for (what, response) in [&responses[0], &responses[1], &responses[6]] {
        assert_eq!(response.header("cache-control"), Some("no-store"), "{what}");
    }
    assert_ne!(responses[2].1.header("cache-control"), Some("no-store"));

    // The documentation pages get a policy that lets them run, and nothing more.
    for path in ["/docs/index.html", "/redoc"] {
        let page = app.get(path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_security_headers(&page, path);
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn cors_allows_exactly_the_configured_origins(db: PgPool) {
    let app = TestApp::new(db).await;
    let cors = CorsConfig::parse("http://localhost:3000, https://app.example.com").unwrap();
    let router = shared::http::app_with_cors(
        auth::router(auth::AppState::new(
            app.db.clone(),
            &api_tests::token_config(),
            Default::default(),
            app.queue.publisher(),
            api_tests::unlimited(),
        )),
        &cors,
    );
    let send = |method: Method, origin: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let router = router.clone();
        async move {
            let mut headers = vec![("origin", origin), ("content-type", "application/json")];
            headers.extend(extra);
            let body = (method == Method::POST)
                .then(|| json!({"email": "a@example.com", "password": "x"}).to_string());
            let event =
                lambda::api_gateway_event(method, "/api/v1/auth/login", &headers, body.as_deref());
            lambda::invoke_http(router, event).await
        }
    };
    let preflight = vec![
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type,authorization",
        ),
    ];

    let allowed = send(
        Method::OPTIONS,
        "https://app.example.com",
        preflight.clone(),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );

    let refused = send(Method::OPTIONS, "https://evil.example.net", preflight).await;
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let actual = send(Method::POST, "http://localhost:3000", vec![]).await;
    assert_eq!(actual.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    let expose = actual.header("access-control-expose-headers").unwrap();
    assert!(
        expose.contains("retry-after") && expose.contains("x-request-id"),
        "{expose}"
    );
    let foreign = send(Method::POST, "https://evil.example.net", vec![]).await;
    assert_eq!(foreign.header("access-control-allow-origin"), None);

    // Without a list, no CORS headers at all (API Gateway's configuration applies).
    let plain = app
        .request(
            Function::Auth,
            Method::GET,
            "/api/v1/auth/me",
            &[("origin", "http://localhost:3000")],
            None,
        )
        .await;
    assert_eq!(plain.header("access-control-allow-origin"), None);
}

#[test]
fn cors_lists_refuse_wildcards_and_non_origins() {
    for bad in [
        "*",
        "https://*.example.com",
        "example.com",
        "https://app.example.com/path",
        "ftp://x.y",
    ] {
        assert!(CorsConfig::parse(bad).is_err(), "{bad}");
    }
    assert!(CorsConfig::parse("").unwrap().origins.is_empty());
}

#[test]
fn production_names_its_origins_and_local_development_uses_the_frontends() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let template = std::fs::read_to_string(format!("{root}/template.yaml")).unwrap();
    let dev = std::fs::read_to_string(format!("{root}/scripts/dev")).unwrap();
    // No default: a stage that forgot them must not email links to localhost or let a
    // developer's page call production.
    for parameter in ["  CorsAllowedOrigins:", "  AppBaseUrl:"] {
        let section = &template[template.find(parameter).unwrap() + parameter.len()..];
        let block: Vec<&str> = section
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
            .collect();
        assert!(
            !block.iter().any(|l| l.trim().starts_with("Default:")),
            "{parameter} has a default: {block:?}"
        );
    }
    let local = dev
        .lines()
        .find_map(|l| l.trim().strip_prefix(": \"${CORS_ALLOWED_ORIGINS:="))
        .and_then(|l| l.strip_suffix("}\""))
        .unwrap();
    assert_eq!(local, "http://localhost:3000");
}

//! Health, documentation, routing fallbacks, panic safety, and the promise that the
//! template, the local router and the OpenAPI document list the same routes.

use std::{collections::BTreeSet, time::Duration};

use api_tests::{
    TestApp,
    lambda::{api_gateway_event, invoke_http},
};
use axum::{Router, routing::get};
use http::{Method, StatusCode};
use serde_json::Value;
use sqlx::{PgPool, postgres::PgPoolOptions};

#[sqlx::test(migrations = "../migrations")]
async fn health_reports_the_database(db: PgPool) {
    let app = TestApp::new(db).await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let health: Value = response.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
}

#[tokio::test]
async fn health_is_503_when_the_database_is_unreachable() {
    let unreachable = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")
        .unwrap();
    let router = shared::http::app(platform::router(unreachable));
    let response = invoke_http(router, api_gateway_event(Method::GET, "/health", &[], None)).await;
    assert_eq!(
        response.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        response.text()
    );
    let health: Value = response.json();
    assert_eq!(health["database"], "unreachable");
}

#[sqlx::test(migrations = "../migrations")]
async fn docs_pages_are_served(db: PgPool) {
    let app = TestApp::new(db).await;
    let openapi = app.get("/openapi.json", None).await;
    assert_eq!(openapi.status, StatusCode::OK);
    let doc: Value = openapi.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let redirect = app.get("/docs", None).await;
    assert_eq!(redirect.status, StatusCode::SEE_OTHER);
    let target = redirect.header("location").unwrap();
    assert_eq!(
        target, "/docs/index.html",
        "a path API Gateway's /docs/{{proxy+}} route matches"
    );
    let swagger = app.get(target, None).await;
    assert_eq!(swagger.status, StatusCode::OK);
    assert!(swagger.text().to_lowercase().contains("swagger"));
    let initializer = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(initializer.status, StatusCode::OK);
    assert!(
        initializer.text().contains("/openapi.json"),
        "Swagger UI loads our document"
    );
    let redoc = app.get("/redoc", None).await;
    assert_eq!(redoc.status, StatusCode::OK);
    assert!(redoc.text().to_lowercase().contains("redoc"));
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_routes_and_methods_are_problems(db: PgPool) {
    let app = TestApp::new(db).await;
    app.get("/api/v1/auth/nope", None)
        .await
        .problem(StatusCode::NOT_FOUND);
    app.get("/nope", None).await.problem(StatusCode::NOT_FOUND);
    app.get("/api/v1/auth/login", None)
        .await
        .problem(StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_with_the_request_id() {
    async fn boom() -> &'static str {
        panic!("secret detail that must not leak")
    }
    let router = shared::http::app(Router::new().route("/boom", get(boom)));
    let response = invoke_http(router, api_gateway_event(Method::GET, "/boom", &[], None)).await;
    let request_id = response.header("x-request-id").unwrap().to_owned();
    let problem = response.problem(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem["request_id"], request_id.as_str());
    assert!(!response.text().contains("secret detail"));
}

/// `(METHOD, /path)` pairs of the HttpApi events in template.yaml.
fn template_routes() -> BTreeSet<(String, String)> {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut routes = BTreeSet::new();
    let mut method = None;
    for line in template.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("Method: ") {
            method = Some(m.trim_matches('"').to_uppercase());
        } else if let (Some(p), Some(m)) = (line.strip_prefix("Path: "), method.take()) {
            routes.insert((m, p.trim_matches('"').to_owned()));
        }
    }
    routes
}

/// `(METHOD, /path)` pairs of the cargo-lambda router in the workspace Cargo.toml, with
/// its `{*rest}` catch-alls written the API Gateway way (`{rest+}`).
fn local_router_routes() -> BTreeSet<(String, String)> {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
    let section = manifest
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .unwrap();
    let mut routes = BTreeSet::new();
    for line in section.lines().take_while(|l| !l.starts_with('[')) {
        let Some((path, rest)) = line.split_once(" = ") else {
            continue;
        };
        let path = path.trim_matches('"').replace("{*", "{");
        let path = match path.strip_suffix("proxy}") {
            Some(prefix) => format!("{prefix}proxy+}}"),
            None => path,
        };
        for method in rest
            .split("method = \"")
            .skip(1)
            .filter_map(|m| m.split('"').next())
        {
            routes.insert((method.to_owned(), path.clone()));
        }
    }
    routes
}

/// `(METHOD, /path)` pairs of the OpenAPI document.
fn openapi_routes() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(platform::docs::openapi()).unwrap();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[test]
fn template_local_router_and_openapi_agree() {
    let template = template_routes();
    assert!(template.len() >= 10, "parsed too few routes: {template:?}");
    assert_eq!(
        template,
        local_router_routes(),
        "template.yaml and the cargo-lambda router differ"
    );
    // The documentation routes serve the document itself and are not in it.
    let documented: BTreeSet<_> = template
        .into_iter()
        .filter(|(_, p)| !(p == "/openapi.json" || p.starts_with("/docs") || p == "/redoc"))
        .collect();
    assert_eq!(
        documented,
        openapi_routes(),
        "template.yaml and the OpenAPI document differ"
    );
}

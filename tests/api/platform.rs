//! Health, documentation, routing fallbacks, panic safety, and the promise that the
//! template, the local router and the OpenAPI document list the same routes.

use std::{collections::BTreeSet, io::Read, time::Duration};

use api_tests::{
    Function, Response, TestApp,
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
    assert!(
        redoc.text().contains(r#"spec-url="/openapi.json""#),
        "ReDoc loads our document"
    );
}

/// `GET /docs/{file}` on the platform function with `headers`.
async fn docs_file(app: &TestApp, file: &str, headers: &[(&str, &str)]) -> Response {
    let path = format!("/docs/{file}");
    app.request(Function::Platform, Method::GET, &path, headers, None)
        .await
}

#[sqlx::test(migrations = "../migrations")]
async fn swagger_ui_assets_are_sent_gzipped(db: PgPool) {
    let app = TestApp::new(db).await;
    let page = docs_file(&app, "index.html", &[]).await.text();
    let js = "text/javascript; charset=utf-8";
    for (file, content_type, marker) in [
        ("swagger-ui-bundle.js", js, "SwaggerUIBundle"),
        (
            "swagger-ui-standalone-preset.js",
            js,
            "SwaggerUIStandalonePreset",
        ),
        ("swagger-ui.css", "text/css; charset=utf-8", ".swagger-ui"),
    ] {
        assert!(
            page.contains(&format!("./{file}")),
            "index.html loads {file}"
        );
        let asset = docs_file(&app, file, &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(asset.status, StatusCode::OK, "{file}");
        assert_eq!(asset.header("content-encoding"), Some("gzip"));
        assert_eq!(asset.header("content-type"), Some(content_type));
        let mut text = String::new();
        flate2::read::GzDecoder::new(asset.body.as_slice())
            .read_to_string(&mut text)
            .expect("a gzip stream of UTF-8 text");
        assert!(text.len() > 10_000 && text.contains(marker), "{file}");

        // A revalidation costs no body; a client that refuses gzip is told so.
        let etag = asset.header("etag").expect("etag");
        let cached = docs_file(&app, file, &[("if-none-match", etag)]).await;
        assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
        assert!(cached.body.is_empty());
        for refused in [&[][..], &[("accept-encoding", "gzip;q=0, br")]] {
            docs_file(&app, file, refused)
                .await
                .problem(StatusCode::NOT_ACCEPTABLE);
        }
    }
    let gzip = [("accept-encoding", "gzip")];
    for unknown in [
        "swagger-ui.js.map",
        "favicon-32x32.png",
        "..%2Fopenapi.json",
    ] {
        docs_file(&app, unknown, &gzip)
            .await
            .problem(StatusCode::NOT_FOUND);
    }
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
    let doc = serde_json::to_value(api_tests::openapi()).unwrap();
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

/// The committed document is what the handlers describe. `UPDATE_OPENAPI=1` rewrites it
/// (after a handler's annotations change) instead of failing.
#[test]
fn the_committed_openapi_document_matches_the_handlers() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../functions/platform/openapi.json"
    );
    let generated = serde_json::to_value(api_tests::openapi()).unwrap();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
        eprintln!("rewrote {path}; the next build serves it");
        return;
    }
    let served: Value = serde_json::from_str(platform::docs::OPENAPI_JSON).unwrap();
    assert!(
        served == generated,
        "functions/platform/openapi.json is stale: run \
         UPDATE_OPENAPI=1 cargo test -p api-tests --test api openapi, then rebuild"
    );
}

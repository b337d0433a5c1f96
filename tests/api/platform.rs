//! Health, documentation, routing fallbacks, panic safety, and the promise that the
//! template, the local router and the OpenAPI document list the same routes.

use std::{collections::BTreeSet, io::Read, time::Duration};

use api_tests::{
    Function, Response, TestApp,
    lambda::{api_gateway_event, invoke_http},
    routes,
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
    // A pinned release, refused by the browser if the CDN serves other bytes.
    let page = redoc.text();
    let pinned = format!(
        r#"src="https://cdn.jsdelivr.net/npm/redoc@{}/bundles/redoc.standalone.js""#,
        platform::docs::REDOC_VERSION
    );
    assert!(page.contains(&pinned), "{page}");
    assert!(
        page.contains(&format!(
            r#"integrity="sha384-{}""#,
            platform::docs::REDOC_SHA384
        )),
        "{page}"
    );
    assert!(page.contains(r#"crossorigin="anonymous""#));
    assert!(
        !page.contains("latest") && !page.contains("googleapis"),
        "{page}"
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
    // A path outside every route family never reaches a function in AWS; a function that
    // gets one anyway answers in the same shape.
    app.call(Method::GET, "/nope")
        .send_to(Function::Platform)
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(Function::for_path("/nope"), None);
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

/// A concrete path for an OpenAPI path template (`{id}` -> a UUID), as a client sends it.
fn concrete(template: &str) -> String {
    template.replace("{id}", "0190f5d2-0000-7000-8000-000000000000")
}

#[test]
fn template_local_router_and_openapi_agree() {
    let template = routes::template_routes();
    assert!(template.len() >= 10, "parsed too few routes: {template:?}");
    // Each HTTP function gets whole route families, any method: the function's own
    // router answers unknown paths and methods with problem+json.
    for route in template {
        assert_eq!(route.method, "ANY", "{route:?} should be a route family");
    }
    let families: BTreeSet<(String, String)> = template
        .iter()
        .map(|r| (r.function.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        families,
        routes::local_router_routes(),
        "template.yaml and the cargo-lambda router in Cargo.toml differ"
    );

    // Every documented operation reaches the function that declares it, and every family
    // serves at least one of its function's operations (the docs pages serve the
    // document itself and are not in it).
    let mut used = BTreeSet::new();
    for (function, doc) in api_tests::function_docs() {
        for path in doc.paths.paths.keys() {
            let concrete = concrete(path);
            assert_eq!(
                Function::for_path(&concrete),
                Some(function),
                "API Gateway would not send {path} to {}",
                function.name()
            );
            let family = template
                .iter()
                .filter(|r| r.function == function.name() && r.matches(&concrete))
                .max_by_key(|r| r.path.len())
                .unwrap();
            used.insert((family.function.clone(), family.path.clone()));
        }
    }
    let docs_pages = ["/openapi.json", "/docs", "/docs/{proxy+}", "/redoc"];
    let unused: Vec<_> = families
        .difference(&used)
        .filter(|(f, p)| !(f == "platform" && docs_pages.contains(&p.as_str())))
        .collect();
    assert!(unused.is_empty(), "families no operation uses: {unused:?}");
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

/// Every `$ref` under `value`, with where it stands.
fn refs(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, item) in fields {
                match (key.as_str(), item) {
                    ("$ref", Value::String(target)) => found.push((at.to_owned(), target.clone())),
                    _ => refs(item, &format!("{at}/{key}"), found),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                refs(item, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// What code generators need (openapi-typescript stops at the first of these): every
/// `$ref` points at something in the document, and every operation has an id of its own.
#[sqlx::test(migrations = "../migrations")]
async fn the_served_document_is_whole_for_code_generators(db: PgPool) {
    let app = TestApp::new(db).await;
    let document: Value = app.get("/openapi.json", None).await.json();

    let mut found = Vec::new();
    refs(&document, "#", &mut found);
    assert!(!found.is_empty());
    let dangling: Vec<_> = found
        .iter()
        .filter(|(_, target)| {
            let pointer = target.strip_prefix('#').unwrap_or("not a local reference");
            document.pointer(pointer).is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");

    let mut ids = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str();
            let id = id.unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            ids.entry(id).or_default().push(format!("{method} {path}"));
        }
    }
    let shared: Vec<_> = ids.iter().filter(|(_, ops)| ops.len() > 1).collect();
    assert!(shared.is_empty(), "operationIds used twice: {shared:?}");
}

//! `scripts/bench`: cold start, warm latency and throughput, login cost, peak memory,
//! binary size and worker throughput, printed as one table with each figure's floor.
//!
//! Every server here listens on loopback only, and every loop is bounded in count.
//! Layout: [`runtime_api`] is the Lambda Runtime API the release binaries talk to (cold
//! start, memory); [`load`] drives concurrent requests (warm latency); this file sets up
//! a database, runs each measurement and prints the table.

mod load;
mod runtime_api;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use api_tests::{PASSWORD, lambda, sqs::unreachable_publisher, token_config};
use axum::{Router, body::Body};
use http::Request;
use serde_json::{Value, json};
use shared::identity::{SessionId, UserId, tokens::RefreshToken};
use sqlx::{PgPool, postgres::PgPoolOptions};
use tower::ServiceExt;

/// One line of the table.
struct Row {
    name: String,
    figure: String,
    floor: String,
    ratio: Option<f64>,
    target: String,
    met: Option<bool>,
}

fn row(name: impl Into<String>, figure: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        figure: figure.into(),
        floor: String::new(),
        ratio: None,
        target: String::new(),
        met: None,
    }
}

fn print_table(rows: &[Row]) {
    println!("| benchmark | figure | floor | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}x")).unwrap_or_default();
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name, r.figure, r.floor, ratio, r.target, met
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A fresh, migrated database on the server `DATABASE_URL` names.
async fn fresh_database() -> Result<(PgPool, String)> {
    let base = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let (server, _) = base
        .rsplit_once('/')
        .context("DATABASE_URL has no database")?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&format!("{server}/postgres"))
        .await?;
    sqlx::query("DROP DATABASE IF EXISTS backend_bench WITH (FORCE)")
        .execute(&admin)
        .await?;
    sqlx::query("CREATE DATABASE backend_bench")
        .execute(&admin)
        .await?;
    let url = format!("{server}/backend_bench");
    let db = PgPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await?;
    migrate::MIGRATOR.run(&db).await?;
    Ok((db, url))
}

/// Users with sessions, notifications and tasks; returns (access tokens, refresh tokens).
async fn seed(
    db: &PgPool,
    users: usize,
    sessions_each: usize,
) -> Result<(Vec<String>, Vec<String>)> {
    let hash = shared::identity::password::hash(PASSWORD.to_owned()).await?;
    let tokens = shared::identity::tokens::AccessTokens::new(&token_config());
    let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let mut access = Vec::new();
    let mut refresh = Vec::new();
    for u in 0..users {
        let user = UserId::new();
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, 'Bench', $3)",
        )
        .bind(user.0)
        .bind(format!("bench{u}@example.com"))
        .bind(&hash)
        .execute(db)
        .await?;
        for s in 0..sessions_each {
            let session = SessionId::new();
            sqlx::query(
                "INSERT INTO sessions (id, user_id, expires_at, absolute_expires_at)
                 VALUES ($1, $2, $3, $3)",
            )
            .bind(session.0)
            .bind(user.0)
            .bind(expires)
            .execute(db)
            .await?;
            let token = RefreshToken::generate();
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)")
                .bind(&token.hash)
                .bind(session.0)
                .bind(expires)
                .execute(db)
                .await?;
            refresh.push(token.token);
            if s == 0 {
                access.push(
                    tokens
                        .issue(user, session, shared::identity::Role::User)?
                        .token,
                );
            }
        }
        sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, title, body, created_at)
             SELECT gen_random_uuid(), $1, 'bench', 'n' || n, 'body', now() - n * interval '1 minute'
             FROM generate_series(1, 50) n",
        )
        .bind(user.0)
        .execute(db)
        .await?;
        sqlx::query(
            "INSERT INTO tasks (id, owner_id, title, status, priority, created_at)
             SELECT gen_random_uuid(), $1, 'task ' || n, 'todo', 'medium', now() - n * interval '1 minute'
             FROM generate_series(1, 100) n",
        )
        .bind(user.0)
        .execute(db)
        .await?;
    }
    seed_events(db).await?;
    sqlx::query("ANALYZE").execute(db).await?;
    Ok((access, refresh))
}

/// The public page's event, `bench-event-0`; its paid type is what the order storm buys.
const PAGE_SLUG: &str = "bench-event-0";
/// The id of that type (fixed, so requests can name it).
const STORM_TYPE: &str = "0190f5d2-7c1a-7000-8000-00000000be00";

/// 40 published events to come, each with a free and a paid ticket type, and some
/// orders of each, so the catalogue, the public page and the order storm see a
/// realistic table.
async fn seed_events(db: &PgPool) -> Result<()> {
    sqlx::raw_sql(
        "INSERT INTO users (id, email, name, password_hash, role)
         VALUES ('0190f5d2-7c1a-7000-8000-00000000be01', 'organizer@example.com', 'Org', 'x', 'organizer');
         INSERT INTO events (id, organizer_id, slug, title, category, venue_name, venue_address,
                             city, country, starts_at, ends_at, timezone, status, published_at)
         SELECT gen_random_uuid(), '0190f5d2-7c1a-7000-8000-00000000be01', 'bench-event-' || n,
                'Bench event ' || n, 'salsa', 'Sala', 'Calle 1', 'Madrid', 'ES',
                now() + (n + 1) * interval '1 day', now() + (n + 1) * interval '1 day' + interval '5 hours',
                'Europe/Madrid', 'published', now()
         FROM generate_series(0, 39) n;
         INSERT INTO ticket_types (id, event_id, name, price_minor, currency, quantity, max_per_order)
         SELECT CASE WHEN e.slug = 'bench-event-0' AND k = 1
                     THEN '0190f5d2-7c1a-7000-8000-00000000be00'::uuid ELSE gen_random_uuid() END,
                e.id, CASE k WHEN 0 THEN 'Social' ELSE 'Pass' END, k * 2500, 'EUR', 1000000, 10
         FROM events e, generate_series(0, 1) k;
         INSERT INTO orders (id, event_id, buyer_id, status, currency, subtotal_minor, total_minor,
                             hold_expires_at, confirmed_at)
         SELECT gen_random_uuid(), e.id, '0190f5d2-7c1a-7000-8000-00000000be01', 'confirmed', 'EUR',
                0, 0, now(), now()
         FROM events e, generate_series(1, 50);
         INSERT INTO order_lines (order_id, ticket_type_id, quantity, unit_price_minor, position)
         SELECT o.id, t.id, 2, 0, 0
         FROM orders o JOIN ticket_types t ON t.event_id = o.event_id AND t.name = 'Social';
         UPDATE ticket_types SET sold = 100 WHERE name = 'Social';",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Every HTTP route under test, as one router (the paths do not overlap).
fn api(db: &PgPool) -> Router {
    api_with(db, &api_tests::stripe::config())
}

/// Every HTTP function, its paid orders' PaymentIntents opened on `stripe`.
fn api_with(db: &PgPool, stripe: &shared::payments::StripeConfig) -> Router {
    let config = token_config();
    shared::http::app(
        auth::router(auth::AppState::new(
            db.clone(),
            &config,
            Default::default(),
            unreachable_publisher(),
            // Measures the routes, not the per-IP limits every bench request would hit.
            api_tests::unlimited(),
        ))
        .merge(notifications::router(notifications::AppState::new(
            db.clone(),
            &config,
        )))
        .merge(tasks::router(tasks::AppState::new(db.clone(), &config)))
        .merge(events_api::router(events_api::AppState::new(
            db.clone(),
            &config,
            unreachable_publisher(),
        )))
        .merge(orders::router(orders::AppState::new(
            db.clone(),
            &config,
            // Paid orders: nothing to relay.
            unreachable_publisher(),
            Duration::from_secs(900),
            stripe,
        ))),
    )
}

#[derive(Clone, Copy)]
enum Route {
    Login,
    Me,
    Notifications,
    Tasks,
    Refresh,
    /// The public event page, no token.
    EventPage,
    /// The public catalogue's first page, no token.
    Catalogue,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Me => "me",
            Self::Notifications => "notifications list",
            Self::Tasks => "tasks list",
            Self::Refresh => "refresh",
            Self::EventPage => "public event page",
            Self::Catalogue => "public catalogue",
        }
    }

    /// (method, path, body, bearer?) of request `i`.
    fn request(
        self,
        i: usize,
        access: &[String],
        refresh: &[String],
    ) -> (http::Method, &'static str, Option<String>, Option<String>) {
        let bearer = Some(access[i % access.len()].clone());
        match self {
            Self::Login => (
                http::Method::POST,
                "/api/v1/auth/login",
                Some(json!({"email": format!("bench{}@example.com", i % access.len()), "password": PASSWORD}).to_string()),
                None,
            ),
            Self::Me => (http::Method::GET, "/api/v1/auth/me", None, bearer),
            Self::Notifications => (http::Method::GET, "/api/v1/notifications?limit=20", None, bearer),
            Self::Tasks => (http::Method::GET, "/api/v1/tasks?limit=20&sort=-created_at", None, bearer),
            Self::Refresh => (
                http::Method::POST,
                "/api/v1/auth/refresh",
                Some(json!({"refresh_token": refresh[i % refresh.len()]}).to_string()),
                None,
            ),
            Self::EventPage => (http::Method::GET, "/api/v1/events/bench-event-0", None, None),
            Self::Catalogue => (http::Method::GET, "/api/v1/events?limit=20", None, None),
        }
    }
}

async fn warm_http(
    rows: &mut Vec<Row>,
    db: &PgPool,
    access: Arc<Vec<String>>,
    refresh: Arc<Vec<String>>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = api(db).layer(axum::middleware::from_fn(source_ip_per_connection));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2000)
        .build()?;
    let mut refresh_offset = 0;
    for route in [
        Route::Me,
        Route::Notifications,
        Route::Tasks,
        Route::EventPage,
        Route::Catalogue,
        Route::Refresh,
        Route::Login,
    ] {
        for concurrency in [1, 16, 256, 1000] {
            let total = match route {
                // argon2 takes ~20 ms of CPU per login: keep the count small.
                Route::Login => (concurrency * 2).clamp(20, 400),
                Route::Refresh => (concurrency * 4).clamp(200, 4000),
                _ => (concurrency * 8).clamp(300, 8000),
            };
            let (client, access, refresh) = (client.clone(), access.clone(), refresh.clone());
            let base = format!("http://{addr}");
            let offset = refresh_offset;
            let stats = load::run(concurrency, total, move |i| {
                let (method, path, body, bearer) = route.request(i + offset, &access, &refresh);
                let mut request = client.request(method, format!("{base}{path}"));
                if let Some(b) = body {
                    request = request.header("content-type", "application/json").body(b);
                }
                if let Some(t) = bearer {
                    request = request.bearer_auth(t);
                }
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            })
            .await;
            if matches!(route, Route::Refresh) {
                refresh_offset += total;
            }
            let mut r = row(
                format!("warm {} @{concurrency}", route.name()),
                format!(
                    "p50 {:.2} / p95 {:.2} / p99 {:.2} ms, {:.0} req/s, {} errors",
                    stats.p50, stats.p95, stats.p99, stats.rps, stats.errors
                ),
            );
            if concurrency == 1000 && !matches!(route, Route::Login) {
                r.target = "0 errors, p99 <= 50 ms".into();
                r.met = Some(stats.errors == 0 && stats.p99 <= 50.0);
                r.ratio = Some(stats.p99 / 50.0);
            }
            rows.push(r);
        }
    }
    server.abort();
    Ok(())
}

/// In AWS every client has its own address, which API Gateway passes on as `sourceIp`
/// and the per-IP rate limits count under. Give each harness connection one of its own
/// (from the benchmarking range 198.18.0.0/15), so that the clients are not all one
/// client queueing on one rate-limit row.
async fn source_ip_per_connection(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use lambda_http::{
        aws_lambda_events::apigw::ApiGatewayV2httpRequestContext, request::RequestContext,
    };
    let mut context = ApiGatewayV2httpRequestContext::default();
    let port = peer.port();
    context.http.source_ip = Some(format!("198.18.{}.{}", port >> 8, port & 0xff));
    request
        .extensions_mut()
        .insert(RequestContext::ApiGatewayV2(context));
    next.run(request).await
}

/// Median of `n` in-process calls through the router (no HTTP, no Lambda).
async fn oneshot_median(app: &Router, route: Route, access: &[String], n: usize) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let (method, path, _, bearer) = route.request(i, access, &[String::new()]);
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(t) = bearer {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        let request = builder.body(Body::empty()).expect("request");
        let t0 = Instant::now();
        let response = app.clone().oneshot(request).await.expect("infallible");
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        samples.push(ms(t0.elapsed()));
    }
    median(samples)
}

/// Median time of the route's own SQL, run alone in the same order.
async fn sql_floor(db: &PgPool, route: Route, n: usize) -> Result<f64> {
    let (user, session): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("SELECT user_id, id FROM sessions LIMIT 1")
            .fetch_one(db)
            .await?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        if !matches!(route, Route::EventPage | Route::Catalogue) {
            sqlx::query(
                "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()",
            )
            .bind(session)
            .bind(user)
            .fetch_optional(db)
            .await?;
        }
        match route {
            // The event, its types, what is taken of them: the handler's three reads, as
            // it sends them (the same text, so the same prepared statements and plans).
            Route::EventPage => {
                let (event,): (uuid::Uuid,) = sqlx::query_as(
                    r#"SELECT id, slug, organizer_id, title, description, category, venue_name,
                          venue_address, city, region, country, starts_at, ends_at, timezone,
                          cover_upload_id, capacity, status AS "status: EventStatus", version,
                          created_at, updated_at
                   FROM events WHERE id = $1 OR slug = $2"#,
                )
                .bind(None::<uuid::Uuid>)
                .bind(PAGE_SLUG)
                .fetch_one(db)
                .await?;
                sqlx::query(
                    "SELECT id, name, description, price_minor, currency, quantity, sales_start, sales_end,
                min_per_order, max_per_order, hidden
         FROM ticket_types WHERE event_id = $1 AND ($2 OR NOT hidden)
         ORDER BY created_at, id",
                )
                .bind(event)
                .bind(false)
                .fetch_all(db)
                .await?;
                sqlx::query(
                    r#"SELECT t.id, t.sold::bigint AS "sold!", (t.held - coalesce(x.lapsed, 0))::bigint AS "held!"
           FROM ticket_types t
           LEFT JOIN (SELECT l.ticket_type_id, sum(l.quantity) AS lapsed
                      FROM orders o JOIN order_lines l ON l.order_id = o.id
                      WHERE o.event_id = $1 AND o.status = 'pending' AND o.hold_expires_at <= now()
                      GROUP BY l.ticket_type_id) x ON x.ticket_type_id = t.id
           WHERE t.event_id = $1"#,
                )
                .bind(event)
                .fetch_all(db)
                .await?;
            }
            Route::Catalogue => {
                sqlx::query(
                    r#"SELECT id, slug, organizer_id, title, description, category, venue_name,
                  venue_address, city, region, country, starts_at, ends_at, timezone,
                  cover_upload_id, capacity, status AS "status: EventStatus", version,
                  created_at, updated_at
           FROM events
           WHERE status = 'published' AND ends_at > now()
             AND ($1::text IS NULL OR search @@ websearch_to_tsquery('simple', $1))
             AND ($2::text IS NULL OR lower(city) = lower($2))
             AND ($3::text IS NULL OR category = lower($3))
             AND ($4::timestamptz IS NULL OR starts_at >= $4)
             AND ($5::timestamptz IS NULL OR starts_at < $5)
             AND ($6::uuid IS NULL OR organizer_id = $6)
             AND ($7::timestamptz IS NULL OR (starts_at, id) > ($7, $8))
           ORDER BY starts_at, id
           LIMIT $9"#,
                )
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<time::OffsetDateTime>)
                .bind(None::<time::OffsetDateTime>)
                .bind(None::<uuid::Uuid>)
                .bind(None::<time::OffsetDateTime>)
                .bind(None::<uuid::Uuid>)
                .bind(21_i64)
                .fetch_all(db)
                .await?;
            }
            Route::Notifications => {
                sqlx::query(
                    "SELECT id, kind, title, body, read_at, created_at FROM notifications
                     WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 21",
                )
                .bind(user)
                .fetch_all(db)
                .await?;
            }
            _ => {
                sqlx::query(
                    "SELECT id, title, description, status, priority, due_at, tags, version, created_at, updated_at
                     FROM tasks WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT 21",
                )
                .bind(user)
                .fetch_all(db)
                .await?;
            }
        }
        samples.push(ms(t0.elapsed()));
    }
    Ok(median(samples))
}

async fn in_process(rows: &mut Vec<Row>, db: &PgPool, access: &[String]) -> Result<()> {
    let app = api(db);
    for route in [
        Route::Me,
        Route::Notifications,
        Route::Tasks,
        Route::EventPage,
        Route::Catalogue,
    ] {
        oneshot_median(&app, route, access, 50).await; // warm up
        let total = oneshot_median(&app, route, access, 400).await;
        let floor = sql_floor(db, route, 400).await?;
        let overhead = total - floor;
        let mut r = row(
            format!("in-process {} (router oneshot)", route.name()),
            format!("{total:.3} ms median; {overhead:.3} ms outside the database"),
        );
        r.floor = format!("{floor:.3} ms SQL alone");
        r.ratio = Some(total / floor);
        r.target = "overhead <= 0.2 ms".into();
        r.met = Some(overhead <= 0.2);
        rows.push(r);
    }
    Ok(())
}

/// An API Gateway WebSocket event (the shape of `events/realtime/*.json`).
fn websocket_event(
    route: &str,
    connection: &str,
    ticket: Option<&str>,
    body: Option<&str>,
) -> Value {
    let kind = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut event = json!({
        "requestContext": {"routeKey": route, "eventType": kind, "connectionId": connection,
            "stage": "live", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "requestId": uuid::Uuid::now_v7().to_string(), "connectedAt": 1796320211000_i64,
            "requestTimeEpoch": 1796320211000_i64, "identity": {"sourceIp": "203.0.113.42"}},
        "isBase64Encoded": false,
    });
    if let Some(ticket) = ticket {
        event["queryStringParameters"] = json!({"ticket": ticket});
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// Real-time push: what a tab pays to connect (a ticket from the notifications function,
/// then `$connect`), and what a push costs per open connection (the connections query,
/// then one SigV4-signed `PostToConnection` each, to a loopback Management API that
/// answers at once).
async fn realtime_costs(rows: &mut Vec<Row>, db: &PgPool, access: &[String]) -> Result<()> {
    use shared::realtime::{Frame, connections, management::Management};

    let app = api(db);
    let state = realtime::State { db: db.clone() };
    let mut connect = Vec::new();
    for i in 0..200 {
        let t0 = Instant::now();
        let request = Request::post("/api/v1/realtime/tickets")
            .header(
                "authorization",
                format!("Bearer {}", access[i % access.len()]),
            )
            .body(Body::empty())?;
        let response = app.clone().oneshot(request).await?;
        anyhow::ensure!(response.status() == 201, "ticket: {}", response.status());
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await?
            .to_bytes();
        let ticket: Value = serde_json::from_slice(&body)?;
        let event = websocket_event(
            "$connect",
            &format!("bench-{i}"),
            ticket["ticket"].as_str(),
            None,
        );
        let event = serde_json::from_value(event)?;
        let answer = realtime::handle(
            &state,
            lambda_runtime::LambdaEvent::new(event, Default::default()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("$connect: {e}"))?;
        anyhow::ensure!(
            answer.status_code == 200,
            "$connect answered {}",
            answer.status_code
        );
        connect.push(ms(t0.elapsed()));
    }
    rows.push(row(
        "realtime connect (ticket + $connect, in-process, median of 200)",
        format!("{:.3} ms", median(connect)),
    ));

    // The Management API, answering every post at once.
    let stub = Router::new().route(
        "/live/@connections/{id}",
        axum::routing::post(|| async { http::StatusCode::OK }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, stub).await });
    let access_key =
        aws_credential_types::Credentials::new("AKIDBENCH", "bench", None, None, "bench");
    let management = Management::new(
        &format!("http://{addr}/live"),
        shared::sigv4::AwsAccess::new(access_key, "us-east-1", None),
    )?;
    let user: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users ORDER BY email LIMIT 1")
        .fetch_one(db)
        .await?;
    let frame = Frame::Notification {
        notification: shared::realtime::PushedNotification {
            id: uuid::Uuid::now_v7(),
            kind: "order_confirmed".into(),
            title: "Order confirmed: Bachata Weekend".into(),
            body: "Your 2 tickets are ready for Bachata Weekend.".into(),
            created_at: time::OffsetDateTime::now_utc(),
        },
    };
    for tabs in [1_i64, 10, 50] {
        sqlx::query("DELETE FROM realtime_connections WHERE user_id = $1")
            .bind(user)
            .execute(db)
            .await?;
        sqlx::query(
            "INSERT INTO realtime_connections (connection_id, user_id, expires_at)
             SELECT 'fan' || g, $1, now() + interval '1 hour' FROM generate_series(1, $2) g",
        )
        .bind(user)
        .bind(tabs)
        .execute(db)
        .await?;
        let mut pushes = Vec::new();
        for _ in 0..50 {
            let t0 = Instant::now();
            let pushed = connections::push(db, &management, user, &frame).await;
            anyhow::ensure!(i64::from(pushed.sent) == tabs, "pushed {pushed:?}");
            pushes.push(ms(t0.elapsed()));
        }
        let total = median(pushes);
        rows.push(row(
            format!("realtime push to {tabs} open tab(s) (median of 50)"),
            format!(
                "{total:.3} ms; {:.3} ms per connection",
                total / tabs as f64
            ),
        ));
    }
    sqlx::query("DELETE FROM realtime_connections")
        .execute(db)
        .await?;
    Ok(())
}

async fn login_vs_argon2(rows: &mut Vec<Row>, db: &PgPool) -> Result<()> {
    let app = api(db);
    let hash = shared::identity::password::hash(PASSWORD.to_owned()).await?;
    let mut bare = Vec::new();
    let mut login = Vec::new();
    for i in 0..15 {
        let t0 = Instant::now();
        shared::identity::password::verify_or_dummy(PASSWORD.to_owned(), Some(hash.clone()))
            .await?;
        bare.push(ms(t0.elapsed()));
        let body = json!({"email": format!("bench{}@example.com", i % 4), "password": PASSWORD})
            .to_string();
        let request = Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(body))?;
        let t0 = Instant::now();
        let response = app.clone().oneshot(request).await?;
        anyhow::ensure!(
            response.status().is_success(),
            "login failed: {}",
            response.status()
        );
        login.push(ms(t0.elapsed()));
    }
    let (login, bare) = (median(login), median(bare));
    let mut r = row("login (in-process, median of 15)", format!("{login:.1} ms"));
    r.floor = format!("{bare:.1} ms bare argon2id verify");
    r.ratio = Some(login / bare);
    r.target = "<= 1.2x".into();
    r.met = Some(login / bare <= 1.2);
    rows.push(r);
    Ok(())
}

async fn worker_throughput(rows: &mut Vec<Row>, db: &PgPool) -> Result<()> {
    let users: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(db)
        .await?;
    let batches = 100;
    let started = Instant::now();
    for b in 0..batches {
        let records: Vec<Value> = (0..10)
            .map(|i| {
                let message = shared::messaging::messages::NotificationMessage {
                    id: uuid::Uuid::now_v7(),
                    user_id: UserId(users[(b * 10 + i) % users.len()]),
                    kind: shared::messaging::messages::NotificationKind::UploadReady,
                    title: "t".into(),
                    body: "b".into(),
                };
                json!({"messageId": format!("{b}-{i}"), "receiptHandle": "r", "body": serde_json::to_string(&message).unwrap_or_default(),
                       "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:notifications", "awsRegion": "us-east-1"})
            })
            .collect();
        let response = lambda::invoke_worker(db, json!({ "Records": records })).await;
        anyhow::ensure!(
            response["batchItemFailures"] == json!([]),
            "worker failures: {response}"
        );
    }
    let per_second = (batches * 10) as f64 / started.elapsed().as_secs_f64();
    rows.push(row(
        "notify-worker throughput (batches of 10)",
        format!("{per_second:.0} messages/s"),
    ));
    Ok(())
}

/// A release binary of the workspace (built by `scripts/bench` before this runs).
/// The order storm: 500 buyers at once, each placing paid orders for one ticket type of
/// one event (every order takes the event's lock in turn), over loopback HTTP.
async fn order_storm(rows: &mut Vec<Row>, db: &PgPool, access: Arc<Vec<String>>) -> Result<()> {
    let stripe = StandIn::start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app =
        api_with(db, &stripe.config()).layer(axum::middleware::from_fn(source_ip_per_connection));
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let event: uuid::Uuid = sqlx::query_scalar("SELECT id FROM events WHERE slug = $1")
        .bind(PAGE_SLUG)
        .fetch_one(db)
        .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .build()?;
    let url = format!("http://{addr}/api/v1/orders");
    let stats = load::run(500, 5000, move |i| {
        let body =
            json!({"event_id": event, "lines": [{"ticket_type_id": STORM_TYPE, "quantity": 1}]});
        let request = client
            .post(&url)
            .bearer_auth(&access[i % access.len()])
            .header("idempotency-key", format!("storm-{i}"))
            .json(&body);
        async move {
            request
                .send()
                .await
                .is_ok_and(|r| r.status() == http::StatusCode::CREATED)
        }
    })
    .await;
    server.abort();
    let placed: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'pending'")
        .fetch_one(db)
        .await?;
    let mut r = row(
        "order storm @500 buyers (5000 paid orders, one event, each opening its PaymentIntent)",
        format!(
            "{:.0} orders/s, p50 {:.1} / p99 {:.1} ms, {} errors, {placed} held",
            stats.rps, stats.p50, stats.p99, stats.errors
        ),
    );
    r.target = "0 errors".into();
    r.met = Some(stats.errors == 0 && placed == 5000);
    rows.push(r);
    webhook_cost(rows, db, &stripe).await
}

/// Stripe's webhook settling each storm order's payment (`payment_intent.succeeded`:
/// signature, the event recorded, the intent re-read from the stand-in, the order
/// confirmed under the event's lock, the ticket issued, the ledger written), in-process.
async fn webhook_cost(rows: &mut Vec<Row>, db: &PgPool, stripe: &StandIn) -> Result<()> {
    let secret = secrecy::SecretString::from(BENCH_WEBHOOK_SECRET.to_owned());
    let app = shared::http::app(payments::router(payments::AppState::new(
        db.clone(),
        unreachable_publisher(),
        &stripe.config(),
        vec![secret.clone()],
    )));
    let intents: Vec<String> =
        sqlx::query_scalar("SELECT intent_id FROM payments ORDER BY created_at LIMIT 1000")
            .fetch_all(db)
            .await?;
    let mut samples = Vec::with_capacity(intents.len());
    let mut settled = 0;
    for (i, intent) in intents.iter().enumerate() {
        let body = json!({"id": format!("evt_bench_storm_{i}"), "object": "event",
            "type": "payment_intent.succeeded", "data": {"object": {"id": intent}}})
        .to_string();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = shared::payments::signature::sign(&secret, now, body.as_bytes());
        let request = Request::builder()
            .method("POST")
            .uri(api_tests::stripe::WEBHOOK)
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(Body::from(body))?;
        let t0 = Instant::now();
        let response = app.clone().oneshot(request).await.expect("infallible");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        samples.push(ms(t0.elapsed()));
        settled += usize::from(bytes.windows(11).any(|w| w == b"\"confirmed\""));
    }
    samples.sort_by(f64::total_cmp);
    let p99 = samples[samples.len() * 99 / 100];
    let mut r = row(
        format!(
            "stripe webhook, payment settled ({} events, in-process)",
            intents.len()
        ),
        format!(
            "{:.2} ms median, p99 {p99:.2} ms; {settled} orders confirmed",
            median(samples.clone())
        ),
    );
    r.target = "every event settles its order".into();
    r.met = Some(settled == intents.len());
    rows.push(r);
    Ok(())
}

/// A Stripe stand-in on loopback for the storm: answers PaymentIntent creation and
/// retrieval at once, so the figures are our order and webhook paths plus one real HTTP
/// round trip to Stripe's API shape. (localstripe rewrites its whole store on every
/// write, O(n) per intent: thousands of intents would measure it, not us. The tests use
/// localstripe; Stripe's own latency is outside our code either way.)
struct StandIn {
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    async fn start() -> Result<Self> {
        use axum::{
            extract::Path as UrlPath,
            routing::{get, post},
        };
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let intent = |id: String, status: &str| {
            axum::Json(
                json!({"id": id, "object": "payment_intent", "status": status,
                "amount": 1500, "currency": "eur", "client_secret": format!("{id}_secret_bench"),
                "metadata": {}, "last_payment_error": null}),
            )
        };
        let app = Router::new()
            .route(
                "/v1/payment_intents",
                post(move || {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    async move { intent(format!("pi_bench{n}"), "requires_payment_method") }
                }),
            )
            .route(
                "/v1/payment_intents/{id}",
                get(move |UrlPath(id): UrlPath<String>| async move { intent(id, "succeeded") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, server })
    }

    fn config(&self) -> shared::payments::StripeConfig {
        shared::payments::StripeConfig {
            api_base: format!("http://{}", self.addr),
            ..api_tests::stripe::config()
        }
    }
}

fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    Path::new(&target).join("release").join(name)
}

/// The ARNs a function started as in AWS gets instead of its database URL and JWT key.
struct SecretArns {
    database_url: String,
    jwt_secret: String,
}

fn spawn_function(name: &str, api: &runtime_api::RuntimeApi, db_url: &str) -> Result<Child> {
    spawn_function_with(name, api, db_url, None)
}

fn spawn_function_with(
    name: &str,
    api: &runtime_api::RuntimeApi,
    db_url: &str,
    secrets: Option<&SecretArns>,
) -> Result<Child> {
    let mut command = Command::new(binary(name));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET", api_tests::JWT_SECRET)
        .env(
            "NOTIFICATIONS_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/nowhere",
        )
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("APP_BASE_URL", "http://localhost:3000")
        // Paid orders and the webhook (cold starts never call Stripe).
        .env("STRIPE_API_BASE", api_tests::stripe::api_base())
        .env("STRIPE_SECRET_KEY", api_tests::stripe::SECRET_KEY)
        .env("STRIPE_PUBLISHABLE_KEY", api_tests::stripe::PUBLISHABLE_KEY)
        .env("STRIPE_WEBHOOK_SECRETS", BENCH_WEBHOOK_SECRET)
        .env("MAIL_DIR", std::env::temp_dir().join("bench-mail"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(secrets) = secrets {
        command
            .env_remove("DATABASE_URL")
            .env_remove("JWT_SECRET")
            .env("DATABASE_URL_SECRET_ARN", &secrets.database_url)
            .env("JWT_SECRET_ARN", &secrets.jwt_secret)
            .env("AWS_ENDPOINT_URL", api_tests::sqs::endpoint());
    }
    command
        .spawn()
        .with_context(|| format!("cannot start {} (built?)", binary(name).display()))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Time from process start to the first answer, in milliseconds.
async fn cold_start(name: &str, event: &Value, db_url: &str) -> Result<f64> {
    cold_start_with(name, event, db_url, None).await
}

/// [`cold_start`], the secrets fetched from Secrets Manager if `secrets` names them.
async fn cold_start_with(
    name: &str,
    event: &Value,
    db_url: &str,
    secrets: Option<&SecretArns>,
) -> Result<f64> {
    let mut api = runtime_api::RuntimeApi::start().await?;
    api.push(event).await;
    let t0 = Instant::now();
    let mut child = spawn_function_with(name, &api, db_url, secrets)?;
    let answer = api.answer(Duration::from_secs(20)).await;
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer?;
    anyhow::ensure!(
        answer.ok,
        "{name} failed: {}",
        String::from_utf8_lossy(&answer.body)
    );
    Ok(ms(answer.at - t0))
}

/// Starts per figure. The floor is started between a function's own starts, so that
/// a machine busier at one moment than another moves both sides of the ratio alike.
const COLD_STARTS: usize = 15;

fn http_event(method: &str, path: &str, token: Option<&str>) -> Value {
    let headers: Vec<(&str, String)> = token
        .map(|t| ("authorization", format!("Bearer {t}")))
        .into_iter()
        .collect();
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    lambda::api_gateway_event(method.parse().expect("method"), path, &refs, None)
}

/// The webhook signing secret the payments function is started with.
const BENCH_WEBHOOK_SECRET: &str = "whsec_bench";

/// A Stripe delivery of an event the function records and ignores (no Stripe call):
/// verified, then one query (and, the first time, the insert).
fn webhook_event() -> Value {
    let body = json!({"id": format!("evt_bench_{}", uuid::Uuid::now_v7().simple()),
        "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_bench"}}})
    .to_string();
    let secret = secrecy::SecretString::from(BENCH_WEBHOOK_SECRET.to_owned());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = shared::payments::signature::sign(&secret, now, body.as_bytes());
    lambda::api_gateway_event(
        http::Method::POST,
        api_tests::stripe::WEBHOOK,
        &[
            ("stripe-signature", signature.as_str()),
            ("content-type", "application/json"),
        ],
        Some(&body),
    )
}

async fn cold_starts_and_memory(rows: &mut Vec<Row>, db_url: &str, token: &str) -> Result<()> {
    let ping = json!({"ping": true});
    let floor_row = rows.len();
    let mut every_floor = Vec::new();
    let empty_batch = json!({"Records": []});
    // One message (for a user who does not exist: the worker records it and drops it).
    let message = json!({"id": uuid::Uuid::now_v7(), "user_id": uuid::Uuid::now_v7(), "kind": "upload_ready", "title": "t", "body": "b"});
    let one_record = json!({"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": message.to_string(),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:notifications", "awsRegion": "us-east-1"}]});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "auth",
            http_event("GET", "/api/v1/auth/nope", None),
            http_event("GET", "/api/v1/auth/me", Some(token)),
        ),
        (
            "notifications",
            http_event("GET", "/api/v1/notifications/nope", None),
            http_event("GET", "/api/v1/notifications", Some(token)),
        ),
        (
            "tasks",
            http_event("GET", "/api/v1/tasks/nope/x", None),
            http_event("GET", "/api/v1/tasks", Some(token)),
        ),
        (
            "users",
            http_event("GET", "/api/v1/users/me/nope", None),
            http_event("GET", "/api/v1/users/me", Some(token)),
        ),
        (
            "events-api",
            http_event("GET", "/api/v1/events/nope/x", None),
            // The public page of an event, no token: one query (this one is not there).
            http_event("GET", "/api/v1/events/no-such-event", None),
        ),
        (
            "orders",
            http_event("GET", "/api/v1/orders/nope/x", None),
            http_event("GET", "/api/v1/orders", Some(token)),
        ),
        (
            "payments",
            http_event("GET", "/api/v1/payments/nope", None),
            webhook_event(),
        ),
        (
            "platform",
            http_event("GET", "/openapi.json", None),
            http_event("GET", "/health", None),
        ),
        ("notify-worker", empty_batch, one_record),
        // A ping needs no query; a $disconnect deletes its row.
        (
            "realtime",
            websocket_event("$default", "bench-cold", None, Some(r#"{"action":"ping"}"#)),
            websocket_event("$disconnect", "bench-cold", None, None),
        ),
    ];
    for (name, no_db, with_db) in cases {
        let (mut floor, mut without, mut with) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..COLD_STARTS {
            floor.push(cold_start("hello-lambda", &ping, db_url).await?);
            without.push(cold_start(name, &no_db, db_url).await?);
            with.push(cold_start(name, &with_db, db_url).await?);
        }
        every_floor.extend_from_slice(&floor);
        let (hello, without, with) = (median(floor), median(without), median(with));
        let mut r = row(
            format!("cold start {name}"),
            format!("{without:.1} ms; {with:.1} ms with a first database query"),
        );
        r.floor = format!("{hello:.1} ms");
        r.ratio = Some(without / hello);
        r.target = "<= 1.5x floor".into();
        r.met = Some(without / hello <= 1.5);
        rows.push(r);

        // Peak memory: one environment serving a stream of warm invocations.
        let mut api = runtime_api::RuntimeApi::start().await?;
        for _ in 0..300 {
            api.push(&with_db).await;
        }
        let mut child = spawn_function(name, &api, db_url)?;
        for _ in 0..300 {
            api.answer(Duration::from_secs(20)).await?;
        }
        let peak = peak_rss_kib(child.id()).unwrap_or(0) as f64 / 1024.0;
        let _ = child.kill();
        let _ = child.wait();
        let mut r = row(
            format!("peak RSS {name} (300 warm invocations)"),
            format!("{peak:.1} MiB"),
        );
        r.target = "<= 30 MiB".into();
        r.met = Some(peak <= 30.0);
        rows.push(r);
    }
    rows.insert(
        floor_row,
        row(
            "cold start floor: hello-world lambda_runtime",
            format!(
                "{:.1} ms (median of all {} starts)",
                median(every_floor.clone()),
                every_floor.len()
            ),
        ),
    );
    Ok(())
}

/// What fetching the secrets at cold start adds: `tasks` answering its first list with its
/// database URL and JWT key as plain variables (local) and as ARNs (AWS: three
/// `GetSecretValue` calls at once, current and previous JWT key and the URL), against
/// the Secrets Manager emulator on loopback.
async fn secret_fetch_cost(rows: &mut Vec<Row>, db_url: &str, token: &str) -> Result<()> {
    let secrets = SecretArns {
        database_url: api_tests::secrets::create(db_url).await,
        jwt_secret: api_tests::secrets::create(api_tests::JWT_SECRET).await,
    };
    let event = http_event("GET", "/api/v1/tasks", Some(token));
    let (mut plain, mut fetched) = (Vec::new(), Vec::new());
    for _ in 0..COLD_STARTS {
        plain.push(cold_start("tasks", &event, db_url).await?);
        fetched.push(cold_start_with("tasks", &event, db_url, Some(&secrets)).await?);
    }
    let (plain, fetched) = (median(plain), median(fetched));
    let mut r = row(
        "cold start tasks with its secrets from Secrets Manager (emulator, loopback)",
        format!(
            "{fetched:.1} ms, against {plain:.1} ms with plain variables: +{:.1} ms",
            fetched - plain
        ),
    );
    r.floor = format!("{plain:.1} ms");
    r.ratio = Some(fetched / plain);
    rows.push(r);
    Ok(())
}

fn binary_sizes(rows: &mut Vec<Row>) {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
    // Every function of the workspace: a new one is measured without an edit here.
    let functions = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
    let mut names: Vec<String> = std::fs::read_dir(functions)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().join("Cargo.toml").exists())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for name in &names {
        let path = Path::new(&target)
            .join("lambda")
            .join(name)
            .join("bootstrap");
        let Ok(meta) = std::fs::metadata(&path) else {
            rows.push(row(
                format!("arm64 binary {name}"),
                "not built (cargo lambda build --release --arm64)",
            ));
            continue;
        };
        let mib = meta.len() as f64 / (1024.0 * 1024.0);
        let mut r = row(
            format!("arm64 binary {name} (stripped)"),
            format!("{mib:.2} MiB"),
        );
        r.target = "<= 6 MiB".into();
        r.met = Some(mib <= 6.0);
        rows.push(r);
    }
}

fn main() -> Result<()> {
    // Few blocking threads: each argon2 call holds 19 MiB while it runs.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()?;
    // BENCH_ONLY=cold,warm (say) runs some sections, for profiling one of them.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    runtime.block_on(async {
        let mut rows = Vec::new();
        let (db, url) = fresh_database().await?;
        let (access, refresh) = seed(&db, 50, 200).await?;
        let token = access[0].clone();
        let access_for_storm = access.clone();
        if run("sizes") {
            binary_sizes(&mut rows);
        }
        if run("cold") {
            cold_starts_and_memory(&mut rows, &url, &token).await?;
        }
        if run("secrets") {
            secret_fetch_cost(&mut rows, &url, &token).await?;
        }
        if run("login") {
            login_vs_argon2(&mut rows, &db).await?;
        }
        if run("inprocess") {
            in_process(&mut rows, &db, &access).await?;
        }
        if run("warm") {
            warm_http(&mut rows, &db, Arc::new(access), Arc::new(refresh)).await?;
        }
        if run("worker") {
            worker_throughput(&mut rows, &db).await?;
        }
        if run("realtime") {
            realtime_costs(&mut rows, &db, &access_for_storm).await?;
        }
        if run("storm") {
            order_storm(&mut rows, &db, Arc::new(access_for_storm)).await?;
        }
        print_table(&rows);
        Ok(())
    })
}

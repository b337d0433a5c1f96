//! `GET /metrics`: the gauges an admin (or a Prometheus scraper with an admin's token)
//! reads, as JSON or Prometheus text, with queue depths read from SQS (the emulator).

use api_tests::{TestApp, lambda, sqs};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn admins_read_the_gauges_as_json_or_prometheus_text(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let admin = app.admin("root@example.com").await;
    let ana = app.user("ana@example.com").await;
    // Two messages wait on a queue of this test's own; one outbox message stays unsent.
    let queue = sqs::Queue::create().await;
    queue.send_raw("{}").await;
    queue.send_raw("{}").await;
    sqlx::query(
        "INSERT INTO outbox (id, queue, payload, created_at, sent_at)
         VALUES (gen_random_uuid(), 'notifications', '{}', now() - interval '90 seconds', NULL)",
    )
    .execute(&db)
    .await
    .unwrap();
    let unreachable = api_tests::sqs::unreachable_publisher();
    let router = shared::http::app(users::router(
        users::AppState::new(db.clone(), &api_tests::token_config()).with_queues(vec![
            ("notifications", queue.publisher()),
            ("notifications_dlq", unreachable),
        ]),
    ));
    let get = |token: Option<String>, accept: &'static str| {
        let router = router.clone();
        async move {
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![("accept", accept)];
            if let Some(auth) = auth.as_deref() {
                headers.push(("authorization", auth));
            }
            lambda::invoke_http(
                router,
                lambda::api_gateway_event(Method::GET, "/metrics", &headers, None),
            )
            .await
        }
    };

    let json = get(Some(admin.access_token.clone()), "application/json").await;
    assert_eq!(
        json.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&json.body)
    );
    assert_eq!(json.headers.get("cache-control").unwrap(), "no-store");
    let metrics: Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(metrics["users"], 2, "{metrics}");
    assert!(metrics["live_sessions"].as_i64().unwrap() >= 2, "{metrics}");
    assert!(
        metrics["outbox_pending"].as_i64().unwrap() >= 1,
        "{metrics}"
    );
    assert!(
        metrics["outbox_oldest_seconds"].as_f64().unwrap() >= 89.0,
        "{metrics}"
    );
    assert_eq!(
        metrics["queues"]["notifications"]["visible"], 2,
        "{metrics}"
    );
    // A queue SQS cannot be asked about is reported as unknown, not as a failure.
    assert_eq!(
        metrics["queues"]["notifications_dlq"],
        Value::Null,
        "{metrics}"
    );

    let text = get(Some(admin.access_token.clone()), "text/plain").await;
    assert_eq!(text.status, StatusCode::OK);
    assert_eq!(
        text.headers.get("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(text.body).unwrap();
    assert!(
        text.contains("# TYPE backend_users gauge\nbackend_users 2\n"),
        "{text}"
    );
    assert!(
        text.contains("backend_queue_messages{queue=\"notifications\",state=\"visible\"} 2\n"),
        "{text}"
    );
    assert!(!text.contains("notifications_dlq"), "{text}");
    // Every sample line is `name{labels} value`, as Prometheus parses it.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(line.starts_with("backend_"), "{line}");
    }

    // Nobody else.
    let user = get(Some(ana.access_token.clone()), "application/json").await;
    assert_eq!(user.status, StatusCode::FORBIDDEN);
    let anonymous = get(None, "text/plain").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn orders_are_counted_by_state(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let admin = app.admin("root@example.com").await;
    let ana = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(&ana, None, &[crate::orders::free("Guest", 10)])
        .await;
    let buyer = app.user("bo@example.com").await;
    for key in ["m1", "m2"] {
        let placed = app
            .order(&buyer, key, &crate::orders::one_line(&event, &types[0], 1))
            .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    }
    let metrics: Value = app
        .call(Method::GET, "/metrics")
        .bearer(&admin.access_token)
        .send()
        .await
        .json();
    assert_eq!(metrics["orders"]["confirmed"], 2, "{metrics}");
}

/// The EMF lines the functions really emit as they serve: the per-request metrics and
/// the business counters, each a valid CloudWatch Embedded Metric Format document.
#[sqlx::test(migrations = "../migrations")]
async fn serving_emits_request_and_business_metrics(db: PgPool) {
    use shared::telemetry::metrics;
    let mark = metrics::capture();
    let app = TestApp::new(db).await;
    let buyer = app.user("ada@example.com").await; // registers and logs in
    let wrong = app.login("ada@example.com", "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let organizer = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(
            &organizer,
            None,
            &[json!({"name": "Free", "price_minor": 0, "currency": "EUR", "quantity": 10})],
        )
        .await;
    let line = json!({"event_id": event, "lines": [{"ticket_type_id": types[0], "quantity": 1}]});
    assert_eq!(
        app.order(&buyer, "k-1", &line).await.status,
        StatusCode::CREATED
    );

    let lines: Vec<Value> = metrics::captured_since(mark)
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let emitted = |name: &str| {
        lines.iter().any(|l| {
            l[name].as_f64().is_some_and(|v| v > 0.0)
                && l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["Name"] == name))
        })
    };
    for name in [
        "Registrations",
        "Logins",
        "LoginFailures",
        "OrdersPlaced",
        "Requests",
        "Latency",
    ] {
        assert!(emitted(name), "no {name} metric among {lines:#?}");
    }
}

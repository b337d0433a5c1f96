//! Input a client may send on purpose or by accident: instants that leave the calendar
//! in UTC, NUL characters, and (property-based) anything at all in every field and query
//! parameter of every route. The answer is always a 4xx problem or a success, never 5xx.

use api_tests::{Response, TestApp};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{Method, StatusCode};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Valid RFC 3339 text whose instant in UTC is in year 10000.
const PAST_9999: &str = "9999-12-31T23:30:00-01:00";

fn field_of(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or_default()
}

#[sqlx::test(migrations = "../migrations")]
async fn instants_past_year_9999_in_utc_are_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let token = app.user("ada@example.com").await.access_token;
    let admin = app.admin("root@example.com").await.access_token;

    let r = app
        .post(
            "/api/v1/tasks",
            &json!({"title": "t", "due_at": PAST_9999}),
            Some(&token),
        )
        .await;
    let problem = r.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem["detail"].as_str().unwrap().contains("due_at"),
        "{problem}"
    );
    let task: Value = app
        .post("/api/v1/tasks", &json!({"title": "t"}), Some(&token))
        .await
        .json();
    let r = app
        .patch(
            &format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()),
            &json!({"due_at": PAST_9999}),
            Some(&token),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY);
    for filter in ["due_before", "due_after"] {
        let r = app
            .get(
                &format!("/api/v1/tasks?{filter}={}", encode(PAST_9999)),
                Some(&token),
            )
            .await;
        assert_eq!(
            field_of(&r.problem(StatusCode::UNPROCESSABLE_ENTITY)),
            filter
        );
    }
    let r = app
        .get(
            &format!("/api/v1/audit-events?since={}", encode(PAST_9999)),
            Some(&admin),
        )
        .await;
    r.problem(StatusCode::UNPROCESSABLE_ENTITY);

    // Unsigned cursors are the key of the last item, readable and editable by clients.
    let cursor = URL_SAFE_NO_PAD
        .encode(json!({"t": PAST_9999, "id": "00000000-0000-0000-0000-000000000000"}).to_string());
    for (path, who) in [
        ("/api/v1/notifications", &token),
        ("/api/v1/users", &admin),
        ("/api/v1/audit-events", &admin),
    ] {
        let r = app.get(&format!("{path}?cursor={cursor}"), Some(who)).await;
        r.problem(StatusCode::BAD_REQUEST);
    }
    // The last instant of year 9999 in UTC is fine.
    let r = app
        .post(
            "/api/v1/tasks",
            &json!({"title": "t", "due_at": "9999-12-31T23:59:59Z"}),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[sqlx::test(migrations = "../migrations")]
async fn nul_characters_are_refused_naming_the_field(db: PgPool) {
    let app = TestApp::new(db).await;
    let token = app.user("ada@example.com").await.access_token;
    let admin = app.admin("root@example.com").await.access_token;

    let r = app.login("ada@example.com\u{0}", "whatever password").await;
    assert_eq!(
        field_of(&r.problem(StatusCode::UNPROCESSABLE_ENTITY)),
        "email"
    );
    let r = app
        .register("bob@example.com", api_tests::PASSWORD, "Bo\u{0}b")
        .await;
    assert_eq!(
        field_of(&r.problem(StatusCode::UNPROCESSABLE_ENTITY)),
        "name"
    );
    for (body, field) in [
        (json!({"title": "a\u{0}"}), "title"),
        (json!({"title": "a", "description": "\u{0}"}), "description"),
        (json!({"title": "a", "tags": ["ok", "x\u{0}y"]}), "tags/1"),
    ] {
        let r = app.post("/api/v1/tasks", &body, Some(&token)).await;
        assert_eq!(
            field_of(&r.problem(StatusCode::UNPROCESSABLE_ENTITY)),
            field
        );
    }
    for (path, who, field) in [
        ("/api/v1/tasks?q=a%00b", &token, "q"),
        ("/api/v1/tasks?tag=%00", &token, "tag"),
        ("/api/v1/users?email=ada%00", &admin, "email"),
    ] {
        let r = app.get(path, Some(who)).await;
        assert_eq!(
            field_of(&r.problem(StatusCode::UNPROCESSABLE_ENTITY)),
            field,
            "{path}"
        );
    }
    let r = app
        .patch("/api/v1/users/me", &json!({"name": "\u{0}"}), Some(&token))
        .await;
    assert_eq!(
        field_of(&r.problem(StatusCode::UNPROCESSABLE_ENTITY)),
        "name"
    );
    // Nothing was written by any of them.
    let titles: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(titles, 0);
}

fn clip(s: &str) -> String {
    s.chars().take(600).collect()
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Text a client might send: anything, plus the values that have broken parsers before.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,300}",
        Just(String::new()),
        Just("\u{0}".to_owned()),
        Just(PAST_9999.to_owned()),
        Just("0000-01-01T00:00:00+00:01".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("1e309".to_owned()),
        Just("İ\u{200b}\u{202e}\u{feff}\u{fffd}".to_owned()),
        Just("x".repeat(70_000)),
        Just("%".to_owned()),
        Just("' OR 1=1 --".to_owned()),
        Just("todo,,done,".to_owned()),
        Just("-".to_owned()),
    ]
}

/// Any JSON value, text most often.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => hostile_text().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => Just(json!(u64::MAX)),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(json!([[], {}, "a"])),
        1 => Just(json!({"nested": {"deep": [1]}})),
    ]
}

/// Draws `cases` values from `strategy`, reproducibly (no shrinking: each case is an
/// HTTP round trip, and a failure prints the input).
fn draws<S: Strategy>(strategy: S, cases: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

fn assert_answered(r: &Response, what: &str) {
    assert!(
        r.status.as_u16() < 500,
        "{what} got {}: {}",
        r.status,
        r.text()
    );
    if r.status.as_u16() >= 400 {
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}: {}",
            r.text()
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn any_value_in_any_body_field_gets_a_clear_answer(db: PgPool) {
    let app = TestApp::new(db).await;
    let user = app.user("ada@example.com").await;
    let admin = app.admin("root@example.com").await.access_token;
    let token = user.access_token.clone();
    let task: Value = app
        .post("/api/v1/tasks", &json!({"title": "t"}), Some(&token))
        .await
        .json();
    let task = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let ada = format!("/api/v1/users/{}", app.id_of(&token).await);
    let organizer = app.organizer("ana@example.com").await.access_token;
    let valid_event = json!({
        "title": "Night", "description": "d", "category": "salsa",
        "venue": {"name": "Hall", "address": "Street 1", "city": "Madrid", "region": "", "country": "ES"},
        "starts_at": "2030-01-01T20:00:00Z", "ends_at": "2030-01-02T02:00:00Z",
        "timezone": "Europe/Madrid", "capacity": 100, "cover_upload_id": null
    });
    let event: Value = app
        .post("/api/v1/events", &valid_event, Some(&organizer))
        .await
        .json();
    let event = format!("/api/v1/events/{}", event["id"].as_str().unwrap());
    let ticket_types = format!("{event}/ticket-types");

    // Each route with a valid body; each case replaces one field with a hostile value.
    let routes: Vec<(Method, &str, Option<&str>, Value)> = vec![
        (
            Method::POST,
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "x"}),
        ),
        (
            Method::POST,
            "/api/v1/auth/register",
            None,
            json!({"email": "new@example.com", "password": api_tests::PASSWORD, "name": "N"}),
        ),
        (
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            json!({"email": "ada@example.com"}),
        ),
        (
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({"token": "t", "new_password": api_tests::PASSWORD}),
        ),
        (
            Method::POST,
            "/api/v1/auth/verify-email",
            None,
            json!({"token": "t"}),
        ),
        (
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": "r"}),
        ),
        (
            Method::POST,
            "/api/v1/tasks",
            Some(&token),
            json!({"title": "t", "description": "d", "status": "todo", "priority": "high", "due_at": "2030-01-01T00:00:00Z", "tags": ["a"]}),
        ),
        (
            Method::PATCH,
            &task,
            Some(&token),
            json!({"title": "t", "description": "d", "status": "done", "priority": "low", "due_at": null, "tags": ["b"]}),
        ),
        (
            Method::PATCH,
            "/api/v1/users/me",
            Some(&token),
            json!({"name": "Ada"}),
        ),
        (
            Method::POST,
            "/api/v1/users/me/password",
            Some(&token),
            json!({"current_password": "x", "new_password": "y"}),
        ),
        (
            Method::PATCH,
            &ada,
            Some(&admin),
            json!({"name": "Ada", "role": "user"}),
        ),
        (
            Method::POST,
            "/api/v1/uploads",
            Some(&token),
            json!({"purpose": "avatar", "content_type": "image/png", "size": 100, "filename": "a.png"}),
        ),
        (
            Method::POST,
            "/api/v1/events",
            Some(&organizer),
            valid_event.clone(),
        ),
        (Method::PATCH, &event, Some(&organizer), valid_event.clone()),
        (
            Method::POST,
            &ticket_types,
            Some(&organizer),
            json!({"name": "Pass", "description": "d", "price_minor": 100, "currency": "EUR",
                   "quantity": 10, "sales_start": null, "sales_end": "2029-12-31T00:00:00Z",
                   "min_per_order": 1, "max_per_order": 4, "hidden": false}),
        ),
    ];
    let cases = draws((0..64usize, hostile_value()), 48);
    for (method, path, bearer, valid) in &routes {
        let fields: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();
        for (pick, value) in &cases {
            let mut body = valid.clone();
            let field = &fields[pick % fields.len()];
            body[field] = value.clone();
            let r = app
                .call(method.clone(), path)
                .bearer_opt(*bearer)
                .json(&body)
                .from_ip(&format!("10.0.{}.{}", pick % 250, pick % 7))
                .send()
                .await;
            let shown: String = value.to_string().chars().take(80).collect();
            assert_answered(&r, &format!("{method} {path} {field}={shown}"));
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn any_query_string_gets_a_clear_answer(db: PgPool) {
    let app = TestApp::new(db).await;
    let token = app.user("ada@example.com").await.access_token;
    let admin = app.admin("root@example.com").await.access_token;
    let organizer = app.organizer("ana@example.com").await.access_token;
    let lists: [(&str, &str, &[&str]); 6] = [
        (
            "/api/v1/tasks",
            &token,
            &[
                "status",
                "priority",
                "tag",
                "due_before",
                "due_after",
                "overdue",
                "q",
                "sort",
                "limit",
                "cursor",
            ],
        ),
        (
            "/api/v1/notifications",
            &token,
            &["limit", "cursor", "unread"],
        ),
        (
            "/api/v1/users",
            &admin,
            &["email", "role", "limit", "cursor"],
        ),
        (
            "/api/v1/audit-events",
            &admin,
            &["kind", "actor_id", "target_id", "since", "limit", "cursor"],
        ),
        ("/api/v1/events/mine", &organizer, &["limit", "cursor"]),
        (
            "/api/v1/events",
            &token,
            &[
                "q",
                "city",
                "category",
                "from",
                "to",
                "organizer",
                "limit",
                "cursor",
            ],
        ),
    ];
    let cases = draws(
        (0..64usize, hostile_text(), hostile_text(), any::<bool>()),
        40,
    );
    for (path, who, params) in lists {
        for (pick, a, b, twice) in &cases {
            let name = params[pick % params.len()];
            let other = params[(pick / 7) % params.len()];
            // One hostile parameter, sometimes repeated or beside another one.
            // API Gateway refuses request lines over 10 KiB before any function runs.
            let (a, b) = (clip(a), clip(b));
            let mut query = format!("{name}={}", encode(&a));
            if *twice {
                query.push_str(&format!("&{name}={}&{other}={}", encode(&b), encode(&b)));
            }
            let url = format!("{path}?{query}");
            let r = app.get(&url, Some(who)).await;
            let shown: String = url.chars().take(120).collect();
            assert_answered(&r, &shown);
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn any_path_id_and_conditional_header_gets_a_clear_answer(db: PgPool) {
    let app = TestApp::new(db).await;
    let token = app.user("ada@example.com").await.access_token;
    let admin = app.admin("root@example.com").await.access_token;
    let task: Value = app
        .post("/api/v1/tasks", &json!({"title": "t"}), Some(&token))
        .await
        .json();
    let task_id = task["id"].as_str().unwrap().to_owned();
    // Every route with an id in its path, and who may call it.
    let organizer = app.organizer("ana@example.com").await.access_token;
    let routes: [(Method, &str, &str); 11] = [
        (Method::GET, "/api/v1/tasks/{}", &token),
        (Method::PATCH, "/api/v1/tasks/{}", &token),
        (Method::DELETE, "/api/v1/tasks/{}", &token),
        (Method::GET, "/api/v1/uploads/{}", &token),
        (Method::GET, "/api/v1/uploads/{}/download", &token),
        (Method::DELETE, "/api/v1/uploads/{}", &token),
        (Method::POST, "/api/v1/notifications/{}/read", &token),
        (Method::GET, "/api/v1/users/{}", &admin),
        (Method::GET, "/api/v1/events/{}", &organizer),
        (Method::GET, "/api/v1/events/{}", &token),
        (Method::PATCH, "/api/v1/events/{}", &organizer),
    ];
    let cases = draws((hostile_text(), hostile_text(), any::<bool>()), 40);
    for (method, template, who) in &routes {
        for (id, condition, real_id) in &cases {
            // A hostile id, or the real task's id with a hostile If-Match / If-None-Match.
            let segment = if *real_id {
                task_id.clone()
            } else {
                encode(&clip(id))
            };
            if segment.is_empty() {
                continue; // API Gateway answers `/tasks/` itself: no function runs.
            }
            let path = template.replace("{}", &segment);
            let condition: String = clip(condition)
                .chars()
                .filter(|c| (' '..='~').contains(c))
                .collect();
            let r = app
                .call(method.clone(), &path)
                .bearer(who)
                .header("if-match", &condition)
                .header("if-none-match", &condition)
                .json(&json!({"title": "t"}))
                .send()
                .await;
            let shown: String = format!("{method} {path} if-match={condition}")
                .chars()
                .take(160)
                .collect();
            assert_answered(&r, &shown);
        }
    }
}

//! Password policy, per-account lockout and per-IP rate limits.

use api_tests::{PASSWORD, TestApp, unlimited};
use futures::future::join_all;
use http::StatusCode;
use serde_json::{Value, json};
use shared::identity::throttle::{Limit, RateLimits};
use sqlx::PgPool;

/// A problem body without its request id, to compare two answers.
fn comparable(mut problem: Value) -> Value {
    problem.as_object_mut().unwrap().remove("request_id");
    problem
}

#[sqlx::test(migrations = "../migrations")]
async fn weak_passwords_are_refused_naming_the_rule(db: PgPool) {
    let app = TestApp::new(db).await;
    for (password, code) in [
        ("short", "too_short"),
        ("1qaz2wsx3edc", "common_password"),
        ("Password2024!!", "common_password"),
        ("zzzzzzzzzzzzzzzz", "too_repetitive"),
        ("grace.hopper is my password", "contains_email"),
    ] {
        let problem = app
            .register("Grace.Hopper@example.com", password, "Grace")
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem["errors"][0]["field"], "password", "{password}");
        assert_eq!(problem["errors"][0]["code"], code, "{password}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing written by refused registrations");
}

#[sqlx::test(migrations = "../migrations")]
async fn five_failures_lock_known_and_unknown_emails_alike(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;

    let mut answers = Vec::new();
    for email in ["ada@example.com", "nobody@example.com"] {
        let mut statuses = Vec::new();
        let mut bodies = Vec::new();
        for _ in 0..5 {
            let r = app.login(email, "wrong password, wrong").await;
            statuses.push(r.status);
            bodies.push(comparable(r.problem(r.status)));
        }
        // The sixth, even with the right password, is refused while locked.
        let locked = app.login(email, PASSWORD).await;
        let retry: u64 = locked.header("retry-after").unwrap().parse().unwrap();
        assert!((840..=900).contains(&retry), "Retry-After {retry}");
        statuses.push(locked.status);
        bodies.push(comparable(locked.problem(StatusCode::TOO_MANY_REQUESTS)));
        answers.push((statuses, bodies));
    }
    assert_eq!(
        answers[0].0,
        [
            [StatusCode::UNAUTHORIZED; 5].as_slice(),
            &[StatusCode::TOO_MANY_REQUESTS]
        ]
        .concat()
    );
    assert_eq!(
        answers[0], answers[1],
        "lockout must not reveal which email exists"
    );

    // Other accounts are unaffected; the lock ends after its time.
    app.user("bob@example.com").await;
    sqlx::query("UPDATE login_attempts SET locked_until = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );

    // The audit log has the failures and the lockouts.
    let kinds: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM audit_events GROUP BY kind ORDER BY kind")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(kinds.contains(&("login_failed".into(), 10)), "{kinds:?}");
    assert!(kinds.contains(&("lockout".into(), 2)), "{kinds:?}");
}

#[sqlx::test(migrations = "../migrations")]
async fn spellings_that_reach_an_account_share_its_lockout(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("alice@example.com").await;
    // The database folds `İ` (U+0130) to `i`, so each spelling reaches Alice's account;
    // Rust's `to_lowercase` folds it to `i` + U+0307, which once made a separate counter
    // per spelling and so a fresh attempt budget.
    let spellings = [
        "alİce@example.com",
        "ALİCE@example.com",
        "alice@example.com",
        " Alice@Example.com ",
        "alİce@example.com",
    ];
    for email in spellings {
        let r = app.login(email, "wrong password, wrong").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{email}");
    }
    for email in [
        "alİce@example.com",
        "alice@example.com",
        "Alİce@example.com",
    ] {
        assert_eq!(
            app.login(email, PASSWORD).await.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{email} got past the lock"
        );
    }
    let counters: i64 = sqlx::query_scalar("SELECT count(*) FROM login_attempts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(counters, 1, "one counter for one account");
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_guesses_get_no_more_than_five_checks(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    let passwords: Vec<String> = (0..20).map(|i| format!("guess number {i} wrong")).collect();
    let guesses = passwords.iter().map(|p| app.login("ada@example.com", p));
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(|r| r.status).collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{statuses:?}");
    assert_eq!(checked + refused, 20, "{statuses:?}");
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_success_resets_the_failure_count(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    for _ in 0..4 {
        app.login("ada@example.com", "wrong password, wrong").await;
    }
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    for _ in 0..4 {
        let r = app.login("ada@example.com", "wrong password, wrong").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn per_ip_limits_hold_and_other_addresses_are_unaffected(db: PgPool) {
    let limits = RateLimits {
        login: Limit::per(3, 60),
        ..unlimited()
    };
    let app = TestApp::with_limits(db, limits).await;
    let login = json!({"email": "x@example.com", "password": "whatever it is"});
    for _ in 0..3 {
        let r = app
            .post_from("198.51.100.1", "/api/v1/auth/login", &login)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .post_from("198.51.100.1", "/api/v1/auth/login", &login)
        .await;
    limited.problem(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Forged X-Forwarded-For changes nothing: the limit keys on API Gateway's source IP.
    let forged = app
        .request(
            api_tests::Function::Auth,
            http::Method::POST,
            "/api/v1/auth/login",
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", "192.0.2.99"),
                (api_tests::lambda::SOURCE_IP, "198.51.100.1"),
            ],
            Some(&login.to_string()),
        )
        .await;
    assert_eq!(forged.status, StatusCode::TOO_MANY_REQUESTS);
    let other = app
        .post_from("198.51.100.2", "/api/v1/auth/login", &login)
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn limits_hold_under_concurrent_requests(db: PgPool) {
    let limits = RateLimits {
        register: Limit::per(3, 3600),
        password_reset: Limit::per(4, 3600),
        refresh: Limit::per(5, 60),
        ..unlimited()
    };
    let app = &TestApp::with_limits(db, limits).await;
    let ip = "198.51.100.7";

    let registrations = (0..12).map(|i| {
        let body = json!({"email": format!("u{i}@example.com"), "password": PASSWORD, "name": "U"});
        async move { app.post_from(ip, "/api/v1/auth/register", &body).await }
    });
    let statuses: Vec<_> = join_all(registrations)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::ACCEPTED)
            .count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        9,
        "{statuses:?}"
    );

    let resets = (0..10).map(|_| {
        let body = json!({"email": "u0@example.com"});
        async move {
            app.post_from(ip, "/api/v1/auth/password-reset", &body)
                .await
        }
    });
    let statuses: Vec<_> = join_all(resets).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::ACCEPTED)
            .count(),
        4,
        "{statuses:?}"
    );

    let refreshes = (0..10).map(|_| {
        let body = json!({"refresh_token": "not-a-token"});
        async move { app.post_from(ip, "/api/v1/auth/refresh", &body).await }
    });
    let statuses: Vec<_> = join_all(refreshes).await.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        5,
        "{statuses:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_scheduled_sweep_purges_stale_counters(db: PgPool) {
    let app = TestApp::new(db).await;
    app.login("ada@example.com", "not a password at all").await;
    app.login("bob@example.com", "not a password at all").await;
    // Ada's counters are old; Bob's are current and must survive.
    for table in ["rate_limits", "login_attempts"] {
        sqlx::query(&format!(
            "UPDATE {table} SET window_started_at = now() - interval '2 days'"
        ))
        .execute(&app.db)
        .await
        .unwrap();
    }
    app.login("bob@example.com", "not a password at all").await;
    let report = api_tests::lambda::invoke_relay(
        &app.db,
        &app.queue.publisher(),
        api_tests::lambda::schedule_event(),
    )
    .await;
    assert_eq!(report["failed"], 0);
    let left: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'rate_limits', count(*) FROM rate_limits
         UNION ALL SELECT 'login_attempts', count(*) FROM login_attempts",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        left,
        [
            ("rate_limits".to_owned(), 1),
            ("login_attempts".to_owned(), 1)
        ],
        "only Bob's fresh counters remain"
    );
}

/// Each user's writes of tasks, uploads and orders are budgeted in Postgres (here 3 a
/// minute): the next is a 429 with `Retry-After`, concurrent writes cannot overshoot, reads
/// stay free, and another user's budget is untouched.
#[sqlx::test(migrations = "../migrations")]
async fn each_user_has_a_budget_of_writes_and_reads_stay_free(db: PgPool) {
    let app = TestApp::new(db).await.with_write_limit(Limit::per(3, 60));
    let ada = app.user("ada@example.com").await.access_token;
    let bob = app.user("bob@example.com").await.access_token;
    let over = |r: &api_tests::Response| {
        let problem = r.problem(StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(problem["status"], 429, "{problem}");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    };

    // Tasks: a create, an edit and a delete spend the budget together.
    let task: Value = app
        .post("/api/v1/tasks", &json!({"title": "one"}), Some(&ada))
        .await
        .json();
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let edited = app.patch(&path, &json!({"title": "two"}), Some(&ada)).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text());
    assert_eq!(
        app.delete(&path, Some(&ada)).await.status,
        StatusCode::NO_CONTENT
    );
    over(
        &app.post("/api/v1/tasks", &json!({"title": "4"}), Some(&ada))
            .await,
    );
    assert_eq!(
        app.get("/api/v1/tasks", Some(&ada)).await.status,
        StatusCode::OK
    );

    // Bob's budget is his own, and ten at once spend exactly it.
    let answers = join_all((0..10).map(|i| {
        let body = json!({"title": format!("t{i}")});
        let bob = bob.clone();
        let app = &app;
        async move { app.post("/api/v1/tasks", &body, Some(&bob)).await.status }
    }))
    .await;
    let created = answers
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((created, refused), (3, 7), "{answers:?}");

    // Uploads: three tickets, then 429.
    let png =
        json!({"filename": "a.png", "content_type": "image/png", "size": 100, "purpose": "avatar"});
    for _ in 0..3 {
        let r = app.post("/api/v1/uploads", &png, Some(&ada)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    over(&app.post("/api/v1/uploads", &png, Some(&ada)).await);

    // Orders: three placed (whatever their keys), then 429; nothing held by the fourth.
    let organizer = app.organizer("ana@example.com").await;
    let (event, types) = app
        .event_on_sale(
            &organizer,
            None,
            &[json!({"name": "Free", "price_minor": 0, "currency": "EUR", "quantity": 100})],
        )
        .await;
    let line = json!({"event_id": event, "lines": [{"ticket_type_id": types[0], "quantity": 1}]});
    let carl = app.user("carl@example.com").await;
    for key in ["k1", "k2", "k3"] {
        let r = app.order(&carl, key, &line).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
    over(&app.order(&carl, "k4", &line).await);
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(orders, 3);
}

//! Registration, login, refresh rotation with reuse detection, logout, me.

use api_tests::{PASSWORD, TestApp, Tokens};
use http::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn register_login_me_refresh_reuse_logout(db: PgPool) {
    let app = TestApp::new(db).await;

    // Register: 202 and no body, as for a taken address (the account is in /me).
    let registered = app
        .register("ada@example.com", PASSWORD, "Ada Lovelace")
        .await;
    assert_eq!(
        registered.status,
        StatusCode::ACCEPTED,
        "{}",
        registered.text()
    );
    assert_eq!(registered.text(), "");

    // Login (email in another case).
    let login = app.login("ADA@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let first: Tokens = login.json();
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(first.expires_in, 900);

    // Me.
    let me = app.me(&first.access_token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text());
    let user: Value = me.json();
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["role"], "user");
    assert!(
        user["id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
    );
    assert!(user["created_at"].is_string());
    assert!(
        user.get("password_hash").is_none(),
        "the hash must never leave the server"
    );

    // Refresh rotates.
    let refreshed = app.refresh(&first.refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text());
    let second: Tokens = refreshed.json();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(app.me(&second.access_token).await.status, StatusCode::OK);

    // Reusing the rotated token after the reuse window is theft: 401, and the whole
    // family dies.
    app.age_rotations(11).await;
    app.refresh(&first.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.refresh(&second.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.me(&second.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.me(&first.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // A new login works; logout kills its access token and refresh token at once.
    let third: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    assert_eq!(app.me(&third.access_token).await.status, StatusCode::OK);
    let logout = app
        .post("/api/v1/auth/logout", &json!({}), Some(&third.access_token))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text());
    app.me(&third.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.refresh(&third.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.post("/api/v1/auth/logout", &json!({}), Some(&third.access_token))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn two_tabs_refreshing_with_one_token_keep_the_session(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = app.user("ada@example.com").await;

    // Both tabs send the same cookie; both get a working pair of the same session.
    let (a, b) = tokio::join!(
        app.refresh(&ada.refresh_token),
        app.refresh(&ada.refresh_token)
    );
    let (a, b): (Tokens, Tokens) = (a.json(), b.json());
    assert_ne!(a.refresh_token, b.refresh_token);
    // Still within the window (9 s of 10 gone): a third copy is fine too.
    app.age_rotations(9).await;
    let c: Tokens = app.refresh(&ada.refresh_token).await.json();
    for tokens in [&a, &b, &c] {
        assert_eq!(app.me(&tokens.access_token).await.status, StatusCode::OK);
    }
    let sessions: (i64, i64) = sqlx::query_as("SELECT count(*), count(revoked_at) FROM sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sessions, (1, 0), "one live session for all the tabs");
    // Each sibling rotates on its own.
    let a2: Tokens = app.refresh(&a.refresh_token).await.json();
    let b2: Tokens = app.refresh(&b.refresh_token).await.json();

    // Past the window, the old token is a replay: the whole session ends.
    app.age_rotations(2).await;
    app.refresh(&ada.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    for tokens in [&a2, &b2, &c] {
        app.me(&tokens.access_token)
            .await
            .problem(StatusCode::UNAUTHORIZED);
        app.refresh(&tokens.refresh_token)
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_session_ends_when_idle_and_at_its_absolute_lifetime(db: PgPool) {
    let app = TestApp::new(db).await;

    // Idle: nothing refreshed it within its lifetime.
    let idle = app.user("ada@example.com").await;
    sqlx::raw_sql(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second';
         UPDATE sessions SET expires_at = now() - interval '1 second'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.refresh(&idle.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.me(&idle.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // Absolute: a session in use is still cut at its end, and its refreshes never
    // reach past it (token, session and cookie alike).
    let busy: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    sqlx::raw_sql(
        "UPDATE sessions SET absolute_expires_at = now() + interval '1 hour',
                             expires_at = now() + interval '1 hour'
         WHERE revoked_at IS NULL AND expires_at > now()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let refreshed = app.refresh(&busy.refresh_token).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text());
    let cookie = refreshed.header("set-cookie").unwrap();
    let max_age: i64 = cookie
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&max_age), "{cookie}");
    let lives_past_the_end: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refresh_tokens
         WHERE used_at IS NULL AND expires_at > now() + interval '1 hour'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(lives_past_the_end, 0);

    let next: Tokens = refreshed.json();
    sqlx::raw_sql(
        "UPDATE sessions SET absolute_expires_at = now() - interval '1 second',
                             expires_at = now() - interval '1 second'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.refresh(&next.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.me(&next.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn sessions_are_independent(db: PgPool) {
    let app = TestApp::new(db).await;
    let laptop = app.user("grace@example.com").await;
    let phone: Tokens = app.login("grace@example.com", PASSWORD).await.json();
    let logout = app
        .post(
            "/api/v1/auth/logout",
            &json!({}),
            Some(&laptop.access_token),
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(app.me(&phone.access_token).await.status, StatusCode::OK);
    assert_eq!(
        app.refresh(&phone.refresh_token).await.status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_taken_address_gets_the_same_answer_and_its_owner_an_email(db: PgPool) {
    let app = TestApp::new(db).await;
    let first = app.register("Ada@Example.com", PASSWORD, "Ada").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text());
    app.run_worker().await;
    let before = app.mailbox().len();

    let other_password = "a different passphrase entirely";
    for email in ["Ada@Example.com", "ADA@EXAMPLE.COM", "  ada@example.com  "] {
        let again = app.register(email, other_password, "Mallory").await;
        assert_eq!(
            (again.status, again.text()),
            (first.status, first.text()),
            "a taken address is answered as a new one"
        );
    }
    let fresh = app.register("grace@example.com", PASSWORD, "Grace").await;
    assert_eq!((fresh.status, fresh.text()), (first.status, first.text()));

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 2);
    // Nothing about the account changed: its password and name stand.
    let tokens: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    assert_eq!(
        app.me(&tokens.access_token).await.json::<Value>()["name"],
        "Ada"
    );
    app.login("ada@example.com", other_password)
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // The owner hears about each attempt, with the way back in and no link to act on.
    app.run_worker().await;
    let mails = app.mailbox();
    let notices: Vec<_> = mails[before..]
        .iter()
        .filter(|m| m.to.eq_ignore_ascii_case("ada@example.com"))
        .collect();
    assert_eq!(notices.len(), 3, "{mails:?}");
    for notice in notices {
        assert_eq!(notice.subject, "Your email address already has an account");
        assert!(
            notice
                .text
                .contains("https://app.example.com/forgot-password")
                && !notice.text.contains("token="),
            "{}",
            notice.text
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn malformed_and_ill_typed_bodies_are_problems_not_500s(db: PgPool) {
    let app = TestApp::new(db).await;
    // Malformed JSON -> 400.
    for body in ["{", "not json", "{\"email\": }", ""] {
        app.post_raw("/api/v1/auth/register", body, None)
            .await
            .problem(StatusCode::BAD_REQUEST);
        app.post_raw("/api/v1/auth/login", body, None)
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    // Wrong types or missing fields -> 422.
    for body in [
        json!({"email": 42, "password": PASSWORD, "name": "x"}),
        json!({"email": "a@example.com", "password": PASSWORD}),
        json!([]),
        json!(null),
        json!({"email": "a@example.com", "password": ["x"], "name": "x"}),
    ] {
        app.post("/api/v1/auth/register", &body, None)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.post("/api/v1/auth/refresh", &json!({"refresh_token": 1}), None)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    // Not JSON at all -> 415.
    let response = app
        .request(
            api_tests::Function::Auth,
            http::Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "text/plain")],
            Some("email=a"),
        )
        .await;
    response.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Huge body -> 413.
    let huge = json!({"email": "a@example.com", "password": "x".repeat(70_000), "name": "x"});
    app.post("/api/v1/auth/register", &huge, None)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_fields_are_listed_in_a_422(db: PgPool) {
    let app = TestApp::new(db).await;
    let problem = app
        .register("not-an-email", "short", "   ")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "name"], "{problem}");
    for error in problem["errors"].as_array().unwrap() {
        assert!(
            error["code"].is_string() && error["message"].is_string(),
            "{error}"
        );
    }
    let long = "p".repeat(129);
    app.register("a@example.com", &long, "A")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_email_and_wrong_password_look_the_same(db: PgPool) {
    let app = TestApp::new(db).await;
    app.user("ada@example.com").await;
    let wrong_password = app.login("ada@example.com", "wrong password!!").await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;
    let a = wrong_password.problem(StatusCode::UNAUTHORIZED);
    let b = unknown_email.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(a["detail"], b["detail"]);
    assert_eq!(a["title"], b["title"]);
    // Garbage emails are refused the same way, not with a validation error.
    let c = app
        .login("' OR 1=1 --", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(a["detail"], c["detail"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn refresh_with_unknown_or_garbage_tokens_is_401(db: PgPool) {
    let app = TestApp::new(db).await;
    for token in ["", "garbage", "' OR '1'='1", &"x".repeat(5000)] {
        app.refresh(token).await.problem(StatusCode::UNAUTHORIZED);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn every_response_carries_a_request_id(db: PgPool) {
    let app = TestApp::new(db).await;
    let ok = app.register("ada@example.com", PASSWORD, "Ada").await;
    assert!(ok.header("x-request-id").is_some_and(|id| !id.is_empty()));
    let problem_response = app.post_raw("/api/v1/auth/login", "{", None).await;
    let id = problem_response.header("x-request-id").unwrap().to_owned();
    let problem = problem_response.problem(StatusCode::BAD_REQUEST);
    assert_eq!(
        problem["request_id"],
        id.as_str(),
        "the problem quotes the same id"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn logout_revokes_the_access_token_in_every_function(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = app.user("ada@example.com").await;
    let unknown_upload = format!("/api/v1/uploads/{}", uuid::Uuid::now_v7());
    // Each function's answer to a valid token (the upload is nobody's: 404, not 401).
    let routes = [
        ("/api/v1/users/me", StatusCode::OK),
        ("/api/v1/tasks", StatusCode::OK),
        ("/api/v1/notifications", StatusCode::OK),
        (unknown_upload.as_str(), StatusCode::NOT_FOUND),
    ];
    for (path, status) in &routes {
        let r = app.get(path, Some(&ada.access_token)).await;
        assert_eq!(r.status, *status, "{path}: {}", r.text());
    }
    let logout = app
        .post("/api/v1/auth/logout", &json!({}), Some(&ada.access_token))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    for (path, _) in &routes {
        app.get(path, Some(&ada.access_token))
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
}

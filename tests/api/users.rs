//! Roles, the first admin, the admin user directory, self-service and the audit log.

use api_tests::{Function, PASSWORD, TestApp, Tokens};
use http::{Method, StatusCode};
use migrate::first_admin::{self, FirstAdmin};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Sends a request labelled as JSON (an empty body too: a 400, not a 415), with a bearer
/// token when there is one.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> api_tests::Response {
    let call = app.call(method, path).bearer_opt(token);
    match body {
        Some(body) => call.json(&body),
        None => call.header("content-type", "application/json"),
    }
    .send()
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn the_first_admin_is_ensured_idempotently(db: PgPool) {
    let app = TestApp::new(db).await;
    let config = FirstAdmin::new("root@example.com", PASSWORD.into()).unwrap();
    let ensure = || first_admin::ensure(&app.db, &config);
    assert_eq!(ensure().await.unwrap(), first_admin::Outcome::Created);
    assert_eq!(ensure().await.unwrap(), first_admin::Outcome::Unchanged);
    let root: Tokens = app.login("root@example.com", PASSWORD).await.json();
    let me: Value = app.me(&root.access_token).await.json();
    assert_eq!(
        (me["role"].as_str(), me["email_verified"].as_bool()),
        (Some("admin"), Some(true))
    );

    // An existing account is promoted once its email is verified (whoever registered
    // an address without owning it must not become admin), and keeps its password.
    app.user("ada@example.com").await;
    let ada = FirstAdmin::new("ADA@example.com", "some other long password".into()).unwrap();
    assert_eq!(
        first_admin::ensure(&app.db, &ada).await.unwrap(),
        first_admin::Outcome::NotPromotedUnverified
    );
    let verify = app.emailed_token("ada@example.com", "verify-email").await;
    app.post("/api/v1/auth/verify-email", &json!({"token": verify}), None)
        .await;
    assert_eq!(
        first_admin::ensure(&app.db, &ada).await.unwrap(),
        first_admin::Outcome::Promoted
    );
    let tokens: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    assert_eq!(
        app.me(&tokens.access_token).await.json::<Value>()["role"],
        "admin"
    );

    // The password policy applies to the configured password too; the error names the
    // variable, never the value.
    let err = FirstAdmin::new("root@example.com", "password".into()).unwrap_err();
    assert!(err.to_string().contains("FIRST_ADMIN_PASSWORD"), "{err}");
    assert!(!err.to_string().contains("password\""), "{err}");
    assert!(FirstAdmin::new("not an email", PASSWORD.into()).is_err());
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_routes_refuse_users_and_anonymous_callers(db: PgPool) {
    let app = TestApp::new(db).await;
    let root = app.admin("root@example.com").await;
    let ada = app.user("ada@example.com").await;
    let root_id = app.id_of(&root.access_token).await;
    let routes = [
        (Method::GET, "/api/v1/users".to_owned(), None),
        (Method::GET, format!("/api/v1/users/{root_id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{root_id}"),
            Some(json!({"role": "user"})),
        ),
        (Method::DELETE, format!("/api/v1/users/{root_id}"), None),
        (Method::GET, "/api/v1/audit-events".to_owned(), None),
    ];
    for (method, path, body) in &routes {
        call(
            &app,
            method.clone(),
            path,
            Some(&ada.access_token),
            body.clone(),
        )
        .await
        .problem(StatusCode::FORBIDDEN);
        call(&app, method.clone(), path, None, body.clone())
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    // Nothing changed.
    assert_eq!(
        app.me(&root.access_token).await.json::<Value>()["role"],
        "admin"
    );
    // An organizer is not an admin either.
    let ada_id = app.id_of(&ada.access_token).await;
    let promote = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/users/{ada_id}"),
        Some(&root.access_token),
        Some(json!({"role": "organizer"})),
    )
    .await;
    assert_eq!(promote.status, StatusCode::OK, "{}", promote.text());
    call(
        &app,
        Method::GET,
        "/api/v1/users",
        Some(&ada.access_token),
        None,
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

#[sqlx::test(migrations = "../migrations")]
async fn admins_list_filter_and_page_through_users(db: PgPool) {
    let app = TestApp::new(db).await;
    let root = app.admin("root@example.com").await;
    for name in ["ada", "bob", "cy_d", "cyxd", "eve"] {
        app.register(&format!("{name}@example.com"), PASSWORD, name)
            .await;
    }
    let list = |query: &str| {
        let path = format!("/api/v1/users{query}");
        let token = root.access_token.clone();
        let app = &app;
        async move { call(app, Method::GET, &path, Some(&token), None).await }
    };
    let emails = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };

    let all: Value = list("").await.json();
    assert_eq!(emails(&all).len(), 6);
    assert!(all["items"][0].get("password_hash").is_none());
    let admins: Value = list("?role=admin").await.json();
    assert_eq!(emails(&admins), ["root@example.com"]);
    // `_` is literal, not a LIKE wildcard.
    let cy: Value = list("?email=CY_").await.json();
    assert_eq!(emails(&cy), ["cy_d@example.com"]);
    list("?role=superuser")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    list("?limit=0")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    list("?cursor=garbage")
        .await
        .problem(StatusCode::BAD_REQUEST);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let page: Value = list(&query).await.json();
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, emails(&all), "the pages walk the whole list once");

    // Unknown and malformed ids look alike.
    let unknown = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    call(&app, Method::GET, &unknown, Some(&root.access_token), None)
        .await
        .problem(StatusCode::NOT_FOUND);
    call(
        &app,
        Method::GET,
        "/api/v1/users/not-a-uuid",
        Some(&root.access_token),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    let token = Some(root.access_token.as_str());
    call(
        &app,
        Method::PATCH,
        &unknown,
        token,
        Some(json!({"role": "user"})),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    // Ill-typed and unknown values in an admin change are refused, and change nothing.
    let ada = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "ada@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada_path = format!("/api/v1/users/{ada}");
    for body in [
        json!({"role": "superuser"}),
        json!({"name": 5}),
        json!({"role": null, "name": ""}),
    ] {
        call(&app, Method::PATCH, &ada_path, token, Some(body))
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    call(&app, Method::PATCH, &ada_path, token, None)
        .await
        .problem(StatusCode::BAD_REQUEST);
    let unchanged: Value = call(&app, Method::GET, &ada_path, token, None).await.json();
    assert_eq!(
        (unchanged["role"].as_str(), unchanged["name"].as_str()),
        (Some("user"), Some("ada"))
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_demoted_admin_loses_admin_rights_on_the_next_request(db: PgPool) {
    let app = TestApp::new(db).await;
    let root = app.admin("root@example.com").await;
    let ada = app.user("ada@example.com").await;
    let ada_id = app.id_of(&ada.access_token).await;
    let path = format!("/api/v1/users/{ada_id}");

    let promoted = call(
        &app,
        Method::PATCH,
        &path,
        Some(&root.access_token),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(promoted.json::<Value>()["role"], "admin");
    // Ada's token was issued while she was a user: the live role counts.
    assert_eq!(
        call(
            &app,
            Method::GET,
            "/api/v1/users",
            Some(&ada.access_token),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    let demoted = call(
        &app,
        Method::PATCH,
        &path,
        Some(&root.access_token),
        Some(json!({"role": "user"})),
    )
    .await;
    assert_eq!(demoted.status, StatusCode::OK);
    call(
        &app,
        Method::GET,
        "/api/v1/users",
        Some(&ada.access_token),
        None,
    )
    .await
    .problem(StatusCode::FORBIDDEN);

    let events: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/audit-events?kind=role_changed&target_id={ada_id}"),
        Some(&root.access_token),
        None,
    )
    .await
    .json();
    let details: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["details"])
        .collect();
    assert_eq!(
        details,
        [
            &json!({"from": "admin", "to": "user"}),
            &json!({"from": "user", "to": "admin"})
        ]
    );
    // Unknown fields are refused (no email or password changes through this route).
    call(
        &app,
        Method::PATCH,
        &path,
        Some(&root.access_token),
        Some(json!({"email": "x@example.com"})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_last_admin_cannot_be_removed(db: PgPool) {
    let app = TestApp::new(db).await;
    let root = app.admin("root@example.com").await;
    let root_id = app.id_of(&root.access_token).await;
    let me = format!("/api/v1/users/{root_id}");
    let token = Some(root.access_token.as_str());
    call(
        &app,
        Method::PATCH,
        &me,
        token,
        Some(json!({"role": "organizer"})),
    )
    .await
    .problem(StatusCode::CONFLICT);
    call(&app, Method::DELETE, &me, token, None)
        .await
        .problem(StatusCode::CONFLICT);
    call(&app, Method::DELETE, "/api/v1/users/me", token, None)
        .await
        .problem(StatusCode::CONFLICT);
    assert_eq!(
        app.me(&root.access_token).await.json::<Value>()["role"],
        "admin"
    );

    // Two admins demoting each other at the same moment: exactly one wins.
    let other = app.admin("second@example.com").await;
    let other_path = format!("/api/v1/users/{}", app.id_of(&other.access_token).await);
    let (a, b) = tokio::join!(
        call(
            &app,
            Method::PATCH,
            &other_path,
            token,
            Some(json!({"role": "user"}))
        ),
        call(
            &app,
            Method::PATCH,
            &me,
            Some(&other.access_token),
            Some(json!({"role": "user"}))
        ),
    );
    // The loser is refused either by the guard (already demoted: 403) or, when both
    // passed it, by the last-admin rule (409). Never both demoted.
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses[0], StatusCode::OK, "{} {}", a.text(), b.text());
    assert!(
        [StatusCode::FORBIDDEN, StatusCode::CONFLICT].contains(&statuses[1]),
        "{} {}",
        a.text(),
        b.text()
    );
    let admins: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(admins, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn users_manage_their_own_profile_and_password(db: PgPool) {
    let app = TestApp::new(db).await;
    let laptop = app.user("ada@example.com").await;
    let phone: Tokens = app.login("ada@example.com", PASSWORD).await.json();
    let token = Some(laptop.access_token.as_str());

    let me: Value = call(&app, Method::GET, "/api/v1/users/me", token, None)
        .await
        .json();
    assert_eq!(me["email"], "ada@example.com");
    let renamed: Value = call(
        &app,
        Method::PATCH,
        "/api/v1/users/me",
        token,
        Some(json!({"name": "  Countess  "})),
    )
    .await
    .json();
    assert_eq!(renamed["name"], "Countess");
    // No self-promotion, no empty names.
    call(
        &app,
        Method::PATCH,
        "/api/v1/users/me",
        token,
        Some(json!({"role": "admin"})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    call(
        &app,
        Method::PATCH,
        "/api/v1/users/me",
        token,
        Some(json!({"name": " "})),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let path = "/api/v1/users/me/password";
    call(
        &app,
        Method::POST,
        path,
        token,
        Some(change("not my password", "a brand new passphrase")),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    let weak = call(
        &app,
        Method::POST,
        path,
        token,
        Some(change(PASSWORD, "qwerty123456")),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak["errors"][0]["code"], "common_password");
    // A reset link mailed before the change ...
    app.post(
        "/api/v1/auth/password-reset",
        &json!({"email": "ada@example.com"}),
        None,
    )
    .await;
    let reset = app.emailed_token("ada@example.com", "reset-password").await;
    let ok = call(
        &app,
        Method::POST,
        path,
        token,
        Some(change(PASSWORD, "a brand new passphrase")),
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text());
    // ... cannot undo it.
    app.post(
        "/api/v1/auth/password-reset/confirm",
        &json!({"token": reset, "new_password": "an attacker's passphrase"}),
        None,
    )
    .await
    .problem(StatusCode::BAD_REQUEST);

    // This session lives on; every other one is dead.
    assert_eq!(app.me(&laptop.access_token).await.status, StatusCode::OK);
    app.me(&phone.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.refresh(&phone.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.login("ada@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login("ada@example.com", "a brand new passphrase")
            .await
            .status,
        StatusCode::OK
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn wrong_current_passwords_count_towards_the_lockout(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = app.user("ada@example.com").await;
    let body =
        json!({"current_password": "guessing, guessing", "new_password": "a brand new passphrase"});
    for _ in 0..5 {
        call(
            &app,
            Method::POST,
            "/api/v1/users/me/password",
            Some(&ada.access_token),
            Some(body.clone()),
        )
        .await
        .problem(StatusCode::FORBIDDEN);
    }
    call(
        &app,
        Method::POST,
        "/api/v1/users/me/password",
        Some(&ada.access_token),
        Some(body),
    )
    .await
    .problem(StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_an_account_removes_it_and_its_sessions(db: PgPool) {
    let app = TestApp::new(db).await;
    let root = app.admin("root@example.com").await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let task = app
        .request(
            Function::Tasks,
            Method::POST,
            "/api/v1/tasks",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {}", ada.access_token)),
            ],
            Some(r#"{"title": "mine"}"#),
        )
        .await;
    assert_eq!(task.status, StatusCode::CREATED);

    let gone = call(
        &app,
        Method::DELETE,
        "/api/v1/users/me",
        Some(&ada.access_token),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    app.me(&ada.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.refresh(&ada.refresh_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.login("ada@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(tasks, 0);

    // An admin deletes Bob; deleting him again is a 404.
    let bob_path = format!("/api/v1/users/{}", app.id_of(&bob.access_token).await);
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &bob_path,
            Some(&root.access_token),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    app.me(&bob.access_token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    call(
        &app,
        Method::DELETE,
        &bob_path,
        Some(&root.access_token),
        None,
    )
    .await
    .problem(StatusCode::NOT_FOUND);

    let events: Value = call(
        &app,
        Method::GET,
        "/api/v1/audit-events?kind=account_deleted",
        Some(&root.access_token),
        None,
    )
    .await
    .json();
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_audit_log_filters_and_pages(db: PgPool) {
    let app = TestApp::new(db).await;
    let root = app.admin("root@example.com").await;
    for _ in 0..3 {
        app.login("nobody@example.com", "wrong password here").await;
    }
    let get = |query: &str| {
        let path = format!("/api/v1/audit-events{query}");
        let token = root.access_token.clone();
        let app = &app;
        async move { call(app, Method::GET, &path, Some(&token), None).await }
    };
    let failed: Value = get("?kind=login_failed&limit=2").await.json();
    assert_eq!(failed["items"].as_array().unwrap().len(), 2);
    let cursor = failed["next_cursor"].as_str().unwrap();
    let rest: Value = get(&format!("?kind=login_failed&limit=2&cursor={cursor}"))
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let event = &rest["items"][0];
    assert_eq!(event["actor_id"], Value::Null);
    assert_eq!(event["ip"], "203.0.113.7");
    get("?kind=nonsense")
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let later: Value = get("?since=2999-01-01T00:00:00Z").await.json();
    assert_eq!(later["items"], json!([]));
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_the_account_needs_the_password_or_a_fresh_sign_in(db: PgPool) {
    let app = TestApp::new(db).await;
    let ada = app.user("ada@example.com").await;
    let token = Some(ada.access_token.as_str());
    let delete = |body: Option<Value>| call(&app, Method::DELETE, "/api/v1/users/me", token, body);
    // The session logged in six minutes ago: its access token alone is not enough.
    sqlx::query("UPDATE sessions SET created_at = now() - interval '6 minutes'")
        .execute(&app.db)
        .await
        .unwrap();
    let stale = delete(None).await.problem(StatusCode::FORBIDDEN);
    assert!(
        stale["detail"]
            .as_str()
            .unwrap()
            .contains("current_password"),
        "{stale}"
    );
    delete(Some(json!({}))).await.problem(StatusCode::FORBIDDEN);
    delete(Some(json!({"current_password": "not the password at all"})))
        .await
        .problem(StatusCode::FORBIDDEN);
    delete(Some(json!({"current_password": 5})))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.me(&ada.access_token).await.status, StatusCode::OK);

    // Wrong passwords count towards the login lockout (five): a stolen token is no
    // oracle.
    for _ in 0..4 {
        delete(Some(json!({"current_password": "still not the password"})))
            .await
            .problem(StatusCode::FORBIDDEN);
    }
    delete(Some(json!({"current_password": PASSWORD})))
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    sqlx::query("DELETE FROM login_attempts")
        .execute(&app.db)
        .await
        .unwrap();

    let deleted = delete(Some(json!({"current_password": PASSWORD}))).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let confirmed: Value =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE kind = 'account_deleted'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(confirmed["confirmed_by"], "password");

    // A fresh login needs no password.
    let grace = app.user("grace@example.com").await;
    let deleted = call(
        &app,
        Method::DELETE,
        "/api/v1/users/me",
        Some(&grace.access_token),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    app.login("grace@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

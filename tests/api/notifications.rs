//! The inbox: the welcome notification arrives through the queue and the worker,
//! pagination, mark-read, and isolation between users.

use api_tests::TestApp;
use http::StatusCode;
use serde_json::{Value, json};
use shared::{
    identity::UserId,
    messaging::messages::{NotificationKind, NotificationMessage},
};
use sqlx::PgPool;

async fn inbox(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/notifications{query}"), Some(token))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

async fn user_id(app: &TestApp, token: &str) -> UserId {
    let me: Value = app.me(token).await.json();
    UserId(uuid::Uuid::parse_str(me["id"].as_str().unwrap()).unwrap())
}

#[sqlx::test(migrations = "../migrations")]
async fn welcome_notification_reaches_the_inbox_through_queue_and_worker(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = app.user("ada@example.com").await;

    // Nothing in the inbox until the worker has consumed the queue.
    assert_eq!(
        inbox(&app, &tokens.access_token, "").await["items"],
        json!([])
    );
    assert_eq!(
        app.run_worker().await,
        2,
        "exactly one welcome message (and the verification email) was published"
    );
    assert_eq!(app.mailbox().len(), 1, "one verification email");

    let page = inbox(&app, &tokens.access_token, "").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["kind"], "welcome");
    assert_eq!(items[0]["read_at"], Value::Null);
    assert_eq!(page["next_cursor"], Value::Null);

    // Mark read; marking again keeps the first time.
    let id = items[0]["id"].as_str().unwrap();
    let path = format!("/api/v1/notifications/{id}/read");
    let read = app
        .post(&path, &json!({}), Some(&tokens.access_token))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    let read_at = read.json::<Value>()["read_at"].clone();
    assert!(read_at.is_string());
    let again: Value = app
        .post(&path, &json!({}), Some(&tokens.access_token))
        .await
        .json();
    assert_eq!(again["read_at"], read_at);
}

#[sqlx::test(migrations = "../migrations")]
async fn another_users_notifications_are_invisible(db: PgPool) {
    let app = TestApp::new(db).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.run_worker().await;

    let alice_items = inbox(&app, &alice.access_token, "").await["items"].clone();
    let bob_items = inbox(&app, &bob.access_token, "").await["items"].clone();
    assert_eq!(alice_items.as_array().unwrap().len(), 1);
    assert_eq!(bob_items.as_array().unwrap().len(), 1);
    assert_ne!(alice_items[0]["id"], bob_items[0]["id"]);

    // Bob cannot mark Alice's notification: 404, same as an unknown id, and it stays unread.
    let alice_id = alice_items[0]["id"].as_str().unwrap();
    let bob_try = app
        .post(
            &format!("/api/v1/notifications/{alice_id}/read"),
            &json!({}),
            Some(&bob.access_token),
        )
        .await;
    let unknown = app
        .post(
            &format!("/api/v1/notifications/{}/read", uuid::Uuid::now_v7()),
            &json!({}),
            Some(&bob.access_token),
        )
        .await;
    assert_eq!(
        bob_try.problem(StatusCode::NOT_FOUND)["detail"],
        unknown.problem(StatusCode::NOT_FOUND)["detail"]
    );
    assert_eq!(
        inbox(&app, &alice.access_token, "").await["items"][0]["read_at"],
        Value::Null
    );

    // Not a UUID: 404 as well, not a 500 or a parser message.
    app.post(
        "/api/v1/notifications/%27%20OR%201%3D1%20--/read",
        &json!({}),
        Some(&bob.access_token),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    // No token: 401.
    app.get("/api/v1/notifications", None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn pages_walk_newest_first_without_repeats_or_gaps(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = app.user("ada@example.com").await;
    let user = user_id(&app, &tokens.access_token).await;
    app.run_worker().await;
    // 24 more notifications straight through the queue, as other features will send them.
    for i in 0..24 {
        let message = NotificationMessage {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            kind: NotificationKind::UploadReady,
            title: format!("n{i}"),
            body: "hello".into(),
        };
        app.queue
            .send_raw(&serde_json::to_string(&message).unwrap())
            .await;
    }
    assert_eq!(app.run_worker().await, 24);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=10&cursor={c}"),
            None => "?limit=10".into(),
        };
        let page = inbox(&app, &tokens.access_token, &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|n| {
            (
                n["created_at"].as_str().unwrap().to_owned(),
                n["id"].as_str().unwrap().to_owned(),
            )
        }));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let unique: std::collections::HashSet<_> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 25, "no repeats");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_limits_and_cursors_are_client_errors(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = app.user("ada@example.com").await;
    for limit in ["0", "101", "-1"] {
        app.get(
            &format!("/api/v1/notifications?limit={limit}"),
            Some(&tokens.access_token),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.get(
        "/api/v1/notifications?limit=abc",
        Some(&tokens.access_token),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY);
    for cursor in ["garbage", "eyJ0IjoxfQ", "%27%20OR%201%3D1"] {
        app.get(
            &format!("/api/v1/notifications?cursor={cursor}"),
            Some(&tokens.access_token),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
    }
}

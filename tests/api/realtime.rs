//! Real-time push end to end: connect tickets from the notifications function, real
//! WebSocket clients through `scripts/ws-gateway.py` (the gateway `scripts/dev` runs), the
//! `realtime` function handling its API Gateway WebSocket events, and `notify-worker`
//! pushing through the Management API as it does in AWS.

use std::time::Duration;

use api_tests::{
    TestApp, Tokens,
    lambda::{invoke_worker_with, sqs_batch, worker_state},
    realtime::{Client, Gateway},
};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{
    identity::UserId,
    messaging::messages::{NotificationKind, NotificationMessage},
};
use sqlx::PgPool;
use uuid::Uuid;

/// How long a frame may take from the queued notification to the tab (the issue's
/// promise); the tests wait this long, never longer.
const WITHIN: Duration = Duration::from_secs(1);

async fn ticket(app: &TestApp, who: &Tokens) -> String {
    let issued = app
        .post(
            "/api/v1/realtime/tickets",
            &json!({}),
            Some(&who.access_token),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text());
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    issued.json::<Value>()["ticket"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn connect(app: &TestApp, gateway: &Gateway, who: &Tokens) -> Client {
    let ticket = ticket(app, who).await;
    gateway
        .connect(&ticket)
        .await
        .expect("a valid ticket connects")
}

async fn user_id(app: &TestApp, who: &Tokens) -> UserId {
    UserId(app.id_of(&who.access_token).await.parse().unwrap())
}

fn message(user: UserId, title: &str) -> NotificationMessage {
    NotificationMessage {
        id: Uuid::now_v7(),
        user_id: user,
        kind: NotificationKind::OrderConfirmed,
        title: title.into(),
        body: format!("{title}: your tickets are ready."),
    }
}

/// Runs messages through the worker (pushing through `gateway`); asserts none failed.
async fn deliver(db: &PgPool, gateway: &Gateway, messages: &[&NotificationMessage]) {
    let mut state = worker_state(db);
    state.realtime = Some(gateway.management());
    let bodies: Vec<Value> = messages
        .iter()
        .map(|m| {
            Value::String(
                serde_json::to_string(&shared::messaging::messages::QueueMessage::Notification(
                    (*m).clone(),
                ))
                .unwrap(),
            )
        })
        .collect();
    let answer = invoke_worker_with(&state, sqs_batch(&bodies)).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
}

async fn connections(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM realtime_connections")
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn every_open_tab_gets_the_notification_and_nobody_else_does(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let gateway = Gateway::start(&db).await;
    let ana = app.user("ana@example.com").await;
    let bo = app.user("bo@example.com").await;
    let mut first_tab = connect(&app, &gateway, &ana).await;
    let mut second_tab = connect(&app, &gateway, &ana).await;
    let mut bos_tab = connect(&app, &gateway, &bo).await;
    assert_eq!(connections(&db).await, 3);

    let note = message(
        user_id(&app, &ana).await,
        "Order confirmed: Bachata Weekend",
    );
    deliver(&db, &gateway, &[&note]).await;
    for tab in [&mut first_tab, &mut second_tab] {
        let frame = tab
            .next_frame(WITHIN)
            .await
            .expect("a frame within a second");
        assert_eq!(frame["type"], "notification");
        assert_eq!(frame["notification"]["id"], note.id.to_string());
        assert_eq!(frame["notification"]["kind"], "order_confirmed");
        assert_eq!(frame["notification"]["title"], note.title);
        assert_eq!(frame["notification"]["body"], note.body);
        assert!(frame["notification"]["created_at"].is_string(), "{frame}");
    }
    // Another user's notification never reaches Bo's socket.
    assert_eq!(bos_tab.next_frame(Duration::from_millis(500)).await, None);

    // A redelivered message is a duplicate: written once, pushed once.
    deliver(&db, &gateway, &[&note]).await;
    assert_eq!(first_tab.next_frame(Duration::from_millis(500)).await, None);

    // A ping keeps the connection alive and is answered; anything else gets an error frame.
    first_tab.send(r#"{"action":"ping"}"#).await;
    assert_eq!(
        first_tab.next_frame(WITHIN).await,
        Some(json!({"type": "pong"}))
    );
    first_tab.send("not json").await;
    let error = first_tab.next_frame(WITHIN).await.unwrap();
    assert_eq!(error["type"], "error", "{error}");
    first_tab.send(r#"{"action":"subscribe"}"#).await;
    assert_eq!(first_tab.next_frame(WITHIN).await.unwrap()["type"], "error");

    // Closing a tab forgets its connection ($disconnect).
    second_tab.close().await;
    bos_tab.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while connections(&db).await != 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(connections(&db).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn only_a_fresh_unused_ticket_of_a_live_session_connects(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let gateway = Gateway::start(&db).await;
    let ana = app.user("ana@example.com").await;

    // No token, no ticket.
    let anonymous = app.post("/api/v1/realtime/tickets", &json!({}), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.header("content-type"),
        Some("application/problem+json")
    );

    // A ticket works once.
    let once = ticket(&app, &ana).await;
    let tab = gateway
        .connect(&once)
        .await
        .expect("the first use connects");
    assert_eq!(
        gateway.connect(&once).await.err(),
        Some(401),
        "a reused ticket"
    );
    tab.close().await;

    // Missing, forged, malformed.
    let forged = "A".repeat(43);
    for refused in ["", forged.as_str(), "short", "%00%ff", "../../etc"] {
        assert_eq!(
            gateway.connect(refused).await.err(),
            Some(401),
            "{refused:?}"
        );
    }

    // Expired (a minute old).
    let stale = ticket(&app, &ana).await;
    sqlx::query("UPDATE realtime_tickets SET expires_at = now() - interval '1 second'")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(
        gateway.connect(&stale).await.err(),
        Some(401),
        "an expired ticket"
    );

    // Its session logged out before it was used.
    let pending = ticket(&app, &ana).await;
    let logout = app
        .call(Method::POST, "/api/v1/auth/logout")
        .bearer(&ana.access_token)
        .send()
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text());
    assert_eq!(
        gateway.connect(&pending).await.err(),
        Some(401),
        "a logged-out session's ticket"
    );

    // Every refused attempt spent nothing and recorded nothing.
    assert_eq!(connections(&db).await, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM realtime_tickets")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0, "used and refused tickets are gone");
    let refused = gateway
        .invocations
        .lock()
        .unwrap()
        .iter()
        .filter(|(route, status)| route == "$connect" && *status == 401)
        .count();
    assert_eq!(
        refused, 8,
        "the function refused each (the gateway only relays)"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_vanished_connection_is_forgotten_without_failing_the_batch(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let gateway = Gateway::start(&db).await;
    let ana = app.user("ana@example.com").await;
    let ana_id = user_id(&app, &ana).await;
    let mut tab = connect(&app, &gateway, &ana).await;
    // A tab whose $disconnect never came: API Gateway answers 410 Gone for it.
    sqlx::query(
        "INSERT INTO realtime_connections (connection_id, user_id, expires_at)
         VALUES ('Z29uZS1sb25nLWFnbw=', $1, now() + interval '1 hour')",
    )
    .bind(ana_id.0)
    .execute(&db)
    .await
    .unwrap();

    let note = message(ana_id, "Event moved");
    deliver(&db, &gateway, &[&note]).await;
    assert_eq!(
        tab.next_frame(WITHIN).await.unwrap()["notification"]["id"],
        note.id.to_string()
    );
    assert_eq!(
        connections(&db).await,
        1,
        "the gone connection's row was deleted"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE id = $1")
        .bind(note.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the inbox has it whatever the push did");

    // A push with no gateway at all (unreachable) fails nothing either.
    let mut state = worker_state(&db);
    state.realtime = Some(
        shared::realtime::management::Management::new(
            "http://127.0.0.1:9/live",
            shared::sigv4::AwsAccess::new(
                aws_credential_types::Credentials::new("AKID", "secret", None, None, "tests"),
                "us-east-1",
                None,
            ),
        )
        .unwrap(),
    );
    let body = serde_json::to_string(&shared::messaging::messages::QueueMessage::Notification(
        message(ana_id, "Unreachable"),
    ))
    .unwrap();
    let answer = invoke_worker_with(&state, sqs_batch(&[Value::String(body)])).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
}

#[sqlx::test(migrations = "../migrations")]
async fn logging_out_changing_the_password_or_deleting_the_account_closes_the_tabs(db: PgPool) {
    let gateway = Gateway::start(&db).await;
    let app = TestApp::new(db.clone())
        .await
        .with_realtime(&gateway.management());
    let ana = app.user("ana@example.com").await;
    let ana_id = user_id(&app, &ana).await;

    // Logout closes this session's tab.
    let mut tab = connect(&app, &gateway, &ana).await;
    let logout = app
        .call(Method::POST, "/api/v1/auth/logout")
        .bearer(&ana.access_token)
        .send()
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert!(
        tab.closed_within(Duration::from_secs(2)).await,
        "logout closes the socket"
    );
    assert_eq!(connections(&db).await, 0);

    // A password change closes the other sessions' tabs and keeps the caller's own.
    let here: Tokens = app
        .login("ana@example.com", api_tests::PASSWORD)
        .await
        .json();
    let elsewhere: Tokens = app
        .login("ana@example.com", api_tests::PASSWORD)
        .await
        .json();
    let mut mine = connect(&app, &gateway, &here).await;
    let mut theirs = connect(&app, &gateway, &elsewhere).await;
    let changed = app
        .call(Method::POST, "/api/v1/users/me/password")
        .bearer(&here.access_token)
        .json(&json!({"current_password": api_tests::PASSWORD, "new_password": "a brand new passphrase 42"}))
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text());
    assert!(
        theirs.closed_within(Duration::from_secs(2)).await,
        "the other session's tab"
    );
    let note = message(ana_id, "Still here");
    deliver(&db, &gateway, &[&note]).await;
    assert_eq!(
        mine.next_frame(WITHIN).await.unwrap()["notification"]["id"],
        note.id.to_string()
    );

    // Deleting the account closes the last one.
    let deleted = app
        .call(Method::DELETE, "/api/v1/users/me")
        .bearer(&here.access_token)
        .json(&json!({"current_password": "a brand new passphrase 42"}))
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(
        mine.closed_within(Duration::from_secs(2)).await,
        "deletion closes the socket"
    );
    assert_eq!(connections(&db).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_demoted_user_reconnects_and_a_revoked_session_gets_nothing(db: PgPool) {
    let gateway = Gateway::start(&db).await;
    let app = TestApp::new(db.clone())
        .await
        .with_realtime(&gateway.management());
    let organizer = app.organizer("ana@example.com").await;
    let ana_id = user_id(&app, &organizer).await;
    let mut tab = connect(&app, &gateway, &organizer).await;
    let admin = app.admin("root@example.com").await;
    let demoted = app
        .call(Method::PATCH, &format!("/api/v1/users/{}", ana_id.0))
        .bearer(&admin.access_token)
        .json(&json!({"role": "user"}))
        .send()
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text());
    assert!(
        tab.closed_within(Duration::from_secs(2)).await,
        "a role change closes the socket"
    );

    // A session revoked by a path that closes nothing (here, in SQL) still gets no push:
    // the push reads only live sessions' connections, and forgets the others.
    let mut tab = connect(&app, &gateway, &organizer).await;
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE user_id = $1")
        .bind(ana_id.0)
        .execute(&db)
        .await
        .unwrap();
    deliver(&db, &gateway, &[&message(ana_id, "Too late")]).await;
    assert_eq!(tab.next_frame(Duration::from_millis(500)).await, None);
    assert_eq!(connections(&db).await, 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn catching_up_since_the_last_seen_returns_what_arrived_meanwhile(db: PgPool) {
    let app = TestApp::new(db.clone()).await;
    let gateway = Gateway::start(&db).await;
    let ana = app.user("ana@example.com").await;
    let ana_id = user_id(&app, &ana).await;
    let mut tab = connect(&app, &gateway, &ana).await;
    let seen = message(ana_id, "Seen live");
    deliver(&db, &gateway, &[&seen]).await;
    let frame = tab.next_frame(WITHIN).await.unwrap();
    let last_seen = frame["notification"]["id"].as_str().unwrap().to_owned();
    tab.close().await;

    // Offline: three more arrive (and one for someone else).
    let missed: Vec<NotificationMessage> = (1..=3)
        .map(|i| message(ana_id, &format!("Missed {i}")))
        .collect();
    let bo = app.user("bo@example.com").await;
    let bos = message(user_id(&app, &bo).await, "Bo's");
    for m in &missed {
        deliver(&db, &gateway, &[m]).await;
    }
    deliver(&db, &gateway, &[&bos]).await;

    // Reconnected, the client catches up from the last one it saw: oldest first, paged.
    let page = app
        .get(
            &format!("/api/v1/notifications?since={last_seen}&limit=2"),
            Some(&ana.access_token),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let page: Value = page.json();
    let titles = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(titles(&page), ["Missed 1", "Missed 2"]);
    let cursor = page["next_cursor"].as_str().expect("more to come");
    let rest: Value = app
        .get(
            &format!("/api/v1/notifications?since={last_seen}&limit=2&cursor={cursor}"),
            Some(&ana.access_token),
        )
        .await
        .json();
    assert_eq!(titles(&rest), ["Missed 3"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // Since an instant: everything after it.
    let all: Value = app
        .get(
            "/api/v1/notifications?since=2000-01-01T00:00:00Z&limit=100",
            Some(&ana.access_token),
        )
        .await
        .json();
    assert_eq!(
        titles(&all),
        ["Seen live", "Missed 1", "Missed 2", "Missed 3"]
    );

    // Someone else's id, an unknown id or junk is a 422 naming `since`.
    for bad in [
        bos.id.to_string(),
        Uuid::now_v7().to_string(),
        "yesterday".into(),
    ] {
        let refused = app
            .get(
                &format!("/api/v1/notifications?since={bad}"),
                Some(&ana.access_token),
            )
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(refused.json::<Value>()["errors"][0]["field"], "since");
    }
}
